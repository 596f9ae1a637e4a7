"""Named solver configurations and a measured solve, shared by the demo, the benchmarks and the tests.

Each configuration is a dict of PETSc options applied under a private prefix and removed after the solve, so the
user's options database is left as it was.
"""
from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field

import numpy as np

from accel.errors import ConvergenceError

FCG2 = {"ksp_type": "fcg", "ksp_fcg_mmax": 2, "ksp_fcg_truncation_type": "standard",
        "ksp_norm_type": "unpreconditioned"}
NEURAL = {"pc_type": "python", "pc_python_type": "accel.NeuralPC"}

# Every configuration stops on the unpreconditioned residual norm, so rtol means the same thing in each row.
UNPREC = {"ksp_norm_type": "unpreconditioned"}
CONFIGS: dict[str, dict] = {
    "cg": {"ksp_type": "cg", "pc_type": "none", **UNPREC},
    "cg+icc": {"ksp_type": "cg", "pc_type": "icc", **UNPREC},
    "cg+gamg": {"ksp_type": "cg", "pc_type": "gamg", **UNPREC},
    "cg+boomeramg": {"ksp_type": "cg", "pc_type": "hypre", "pc_hypre_type": "boomeramg", **UNPREC},
    "fcg2+neural": {**FCG2, **NEURAL},
    "fcg8+neural": {**FCG2, "ksp_fcg_mmax": 8, **NEURAL},
    # one symmetric SOR sweep before and after the network instead of two Jacobi sweeps each
    "fcg2+neural-sor": {**FCG2, **NEURAL, "accel_smoother": "sor", "accel_cycle_pre": 1, "accel_cycle_post": 1},
    "fgmres+neural": {"ksp_type": "fgmres", "ksp_gmres_restart": 30, "ksp_norm_type": "unpreconditioned", **NEURAL},
    # ablations: the same cycle and Krylov method with the network replaced by a classical part
    "fcg2+twogrid-exact": {**FCG2, **NEURAL, "accel_plugin": "twogrid-exact"},
    "fcg2+twogrid-none": {**FCG2, **NEURAL, "accel_plugin": "twogrid-none"},
    "fcg2+twogrid-exact-sor": {**FCG2, **NEURAL, "accel_plugin": "twogrid-exact", "accel_smoother": "sor",
                               "accel_cycle_pre": 1, "accel_cycle_post": 1},
    "fcg2+twogrid-none-sor": {**FCG2, **NEURAL, "accel_plugin": "twogrid-none", "accel_smoother": "sor",
                              "accel_cycle_pre": 1, "accel_cycle_post": 1},
}

_counter = itertools.count()


@dataclass
class SolveResult:
    name: str
    iterations: int
    setup_s: float
    solve_s: float
    residual: float          # true relative residual |b - A x| / |b|
    converged: bool
    reason: int
    history: list = field(default_factory=list)
    pc_stats: dict = field(default_factory=dict)

    @property
    def total_s(self):
        return self.setup_s + self.solve_s


def solve(A, b, config: str | dict, rtol: float = 1e-8, max_it: int = 10000, extra: dict | None = None,
          dm=None, x=None, name: str | None = None, raise_unconverged: bool = True,
          component_kwargs: dict | None = None) -> SolveResult:
    """Solve A x = b with a named configuration (or an options dict); returns timings and the true residual.

    ``component_kwargs`` go to the neural PC's component factory."""
    from petsc4py import PETSc

    opts_dict = dict(CONFIGS[config] if isinstance(config, str) else config)
    opts_dict.update(extra or {})
    prefix = f"accel_solve{next(_counter)}_"
    opts = PETSc.Options()
    for k, v in opts_dict.items():
        opts[prefix + k] = "" if v is None else v
    ksp = PETSc.KSP().create(comm=A.getComm())
    own_x = x is None
    x = A.createVecRight() if own_x else x
    history = []
    try:
        ksp.setOptionsPrefix(prefix)
        ksp.setOperators(A)
        if dm is not None:
            ksp.setDM(dm)
            ksp.setDMActive(False)
        ksp.setTolerances(rtol=rtol, atol=0.0, max_it=max_it)
        ksp.setFromOptions()
        if component_kwargs and ksp.getPC().getType() == "python":
            ksp.getPC().getPythonContext().component_kwargs.update(component_kwargs)
        ksp.setMonitor(lambda _k, _i, rnorm: history.append(rnorm))
        x.set(0.0)
        t0 = time.perf_counter()
        ksp.setUp()
        ksp.getPC().setUp()
        t1 = time.perf_counter()
        ksp.solve(b, x)
        t2 = time.perf_counter()
        r = b.duplicate()
        A.mult(x, r)
        r.aypx(-1.0, b)
        res = r.norm() / b.norm()
        r.destroy()
        reason = ksp.getConvergedReason()
        stats = {}
        pc = ksp.getPC()
        if pc.getType() == "python":
            ctx = pc.getPythonContext()
            stats = ctx.stats() if hasattr(ctx, "stats") else {}
        result = SolveResult(name or (config if isinstance(config, str) else "custom"), ksp.getIterationNumber(),
                             t1 - t0, t2 - t1, float(res), bool(reason > 0 and np.isfinite(res)), reason, history, stats)
    finally:
        ksp.destroy()
        if own_x:
            x.destroy()
        for k in opts_dict:
            opts.delValue(prefix + k)
    if raise_unconverged and not result.converged:
        raise ConvergenceError(f"{result.name}: not converged (reason {result.reason}, {result.iterations} iterations, "
                               f"true relative residual {result.residual:.2e})")
    return result
