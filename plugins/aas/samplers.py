"""Collocation samplers: uniform, DeepXDE-style RAD and RAR-D, chosen by name through the registry.

A sampler is built as ``factory(domain, seed=0, **options)`` and follows this protocol (the trainer's only contact):
``plan(n, stages)`` once, then per stage ``refresh(residual, points)`` (adaptive samplers learn from the residual
of the current network at the current points; ``residual`` maps an (m, d) array to m residual values) followed by
``sample(n)`` for the next stage's collocation pool (the trainer draws its per-step minibatches from it; a
sampler with a fixed set, like RAR-D, returns that set whatever n is). Points outside the domain are dropped and counted in
``rejected`` (third-party samplers get the same check from the trainer). Stage 0 is uniform for every sampler.
"""
from __future__ import annotations

import logging

import numpy as np

from .domain import Box
from .errors import SamplerError

log = logging.getLogger(__name__)


class Sampler:
    """Base class: uniform draws, the rejection count, the plan. Subclasses override refresh/sample."""

    name = "base"
    resample_every = 1  # training steps that share one set of points when the trainer's setting is None

    def __init__(self, domain: Box, seed: int = 0):
        if not isinstance(domain, Box):
            raise SamplerError(f"samplers take an accel.plugins.aas.domain.Box, got {type(domain).__name__}")
        self.domain = domain
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self.rejected = 0  # points proposed outside the domain (dropped)
        self.proposed = 0
        self.n, self.stages = None, None

    def plan(self, n: int, stages: int) -> None:
        self.n, self.stages = int(n), int(stages)

    def keep_inside(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=float)
        inside = self.domain.contains(x)
        self.proposed += len(x)
        self.rejected += int((~inside).sum())
        return x[inside]

    def refresh(self, residual, points: np.ndarray) -> None:
        """Learn from the residual at the current points (no-op for non-adaptive samplers)."""

    def sample(self, n: int) -> np.ndarray:
        return self.domain.uniform(n, self.rng)

    def loss_weights(self, x: np.ndarray):
        """Optional per-point weights of the PINN loss for the points just sampled (None: plain mean)."""
        return None

    def density(self, x: np.ndarray):
        """The density the sampler draws from, at x, where known (None: unknown; the L-BFGS polish then takes the
        plain mean over its points)."""
        return None

    def weak_weights(self, x: np.ndarray):
        """Optional per-point weights of the weak term's Monte Carlo sums for the points just sampled, for a sampler
        whose loss is a plain mean over points that are not uniform (None: the loss weights)."""
        return None

    def state(self) -> dict:
        return {"sampler": self.name, "rejected": self.rejected, "proposed": self.proposed}


class UniformSampler(Sampler):
    """Uniform points, redrawn every stage (resample=True) or drawn once.

    ``sequence="sobol"`` (the default) draws scrambled Sobol sets
    (scipy.stats.qmc, a fresh Owen scramble from the sampler's seeded generator for every set): a pool is a chain of
    sets of the planned points per step, and the trainer serves them whole (``sets_in_order``), so each Adam step's
    points and each L-BFGS set (``polish_points``: the whole set is one Sobol set) are a low-discrepancy cover of the
    box. Quasi-Monte Carlo sums of smooth integrands, like the weak term's U_kl, are then far more accurate than with
    random points at the same count (a test measures it); on the 2D peak the tuned uniform baseline went from 0.634 to
    0.462 relative L2 (mean of 3 seeds, docs/benchmarks/aas.md). ``"random"`` draws independent uniform points (the
    issue-6 to third-pass behaviour)."""

    name = "uniform"
    SEQUENCES = ("random", "sobol")

    def __init__(self, domain, seed=0, resample: bool = True, sequence: str = "sobol"):
        super().__init__(domain, seed)
        if sequence not in self.SEQUENCES:
            raise SamplerError(f"uniform: sequence must be one of {', '.join(self.SEQUENCES)}, got {sequence!r}")
        self.resample = resample
        self.sequence = sequence
        self.sets_in_order = sequence != "random"  # the trainer must not shuffle a pool of Sobol sets into one
        self._fixed = None

    def _draw(self, n):
        if self.sequence == "random":
            return self.domain.uniform(n, self.rng)
        size = self.n or n
        return np.concatenate([self._sobol(min(size, n - i)) for i in range(0, n, size)])

    def _sobol(self, n):
        """n points of a freshly scrambled Sobol sequence (its first n: balanced when n is a power of 2)."""
        from scipy.stats import qmc

        engine = qmc.Sobol(self.domain.dim, scramble=True, seed=self.rng)
        z = engine.random_base2(max(0, int(np.ceil(np.log2(n)))))[:n]
        return self.domain.low + (self.domain.high - self.domain.low) * z

    def sample(self, n):
        if self.resample:
            return self._draw(n)
        if self._fixed is None:  # the planned budget, drawn once
            self._fixed = self._draw(self.n or n)
        return self._fixed

    def polish_points(self, n):
        """A whole L-BFGS set of n points (None: the trainer's mix of its own uniform points and the sampler's)."""
        return self._sobol(n) if self.sequence == "sobol" else None

    def density(self, x):
        return np.full(len(x), 1.0 / self.domain.volume)


def _residual_density(r: np.ndarray, k: float, c: float) -> np.ndarray:
    """DeepXDE's RAD/RAR-D distribution p ∝ |r|^k / mean|r|^k + c, normalised to sum 1."""
    rk = np.abs(r) ** k
    mean = rk.mean()
    p = (rk / mean if mean > 0 and np.isfinite(mean) else np.zeros_like(rk)) + c
    p = np.where(np.isfinite(p), p, 0.0)
    if p.sum() <= 0:
        p = np.ones_like(p)
    return p / p.sum()


class RADSampler(Sampler):
    """Residual-based adaptive distribution (Wu et al. 2023, DeepXDE): redraw all points from p ∝ |r|^k/E|r|^k + c
    over ``candidates`` x the planned budget of uniform candidates (a pool larger than the candidates repeats them).

    ``weighted=True`` weighs each point's squared residual in the PINN loss by U/q = (1 + c) / (|r|^k/E|r|^k + c)
    (q: the density the points come from), so that the loss estimates the domain mean of r^2 as AAS's does; DeepXDE's
    RAD takes the plain mean over its points (``weighted=False``), which biases the objective toward the peak and
    lets the flat background drift (measured, docs/benchmarks/aas.md)."""

    name = "rad"
    resample_every = 50  # like AAS: a set reused for 50 steps learns the feature (measured, docs/benchmarks/aas.md)

    def __init__(self, domain, seed=0, k: float = 1.0, c: float = 1.0, candidates: int = 10, weighted: bool = False):
        super().__init__(domain, seed)
        if weighted and not c > 0:
            raise SamplerError(f"rad: weighted=True needs c > 0 (the weights are (1 + c) / (|r|^k/E|r|^k + c)), "
                               f"got {c}")
        self.k, self.c, self.candidates, self.weighted = k, c, candidates, bool(weighted)
        self._residual = None
        self._mean = None  # E|r|^k over the last candidates
        self._last = None  # (points, their loss weights) of the last draw

    def refresh(self, residual, points):
        self._residual = residual

    def sample(self, n):
        if self._residual is None:
            return self.domain.uniform(n, self.rng)
        cand = self.domain.uniform(self.candidates * (self.n or n), self.rng)
        r = self._residual(cand)
        rk = np.abs(r) ** self.k
        self._mean = float(rk.mean())
        p = _residual_density(r, self.k, self.c)
        idx = self.rng.choice(len(cand), size=n, replace=n > len(cand), p=p)
        x = cand[idx]
        self._last = (x, self._weights_from(rk[idx]))
        return x

    def _weights_from(self, rk):
        mean = self._mean if self._mean and np.isfinite(self._mean) else 1.0
        w = (1 + self.c) / (rk / mean + self.c)
        return w / w.mean()

    def density(self, x):
        """The density the last draw came from, (|r|^k/E|r|^k + c) / (1 + c) / |Omega| (uniform before any)."""
        u = np.full(len(x), 1.0 / self.domain.volume)
        if self._residual is None or self._mean is None:
            return u
        rk = np.abs(self._residual(x)) ** self.k
        return u * (rk / (self._mean or 1.0) + self.c) / (1 + self.c)

    def loss_weights(self, x):
        if not self.weighted or self._residual is None or self._mean is None:
            return None
        if self._last is not None and x is self._last[0]:
            return self._last[1]
        return self._weights_from(np.abs(self._residual(x)) ** self.k)


class RARDSampler(Sampler):
    """Residual-based adaptive refinement with distribution (RAR-D, DeepXDE): start from half the budget of uniform
    points and, at every stage, add points drawn from p ∝ |r|^k/E|r|^k + c over dense candidates until the budget
    is reached; points are never removed.

    ``refresh_uniform=True`` redraws the uniform part at every ``sample`` call (the trainer then serves fresh uniform
    points every step, mixed with the added points in the budget's proportions); with the fixed set (DeepXDE's
    RAR-D, ``False``) Adam overfits its few peak points and the background diverges (measured,
    docs/benchmarks/aas.md).

    The density of the added points is not kept, so the weak term's sums (``weak_weights``) use the uniform rows of
    the points just sampled only (weight 1; the added rows 0): a plain mean over the peak-heavy set would bias them."""

    name = "rar-d"

    def __init__(self, domain, seed=0, k: float = 2.0, c: float = 0.0, initial_fraction: float = 0.5,
                 candidates: int = 10, refresh_uniform: bool = False):
        super().__init__(domain, seed)
        if not 0 < initial_fraction <= 1:
            raise SamplerError(f"initial_fraction must be in (0, 1], got {initial_fraction}")
        self.k, self.c, self.initial_fraction, self.candidates = k, c, initial_fraction, candidates
        self.refresh_uniform = bool(refresh_uniform)
        self.points = None
        self.n_uniform = 0  # the uniform part of the set (its first rows)
        self._pending = None
        self._last = None  # (the array last returned by sample, how many of its first rows are uniform)

    def refresh(self, residual, points):
        if self.points is None:
            return
        n, stages = self.n or len(self.points), max(1, (self.stages or 2) - 1)
        add = min(int(np.ceil((n - int(self.initial_fraction * n)) / stages)), n - len(self.points))
        if add <= 0:
            return
        cand = self.domain.uniform(self.candidates * add, self.rng)
        p = _residual_density(residual(cand), self.k, self.c)
        self._pending = cand[self.rng.choice(len(cand), size=add, replace=False, p=p)]

    def sample(self, n):
        if self.points is None:
            self.n_uniform = max(1, int(self.initial_fraction * (self.n or n)))
            self.points = self.domain.uniform(self.n_uniform, self.rng)
        elif self._pending is not None:
            self.points = np.concatenate([self.points, self._pending])
            self._pending = None
        if not self.refresh_uniform:
            self._last = (self.points, self.n_uniform)
            return self.points
        # as many copies of the set as the pool holds, each with its own fresh uniform part
        reps = max(1, n // len(self.points))
        added = self.points[self.n_uniform:]
        out = np.concatenate([self.domain.uniform(reps * self.n_uniform, self.rng)] + [added] * reps)
        self._last = (out, reps * self.n_uniform)
        return out

    def weak_weights(self, x):
        if self._last is None or x is not self._last[0]:
            return None
        w = np.zeros(len(x))
        w[: self._last[1]] = 1.0
        return w
