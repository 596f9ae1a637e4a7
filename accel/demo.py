"""``accel demo``: the main job. Solves the shipped model problems with classical preconditioners and the neural
one side by side, verifies every true residual, prints one table and writes a convergence plot."""
from __future__ import annotations

import logging
from pathlib import Path

log = logging.getLogger(__name__)

CASES_FULL = [("poisson2d", (128, 128)), ("obstacles2d", (128, 128)), ("poisson3d", (32, 32, 32)),
              ("poisson3d", (64, 64, 64))]
CASES_QUICK = [("poisson2d", (64, 64)), ("obstacles2d", (64, 64)), ("poisson3d", (32, 32, 32))]
SOLVERS = ["cg", "cg+icc", "cg+gamg", "cg+boomeramg", "fcg2+neural", "fcg8+neural", "fgmres+neural", "fcg2+neural-sor"]


def add_demo_command(top):
    p = top.add_parser("demo", help="solve the shipped problems with classical and neural preconditioners")
    p.add_argument("--quick", action="store_true", help="smaller grids (about 20 s)")
    p.add_argument("--rtol", type=float, default=1e-8)
    p.add_argument("--threads", type=int, default=2, help="ONNX Runtime threads")
    p.add_argument("--out", default="out", help="folder for the convergence plot (created if missing)")
    p.set_defaults(func=run_demo)


def random_rhs(A, seed: int = 0, solid=None):
    """A right-hand side that is the same vector on any number of ranks (zero in solid cells, which are not
    unknowns of the physical problem)."""
    import numpy as np

    b = A.createVecLeft()
    r0, r1 = b.getOwnershipRange()
    values = np.random.default_rng(seed).standard_normal(b.getSize())
    if solid is not None:
        values[np.asarray(solid).ravel()] = 0.0
    b.setArray(values[r0:r1])
    return b


def run_cases(cases, solvers, rtol=1e-8, threads=2):
    """Yield (problem, shape, SolveResult) for every case and solver."""
    from accel.integrations.petsc.solvers import solve
    from accel.plugins.dcdm import problems

    for name, shape in cases:
        prob = problems.build(name, shape)
        A = problems.to_petsc(prob.matrix)
        b = random_rhs(A, solid=prob.solid)
        try:
            for solver in solvers:
                extra = None
                if "neural" in solver:
                    extra = {"accel_problem": name, "accel_grid": ",".join(map(str, reversed(shape))),
                             "accel_threads": threads}
                yield name, shape, solve(A, b, solver, rtol=rtol, extra=extra, name=solver, raise_unconverged=False)
        finally:
            b.destroy()
            A.destroy()


def format_row(name, shape, r, rtol) -> str:
    apply_ms = 1e3 * r.pc_stats["apply"] / r.pc_stats["applies"] if r.pc_stats.get("applies") else float("nan")
    ok = "ok" if r.converged and r.residual <= 10 * rtol else "NOT CONVERGED"
    grid = "x".join(map(str, shape))
    return (f"{name:<12} {grid:>10} {r.name:<15} {r.iterations:>5} {1e3 * r.setup_s:>9.1f} {1e3 * r.solve_s:>9.1f} "
            f"{1e3 * r.total_s:>9.1f} {apply_ms:>9.2f} {r.residual:>10.2e} {ok}")


HEADER = (f"{'problem':<12} {'grid':>10} {'solver':<15} {'its':>5} {'setup ms':>9} {'solve ms':>9} {'total ms':>9} "
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
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cases = []
    for name, shape, _ in results:
        if (name, shape) not in cases:
            cases.append((name, shape))
    fig, axes = plt.subplots(1, len(cases), figsize=(4.2 * len(cases), 3.6), squeeze=False)
    for ax, (name, shape) in zip(axes[0], cases):
        for n, s, r in results:
            if (n, s) == (name, shape) and r.history:
                h = [v / r.history[0] for v in r.history]
                ax.semilogy(h, label=f"{r.name} ({r.iterations})", lw=2 if "neural" in r.name else 1,
                            ls="-" if "neural" in r.name else "--")
        ax.set_title(f"{name} {'x'.join(map(str, shape))}")
        ax.set_xlabel("iteration")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("relative residual")
    axes[0][-1].legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
