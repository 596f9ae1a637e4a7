"""Neural preconditioner vs classical ones, side by side in one run, with ablation rows.

    .venv/bin/python benchmarks/dcdm_solvers.py --json out/dcdm_solvers.json          # the full table
    .venv/bin/python benchmarks/dcdm_solvers.py --families poisson3d --sizes3d 32,64   # a subset
    # any grid size, against ICC and PCMG, on 2 ranks:
    mpirun -n 2 .venv/bin/python benchmarks/dcdm_solvers.py --families poisson3d --sizes3d 64,65,97,100,127,128,129 \
        --rtols 1e-8 --solvers cg+icc,cg+mg-sor,fcg2+neural,fcg2+neural-sor --json out/sizes3d_2ranks.json

Every row: iterations, set-up and solve time (s), time per preconditioner apply, true relative residual. Neural rows
also split the apply into the ONNX Runtime call, the copies/casts, the gather/scatter and the smoothing sweeps.
``neural`` runs the cycle as trained (2+2 Jacobi sweeps), ``neural-sor`` with one symmetric SOR sweep before and
after the network. Ablations (the same levels, cycle and Krylov method, the network replaced): twogrid-exact (exact
Galerkin coarse LU one level below the network's grid) and twogrid-none (no coarse correction at the network's
level), each with the Jacobi and with the SOR cycle. Classical rows: ICC, GAMG, BoomerAMG with its defaults and
with the usual 3D settings (``cg+boomeramg-3d``), PCMG with Galerkin coarse operators and SOR (``cg+mg-sor``) or
Chebyshev/Jacobi (``cg+mg-cheby``) smoothers, levels from the grid. Runs under mpirun too (rank 0 prints).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import petsc4py

petsc4py.init()
from petsc4py import PETSc  # noqa: E402

from accel.integrations.petsc.solvers import random_rhs  # noqa: E402
from accel.integrations.petsc.solvers import solve  # noqa: E402
from accel.plugins.dcdm import problems  # noqa: E402

SOLVERS = ["cg", "cg+icc", "cg+gamg", "cg+boomeramg", "cg+boomeramg-3d", "cg+mg-sor", "cg+mg-cheby", "fcg2+neural", "fcg8+neural", "fgmres+neural",
           "fcg2+neural-sor", "fcg2+twogrid-exact", "fcg2+twogrid-none", "fcg2+twogrid-exact-sor",
           "fcg2+twogrid-none-sor"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--families", default="poisson2d,obstacles2d,poisson3d")
    ap.add_argument("--sizes2d", default="64,128,256")
    ap.add_argument("--sizes3d", default="32,64")
    ap.add_argument("--rtols", default="1e-6,1e-8")
    ap.add_argument("--solvers", default=",".join(SOLVERS))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--levels", type=int, default=-1, help="grid levels above the network (-1: automatic)")
    ap.add_argument("--pc-option", action="append", default=[], metavar="KEY=VALUE",
                    help="extra option for the neural PC, e.g. accel_coarse_operator=galerkin (repeatable)")
    ap.add_argument("--json", default=None)
    ap.add_argument("--exact-max", type=int, default=40000,
                    help="skip twogrid-exact when its coarse LU would have more unknowns than this")
    args = ap.parse_args()
    rows = []
    rank = PETSc.COMM_WORLD.getRank()
    out = print if rank == 0 else (lambda *a, **k: None)
    load = os.getloadavg()
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    out(f"{'problem':<12}{'grid':>12} {'rtol':>6} {'solver':<19}{'its':>5}{'setup s':>9}{'solve s':>9}{'total s':>9}"
          f"{'apply ms':>9}{'ort ms':>8}{'ovh %':>6}{'true res':>10}")
    for fam in args.families.split(","):
        dim = 3 if fam.endswith("3d") else 2
        sizes = [int(s) for s in (args.sizes3d if dim == 3 else args.sizes2d).split(",")]
        for n in sizes:
            shape = (n,) * dim
            prob = problems.build(fam, shape)
            A = problems.to_petsc(prob.matrix)
            b = random_rhs(A, solid=prob.solid)
            for rtol in [float(r) for r in args.rtols.split(",")]:
                levels = args.levels  # the ablations run at the level the network ran at, with its transfers
                interp = ""
                for s in args.solvers.split(","):
                    if s.startswith("fcg2+twogrid-exact") and n**dim // 2 ** (dim * (max(levels, 0) + 1)) > args.exact_max:
                        out(f"{fam:<12}{'x'.join(map(str, shape)):>12} {rtol:>6.0e} {s:<19} skipped: coarse LU too large")
                        continue
                    extra = None
                    if "+neural" in s or "+twogrid" in s:
                        extra = {"accel_problem": fam, "accel_grid": ",".join([str(n)] * dim),
                                 "accel_threads": args.threads, "accel_levels": levels,
                                 **({"accel_interpolation": interp} if interp and "+twogrid" in s else {}),
                                 **dict(kv.split("=", 1) for kv in args.pc_option)}
                    if s.endswith("-3d") and dim != 3:
                        continue
                    r = solve(A, b, s, rtol=rtol, extra=extra, name=s, raise_unconverged=False, grid=shape)
                    if "+neural" in s:
                        levels = r.pc_stats["levels"]
                        interp = r.pc_stats["interpolation"]
                    st = r.pc_stats
                    apply_ms = ort_ms = ovh = float("nan")
                    if st.get("applies"):
                        apply_ms = 1e3 * st["apply"] / st["applies"]
                        ort_ms = 1e3 * st["network"] / st["applies"]
                        ovh = 100 * (st["copies"] + st["gather_scatter"]) / st["apply"]
                    row = {"problem": fam, "grid": "x".join(map(str, shape)), "rtol": rtol, "solver": s,
                           "iterations": r.iterations, "setup_s": r.setup_s, "solve_s": r.solve_s,
                           "total_s": r.total_s, "apply_ms": apply_ms, "ort_ms": ort_ms, "overhead_pct": ovh,
                           "residual": r.residual, "converged": bool(r.converged), "pc_stats": st}
                    rows.append(row)
                    out(f"{fam:<12}{row['grid']:>12} {rtol:>6.0e} {s:<19}{r.iterations:>5}{r.setup_s:>9.3f}"
                          f"{r.solve_s:>9.3f}{r.total_s:>9.3f}{apply_ms:>9.2f}{ort_ms:>8.2f}{ovh:>6.1f}"
                          f"{r.residual:>10.1e}{'' if r.converged else '  NOT CONVERGED'}", flush=True)
            A.destroy()
            b.destroy()
    if args.json and rank == 0:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"machine": platform.platform(), "date": time.strftime("%Y-%m-%d"),
                                               "started": started, "load_start": load, "load_end": os.getloadavg(),
                                               "ranks": PETSc.COMM_WORLD.getSize(),
                                               "petsc": ".".join(map(str, PETSc.Sys.getVersion())), "rows": rows},
                                              indent=1))


if __name__ == "__main__":
    main()
