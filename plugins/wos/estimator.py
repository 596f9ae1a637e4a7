"""The Walk-on-Spheres estimator for Laplace / Poisson problems with Dirichlet data.

Solves ``-Laplace(u) = f`` in the domain, ``u = g`` on its boundary, at query points, in 2D and 3D.

How the work is organised (and why):

- Walks are numbered globally: walk ``w`` starts at query point ``w // walks``. Each walk draws its random numbers
  from its own counter-based stream keyed by ``(seed, w)`` (SplitMix64 output function, see kernel.py), generated
  inside the compiled loop. The answer therefore depends on the seed only: not on the number of MPI ranks, nor on
  how walks are grouped (up to the order of floating-point sums, which is fixed by the block size).
- Walks are cut into **blocks** of ``block_size`` walks, dealt round-robin to MPI ranks; per-block sums are added
  in block order, so the result is bit-identical on any number of ranks.
- A block runs in one call of the compiled kernel (numba, kernel.walk_block) when the domain has a compiled form
  (balls, boxes, star shapes, boundary meshes and their unions, intersections and differences) and the source is
  None or a kernel source (sources.ConstantSource, sources.GaussianSource). Otherwise (an SDFDomain, a source given
  as a Python callable) the steps are driven from Python: the domain's radius and the source are called once per
  step on every live walk of the block, and the jumps and Green's-function samples come from the same compiled
  draws, so both paths give the same walks.
- Exit points are projected onto the boundary (``domain.closest``) and the boundary data evaluated once per block.
- A walk still outside the epsilon shell after ``max_steps`` jumps is stopped at its closest boundary point; every
  such overrun is counted per query point and reported (warning or error), never silently absorbed.

Results changed once, with the compiled kernel (2026-12): the earlier numpy loop drew from one Philox stream per
block; the answers are statistically the same (the tests check every estimate against exact solutions within its
error bars) but not bit-identical to those of earlier versions.
"""
from __future__ import annotations

import logging
import math
import time
import warnings
from dataclasses import dataclass, field, replace
from typing import Callable

import numpy as np

from accel.errors import AccelError, ConvergenceError, SolverConfigError

from . import kernel
from .domains import Domain
from .program import compile_domain, evaluate
from .sources import kernel_source

log = logging.getLogger(__name__)


class QueryPointError(AccelError, ValueError):
    """Query points are malformed or outside the domain."""


class StepLimitWarning(RuntimeWarning):
    """Some walks hit the step limit and were stopped at their closest boundary point (a biased value)."""


@dataclass(frozen=True)
class WoSSettings:
    """epsilon: stopping shell width; walks: walks per query point; max_steps: jumps allowed per walk;
    seed: random seed; dtype: accepted for compatibility ('float32' or 'float64'): the compiled kernel keeps
    positions in float64 either way (float32 only paid off in the numpy loop); block_size: walks per kernel call
    and the unit dealt to MPI ranks (results depend on it only through the order of floating-point sums);
    on_overrun: 'warn' or 'raise' when walks hit max_steps."""

    epsilon: float = 1e-3
    walks: int = 100
    max_steps: int = 1000
    seed: int = 0
    dtype: str = "float32"
    block_size: int = 1 << 15
    on_overrun: str = "warn"

    def validate(self, domain: Domain | None = None) -> "WoSSettings":
        eps = self.epsilon
        if not (isinstance(eps, (int, float)) and math.isfinite(eps) and eps > 0):
            raise SolverConfigError(f"WoS epsilon must be a positive number, got {eps!r}: use e.g. 1e-3 times the "
                                    "domain size")
        if domain is not None:
            size = domain.inradius()
            if eps >= size:
                raise SolverConfigError(f"WoS epsilon {eps:g} is not smaller than the domain (largest inscribed "
                                        f"radius about {size:.3g}): every walk would stop at once; use e.g. "
                                        f"epsilon={size * 1e-3:.2g}")
        for name in ("walks", "max_steps", "block_size"):
            v = getattr(self, name)
            if not (isinstance(v, (int, np.integer)) and v >= 1):
                raise SolverConfigError(f"WoS {name} must be a positive integer, got {v!r}")
        if self.dtype not in ("float32", "float64"):
            raise SolverConfigError(f"WoS dtype must be 'float32' or 'float64', got {self.dtype!r}")
        if self.on_overrun not in ("warn", "raise"):
            raise SolverConfigError(f"WoS on_overrun must be 'warn' or 'raise', got {self.on_overrun!r}")
        return self


@dataclass
class WoSResult:
    """Estimates at the query points with their Monte Carlo standard errors and the work done."""

    value: np.ndarray  # (n,) mean over walks
    stderr: np.ndarray  # (n,) standard error of the mean
    walks: int  # walks per point
    steps: int  # distance queries made, all walks and ranks together
    overruns: np.ndarray  # (n,) walks per point stopped by max_steps
    seconds: float = 0.0  # wall time of this rank
    settings: WoSSettings = field(default_factory=WoSSettings)

    @property
    def total_overruns(self) -> int:
        return int(self.overruns.sum())

    @property
    def steps_per_second(self) -> float:
        return self.steps / self.seconds if self.seconds > 0 else float("nan")


class WalkOnSpheres:
    """Estimate ``u`` with ``-Laplace(u) = source`` in ``domain`` and ``u = boundary`` on its boundary.

    boundary: callable ``g(P) -> (n,)`` on points ``P`` of shape ``(n, dim)`` (evaluated at closest boundary points).
    source: optional callable ``f(Y) -> (n,)``; ``None`` for Laplace.
    comm: an mpi4py communicator to split walks over its ranks (every rank gets the full result), or None.
    """

    def __init__(self, domain: Domain, boundary: Callable, source: Callable | None = None,
                 settings: WoSSettings | None = None, comm=None, **overrides):
        self.domain = domain
        self.boundary = boundary
        self.source = source
        self.settings = replace(settings or WoSSettings(), **overrides).validate(domain)
        self.comm = comm

    # -- the supervisor protocol -----------------------------------------------------------------------------------
    def estimate(self, points, **overrides) -> np.ndarray:
        """Values at ``points`` (n, dim); keyword overrides: boundary, source, or any WoSSettings field."""
        return self.solve(points, **overrides).value

    def solve(self, points, boundary=None, source=None, **overrides) -> WoSResult:
        s = replace(self.settings, **overrides).validate(self.domain) if overrides else self.settings
        g = boundary or self.boundary
        f = source if source is not None else self.source
        P = self._check_points(points, s)
        comm = self.comm
        rank, size = (comm.Get_rank(), comm.Get_size()) if comm is not None else (0, 1)

        t0 = time.perf_counter()
        n_walks_total = P.shape[1] * s.walks
        n_blocks = -(-n_walks_total // s.block_size)
        records = [self._run_block(k, P, g, f, s) for k in range(rank, n_blocks, size)]
        if size > 1:
            records = [r for part in comm.allgather(records) for r in part]
        seconds = time.perf_counter() - t0

        n = P.shape[1]
        s1, s2 = np.zeros(n), np.zeros(n)
        over = np.zeros(n, dtype=np.int64)
        steps = 0
        for k, p0, b1, b2, bo, bs in sorted(records, key=lambda r: r[0]):  # block order: rank-count independent
            s1[p0:p0 + b1.size] += b1
            s2[p0:p0 + b2.size] += b2
            over[p0:p0 + bo.size] += bo
            steps += bs
        m = s.walks
        mean = s1 / m
        var = np.maximum(s2 - m * mean * mean, 0.0) / max(m - 1, 1)
        res = WoSResult(mean, np.sqrt(var / m), m, steps, over, seconds, s)
        self._report_overruns(res)
        return res

    # -- checks ----------------------------------------------------------------------------------------------------
    def _check_points(self, points, s: WoSSettings) -> np.ndarray:
        P = np.asarray(points, dtype=np.float64)
        dim = self.domain.dim
        if P.ndim == 1 and P.size == dim:
            P = P.reshape(1, dim)
        if P.ndim != 2 or P.shape[1] != dim:
            raise QueryPointError(f"query points must have shape (n, {dim}) for this {dim}D domain, got {P.shape}")
        if not np.all(np.isfinite(P)):
            raise QueryPointError("query points contain NaN or infinite coordinates")
        X = np.ascontiguousarray(P.T)
        outside = ~self.domain.contains(X, tol=s.epsilon)
        if np.any(outside):
            i = int(np.flatnonzero(outside)[0])
            raise QueryPointError(
                f"{int(outside.sum())} of {P.shape[0]} query points lie outside the domain (first: index {i}, "
                f"{P[i].tolist()}): WoS estimates the solution inside the domain or on its boundary only; "
                "move or drop those points")
        return X

    def _report_overruns(self, res: WoSResult) -> None:
        n_over = res.total_overruns
        if n_over == 0:
            return
        frac = n_over / (res.walks * res.value.size)
        msg = (f"{n_over} of {res.walks * res.value.size} walks ({frac:.2%}) at {int(np.count_nonzero(res.overruns))} "
               f"query points reached max_steps={res.settings.max_steps} before the epsilon shell and were stopped at "
               "their closest boundary point (biased values; see WoSResult.overruns): raise max_steps or epsilon")
        if res.settings.on_overrun == "raise":
            raise ConvergenceError(msg)
        log.warning("%s", msg)
        warnings.warn(msg, StepLimitWarning, stacklevel=3)

        # -- one block of walks ----------------------------------------------------------------------------------------
    def _run_block(self, k: int, P: np.ndarray, g, f, s: WoSSettings):
        w0 = k * s.block_size
        n = min(s.block_size, P.shape[1] * s.walks - w0)
        B, src, overrun, steps = run_walks(self.domain, P, s.walks, w0, n, s.seed, s.epsilon, s.max_steps, f)
        vals = np.asarray(g(B.T), dtype=np.float64).reshape(-1)
        if vals.size != B.shape[1]:
            raise SolverConfigError(f"the boundary function returned {vals.size} values for {B.shape[1]} points: it "
                                    "must map an (n, dim) array to n values")
        vals += src
        p0 = w0 // s.walks
        s1, s2, no = kernel.point_sums(vals, overrun, w0, s.walks, p0, (w0 + n - 1) // s.walks - p0 + 1)
        return k, p0, s1, s2, no, steps


def run_walks(domain: Domain, P: np.ndarray, per_point: int, walk0: int, n: int, seed: int, epsilon: float,
              max_steps: int, source: Callable | None = None, aux: np.ndarray | None = None):
    """Walks ``walk0 .. walk0 + n - 1`` (global numbers: they key the random streams); walk ``w`` starts at column
    ``w // per_point`` of the query points ``P`` (dim, m).

    ``aux`` (m,): per-point instance numbers for domains and sources with per-instance parameter rows (compiled
    path only, see wosno.family). Returns (exit points projected onto the boundary (dim, n), source sums (n,),
    overrun flags (n,), steps), in walk order; steps counts the distance queries (jumps plus the final test of
    each walk).
    """
    P = np.ascontiguousarray(P, dtype=np.float64)
    prog = compile_domain(domain)
    spec = kernel_source(source)
    seed64 = np.uint64(int(seed) % (1 << 64))
    if prog is not None and spec is not None:
        kind, sfp, row, stride = spec
        aux_pts = np.zeros(0, dtype=np.int64) if aux is None else np.ascontiguousarray(aux, dtype=np.int64)
        exits, d, acc, over, steps = kernel.walk_block(P, aux_pts, int(per_point), int(walk0), int(n), seed64,
                                                       float(epsilon), int(max_steps), prog.ops, prog.fp, prog.ip,
                                                       prog.depth, kind, sfp, row, stride, kernel.LANES)
        if over.any():
            walk_aux = (aux_pts.take(np.arange(walk0, walk0 + n) // per_point) if aux_pts.size
                        else np.zeros(n, dtype=np.int64))
            exits = _project(prog, exits, walk_aux, over)
        return exits, acc, over, int(steps)
    if aux is not None:
        raise SolverConfigError("per-point instance numbers need a compiled domain and source")
    X0 = P.take(np.arange(walk0, walk0 + n) // per_point, axis=1)
    exits, acc, over, steps = _walk_from_python(domain, X0, walk0, seed64, epsilon, max_steps, source, spec)
    return domain.closest(exits), acc, over, steps


def _project(prog, B, aux, over, rounds: int = 8):
    """The kernel projected every exit onto the boundary by one Newton step; walks stopped by max_steps start
    deeper inside, where one step on a distance bound may fall short, so those get a few more."""
    idx = np.flatnonzero(over)
    for _ in range(rounds):
        if idx.size == 0:
            break
        Xi = np.ascontiguousarray(B[:, idx])
        di = evaluate(prog, Xi, aux.take(idx))
        far = np.abs(di) > 1e-9
        idx, Xi, di = idx[far], Xi[:, far], di[far]
        B[:, idx] = kernel.project(prog.ops, prog.fp, prog.ip, prog.depth, Xi, aux.take(idx), di)
    return B


def _walk_from_python(domain, X0, walk0, seed64, epsilon, max_steps, source, spec):
    """The same walks, one step at a time from Python: for domains (or sources) given as Python callables."""
    dim, n = X0.shape
    X, idx = X0.copy(), np.arange(n)
    keys = kernel.keys_for(seed64, np.arange(walk0, walk0 + n, dtype=np.int64))
    jumps, acc = np.zeros(n, dtype=np.int64), np.zeros(n)
    exits, acc_out, over = np.empty((dim, n)), np.zeros(n), np.zeros(n, dtype=bool)
    steps = 0
    for step in range(max_steps + 1):
        r = np.ascontiguousarray(domain.radius(X), dtype=np.float64).reshape(-1)
        if r.size != idx.size:
            raise SolverConfigError(f"the domain's distance returned {r.size} values for {idx.size} points")
        steps += r.size
        done = (r < epsilon) if step < max_steps else np.ones(r.size, dtype=bool)
        if done.any():
            sel = np.flatnonzero(done)
            wi = idx.take(sel)
            exits[:, wi] = X.take(sel, axis=1)
            acc_out[wi] = acc.take(sel)
            over[wi] = r.take(sel) >= epsilon
            keep = np.flatnonzero(~done)
            X, r, idx, keys, jumps, acc = (X.take(keep, axis=1), r.take(keep), idx.take(keep), keys.take(keep),
                                           jumps.take(keep), acc.take(keep))
        if idx.size == 0:
            break
        if source is not None:
            Y, weight = kernel.green_points(X, r, keys, jumps)
            if spec is not None:
                kind, sfp, row, stride = spec
                fy = kernel.source_values(kind, sfp, row, Y)
            else:
                fy = np.asarray(source(Y.T), dtype=np.float64).reshape(-1)
            acc += weight * fy
        kernel.jump(X, r, keys, jumps)
    return exits, acc_out, over, steps
