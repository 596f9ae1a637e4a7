"""Ablation components: the DCDM two-grid cycle with the network replaced by a classical part.

Every benchmark of the neural preconditioner has a row for each, so the table shows what the network adds:

* ``twogrid-exact``: the coarse correction ``P (P^T A P)^-1 P^T r`` with linear interpolation P to the network's
  working resolution (half the grid) and an exact sparse LU of the Galerkin coarse matrix.
* ``twogrid-none``: no coarse correction at all: only the Jacobi sweeps of the cycle remain.

They need the assembled operator on the grid, which the benchmarks pass as ``matrix`` (scipy CSR, natural order).
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import splu

from accel.errors import GridError

CYCLE = {"pre": 2, "post": 2, "omega": 0.67}


def _interp1d(n: int) -> sp.csr_matrix:
    """Linear interpolation from n/2 coarse to n fine cell-centred points (each coarse point covers two fine)."""
    if n % 2:
        raise GridError(f"the two-grid ablation needs even grid extents, got {n}")
    m = n // 2
    rows, cols, vals = [], [], []
    for i in range(n):
        x = (i + 0.5) / 2 - 0.5           # fine point in coarse index coordinates
        j0 = int(np.floor(x))
        w1 = x - j0
        for j, w in ((j0, 1 - w1), (j0 + 1, w1)):
            if 0 <= j < m and w > 0:
                rows.append(i)
                cols.append(j)
                vals.append(w)
    return sp.csr_matrix((vals, (rows, cols)), shape=(n, m))


def interpolation(shape) -> sp.csr_matrix:
    P = None
    for n in shape:  # C order: slowest axis first, so the Kronecker product matches natural numbering
        Pi = _interp1d(n)
        P = Pi if P is None else sp.kron(P, Pi, format="csr")
    return P


class TwoGridExact:
    """c = P (P^T A P)^-1 P^T r: the exact coarse solve the network approximates."""

    cycle = CYCLE
    model = "(exact coarse LU)"

    def __init__(self, matrix, **_ignored):
        self.matrix = matrix.tocsr()
        self.ort_time = self.copy_time = 0.0

    def setup(self, shape, **info):
        self.P = interpolation(shape)
        coarse = (self.P.T @ self.matrix @ self.P).tocsc()
        self.lu = splu(coarse)

    def apply(self, r, out):
        out[...] = (self.P @ self.lu.solve(self.P.T @ r.ravel())).reshape(out.shape)


class TwoGridNone:
    """No coarse correction (returns r itself, which the cycle's line search turns into one more Jacobi-like step)."""

    cycle = CYCLE
    model = "(none)"

    def __init__(self, **_ignored):
        self.ort_time = self.copy_time = 0.0

    def setup(self, shape, **info):
        pass

    def apply(self, r, out):
        out[...] = r
