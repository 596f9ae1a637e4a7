"""accel.LearnedSmootherMG (options only) against the explicit finest-level options and GAMG, on cached cases.

    .venv/bin/python benchmarks/gnn_unstructured.py --family plate --h 0.0025 --contrast 1e4 --cache out/gnn-cases \
        --assemble-only                                  # writes out/gnn-cases/plate_h0.0025_c10000_s101.{A,b}.dat
    flock /tmp/accel-bench.lock taskset -c 0 .venv/bin/python benchmarks/learned_smoother_mg.py \
        out/gnn-cases/plate_h0.0025_c10000_s101 [more cases]

Rows per case, each in the same process and after a warm-up solve on a small matrix (numba's compiled kernels
loaded, ONNX Runtime's first session made): GAMG with its defaults; GAMG with the finest level's smoother given
as ``-mg_levels_L_...`` options (L found by a GAMG set-up beforehand, not timed); the same through
``-pc_type python -pc_python_type accel.LearnedSmootherMG`` (no level index); and its classical twin
(``-accel_fine_accel_plugin fsai``). CG, rtol 1e-8, unpreconditioned residual norm, the case's right-hand side.
"""
from __future__ import annotations

import argparse

CG = {"ksp_type": "cg", "ksp_norm_type": "unpreconditioned"}
WRAPPED = {**CG, "pc_type": "python", "pc_python_type": "accel.LearnedSmootherMG"}


def _load(path: str):
    from petsc4py import PETSc

    viewer = PETSc.Viewer().createBinary(path, "r")
    try:
        return (PETSc.Mat() if path.endswith(".A.dat") else PETSc.Vec()).load(viewer)
    finally:
        viewer.destroy()


def _rows(A) -> dict[str, dict]:
    from accel.integrations.petsc.smoothed_mg import finest_gamg_level

    L = finest_gamg_level(A)
    explicit = {f"mg_levels_{L}_ksp_type": "richardson", f"mg_levels_{L}_ksp_max_it": 1,
                f"mg_levels_{L}_pc_type": "python", f"mg_levels_{L}_pc_python_type": "accel.NeuralPC",
                f"mg_levels_{L}_accel_plugin": "gnn"}
    return {"gamg": {**CG, "pc_type": "gamg"},
            f"gamg, -mg_levels_{L}_ options": {**CG, "pc_type": "gamg", **explicit},
            "accel.LearnedSmootherMG": WRAPPED,
            "accel.LearnedSmootherMG, fsai": {**WRAPPED, "accel_fine_accel_plugin": "fsai"}}


def _warm_up():
    from accel.integrations.petsc.solvers import solve
    from accel.plugins.gnn.problems import diffusion

    p = diffusion("plate", 0.05, contrast=1e4, seed=0)
    try:
        solve(p.A, p.b, WRAPPED)
    finally:
        p.destroy()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cases", nargs="+", help="case path without .A.dat/.b.dat (from gnn_unstructured.py --cache)")
    args = parser.parse_args(argv)
    from accel.integrations.petsc.solvers import solve

    _warm_up()
    print("| case | unknowns | row | its | set-up s | solve s | total s | total / GAMG's |")
    print("|---|---|---|---|---|---|---|---|")
    for case in args.cases:
        A, b = _load(case + ".A.dat"), _load(case + ".b.dat")
        try:
            gamg_total = None
            for name, options in _rows(A).items():
                r = solve(A, b, options)
                gamg_total = gamg_total or r.total_s
                print(f"| {case.rsplit('/', 1)[-1]} | {A.getSize()[0]:,} | {name} | {r.iterations} | {r.setup_s:.3f} | "
                      f"{r.solve_s:.3f} | {r.total_s:.3f} | {r.total_s / gamg_total:.2f} |", flush=True)
        finally:
            A.destroy()
            b.destroy()


if __name__ == "__main__":
    main()
