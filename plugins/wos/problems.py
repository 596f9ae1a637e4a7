"""Named problems (for ``accel wos`` and the tests) and the WoS-NO star-shaped Poisson family."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from accel.errors import AccelError

from .domains import Ball, Box, Domain, StarShaped
from .sources import ConstantSource, GaussianSource


class UnknownProblemError(AccelError, KeyError):
    def __str__(self):
        return str(self.args[0])


@dataclass
class Problem:
    """``-Laplace(u) = source`` in ``domain``, ``u = boundary`` on its boundary; ``exact`` when known."""

    name: str
    domain: Domain
    boundary: Callable
    source: Callable | None = None
    exact: Callable | None = None
    summary: str = ""


def _harmonic(P):  # exp(x) cos(y) is harmonic in 2D and 3D
    return np.exp(P[:, 0]) * np.cos(P[:, 1])


def _zero(P):
    return np.zeros(len(P))


_one = ConstantSource(1.0)  # compiled into the walk kernel


def _named() -> dict[str, Callable[[], Problem]]:
    return {
        "disk-harmonic": lambda: Problem("disk-harmonic", Ball((0, 0), 1), _harmonic, None, _harmonic,
                                         "unit disk, u = exp(x) cos(y) (Laplace, exact)"),
        "square-harmonic": lambda: Problem("square-harmonic", Box((0, 0), (1, 1)), _harmonic, None, _harmonic,
                                           "unit square, u = exp(x) cos(y) (Laplace, exact)"),
        "annulus-harmonic": lambda: Problem("annulus-harmonic", Ball((0, 0), 1) - Ball((0, 0), 0.3), _harmonic,
                                            None, _harmonic, "disk minus a centred hole (difference), exact"),
        "two-disks-harmonic": lambda: Problem("two-disks-harmonic", Ball((-0.4, 0), 0.6) | Ball((0.4, 0), 0.6),
                                              _harmonic, None, _harmonic, "union of two disks, exact"),
        "ball-harmonic": lambda: Problem("ball-harmonic", Ball((0, 0, 0), 1), _harmonic, None, _harmonic,
                                         "unit ball (3D), u = exp(x) cos(y) (Laplace, exact)"),
        "cube-harmonic": lambda: Problem("cube-harmonic", Box((0, 0, 0), (1, 1, 1)), _harmonic, None, _harmonic,
                                         "unit cube (3D), exact"),
        "disk-poisson": lambda: Problem("disk-poisson", Ball((0, 0), 1), _zero, _one,
                                        lambda P: (1 - np.sum(P ** 2, axis=1)) / 4,
                                        "unit disk, -Laplace(u) = 1, u = 0: u = (1 - r^2) / 4"),
        "ball-poisson": lambda: Problem("ball-poisson", Ball((0, 0, 0), 1), _zero, _one,
                                        lambda P: (1 - np.sum(P ** 2, axis=1)) / 6,
                                        "unit ball (3D), -Laplace(u) = 1, u = 0: u = (1 - r^2) / 6"),
        "star-poisson": lambda: StarPoisson.default().problem(),
    }


PROBLEM_NAMES = tuple(_named())


def get_problem(name: str) -> Problem:
    table = _named()
    if name not in table:
        raise UnknownProblemError(f"unknown WoS problem {name!r}; valid names: {', '.join(table)}")
    return table[name]()


# -- the WoS-NO family ---------------------------------------------------------------------------------------------
N_GAUSS = 2
N_FOURIER = 2
SIGMA = 0.2
N_PARAMS = 2 + 3 * N_GAUSS + 1 + 2 * N_FOURIER


def amplitude_scale(sigma: float) -> float:
    """Factor on the Gaussian source amplitudes of width ``sigma``: (SIGMA / sigma)^2 keeps each source's mass."""
    return (SIGMA / sigma) ** 2


@dataclass
class StarPoisson:
    """One instance: domain ``r < 1 + c1 cos 4t + c2 cos 8t``, source ``sum_i A_i exp(-|x - x_i|^2 / (2 sigma^2))``,
    boundary data ``b0 + sum_k a_k cos kt + b_k sin kt`` (t the polar angle)."""

    params: np.ndarray  # (N_PARAMS,)
    sigma: float = SIGMA  # source width (the family's; 0.2 by default)

    @staticmethod
    def sample(rng: np.random.Generator, sigma: float = SIGMA) -> "StarPoisson":
        """A random member. Sources narrower than the default keep their mass: amplitudes scale by
        (SIGMA / sigma)^2, so the source still matters as much to the solution."""
        if not 0 < sigma <= 1:
            raise ValueError(f"source width sigma must be in (0, 1], got {sigma}")
        c = [rng.uniform(-0.2, 0.2), rng.uniform(-0.1, 0.1)]
        gauss = []
        for _ in range(N_GAUSS):
            rad, ang = 0.45 * np.sqrt(rng.uniform()), rng.uniform(0, 2 * np.pi)
            gauss += [rng.uniform(2.0, 10.0) * amplitude_scale(sigma), rad * np.cos(ang), rad * np.sin(ang)]
        four = list(rng.uniform(-1, 1, 1 + 2 * N_FOURIER) / np.r_[1, np.repeat(np.arange(1, N_FOURIER + 1), 2)])
        return StarPoisson(np.array(c + gauss + four), sigma)

    @staticmethod
    def default() -> "StarPoisson":
        return StarPoisson(np.array([0.15, 0.05, 6.0, 0.2, 0.1, 4.0, -0.25, -0.2, 0.3, 0.5, -0.2, 0.1, 0.15]))

    @property
    def c1(self):
        return float(self.params[0])

    @property
    def c2(self):
        return float(self.params[1])

    def domain(self) -> StarShaped:
        return StarShaped(self.c1, self.c2)

    def R(self, t):
        return 1 + self.c1 * np.cos(4 * t) + self.c2 * np.cos(8 * t)

    def gaussians(self) -> GaussianSource:
        """The source as a kernel source (evaluated inside the compiled walk loop)."""
        g = self.params[2:2 + 3 * N_GAUSS].reshape(N_GAUSS, 3)
        return GaussianSource(g[:, 0], g[:, 1:], self.sigma)

    def source(self, P):
        return self.gaussians()(P)

    def boundary_theta(self, t):
        f = self.params[2 + 3 * N_GAUSS:]
        out = np.full(np.shape(t), f[0])
        for k in range(1, N_FOURIER + 1):
            out = out + f[2 * k - 1] * np.cos(k * t) + f[2 * k] * np.sin(k * t)
        return out

    def boundary(self, P):
        return self.boundary_theta(np.arctan2(P[:, 1], P[:, 0]))

    def problem(self) -> Problem:
        return Problem("star-poisson", self.domain(), self.boundary, self.gaussians(), None,
                       "WoS-NO family member: star domain, Gaussian sources, Fourier boundary data")

    def interior_points(self, n: int, rng: np.random.Generator, margin: float = 1e-3) -> np.ndarray:
        """Uniform points inside ``r < (1 - margin) R(t)`` (rejection from the bounding disk)."""
        out = []
        rmax = 1 + abs(self.c1) + abs(self.c2)
        while sum(len(o) for o in out) < n:
            P = rng.uniform(-rmax, rmax, (2 * n, 2))
            r, t = np.hypot(P[:, 0], P[:, 1]), np.arctan2(P[:, 1], P[:, 0])
            out.append(P[r < self.R(t) * (1 - margin)])
        return np.concatenate(out)[:n]

    def boundary_points(self, n: int, rng: np.random.Generator) -> np.ndarray:
        t = rng.uniform(0, 2 * np.pi, n)
        return np.stack([self.R(t) * np.cos(t), self.R(t) * np.sin(t)], axis=1)
