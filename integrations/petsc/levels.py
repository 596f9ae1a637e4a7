"""The grid levels of the neural preconditioner, from the problem's grid down to the network's, as one object.

Built from the list of level shapes ``hierarchy.plan_levels`` returns (the problem's grid first, the network's
last; one shape when the network runs on the problem's grid): the interpolation between each pair of consecutive
shapes, the coarsening matrices, the smoothing cycle on every level (``cycle.MultilevelCycle``) and the transfer
that gathers the network's level to rank 0. Nothing here depends on how the shapes were chosen, so any list of
shapes for which ``hierarchy.interpolation`` exists works.

``refresh`` handles a new operator with the same non-zero pattern (a time step, a Newton step): only what depends on
the values is recomputed (diagonals, Galerkin products into the existing matrices, level smoothers); the
interpolations, the gather scatter and the work vectors stay.
"""
from __future__ import annotations

import numpy as np

from accel.errors import SolverConfigError

from .cycle import MultilevelCycle
from .hierarchy import interpolation, petsc_interpolation, plane_couplings
from .transfer import GridTransfer, NaturalGridTransfer

INTERPOLATIONS = ("linear", "constant")
COARSE_OPERATORS = ("aggregation", "galerkin")
CYCLE_TYPES = ("v", "k")
SMOOTHERS = ("jacobi", "sor", "icc", "ilu", "bjacobi", "asm")


class GridLevels:
    """Levels over ``shapes`` for operator ``A`` (PETSc order; natural order, or a DMDA's order given ``dmda``).

    interpolation: ``linear`` or ``constant`` transfers between levels; coarse_operator: ``aggregation`` (Q^T A Q
    with piecewise-constant Q, the fine stencil's shape) or ``galerkin`` (P^T A P); pre/post/omega: the sweeps of
    every level's cycle; kcycle: two flexible CG steps per coarse level instead of one cycle (``MultilevelCycle``);
    smoother: None (damped Jacobi) or a function making a set-up PETSc PC on an operator (:func:`smoother_factory`); transfer: a preset GridTransfer of the network's grid (the caller keeps it; only one
    level then), else a NaturalGridTransfer is built and owned here; fine_rows: the natural grid index of each of this
    rank's rows of A (-1 off the grid, e.g. a finite-element space's Dirichlet rows), from a preset transfer's
    ``natural_rows``, for an operator in neither natural nor DMDA order.
    """

    def __init__(self, A, shapes, *, interpolation_kind: str = "linear", coarse_operator: str = "aggregation",
                 pre: int = 0, post: int = 0, omega: float = 0.67, smoother=None, dmda=None,
                 transfer: GridTransfer | None = None, fine_rows=None, kcycle: bool = False):
        self.shapes = [tuple(int(n) for n in s) for s in shapes]
        if transfer is not None and len(self.shapes) > 1:
            raise SolverConfigError("a preset grid transfer maps to one grid only: build its levels into it")
        self.interpolation = interpolation_kind if len(self.shapes) > 1 else ""
        self.cycle = None
        self.transfer, self._own_transfer = transfer, transfer is None
        P, Q = [], []
        template = A.createVecLeft()
        try:
            for level, (fine, coarse) in enumerate(zip(self.shapes, self.shapes[1:])):
                rows = None
                if level == 0:  # the fine level's rows in PETSc order: a DMDA's, or a preset transfer's own map
                    rows = fine_rows if fine_rows is not None else (
                        _natural_rows(dmda, template) if dmda is not None else None)
                P.append(petsc_interpolation(interpolation(fine, interpolation_kind, coarse), template, rows))
                if coarse_operator == "aggregation" and interpolation_kind != "constant":
                    Q.append(petsc_interpolation(interpolation(fine, "constant", coarse), template, rows))
                template.destroy()
                template = P[-1].createVecRight()
            self.cycle = MultilevelCycle(A, P, pre, post, omega, Q, smoother, kcycle)  # owns P and Q from here on
            if transfer is None:
                self.transfer = NaturalGridTransfer(template, self.shapes[-1],
                                                    dmda=dmda if len(self.shapes) == 1 else None)
        except Exception:
            for T in P + Q:
                T.destroy()  # a second destroy of what the cycle already freed is a no-op
            self.destroy()
            raise
        finally:
            template.destroy()

    @property
    def network_shape(self) -> tuple[int, ...]:
        return self.shapes[-1]

    @property
    def network_operator(self):
        """The operator on the network's grid (distributed)."""
        return self.cycle.coarsest_operator

    def network_diagonal(self) -> np.ndarray | None:
        """The network-level operator's diagonal on its grid (rank 0; None elsewhere). Collective."""
        op = self.network_operator
        d = op.createVecLeft()
        try:
            op.getDiagonal(d)
            grid = np.zeros(self.network_shape) if op.getComm().getRank() == 0 else None
            self.transfer.to_grid(d, grid)
            return None if grid is None else np.array(grid)
        finally:
            d.destroy()

    def network_couplings(self) -> np.ndarray | None:
        """(dim, *shape) on rank 0 (None elsewhere): per axis, each network-grid point's summed coupling to the next
        layer of the network-level operator (:func:`hierarchy.plane_couplings`: 3 products per axis through
        the transfer, so any ordering and rank count). Collective."""
        op, transfer = self.network_operator, self.transfer
        x, y = op.createVecRight(), op.createVecLeft()
        zero = op.createVecLeft()
        root = op.getComm().getRank() == 0
        grid = np.zeros(self.network_shape) if root else None

        def matvec(g):
            transfer.from_grid(g, x, zero)  # rows off the grid (a preset transfer's) take 0
            op.mult(x, y)
            transfer.to_grid(y, grid)
            return None if grid is None else np.array(grid)

        try:
            return plane_couplings(matvec, self.network_shape, root=root)
        finally:
            for v in (x, y, zero):
                v.destroy()

    def refresh(self) -> bool:
        """Re-read the fine operator's values (same non-zero pattern). False: rebuild the levels instead."""
        return self.cycle.refresh()

    def apply(self, r, z, network) -> bool:
        return self.cycle.apply(r, z, network)

    @property
    def smooth_time(self) -> float:
        return self.cycle.smooth_time if self.cycle is not None else 0.0

    def destroy(self) -> None:
        if self.cycle is not None:
            self.cycle.destroy()
            self.cycle = None
        if self._own_transfer and self.transfer is not None:
            self.transfer.destroy()
        self.transfer = None


def _natural_rows(dmda, template):
    """The natural indices of this rank's rows of a DMDA-ordered vector."""
    from petsc4py import PETSc

    r0, r1 = template.getOwnershipRange()
    return dmda.getAO().petsc2app(np.arange(r0, r1, dtype=PETSc.IntType))


def check_level_options(interpolation_kind: str, coarse_operator: str, smoother: str, cycle_type: str = "v") -> None:
    """Raise SolverConfigError for a value no level can be built with."""
    if cycle_type not in CYCLE_TYPES:
        raise SolverConfigError(f"-accel_cycle_type {cycle_type!r}: valid are {', '.join(CYCLE_TYPES)}")
    if interpolation_kind not in INTERPOLATIONS:
        raise SolverConfigError(f"-accel_interpolation {interpolation_kind!r}: valid are {', '.join(INTERPOLATIONS)}")
    if coarse_operator not in COARSE_OPERATORS:
        raise SolverConfigError(f"-accel_coarse_operator {coarse_operator!r}: valid are {', '.join(COARSE_OPERATORS)}")
    if smoother not in SMOOTHERS:
        raise SolverConfigError(f"-accel_smoother {smoother!r} is not supported; valid: {', '.join(SMOOTHERS)}")


def smoother_factory(name: str, prefix: str):
    """None for the built-in damped Jacobi, else a function making a set-up PETSc PC of type ``name`` on an
    operator, configured from the options database under ``prefix`` (one per grid level)."""
    check_level_options(INTERPOLATIONS[0], COARSE_OPERATORS[0], name)
    if name == "jacobi":
        return None

    def make(op):
        from petsc4py import PETSc

        sm = PETSc.PC().create(comm=op.getComm())
        try:
            sm.setOptionsPrefix(prefix)
            sm.setType(name)
            sm.setOperators(op, op)
            sm.setFromOptions()
            sm.setUp()
        except PETSc.Error as exc:
            sm.destroy()
            raise SolverConfigError(f"-accel_smoother {name}: PETSc could not set it up on a "
                                    f"{op.getType()} operator ({exc}); under MPI use sor, bjacobi or asm") from exc
        return sm

    return make
