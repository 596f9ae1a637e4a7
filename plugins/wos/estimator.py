"""The vectorised Walk-on-Spheres estimator for Laplace / Poisson problems with Dirichlet data.

Solves ``-Laplace(u) = f`` in the domain, ``u = g`` on its boundary, at query points, in 2D and 3D.

How the work is organised (and why):

- Walks are numbered globally: walk ``w`` starts at query point ``w // walks``. They are cut into fixed **blocks**
  of ``block_size`` walks. A block is simulated as one set of arrays (one numpy call per operation and step, for
  every walk still active in it), which keeps the working set in cache, and has its own random stream,
  ``Philox(SeedSequence(seed, spawn_key=(block,)))``. Per-block results are summed in block order, so the answer
  depends on the seed and the block size only, never on how blocks are spread over MPI ranks.
- Finished walks are compacted away at every step, so the cost is the number of walk steps, not
  ``walks x max_steps``. Exit points are stored and the boundary data is evaluated once per block.
- Positions are float32 by default: distances only need to be accurate to well below epsilon, and float32 halves
  memory traffic and lets numpy use its SIMD sin/cos (about 15x faster than float64 here). Sums are float64.
- A walk still outside the epsilon shell after ``max_steps`` jumps is stopped at its closest boundary point; every
  such overrun is counted per query point and reported (warning or error), never silently absorbed.
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

from .domains import Domain

log = logging.getLogger(__name__)

TWO_PI = 2 * math.pi


class QueryPointError(AccelError, ValueError):
    """Query points are malformed or outside the domain."""


class StepLimitWarning(RuntimeWarning):
    """Some walks hit the step limit and were stopped at their closest boundary point (a biased value)."""


@dataclass(frozen=True)
class WoSSettings:
    """epsilon: stopping shell width; walks: walks per query point; max_steps: jumps allowed per walk;
    seed: random seed; dtype: float32 (fast) or float64 positions; block_size: walks simulated together (and
    the unit of the random streams: results depend on it); on_overrun: 'warn' or 'raise' when walks hit max_steps."""

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
        dt = np.dtype(s.dtype)
        w0 = k * s.block_size
        w1 = min(w0 + s.block_size, P.shape[1] * s.walks)
        p0, p1 = w0 // s.walks, (w1 - 1) // s.walks
        counts = np.full(p1 - p0 + 1, s.walks)
        counts[0] -= w0 - p0 * s.walks
        counts[-1] -= (p1 + 1) * s.walks - w1
        pidx = np.repeat(np.arange(p0, p1 + 1), counts)  # the query point of each walk in the block
        rng = np.random.Generator(np.random.Philox(np.random.SeedSequence(s.seed, spawn_key=(k,))))
        wid, exits, src, overrun, steps = walk(self.domain, P.take(pidx, axis=1).astype(dt), rng, s.epsilon, s.max_steps, f)
        B = self.domain.closest(exits.astype(np.float64))
        vals = np.asarray(g(B.T), dtype=np.float64).reshape(-1)
        if vals.size != B.shape[1]:
            raise SolverConfigError(f"the boundary function returned {vals.size} values for {B.shape[1]} points: it "
                                    "must map an (n, dim) array to n values")
        if src is not None:
            vals = vals + src
        local = pidx.take(wid) - p0
        npts = int(pidx[-1] - p0) + 1
        return (k, p0, np.bincount(local, vals, npts), np.bincount(local, vals * vals, npts),
                np.bincount(local, overrun, npts).astype(np.int64), steps)


def walk(domain: Domain, X: np.ndarray, rng: np.random.Generator, epsilon: float, max_steps: int,
         source: Callable | None = None, aux: np.ndarray | None = None, compact_fraction: float = 0.25):
    """Run walks from the columns of ``X`` (dim, n) until each is within ``epsilon`` of the boundary.

    ``aux`` (n,) is an optional per-walk label (e.g. which problem instance a walk belongs to) kept aligned with the
    active walks and passed on as ``domain.radius(X, aux)`` and ``source(Y, aux)``: many small problems then share
    one set of arrays, which amortises numpy's per-call overhead.

    Finished walks are frozen in place (radius 0) and only dropped from the arrays once they make up
    ``compact_fraction`` of them: compaction is a gather over every array, so doing it at every step would cost
    more than the few wasted operations on frozen walks. Exits are gathered in finishing order (no scatter).

    Returns (walk numbers (k,), exit points (dim, k), source sums (k,) or None, overrun flags (k,), steps), with
    every walk appearing once; steps counts the distance queries of live walks.
    """
    dim, n = X.shape
    dt = X.dtype
    X = X.copy()
    idx = np.arange(n)
    src = np.zeros(n) if source is not None else None
    out_idx, out_X, out_src, out_over = [], [], [], []
    eps = dt.type(epsilon)
    two_pi = dt.type(TWO_PI)
    steps = frozen = 0
    green = 0.25 if dim == 2 else 1.0 / 6.0  # integral of the ball's Green's function / R^2

    def emit(sel, over):
        out_idx.append(idx.take(sel))
        out_X.append(X.take(sel, axis=1))
        if src is not None:
            out_src.append(src.take(sel))
        out_over.append(over)

    for step in range(max_steps + 1):
        r = domain.radius(X) if aux is None else domain.radius(X, aux)
        m = r.size
        steps += m - frozen
        done = r < eps
        n_done = int(np.count_nonzero(done))
        if step == max_steps or n_done == m:
            emit(np.arange(m), ~done)  # everything left; the live ones overran
            break
        if n_done >= compact_fraction * m:
            sel = np.flatnonzero(done)
            emit(sel, np.zeros(sel.size, dtype=bool))
            keep = np.flatnonzero(~done)
            X, r, idx = X.take(keep, axis=1), r.take(keep), idx.take(keep)
            if src is not None:
                src = src.take(keep)
            if aux is not None:
                aux = aux.take(keep)
            m, frozen = keep.size, 0
        elif n_done:
            np.copyto(r, 0, where=done)  # frozen: zero jump, zero source contribution
            frozen = n_done
        if source is not None:
            # one sample of the ball's Green's function: radius fraction sqrt(u1 u2) in 2D, Beta(2,2) in 3D
            Y = X + r * _radius_fraction(rng, m, dim, dt) * _directions(rng, m, dim, dt)
            Yt = Y.T.astype(np.float64)
            fy = np.asarray(source(Yt) if aux is None else source(Yt, aux), dtype=np.float64).reshape(-1)
            r64 = r.astype(np.float64)
            src += green * r64 * r64 * fy
        if dim == 2:
            th = rng.random(m, dtype=dt)
            th *= two_pi
            c = np.cos(th)
            np.sin(th, out=th)
            c *= r
            th *= r
            X[0] += c
            X[1] += th
        else:
            X += r * _directions(rng, m, 3, dt)
    out = (np.concatenate(out_idx), np.concatenate(out_X, axis=1),
           np.concatenate(out_src) if src is not None else None, np.concatenate(out_over))
    return out + (steps,)


def _directions(rng, m, dim, dt):
    th = rng.random(m, dtype=dt) * dt.type(TWO_PI)
    if dim == 2:
        return np.stack([np.cos(th), np.sin(th)])
    z = rng.random(m, dtype=dt) * dt.type(2) - dt.type(1)
    s = np.sqrt(np.maximum(dt.type(1) - z * z, dt.type(0)))
    return np.stack([s * np.cos(th), s * np.sin(th), z])


def _radius_fraction(rng, m, dim, dt):
    u = rng.random((dim, m), dtype=dt)
    if dim == 2:
        return np.sqrt(u[0] * u[1])  # density 4 s log(1/s): the 2D Green's function times the area element
    a, b, c = u  # median of three uniforms ~ Beta(2,2) = 6 s (1 - s): the 3D one
    return np.maximum(np.minimum(a, b), np.minimum(np.maximum(a, b), c))
