"""The DCDM paper's use case: a pressure Poisson problem whose solid obstacles move every step.

    .venv/bin/python benchmarks/dcdm_changing_operator.py --dim 2 --size 256 --steps 50 --json out/changing_2d_256.json

Every step moves the obstacles (``problems.moving_obstacle_mask``: random balls circling their start positions; an
obstacle field none of the models was trained on), assembles the new operator into the same matrix (one sparsity
pattern for every step: explicit zeros across walls) and solves a new right-hand side from a zero guess with each
solver. Each solver keeps one KSP for the whole run and pays, every step, the set-up its PC needs for new values:
ICC its factorisation, BoomerAMG its hierarchy, PCMG its Galerkin products, the neural PC its levels (the moved
solid cells change which rows the transfers skip, so its interpolations and coarse operators are rebuilt; the ONNX
session is kept); GAMG gets a new KSP every step (with a kept one, CG stopped converging after the first step at
256^2). Reported per solver: iterations, set-up and solve time per step (mean over steps), all from one run, steps
interleaved so that load changes hit every solver alike.

``--generalisation N`` first compares the neural PC on N obstacle fields of its training family with N unseen ones
(the same random process, other seeds), at the training grid and at ``--size``.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import time
from pathlib import Path

import numpy as np
import petsc4py

petsc4py.init()
from petsc4py import PETSc  # noqa: E402

from accel.integrations.petsc.solvers import Solver, random_rhs, solve  # noqa: E402
from accel.plugins.dcdm import problems  # noqa: E402

# With a KSP kept across steps, GAMG's re-set-up for new values left CG unconverged after the first step at 256^2
# (true residual 0.1-0.3; cause not investigated). GAMG gets a new KSP, a full set-up, every step.
FRESH = {"cg+gamg"}
SOLVERS_2D = ["cg+icc", "cg+gamg", "cg+boomeramg", "cg+mg-sor", "fcg2+neural", "fcg2+neural-sor"]
SOLVERS_3D = ["cg+icc", "cg+gamg", "cg+boomeramg-3d", "cg+mg-sor", "fcg2+neural", "fcg2+neural-sor"]


def set_values(M, csr) -> None:
    """Write ``csr``'s rows (same pattern as M's) into the distributed matrix M in place."""
    r0, r1 = M.getOwnershipRange()
    local = csr[r0:r1].tocsr()
    local.sort_indices()
    M.setValuesCSR(local.indptr.astype(PETSc.IntType), local.indices.astype(PETSc.IntType), local.data)
    M.assemble()


def neural_extra(model, shape, threads):
    """The neural PC's options: ``model`` a path, or None for the shipped obstacle-family model of the dimension."""
    which = {"accel_model": model} if model else {"accel_problem": f"random-obstacles{len(shape)}d"}
    return {**which, "accel_grid": ",".join(map(str, reversed(shape))), "accel_threads": threads}


def generalisation(model, dim, sizes, members, threads, out):
    """Mean/max iterations of the neural PC on training-family fields vs unseen ones, per grid size."""
    rows = []
    for n in sizes:
        shape = (n,) * dim
        for label, seed in (("training", 0), ("unseen", 1000)):
            its = []
            for prob in problems.family(f"random-obstacles{dim}d", shape, members, seed)[:members]:
                A = problems.to_petsc(prob.matrix)
                b = random_rhs(A, solid=prob.solid)
                r = solve(A, b, "fcg2+neural", extra=neural_extra(model, shape, threads), raise_unconverged=False)
                its.append(r.iterations if r.converged else -1)
                A.destroy()
                b.destroy()
            row = {"grid": "x".join(map(str, shape)), "fields": label, "mean_its": float(np.mean(its)),
                   "max_its": int(max(its)), "its": its, "all_converged": min(its) > 0}
            rows.append(row)
            if out:
                print(f"generalisation {row['grid']:>10} {label:<8} mean {row['mean_its']:.1f} max {row['max_its']}"
                      f"{'' if row['all_converged'] else '  SOME NOT CONVERGED'}", flush=True)
    return rows


def loop(args, solvers, shape):
    dim = len(shape)
    first = problems.pressure_poisson(shape, problems.moving_obstacle_mask(shape, args.seed, 0), full_pattern=True)
    mats, runs, records = {}, {}, {s: [] for s in solvers}
    for s in solvers:
        mats[s] = problems.to_petsc(first)
        extra = neural_extra(args.model, shape, args.threads) if "neural" in s else None
        runs[s] = Solver(mats[s], s, rtol=args.rtol, extra=extra, name=s, grid=shape)
    rank = PETSc.COMM_WORLD.getRank()
    try:
        for step in range(args.steps):
            t = time.perf_counter()
            solid = problems.moving_obstacle_mask(shape, args.seed, step, period=args.period)
            csr = problems.pressure_poisson(shape, solid, full_pattern=True)
            assembly = time.perf_counter() - t
            for s in solvers:
                set_values(mats[s], csr)
                b = random_rhs(mats[s], seed=step, solid=solid)
                if s in FRESH and step:
                    runs[s].destroy()
                    runs[s] = Solver(mats[s], s, rtol=args.rtol, name=s, grid=shape)
                r = runs[s].run(b)
                b.destroy()
                records[s].append({"step": step, "its": r.iterations, "setup_s": r.setup_s, "solve_s": r.solve_s,
                                   "converged": bool(r.converged), "residual": r.residual})
            if rank == 0 and (step % 10 == 0 or step == args.steps - 1):
                line = " ".join(f"{s}:{records[s][-1]['its']}/{records[s][-1]['setup_s'] + records[s][-1]['solve_s']:.3f}s"
                                for s in solvers)
                print(f"step {step:>3} (solid {solid.mean():.3f}, assembly {assembly:.2f} s) {line}", flush=True)
    finally:
        for s in solvers:
            runs[s].destroy()
            mats[s].destroy()
    summary = []
    for s in solvers:
        rec = records[s]
        its = [r["its"] for r in rec]
        row = {"solver": s, "grid": "x".join(map(str, shape)), "steps": len(rec), "mean_its": float(np.mean(its)),
               "max_its": int(max(its)), "setup_s": float(np.mean([r["setup_s"] for r in rec])),
               "solve_s": float(np.mean([r["solve_s"] for r in rec])),
               "all_converged": all(r["converged"] for r in rec)}
        row["step_s"] = row["setup_s"] + row["solve_s"]
        summary.append(row)
    return summary, records


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dim", type=int, choices=(2, 3), default=2)
    ap.add_argument("--size", type=int, default=256, help="grid extent per axis")
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--period", type=int, default=50, help="frames per revolution of the obstacles")
    ap.add_argument("--seed", type=int, default=2024, help="the moving obstacle field (not a training seed)")
    ap.add_argument("--model", default=None, help="a DCDM model (ONNX); default: the shipped model trained on random "
                                                  "obstacle fields (dcdm-random-obstacles2d / 3d)")
    ap.add_argument("--solvers", default=None, help="comma-separated solver names (default: every classical PC a "
                                                    "PETSc user would pick, and the neural PC with both smoothers)")
    ap.add_argument("--rtol", type=float, default=1e-8)
    ap.add_argument("--threads", type=int, default=1, help="ONNX Runtime threads")
    ap.add_argument("--generalisation", type=int, default=0, metavar="N",
                    help="first compare N training-family fields with N unseen ones")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    shape = (args.size,) * args.dim
    solvers = args.solvers.split(",") if args.solvers else (SOLVERS_3D if args.dim == 3 else SOLVERS_2D)
    rank = PETSc.COMM_WORLD.getRank()
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    load = os.getloadavg()
    gen = []
    if args.generalisation:
        train_n = 64 if args.dim == 2 else 32
        gen = generalisation(args.model, args.dim, sorted({train_n, args.size}), args.generalisation, args.threads,
                             rank == 0)
    summary, records = loop(args, solvers, shape)
    if rank == 0:
        print(f"\n{'solver':<17}{'grid':>12}{'steps':>6}{'its mean':>9}{'max':>5}{'setup s':>9}{'solve s':>9}"
              f"{'step s':>9}")
        for r in summary:
            print(f"{r['solver']:<17}{r['grid']:>12}{r['steps']:>6}{r['mean_its']:>9.1f}{r['max_its']:>5}"
                  f"{r['setup_s']:>9.3f}{r['solve_s']:>9.3f}{r['step_s']:>9.3f}"
                  f"{'' if r['all_converged'] else '  NOT ALL CONVERGED'}")
        print(f"machine {platform.platform()}, ranks {PETSc.COMM_WORLD.getSize()}, started {started}, "
              f"load at start {load[0]:.2f}, at end {os.getloadavg()[0]:.2f}")
        if args.json:
            Path(args.json).parent.mkdir(parents=True, exist_ok=True)
            commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
            Path(args.json).write_text(json.dumps(
                {"args": vars(args), "machine": platform.platform(), "ranks": PETSc.COMM_WORLD.getSize(),
                 "started": started, "load_start": load, "load_end": os.getloadavg(), "commit": commit,
                 "generalisation": gen, "summary": summary, "records": records}, indent=1))


if __name__ == "__main__":
    main()
