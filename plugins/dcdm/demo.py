"""``accel demo``: the main job. Solves the shipped model problems with the classical preconditioners a PETSc user
would pick and the neural one side by side, verifies every true residual, prints one table and writes a
convergence plot (residual against iterations and against time, set-up included). Registered by the DCDM plugin's
``accel_cli`` hook."""
from __future__ import annotations

import logging
from pathlib import Path

from accel.cliargs import positive_float, positive_int

log = logging.getLogger(__name__)

CASES_FULL = [("poisson2d", (128, 128)), ("obstacles2d", (128, 128)), ("poisson3d", (32, 32, 32)),
              ("poisson3d", (64, 64, 64)), ("poisson3d", (65, 65, 65))]
CASES_QUICK = [("poisson2d", (64, 64)), ("obstacles2d", (64, 64)), ("poisson3d", (32, 32, 32))]
SOLVERS = ["cg", "cg+icc", "cg+gamg", "cg+boomeramg", "cg+boomeramg-3d", "cg+mg-sor", "cg+mg-cheby", "fcg2+neural",
           "fcg8+neural", "fgmres+neural", "fcg2+neural-sor"]


def add_demo_command(top):
    p = top.add_parser("demo", help="solve the shipped problems with classical and neural preconditioners")
    p.add_argument("--quick", action="store_true", help="smaller grids (about 20 s)")
    p.add_argument("--rtol", type=positive_float, default=1e-8)
    p.add_argument("--threads", type=positive_int, default=2, help="ONNX Runtime threads")
    p.add_argument("--out", default="out", help="folder for the convergence plot (created if missing)")
    p.set_defaults(func=run_demo)


def run_cases(cases, solvers, rtol=1e-8, threads=2):
    """Yield (problem, shape, SolveResult) for every case and solver (the 3D BoomerAMG settings on 3D cases only)."""
    from accel.integrations.petsc.solvers import random_rhs, solve

    from . import problems

    for name, shape in cases:
        prob = problems.build(name, shape)
        A = problems.to_petsc(prob.matrix)
        b = random_rhs(A, solid=prob.solid)
        try:
            for solver in solvers:
                if solver.endswith("-3d") and len(shape) != 3:
                    continue
                extra = None
                if "neural" in solver:
                    extra = {"accel_problem": name, "accel_grid": ",".join(map(str, reversed(shape))),
                             "accel_threads": threads}
                yield name, shape, solve(A, b, solver, rtol=rtol, extra=extra, name=solver, raise_unconverged=False,
                                         grid=shape)
        finally:
            b.destroy()
            A.destroy()


def format_row(name, shape, r, rtol) -> str:
    apply_ms = 1e3 * r.pc_stats["apply"] / r.pc_stats["applies"] if r.pc_stats.get("applies") else float("nan")
    ok = "ok" if r.converged and r.residual <= 10 * rtol else "NOT CONVERGED"
    grid = "x".join(map(str, shape))
    return (f"{name:<12} {grid:>10} {r.name:<16} {r.iterations:>5} {1e3 * r.setup_s:>9.1f} {1e3 * r.solve_s:>9.1f} "
            f"{1e3 * r.total_s:>9.1f} {apply_ms:>9.2f} {r.residual:>10.2e} {ok}")


HEADER = (f"{'problem':<12} {'grid':>10} {'solver':<16} {'its':>5} {'setup ms':>9} {'solve ms':>9} {'total ms':>9} "
          f"{'apply ms':>9} {'true res':>10}")


def run_demo(args) -> int:
    import petsc4py

    petsc4py.init()
    from petsc4py import PETSc

    rank = PETSc.COMM_WORLD.getRank()
    cases = CASES_QUICK if args.quick else CASES_FULL
    results = []
    if rank == 0:
        print(HEADER)
    for name, shape, r in run_cases(cases, SOLVERS, args.rtol, args.threads):
        results.append((name, shape, r))
        if rank == 0:
            print(format_row(name, shape, r, args.rtol), flush=True)
    bad = [r for _, _, r in results if not (r.converged and r.residual <= 10 * args.rtol)]
    if rank == 0:
        path = plot_histories(results, Path(args.out) / "demo_convergence.png")
        print(f"convergence plot: {path}")
        if bad:
            print(f"{len(bad)} solve(s) did not reach rtol {args.rtol}: {', '.join(r.name for r in bad)}")
    return 1 if bad else 0


def plot_histories(results, path: Path) -> Path:
    """Relative residual against iterations (top row) and against time since set-up began (bottom row), one column
    per case. Matplotlib's object API with the Agg canvas: no process-wide backend switch."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from accel.files import atomic_output

    cases = list(dict.fromkeys((name, shape) for name, shape, _ in results))
    fig = Figure(figsize=(4.2 * len(cases), 7.0))
    FigureCanvasAgg(fig)
    axes = fig.subplots(2, len(cases), squeeze=False)
    for col, (name, shape) in enumerate(cases):
        by_its, by_time = axes[0][col], axes[1][col]
        for n, s, r in results:
            if (n, s) != (name, shape) or not r.history:
                continue
            h = [v / r.history[0] for v in r.history]
            style = {"lw": 2 if "neural" in r.name else 1, "ls": "-" if "neural" in r.name else "--"}
            by_its.semilogy(h, label=f"{r.name} ({r.iterations})", **style)
            by_time.semilogy([r.setup_s + t for t in r.times], h, label=f"{r.name} ({r.total_s:.2f} s)", **style)
        by_its.set_title(f"{name} {'x'.join(map(str, shape))}")
        by_its.set_xlabel("iteration")
        by_time.set_xlabel("seconds (set-up + solve)")
        for ax in (by_its, by_time):
            ax.grid(alpha=0.3)
            ax.legend(fontsize=6)
    axes[0][0].set_ylabel("relative residual")
    axes[1][0].set_ylabel("relative residual")
    fig.tight_layout()
    with atomic_output(path, force=True) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    return path
