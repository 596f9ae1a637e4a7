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

    def state(self) -> dict:
        return {"sampler": self.name, "rejected": self.rejected, "proposed": self.proposed}


class UniformSampler(Sampler):
    """Uniform points, redrawn every stage (resample=True) or drawn once."""

    name = "uniform"

    def __init__(self, domain, seed=0, resample: bool = True):
        super().__init__(domain, seed)
        self.resample = resample
        self._fixed = None

    def sample(self, n):
        if self.resample:
            return self.domain.uniform(n, self.rng)
        if self._fixed is None:  # the planned budget, drawn once
            self._fixed = self.domain.uniform(self.n or n, self.rng)
        return self._fixed


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
    over ``candidates`` x the planned budget of uniform candidates (a pool larger than the candidates repeats them)."""

    name = "rad"
    resample_every = 50  # like AAS: a set reused for 50 steps learns the feature (measured, docs/benchmarks/aas.md)

    def __init__(self, domain, seed=0, k: float = 1.0, c: float = 1.0, candidates: int = 10):
        super().__init__(domain, seed)
        self.k, self.c, self.candidates = k, c, candidates
        self._residual = None

    def refresh(self, residual, points):
        self._residual = residual

    def sample(self, n):
        if self._residual is None:
            return self.domain.uniform(n, self.rng)
        cand = self.domain.uniform(self.candidates * (self.n or n), self.rng)
        p = _residual_density(self._residual(cand), self.k, self.c)
        return cand[self.rng.choice(len(cand), size=n, replace=n > len(cand), p=p)]


class RARDSampler(Sampler):
    """Residual-based adaptive refinement with distribution (RAR-D, DeepXDE): start from half the budget of uniform
    points and, at every stage, add points drawn from p ∝ |r|^k/E|r|^k + c over dense candidates until the budget
    is reached; points are never removed."""

    name = "rar-d"

    def __init__(self, domain, seed=0, k: float = 2.0, c: float = 0.0, initial_fraction: float = 0.5,
                 candidates: int = 10):
        super().__init__(domain, seed)
        if not 0 < initial_fraction <= 1:
            raise SamplerError(f"initial_fraction must be in (0, 1], got {initial_fraction}")
        self.k, self.c, self.initial_fraction, self.candidates = k, c, initial_fraction, candidates
        self.points = None
        self._pending = None

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
            self.points = self.domain.uniform(max(1, int(self.initial_fraction * (self.n or n))), self.rng)
        elif self._pending is not None:
            self.points = np.concatenate([self.points, self._pending])
            self._pending = None
        return self.points
