"""Axis-aligned box domains: uniform sampling, membership, and the distance factor of the hard boundary condition."""
from __future__ import annotations

import numpy as np

from .errors import DomainError


class Box:
    """The box ``[low_0, high_0] x ... x [low_{d-1}, high_{d-1}]``."""

    def __init__(self, low, high):
        low = np.atleast_1d(np.asarray(low, dtype=float))
        high = np.atleast_1d(np.asarray(high, dtype=float))
        if low.shape != high.shape or low.ndim != 1 or low.size == 0:
            raise DomainError(f"box corners must be two vectors of the same length, got {low.tolist()} and "
                              f"{high.tolist()}; pass low=[x0, y0, ...] and high=[x1, y1, ...]")
        if not (np.all(np.isfinite(low)) and np.all(np.isfinite(high))):
            raise DomainError(f"box corners must be finite, got low={low.tolist()} high={high.tolist()}")
        width = high - low
        if np.any(width <= 0):
            axes = [int(i) for i in np.flatnonzero(width <= 0)]
            raise DomainError(
                f"the domain has zero volume: extent {width[axes].tolist()} along axes {axes} "
                f"(low={low.tolist()}, high={high.tolist()}); collocation points cannot be drawn from it. "
                "Give every axis high > low")
        self.low, self.high = low, high

    @property
    def dim(self) -> int:
        return self.low.size

    @property
    def volume(self) -> float:
        return float(np.prod(self.high - self.low))

    @property
    def center(self) -> np.ndarray:
        return 0.5 * (self.low + self.high)

    @property
    def half_width(self) -> np.ndarray:
        return 0.5 * (self.high - self.low)

    def contains(self, x: np.ndarray) -> np.ndarray:
        """Boolean mask of the rows of ``x`` inside the closed box (NaN rows are outside)."""
        x = np.asarray(x)
        return np.all((x >= self.low) & (x <= self.high), axis=1)

    def uniform(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return self.low + (self.high - self.low) * rng.random((n, self.dim))

    def boundary(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """n points uniform on the surface (each face weighted by its area)."""
        x = self.uniform(n, rng)
        width = self.high - self.low
        face_area = np.array([np.prod(np.delete(width, i)) if self.dim > 1 else 1.0 for i in range(self.dim)])
        axis = rng.choice(self.dim, size=n, p=face_area / face_area.sum())
        side = rng.random(n) < 0.5
        rows = np.arange(n)
        x[rows, axis] = np.where(side, self.high[axis], self.low[axis])
        return x

    def to_unit(self, x):
        """Map the box onto [-1, 1]^d (works on numpy arrays and torch tensors)."""
        return (x - self.center) / self.half_width

    def from_unit(self, z):
        return self.center + z * self.half_width

    def __repr__(self):
        return f"Box(low={self.low.tolist()}, high={self.high.tolist()})"
