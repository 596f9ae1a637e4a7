"""Ablation components: the DCDM two-grid cycle with the network replaced by a classical part.

Every benchmark of the neural preconditioner has a row for each, so the table shows what the network adds:

* ``twogrid-exact``: the coarse correction ``P (P^T A P)^-1 P^T r`` with linear interpolation P to the network's
  working resolution (half the grid) and an exact sparse LU of the Galerkin coarse matrix.
* ``twogrid-none``: no coarse correction at all: only the Jacobi sweeps of the cycle remain.

They act on the operator of the grid the network would see (the PC passes it to ``setup``), in serial only: the
exact coarse solve gathers nothing across ranks. Use ``-accel_levels`` to put them at the same level as the network.
"""
from __future__ import annotations

import scipy.sparse as sp
from scipy.sparse.linalg import splu

from accel.errors import GridError
from accel.integrations.petsc.hierarchy import interpolation

CYCLE = {"pre": 2, "post": 2, "omega": 0.67}


class TwoGridExact:
    """c = P (P^T A P)^-1 P^T r: the exact coarse solve the network approximates."""

    cycle = CYCLE
    model = "(exact coarse LU)"

    def __init__(self, **_ignored):
        self.ort_time = self.copy_time = 0.0

    def setup(self, shape, operator=None, **info):
        if operator is None or operator.getComm().getSize() != 1:
            raise GridError("the twogrid-exact ablation needs the operator on one process (run it serially)")
        indptr, indices, data = operator.getValuesCSR()
        matrix = sp.csr_matrix((data, indices, indptr), shape=operator.getSize())
        self.P = interpolation(shape)
        coarse = (self.P.T @ matrix @ self.P).tocsc()
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
