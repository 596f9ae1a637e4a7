"""The DCDM paper's use case: a pressure Poisson problem whose solid obstacles move every step.

    .venv/bin/python benchmarks/dcdm_changing_operator.py --dim 2 --size 256 --steps 50 --json out/changing_2d_256.json

Every step moves the obstacles (``problems.moving_obstacle_mask``: random balls circling their start positions; an
obstacle field none of the models was trained on), assembles the new operator into the same matrix (one sparsity
pattern for every step: explicit zeros across walls) and solves a new right-hand side from a zero guess with each
solver. Each solver keeps one KSP for the whole run and pays, every step, the set-up its PC needs for new values:
ICC its factorisation, BoomerAMG its hierarchy, PCMG its Galerkin products, the neural PC its levels (the moved
solid cells change which rows the transfers skip, so its interpolations and coarse operators are rebuilt; the ONNX
session is kept); GAMG gets a new KSP every step (with a kept one, PETSc 3.18's GAMG reuses the interpolation built
for the old obstacle positions and CG stops with DIVERGED_INDEFINITE_PC after the first step). Reported per solver: iterations, set-up and solve time per step (mean over steps), all from one run, steps
interleaved so that load changes hit every solver alike.

``--generalisation N`` first compares the neural PC on N obstacle fields of its training family with N unseen ones
(the same random process, other seeds), at the training grid and at ``--size``.

Long runs in chunks (each under a time limit; the obstacle motion depends only on the step number):

    ... --steps 17 --first-step 0 --json out/c0.json;  ... --steps 17 --first-step 17 --json out/c1.json;  ...
    .venv/bin/python benchmarks/dcdm_changing_operator.py --merge out/c0.json out/c1.json ... --json out/all.json

A chunk that starts after step 0 first sets every solver up, untimed, on the previous step's operator, so each timed
step pays what it would in one long run (an update for new values, not a first set-up).
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

from accel.cliargs import add_force, existing_file, nonnegative_int, positive_float, positive_int  # noqa: E402
from accel.files import OutputExistsError, atomic_output, refuse_existing  # noqa: E402
from accel.integrations.petsc.solvers import CONFIGS, Solver, random_rhs, solve  # noqa: E402
from accel.plugins.dcdm import problems  # noqa: E402

# With a KSP kept across steps, GAMG's re-set-up for new values reuses the interpolation of the first obstacle field
# (PETSc 3.18's -pc_gamg_reuse_interpolation defaults to true), which is wrong once the obstacles have moved: CG stops
# with DIVERGED_INDEFINITE_PC (true residual 0.1-0.3). With reuse off a kept KSP converges (22-24 its at 128^2) and
# pays the same full set-up as a new KSP; GAMG gets a new KSP, a full set-up, every step.
FRESH = {"cg+gamg"}
_BOOMERAMG = CONFIGS["cg+boomeramg"]
# BoomerAMG tuned for this 2D problem as fairly as the neural PC: its defaults (Falgout coarsening, classical
# interpolation, strong threshold 0.25) beside cheaper set-ups (HMIS/PMIS with ext+i interpolation, P_max 4,
# aggressive coarsening on the first level) and the 3D threshold 0.5
LOCAL_CONFIGS = {
    "cg+boomeramg-hmis": {**_BOOMERAMG, "pc_hypre_boomeramg_coarsen_type": "HMIS",
                          "pc_hypre_boomeramg_interp_type": "ext+i", "pc_hypre_boomeramg_P_max": 4},
    "cg+boomeramg-pmis-agg": {**_BOOMERAMG, "pc_hypre_boomeramg_coarsen_type": "PMIS",
                              "pc_hypre_boomeramg_interp_type": "ext+i", "pc_hypre_boomeramg_P_max": 4,
                              "pc_hypre_boomeramg_agg_nl": 1},
    "cg+boomeramg-0.5": {**_BOOMERAMG, "pc_hypre_boomeramg_strong_threshold": 0.5},
    # the K-cycle under FCG(1): one stored direction, a little less work per iteration than FCG(2)
    "fcg1+neural-k": {**CONFIGS["fcg2+neural-k"], "ksp_fcg_mmax": 1},
}
SOLVERS_2D = ["cg+icc", "cg+gamg", "cg+boomeramg", "cg+boomeramg-hmis", "cg+boomeramg-pmis-agg", "cg+boomeramg-0.5",
              "cg+mg-sor", "fcg2+neural", "fcg2+neural-sor", "fcg2+neural-k"]
SOLVERS_3D = ["cg+icc", "cg+gamg", "cg+boomeramg-3d", "cg+mg-sor", "fcg2+neural", "fcg2+neural-sor", "fcg2+neural-k"]


def config(name: str):
    return LOCAL_CONFIGS.get(name, name)


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
    start = max(0, args.first_step - 1)  # a later chunk is first set up, untimed, on the step before it
    first = problems.pressure_poisson(shape, problems.moving_obstacle_mask(shape, args.seed, start, period=args.period),
                                      full_pattern=True)
    mats, runs, records = {}, {}, {s: [] for s in solvers}
    for s in solvers:
        mats[s] = problems.to_petsc(first)
        extra = neural_extra(args.model, shape, args.threads) if "neural" in s else None
        runs[s] = Solver(mats[s], config(s), rtol=args.rtol, extra=extra, name=s, grid=shape)
        if args.first_step:
            runs[s].ksp.setUp()
            runs[s].ksp.getPC().setUp()
    rank = PETSc.COMM_WORLD.getRank()
    try:
        for step in range(args.first_step, args.first_step + args.steps):
            t = time.perf_counter()
            solid = problems.moving_obstacle_mask(shape, args.seed, step, period=args.period)
            csr = problems.pressure_poisson(shape, solid, full_pattern=True)
            assembly = time.perf_counter() - t
            for s in solvers:
                set_values(mats[s], csr)
                b = random_rhs(mats[s], seed=step, solid=solid)
                if s in FRESH and step:
                    runs[s].destroy()
                    runs[s] = Solver(mats[s], config(s), rtol=args.rtol, name=s, grid=shape)
                r = runs[s].run(b)
                b.destroy()
                records[s].append({"step": step, "its": r.iterations, "setup_s": r.setup_s, "solve_s": r.solve_s,
                                   "converged": bool(r.converged), "residual": r.residual})
            if rank == 0 and (step % 10 == 0 or step == args.first_step + args.steps - 1):
                line = " ".join(f"{s}:{records[s][-1]['its']}/{records[s][-1]['setup_s'] + records[s][-1]['solve_s']:.3f}s"
                                for s in solvers)
                print(f"step {step:>3} (solid {solid.mean():.3f}, assembly {assembly:.2f} s) {line}", flush=True)
    finally:
        for s in solvers:
            runs[s].destroy()
            mats[s].destroy()
    return summarize(records, shape), records


def summarize(records: dict, shape) -> list[dict]:
    """Per solver: iterations, set-up and solve time per step (means over the steps recorded)."""
    summary = []
    for s, rec in records.items():
        its = [r["its"] for r in rec]
        row = {"solver": s, "grid": "x".join(map(str, shape)), "steps": len(rec), "mean_its": float(np.mean(its)),
               "max_its": int(max(its)), "setup_s": float(np.mean([r["setup_s"] for r in rec])),
               "solve_s": float(np.mean([r["solve_s"] for r in rec])),
               "all_converged": all(r["converged"] for r in rec)}
        row["step_s"] = row["setup_s"] + row["solve_s"]
        summary.append(row)
    return summary


def merge(paths, out, force):
    """One result from chunks of one loop (the same arguments but their steps): records joined, summary recomputed.
    A solver left out of later chunks (a slow row kept short) keeps the steps it ran; the summary counts them."""
    runs = [json.loads(Path(p).read_text()) for p in paths]
    runs.sort(key=lambda r: r["args"].get("first_step", 0))
    same = ("dim", "size", "period", "seed", "model", "rtol", "threads")
    for r in runs[1:]:
        differ = [k for k in same if r["args"].get(k) != runs[0]["args"].get(k)]
        if differ:
            raise SystemExit(f"--merge: the chunks differ in {', '.join(differ)}; merge chunks of one loop only")
    solvers = list(dict.fromkeys(s for r in runs for s in r["records"]))
    records = {s: [rec for r in runs for rec in r["records"].get(s, [])] for s in solvers}
    for s, rec in records.items():
        steps = [x["step"] for x in rec]
        if steps != list(range(steps[0], steps[0] + len(steps))):
            raise SystemExit(f"--merge: {s}'s steps are not one consecutive range (got {steps})")
    steps = sorted({x["step"] for rec in records.values() for x in rec})
    shape = (runs[0]["args"]["size"],) * runs[0]["args"]["dim"]
    summary = summarize(records, shape)
    chunks = [{k: r[k] for k in ("started", "load_start", "load_end", "commit")} | {"args": r["args"]} for r in runs]
    print_summary(summary)
    for c in chunks:
        print(f"chunk from step {c['args'].get('first_step', 0)}: started {c['started']}, load {c['load_start'][0]:.2f}"
              f" -> {c['load_end'][0]:.2f}, commit {c['commit']}")
    with atomic_output(out, force=force) as tmp:
        Path(tmp).write_text(json.dumps({"args": runs[0]["args"] | {"first_step": steps[0], "steps": len(steps)},
                                         "merged_from": [str(p) for p in paths], "chunks": chunks,
                                         "machine": runs[0]["machine"], "ranks": runs[0]["ranks"],
                                         "generalisation": [g for r in runs for g in r.get("generalisation", [])],
                                         "summary": summary, "records": records}, indent=1))


def print_summary(summary):
    print(f"\n{'solver':<22}{'grid':>12}{'steps':>6}{'its mean':>9}{'max':>5}{'setup s':>9}{'solve s':>9}"
          f"{'step s':>9}")
    for r in summary:
        print(f"{r['solver']:<22}{r['grid']:>12}{r['steps']:>6}{r['mean_its']:>9.1f}{r['max_its']:>5}"
              f"{r['setup_s']:>9.3f}{r['solve_s']:>9.3f}{r['step_s']:>9.3f}"
              f"{'' if r['all_converged'] else '  NOT ALL CONVERGED'}")


def solver_list(text: str) -> list[str]:
    names = [n for n in text.split(",") if n]
    unknown = [n for n in names if n not in CONFIGS and n not in LOCAL_CONFIGS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown solver(s) {', '.join(unknown) or '(none given)'}; valid: "
                                         f"{', '.join(sorted(CONFIGS) + sorted(LOCAL_CONFIGS))}")
    return names


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dim", type=int, choices=(2, 3), default=2)
    ap.add_argument("--size", type=positive_int, default=256, help="grid extent per axis")
    ap.add_argument("--steps", type=positive_int, default=50)
    ap.add_argument("--first-step", type=nonnegative_int, default=0,
                    help="the first step's number (a chunk of a longer loop; see --merge)")
    ap.add_argument("--period", type=positive_int, default=50, help="frames per revolution of the obstacles")
    ap.add_argument("--seed", type=int, default=2024, help="the moving obstacle field (not a training seed)")
    ap.add_argument("--model", type=existing_file, default=None,
                    help="a DCDM model (ONNX); default: the shipped model trained on random obstacle fields "
                         "(dcdm-random-obstacles2d / 3d)")
    ap.add_argument("--solvers", type=solver_list, default=None,
                    help="comma-separated solver names (default: every classical PC a PETSc user would pick, "
                         "BoomerAMG tuned, and the neural PC's cycles)")
    ap.add_argument("--rtol", type=positive_float, default=1e-8)
    ap.add_argument("--threads", type=positive_int, default=1, help="ONNX Runtime threads")
    ap.add_argument("--generalisation", type=nonnegative_int, default=0, metavar="N",
                    help="first compare N training-family fields with N unseen ones")
    ap.add_argument("--merge", nargs="+", type=existing_file, default=None, metavar="JSON",
                    help="join the result files of chunks of one loop into --json (runs nothing)")
    ap.add_argument("--json", default=None)
    add_force(ap)
    args = ap.parse_args()
    if args.json:
        try:
            refuse_existing(args.json, force=args.force)
        except OutputExistsError as exc:
            ap.error(str(exc))
    if args.merge:
        if not args.json:
            ap.error("--merge needs --json for the joined result")
        merge(args.merge, args.json, args.force)
        return
    shape = (args.size,) * args.dim
    solvers = args.solvers or (SOLVERS_3D if args.dim == 3 else SOLVERS_2D)
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
        print_summary(summary)
        print(f"machine {platform.platform()}, ranks {PETSc.COMM_WORLD.getSize()}, started {started}, "
              f"load at start {load[0]:.2f}, at end {os.getloadavg()[0]:.2f}")
        if args.json:
            commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
            Path(args.json).parent.mkdir(parents=True, exist_ok=True)
            with atomic_output(args.json, force=args.force) as tmp:
                Path(tmp).write_text(json.dumps(
                    {"args": {k: v for k, v in vars(args).items() if k not in ("merge", "force")},
                     "machine": platform.platform(), "ranks": PETSc.COMM_WORLD.getSize(),
                     "started": started, "load_start": load, "load_end": os.getloadavg(), "commit": commit,
                     "generalisation": gen, "summary": summary, "records": records}, indent=1))


if __name__ == "__main__":
    main()
