"""Walk-on-Spheres targets for many star-shaped Poisson instances at once.

One instance is small (a few hundred points, ten walks each), so walking instances one by one would spend most
of the time in numpy's per-call overhead. Here every walk carries its instance number; the domain bound, source
and boundary data look up that instance's parameters per walk, and all instances share one set of arrays.
"""
from __future__ import annotations

import numpy as np

from ..domains import StarShaped
from ..estimator import walk
from ..problems import N_FOURIER, N_GAUSS, StarPoisson

TABLE_RMAX = 1.5  # one polar table grid for every member (|c1| + |c2| < 0.5 in the family)


class StarFamily:
    """The domains, sources and boundary data of ``instances``, indexed per walk by an instance number."""

    dim = 2

    def __init__(self, instances: list[StarPoisson]):
        self.instances = list(instances)
        widths = {i.sigma for i in self.instances}
        if len(widths) != 1:
            raise ValueError(f"a family shares one source width; got {sorted(widths)}")
        self.sigma = widths.pop()
        P = np.stack([i.params for i in self.instances])
        f32 = np.float32
        self.c1, self.c2 = P[:, 0].astype(f32), P[:, 1].astype(f32)
        doms = [StarShaped(c1, c2, table_rmax=TABLE_RMAX) for c1, c2 in P[:, :2]]
        self.rmin = np.array([d.rmin for d in doms], dtype=f32)
        self.d1 = np.array([d._d1max for d in doms], dtype=f32)
        self.d2 = np.array([d._d2max for d in doms], dtype=f32)
        d0 = doms[0]
        self.table = np.concatenate([d._table for d in doms])
        self.cells = d0._nr * d0._nt
        self._grid = (d0._inv_dr, d0._inv_dt, d0._nr, d0._nt)
        self.gauss = P[:, 2:2 + 3 * N_GAUSS].reshape(len(P), N_GAUSS, 3)
        self.fourier = P[:, 2 + 3 * N_GAUSS:]

    # -- per-walk problem data -------------------------------------------------------------------------------------
    def radius(self, X, inst):
        from ..domains import star_distance_bound

        off = inst * np.int32(self.cells)
        b, _, _ = star_distance_bound(X, self.c1.take(inst), self.c2.take(inst), 1.0, self.rmin.take(inst),
                                      self.d1.take(inst), self.d2.take(inst), self.table, off, *self._grid)
        return b

    def source(self, Y, inst):
        out = np.zeros(len(Y))
        for k in range(N_GAUSS):
            A, x0, y0 = (self.gauss[:, k, j].take(inst) for j in range(3))
            out += A * np.exp(-((Y[:, 0] - x0) ** 2 + (Y[:, 1] - y0) ** 2) / (2 * self.sigma ** 2))
        return out

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
                 rng: np.random.Generator, chunk: int = 1 << 16):
        """Mean of ``walks`` walks at each instance's points. Returns (list of values, overrun count, steps)."""
        sizes = [len(p) for p in points]
        allp = np.concatenate(points)
        inst_of_point = np.repeat(np.arange(len(points)), sizes)
        n = len(allp)
        pid = np.repeat(np.arange(n), walks)
        sums = np.zeros(n)
        overruns = steps = 0
        for a in range(0, pid.size, chunk):
            p = pid[a:a + chunk]
            inst = inst_of_point[p].astype(np.int32)
            X0 = np.ascontiguousarray(allp[p].T, dtype=np.float32)
            wid, exits, src, over, st = walk(self, X0, rng, epsilon, max_steps, self.source, aux=inst)
            th = np.arctan2(exits[1], exits[0]).astype(np.float64)  # exits are projected radially onto the curve
            vals = self.boundary_theta(th, inst.take(wid)) + src
            sums += np.bincount(p.take(wid), vals, n)
            overruns += int(over.sum())
            steps += st
        means = sums / walks
        return np.split(means, np.cumsum(sizes)[:-1]), overruns, steps
