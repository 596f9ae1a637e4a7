"""Ablation components: the DCDM two-grid cycle with the network replaced by a classical part.

Every benchmark of the neural preconditioner has a row for each, so the table shows what the network adds:

* ``twogrid-exact``: the coarse correction ``P (P^T A P)^-1 P^T r`` with linear interpolation P to the network's
  working resolution (half the grid) and an exact sparse LU of the Galerkin coarse matrix.
* ``twogrid-none``: no coarse correction at all: only the Jacobi sweeps of the cycle remain.

They act on the operator of the grid the network would see (the PC passes it to ``initialize``), in serial only: the
exact coarse solve gathers nothing across ranks. Use ``-accel_levels`` to put them at the same level as the network.
"""
from __future__ import annotations

import scipy.sparse as sp
from scipy.sparse.linalg import splu

from accel.components import (CycleSettings, GridProblem, PreconditionerConfig, PreconditionerInfo,
                              PreconditionerStats)
from accel.errors import GridError, SolverConfigError
from accel.integrations.petsc.hierarchy import interpolation

CYCLE = CycleSettings(pre=2, post=2, omega=0.67)


class _Ablation:
    """The contract's life cycle for a classical part in the network's place (no model, no options)."""

    model = ""

    def __init__(self, config: PreconditionerConfig = PreconditionerConfig()):
        if config.extra:
            raise SolverConfigError(f"the {type(self).__name__} ablation takes no component options; got "
                                    f"{', '.join(sorted(config.extra))}")
        self._stats = PreconditionerStats()

    def describe(self, dim: int | None) -> PreconditionerInfo:
        return PreconditionerInfo(layout="grid", linear=False, model=self.model, cycle=CYCLE)

    def update(self, problem: GridProblem) -> None:
        self.initialize(problem)

    def stats(self) -> PreconditionerStats:
        return self._stats

    def destroy(self) -> None:
        pass


class TwoGridExact(_Ablation):
    """c = P (P^T A P)^-1 P^T r: the exact coarse solve the network approximates."""

    model = "(exact coarse LU)"

    def initialize(self, problem: GridProblem) -> None:
        operator = problem.operator
        if operator is None or operator.getComm().getSize() != 1:
            raise GridError("the twogrid-exact ablation needs the operator on one process (run it serially)")
        indptr, indices, data = operator.getValuesCSR()
        matrix = sp.csr_matrix((data, indices, indptr), shape=operator.getSize())
        self.P = interpolation(tuple(problem.shape))
        coarse = (self.P.T @ matrix @ self.P).tocsc()
        self.lu = splu(coarse)

    def apply(self, r, out):
        out[...] = (self.P @ self.lu.solve(self.P.T @ r.ravel())).reshape(out.shape)
        self._stats.applies += 1


class TwoGridNone(_Ablation):
    """No coarse correction (returns r itself, which the cycle's line search turns into one more Jacobi-like step)."""

    model = "(none)"

    def initialize(self, problem: GridProblem) -> None:
        pass

    def apply(self, r, out):
        out[...] = r
        self._stats.applies += 1
