"""Walk-on-Spheres targets for many star-shaped Poisson instances at once.

One instance is small (a few hundred points, ten walks each), so every walk carries its instance number instead:
the compiled kernel reads that instance's star-shape row (closed-form bound and distance grid) and Gaussian source
row per walk, and all instances share one call per block of walks.
"""
from __future__ import annotations

import numpy as np

from .. import kernel
from ..domains import StarShaped
from ..estimator import run_walks
from ..problems import N_FOURIER, N_GAUSS, StarPoisson
from ..sources import gaussian_rows
from .cache import EstimateCache

GRID_NODES = 96  # distance-grid nodes per axis and instance (a single domain uses 128)


class StarFamily:
    """The domains, sources and boundary data of ``instances``, indexed per walk by an instance number.

    It is a domain and a source for the compiled kernel (``emit``, ``kernel_source``) with one parameter row per
    instance.
    """

    dim = 2

    def __init__(self, instances: list[StarPoisson]):
        self.instances = list(instances)
        widths = {i.sigma for i in self.instances}
        if len(widths) != 1:
            raise ValueError(f"a family shares one source width; got {sorted(widths)}")
        self.sigma = widths.pop()
        P = np.stack([i.params for i in self.instances])
        self._params = P
        self.c1, self.c2 = P[:, 0], P[:, 1]
        self.domains = [StarShaped(c1, c2, grid_nodes=GRID_NODES) for c1, c2 in P[:, :2]]
        self.gauss = P[:, 2:2 + 3 * N_GAUSS].reshape(len(P), N_GAUSS, 3)
        self.fourier = P[:, 2 + 3 * N_GAUSS:]
        rows = [gaussian_rows(g[:, 0], g[:, 1:], self.sigma) for g in self.gauss]
        self._source_rows = np.concatenate(rows)
        self._source_stride = rows[0].size

    # -- the compiled kernel's view --------------------------------------------------------------------------------
    def emit(self, b):
        grids = [b.floats(d.distance_grid()[3]) for d in self.domains]
        base = b.floats(np.concatenate([d.kernel_row(g) for d, g in zip(self.domains, grids)]))
        b.op(kernel.OP_STAR, base, kernel.STAR_ROW)

    def kernel_source(self):
        return kernel.SRC_GAUSS, self._source_rows, 0, self._source_stride

    # -- per-walk problem data -------------------------------------------------------------------------------------
    def R(self, t, inst):
        return 1 + self.c1.take(inst) * np.cos(4 * t) + self.c2.take(inst) * np.cos(8 * t)

    def boundary_theta(self, t, inst):
        f = self.fourier
        out = f[:, 0].take(inst).astype(np.float64)
        for k in range(1, N_FOURIER + 1):
            out = out + f[:, 2 * k - 1].take(inst) * np.cos(k * t) + f[:, 2 * k].take(inst) * np.sin(k * t)
        return out

    # -- estimates -------------------------------------------------------------------------------------------------
    def estimate(self, points: list[np.ndarray], walks: int, epsilon: float, max_steps: int,
                 rng: np.random.Generator, chunk: int = 1 << 16, cache: "EstimateCache | None" = None):
        """Mean of ``walks`` walks at each instance's points. Returns (list of values, overrun count, steps).
        The walks' random streams are keyed by a seed drawn from ``rng``; with a ``cache`` the estimates of the
        same instances, points, settings and seed are read from its folder instead of walked again."""
        seed = int(rng.integers(1 << 62))
        sizes = [len(p) for p in points]
        if cache is None:
            means, overruns, steps = self._estimate(points, walks, epsilon, max_steps, seed, chunk)
        else:
            key = cache.key(self._params, self.sigma, GRID_NODES, *points, walks=walks, epsilon=epsilon,
                            max_steps=max_steps, seed=seed)
            means, overruns, steps = cache.get_or_compute(
                key, lambda: self._estimate(points, walks, epsilon, max_steps, seed, chunk))
        return np.split(means, np.cumsum(sizes)[:-1]), overruns, steps

    def _estimate(self, points, walks, epsilon, max_steps, seed, chunk):
        sizes = [len(p) for p in points]
        allp = np.ascontiguousarray(np.concatenate(points).T, dtype=np.float64)
        inst_of_point = np.repeat(np.arange(len(points)), sizes)
        n = allp.shape[1]
        sums = np.zeros(n)
        overruns = steps = 0
        total = n * walks
        for w0 in range(0, total, chunk):
            m = min(chunk, total - w0)
            B, src, over, st = run_walks(self, allp, walks, w0, m, seed, epsilon, max_steps, self, inst_of_point)
            pid = np.arange(w0, w0 + m) // walks
            vals = self.boundary_theta(np.arctan2(B[1], B[0]), inst_of_point.take(pid)) + src
            sums += np.bincount(pid, vals, n)
            overruns += int(over.sum())
            steps += st
        return sums / walks, overruns, steps
