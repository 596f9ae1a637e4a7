"""Named solver configurations and a measured solve, shared by the demo, the benchmarks and the tests.

Each configuration is a dict of PETSc options applied under a private prefix and removed after the solve, so the
user's options database is left as it was. The classical rows are what a PETSc user would pick: ICC, GAMG,
BoomerAMG with its defaults and with the usual 3D settings, and geometric multigrid (PCMG) with Galerkin coarse
operators and SOR or Chebyshev/Jacobi smoothers, its levels chosen from the grid: a DMDA's own interpolations where
the DMDA can coarsen (2^k + 1 points per axis), else the linear interpolations of accel's grid hierarchy (any
extent), set on the PC level by level.
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

MG_GRID = "accel_mg_levels_from_grid"  # marker, not a PETSc option: solve() chooses levels and interpolations
CLASSICAL = ["cg+icc", "cg+gamg", "cg+boomeramg", "cg+boomeramg-3d", "cg+mg-sor", "cg+mg-cheby"]

# Every configuration stops on the unpreconditioned residual norm, so rtol means the same thing in each row.
UNPREC = {"ksp_norm_type": "unpreconditioned"}
CONFIGS: dict[str, dict] = {
    "cg": {"ksp_type": "cg", "pc_type": "none", **UNPREC},
    "cg+icc": {"ksp_type": "cg", "pc_type": "icc", **UNPREC},
    "cg+gamg": {"ksp_type": "cg", "pc_type": "gamg", **UNPREC},
    "cg+boomeramg": {"ksp_type": "cg", "pc_type": "hypre", "pc_hypre_type": "boomeramg", **UNPREC},
    # the usual BoomerAMG settings for 3D problems (its defaults are tuned for 2D)
    "cg+boomeramg-3d": {"ksp_type": "cg", "pc_type": "hypre", "pc_hypre_type": "boomeramg",
                        "pc_hypre_boomeramg_coarsen_type": "HMIS", "pc_hypre_boomeramg_interp_type": "ext+i",
                        "pc_hypre_boomeramg_P_max": 4, "pc_hypre_boomeramg_strong_threshold": 0.5,
                        "pc_hypre_boomeramg_agg_nl": 1, **UNPREC},
    # geometric multigrid, Galerkin coarse operators, levels from the grid (MG_GRID: needs solve(grid=...) or a DMDA)
    "cg+mg-sor": {"ksp_type": "cg", "pc_type": "mg", "pc_mg_galerkin": "both", "mg_levels_ksp_type": "richardson",
                  "mg_levels_pc_type": "sor", MG_GRID: True, **UNPREC},
    "cg+mg-cheby": {"ksp_type": "cg", "pc_type": "mg", "pc_mg_galerkin": "both", "mg_levels_ksp_type": "chebyshev",
                    "mg_levels_pc_type": "jacobi", MG_GRID: True, **UNPREC},
    "fcg2+neural": {**FCG2, **NEURAL},
    "fcg8+neural": {**FCG2, "ksp_fcg_mmax": 8, **NEURAL},
    # one symmetric SOR sweep before and after the network instead of two Jacobi sweeps each
    "fcg2+neural-sor": {**FCG2, **NEURAL, "accel_smoother": "sor", "accel_cycle_pre": 1, "accel_cycle_post": 1},
    # the K-cycle: each coarse level two flexible CG steps with its own cycle; one SOR sweep after each correction
    "fcg2+neural-k": {**FCG2, **NEURAL, "accel_smoother": "sor", "accel_cycle_pre": 0, "accel_cycle_post": 1,
                      "accel_cycle_type": "k"},
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
    history: list = field(default_factory=list)   # residual norm at every iteration
    pc_stats: dict = field(default_factory=dict)
    times: list = field(default_factory=list)     # seconds since the solve started, at every entry of history

    @property
    def total_s(self):
        return self.setup_s + self.solve_s


def random_rhs(A, seed: int = 0, solid=None):
    """A right-hand side that is the same vector on any number of ranks (natural order; zero in ``solid`` cells,
    which are not unknowns of the physical problem)."""
    b = A.createVecLeft()
    r0, r1 = b.getOwnershipRange()
    values = np.random.default_rng(seed).standard_normal(b.getSize())
    if solid is not None:
        values[np.asarray(solid).ravel()] = 0.0
    b.setArray(values[r0:r1])
    return b


class Solver:
    """One KSP with a named configuration (or an options dict), kept across solves: the loop of a time-dependent
    problem. ``run(b)`` sets up what the operator's current values need (PETSc redoes a PC's set-up when the matrix
    changed since the last one: a new factorisation, AMG hierarchy, Galerkin products, or the neural PC's update)
    and solves, timing both. Options live under a private prefix until :meth:`destroy`.

    ``component_kwargs`` become the neural PC's ``component_options`` (its component's own settings). ``grid``
    (C-ordered shape of a matrix in natural order, or taken from a DMDA ``dm``) lets the PCMG rows choose their levels
    and interpolations."""

    def __init__(self, A, config: str | dict, rtol: float = 1e-8, max_it: int = 10000, extra: dict | None = None,
                 dm=None, name: str | None = None, component_kwargs: dict | None = None,
                 grid: tuple[int, ...] | None = None):
        from petsc4py import PETSc

        self.A = A
        self.name = name or (config if isinstance(config, str) else "custom")
        self.opts_dict = dict(CONFIGS[config] if isinstance(config, str) else config)
        self.opts_dict.update(extra or {})
        mg_from_grid = bool(self.opts_dict.pop(MG_GRID, False))
        if self.opts_dict.get("pc_type") == "icc" and A.getComm().getSize() > 1:
            # PETSc's ICC is sequential: under MPI a user runs it on each rank's block (block Jacobi)
            self.opts_dict.update(pc_type="bjacobi", sub_pc_type="icc")
        self.prefix = f"accel_solve{next(_counter)}_"
        self.opts = PETSc.Options()
        for k, v in self.opts_dict.items():
            self.opts[self.prefix + k] = "" if v is None else v
        self.ksp = ksp = PETSc.KSP().create(comm=A.getComm())
        self.interps = []
        self.history, self.times = [], []
        self._t_start = 0.0
        try:
            ksp.setOptionsPrefix(self.prefix)
            ksp.setOperators(A)
            t0 = time.perf_counter()
            if mg_from_grid:
                # PCMG needs its levels before setFromOptions; counted as set-up, as DMCreateInterpolation would be
                self.opts_dict["pc_mg_levels"] = _mg_levels(ksp, A, dm, grid, self.interps)
                self.opts[self.prefix + "pc_mg_levels"] = self.opts_dict["pc_mg_levels"]
            elif dm is not None:
                ksp.setDM(dm)
                ksp.setDMActive(False)
            ksp.setTolerances(rtol=rtol, atol=0.0, max_it=max_it)
            ksp.setFromOptions()
            for level, P in enumerate(self.interps, start=1):
                ksp.getPC().setMGInterpolation(level, P)
            self._pending_setup = time.perf_counter() - t0 if mg_from_grid else 0.0
            if component_kwargs and ksp.getPC().getType() == "python":
                ksp.getPC().getPythonContext().component_options.update(component_kwargs)
            ksp.setMonitor(self._monitor)
        except Exception:
            self.destroy()
            raise

    def _monitor(self, _ksp, _its, rnorm):
        self.history.append(rnorm)
        self.times.append(time.perf_counter() - self._t_start)

    def set_operator(self, A) -> None:
        """A new operator (or the same matrix with new values: then this call is not needed)."""
        self.A = A
        self.ksp.setOperators(A)

    def run(self, b, x=None) -> SolveResult:
        """Set up for the operator's current values and solve from a zero guess; the true residual is checked."""
        ksp, A = self.ksp, self.A
        own_x = x is None
        x = A.createVecRight() if own_x else x
        self.history, self.times = [], []
        try:
            x.set(0.0)
            t0 = time.perf_counter()
            ksp.setUp()
            ksp.getPC().setUp()
            t1 = self._t_start = time.perf_counter()
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
            setup = t1 - t0 + self._pending_setup
            self._pending_setup = 0.0
            return SolveResult(self.name, ksp.getIterationNumber(), setup, t2 - t1, float(res),
                               bool(reason > 0 and np.isfinite(res)), reason, self.history, stats, self.times)
        finally:
            if own_x:
                x.destroy()

    def destroy(self) -> None:
        if self.ksp is not None:
            self.ksp.destroy()
            self.ksp = None
        for P in self.interps:
            P.destroy()
        self.interps = []
        for k in self.opts_dict:
            self.opts.delValue(self.prefix + k)
        self.opts_dict = {}


def solve(A, b, config: str | dict, rtol: float = 1e-8, max_it: int = 10000, extra: dict | None = None,
          dm=None, x=None, name: str | None = None, raise_unconverged: bool = True,
          component_kwargs: dict | None = None, grid: tuple[int, ...] | None = None) -> SolveResult:
    """Solve A x = b once with a named configuration (or an options dict): a :class:`Solver` made, run and
    destroyed; returns timings and the true residual. See :class:`Solver` for the arguments."""
    solver = Solver(A, config, rtol, max_it, extra, dm, name, component_kwargs, grid)
    try:
        result = solver.run(b, x)
    finally:
        solver.destroy()
    if raise_unconverged and not result.converged:
        raise ConvergenceError(f"{result.name}: not converged (reason {result.reason}, {result.iterations} iterations, "
                               f"true relative residual {result.residual:.2e})")
    return result


def _mg_levels(ksp, A, dm, grid, interps) -> int:
    """Choose PCMG's levels from the grid (returned): a DMDA that coarsens as far as accel's hierarchy does is
    attached and makes its own interpolations; otherwise the hierarchy's linear interpolations are built into
    ``interps`` (coarsest first, rows in the DMDA's order if there is one) and no DM is attached."""
    from accel.errors import GridError

    from .hierarchy import dmda_mg_levels, interpolation, mg_shapes, petsc_interpolation
    from .transfer import dmda_grid_shape

    dmda = dm if dm is not None and dm.getType() == "da" else None
    shape = dmda_grid_shape(dmda) if dmda is not None else grid
    if shape is None:
        raise GridError("the PCMG rows need the grid: pass grid=(NZ, NY, NX) or a DMDA")
    shapes = mg_shapes(shape)
    if dmda is not None and dmda_mg_levels(shape) >= len(shapes):
        ksp.setDM(dmda)
        ksp.setDMActive(False)
        return dmda_mg_levels(shape)
    template = A.createVecLeft()
    rows = None
    if dmda is not None:
        from petsc4py import PETSc

        r0, r1 = template.getOwnershipRange()
        rows = dmda.getAO().petsc2app(np.arange(r0, r1, dtype=PETSc.IntType))
    try:
        for fine, coarse in zip(shapes[:-1], shapes[1:]):
            P = petsc_interpolation(interpolation(fine, "linear", coarse), template, rows)
            interps.insert(0, P)
            rows = None
            template.destroy()
            template = P.createVecRight()
    finally:
        template.destroy()
    return len(shapes)
