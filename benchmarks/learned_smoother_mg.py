"""accel.LearnedSmootherMG (options only) against the explicit finest-level options and GAMG, on cached cases.

    .venv/bin/python benchmarks/gnn_unstructured.py --family plate --h 0.0025 --contrast 1e4 --cache out/gnn-cases \
        --assemble-only                                  # writes out/gnn-cases/plate_h0.0025_c10000_s101.{A,b}.dat
    flock /tmp/accel-bench.lock taskset -c 0 .venv/bin/python benchmarks/learned_smoother_mg.py \
        out/gnn-cases/plate_h0.0025_c10000_s101 [more cases]

Rows per case, each in the same process and after a warm-up solve on a small matrix (numba's compiled kernels
loaded, ONNX Runtime's first session made). ``--rows`` picks them (default ``gamg,explicit,lsmg,lsmg-fsai``):

* ``gamg``: GAMG with its defaults; ``cg+icc``: ICC(0);
* ``explicit``: GAMG with the finest level's smoother given as ``-mg_levels_L_...`` options (L found by a GAMG
  set-up beforehand, not timed);
* ``lsmg``: ``-pc_type python -pc_python_type accel.LearnedSmootherMG`` (no level index, its default model);
  ``lsmg-fsai``: its classical twin (``-accel_fine_accel_plugin fsai``); ``lsmg-LABEL``: with the model
  ``--model LABEL=PATH`` (``-accel_fine_accel_model PATH``); ``lsmg2-...``: the same with 2 Richardson sweeps
  (``-accel_fine_ksp_max_it 2``);
* ``cg+gnn`` (one-level CG with the default gnn model), ``cg+gnn-LABEL`` (with the model LABEL), ``cg+fsai``.

CG, rtol 1e-8, unpreconditioned residual norm, the case's right-hand side (a row that did not converge says so).
The LearnedSmootherMG rows also give
lambda_max(M A) as the PC estimated it on the finest level (and the Richardson scale it set, 1 when undamped).
"""
from __future__ import annotations

import argparse

CG = {"ksp_type": "cg", "ksp_norm_type": "unpreconditioned"}
WRAPPED = {**CG, "pc_type": "python", "pc_python_type": "accel.LearnedSmootherMG"}
NEURAL = {**CG, "pc_type": "python", "pc_python_type": "accel.NeuralPC"}
DEFAULT_ROWS = "gamg,explicit,lsmg,lsmg-fsai"


def _load(path: str):
    from petsc4py import PETSc

    viewer = PETSc.Viewer().createBinary(path, "r")
    try:
        return (PETSc.Mat() if path.endswith(".A.dat") else PETSc.Vec()).load(viewer)
    finally:
        viewer.destroy()


def _row(A, key: str, models: dict[str, str]) -> tuple[str, dict]:
    """(the row's printed name, its options) for the row key ``key``."""
    fixed = {"gamg": ("gamg", {**CG, "pc_type": "gamg"}),
             "cg+icc": ("cg+icc", {**CG, "pc_type": "icc"}),
             "lsmg": ("accel.LearnedSmootherMG", WRAPPED),
             "lsmg-fsai": ("accel.LearnedSmootherMG, fsai", {**WRAPPED, "accel_fine_accel_plugin": "fsai"}),
             "lsmg2-fsai": ("accel.LearnedSmootherMG, fsai, 2 sweeps",
                            {**WRAPPED, "accel_fine_accel_plugin": "fsai", "accel_fine_ksp_max_it": 2}),
             "cg+gnn": ("cg+gnn", {**NEURAL, "accel_plugin": "gnn"}),
             "cg+fsai": ("cg+fsai", {**NEURAL, "accel_plugin": "fsai"})}
    if key in fixed:
        return fixed[key]
    if key == "explicit":
        from accel.integrations.petsc.smoothed_mg import finest_gamg_level

        L = finest_gamg_level(A)
        return f"gamg, -mg_levels_{L}_ options", {
            **CG, "pc_type": "gamg", f"mg_levels_{L}_ksp_type": "richardson", f"mg_levels_{L}_ksp_max_it": 1,
            f"mg_levels_{L}_pc_type": "python", f"mg_levels_{L}_pc_python_type": "accel.NeuralPC",
            f"mg_levels_{L}_accel_plugin": "gnn"}
    kind, _, label = key.partition("-")
    if label in models:
        if kind == "lsmg":
            return f"accel.LearnedSmootherMG, {label}", {**WRAPPED, "accel_fine_accel_model": models[label]}
        if kind == "lsmg2":
            return (f"accel.LearnedSmootherMG, {label}, 2 sweeps",
                    {**WRAPPED, "accel_fine_accel_model": models[label], "accel_fine_ksp_max_it": 2})
        if kind == "cg+gnn":
            return f"cg+gnn, {label}", {**NEURAL, "accel_plugin": "gnn", "accel_model": models[label]}
    raise SystemExit(f"unknown row {key!r}: use gamg, cg+icc, explicit, lsmg, lsmg-fsai, lsmg2-fsai, cg+gnn, cg+fsai "
                     f"or lsmg-LABEL, lsmg2-LABEL, cg+gnn-LABEL with LABEL one of --model's ({', '.join(models)})")


def _run(A, b, options):
    """The row's result and, for a LearnedSmootherMG row, (lambda_max(M A), Richardson scale) on its finest level."""
    from accel.integrations.petsc.smoothed_mg import LearnedSmootherMG
    from accel.integrations.petsc.solvers import Solver

    solver = Solver(A, options)
    try:
        result = solver.run(b)
        pc = solver.ksp.getPC()
        context = pc.getPythonContext() if pc.getType() == "python" else None
        scales = context.scales if isinstance(context, LearnedSmootherMG) else {}
        return result, (scales[max(scales)] if scales else None)
    finally:
        solver.destroy()


def _warm_up():
    from accel.integrations.petsc.solvers import solve
    from accel.plugins.gnn.problems import diffusion

    p = diffusion("plate", 0.05, contrast=1e4, seed=0)
    try:
        solve(p.A, p.b, WRAPPED)
    finally:
        p.destroy()


def _model(text: str) -> tuple[str, str]:
    label, sep, path = text.partition("=")
    if not sep or not label or not path or "-" in label or "," in label:
        raise argparse.ArgumentTypeError(f"{text!r}: write LABEL=PATH (LABEL without '-' or ',')")
    return label, path


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cases", nargs="+", help="case path without .A.dat/.b.dat (from gnn_unstructured.py --cache)")
    parser.add_argument("--rows", default=DEFAULT_ROWS, help=f"row keys, comma-separated (default {DEFAULT_ROWS})")
    parser.add_argument("--model", type=_model, action="append", default=[], metavar="LABEL=PATH",
                        help="a gnn model for the rows lsmg-LABEL, lsmg2-LABEL and cg+gnn-LABEL (repeatable)")
    args = parser.parse_args(argv)
    models = dict(args.model)
    keys = [k.strip() for k in args.rows.split(",") if k.strip()]

    _warm_up()
    print("| case | unknowns | row | its | set-up s | solve s | total s | total / first row's | lambda_max(M A), scale |")
    print("|---|---|---|---|---|---|---|---|---|")
    for case in args.cases:
        A, b = _load(case + ".A.dat"), _load(case + ".b.dat")
        try:
            first_total = None
            for key in keys:
                name, options = _row(A, key, models)
                r, scale = _run(A, b, options)
                first_total = first_total or r.total_s
                lam = f"{scale[0]:.3f}, {scale[1]:.3f}" if scale else ""
                its = r.iterations if r.converged else f"{r.iterations} (not converged: reason {r.reason})"
                print(f"| {case.rsplit('/', 1)[-1]} | {A.getSize()[0]:,} | {name} | {its} | {r.setup_s:.3f} | "
                      f"{r.solve_s:.3f} | {r.total_s:.3f} | {r.total_s / first_total:.2f} | {lam} |", flush=True)
        finally:
            A.destroy()
            b.destroy()


if __name__ == "__main__":
    main()
