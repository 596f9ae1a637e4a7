"""Moving a distributed PETSc vector onto the structured grid a network works on, and back.

The network runs once on rank 0 over the whole grid: ``to_grid`` gathers, ``from_grid`` scatters. Rows that are
not grid points (e.g. Dirichlet rows a finite-element assembly keeps as identity rows) are handled by the transfer
itself in ``from_grid`` so the preconditioner stays consistent with the operator.
"""
from __future__ import annotations

import abc

import numpy as np

from accel.errors import GridError


class GridTransfer(abc.ABC):
    """Gather/scatter between a PETSc vector and a C-ordered grid array (slowest axis first, x last).

    Subclasses set ``shape`` (the grid the network sees) and ``spacing`` (grid step per axis, same order).
    Only rank 0 holds grid arrays; other ranks pass and receive ``None``.
    """

    shape: tuple[int, ...]
    spacing: tuple[float, ...]

    @abc.abstractmethod
    def to_grid(self, x, out: np.ndarray | None) -> None:
        """Write the grid values of PETSc vector ``x`` into ``out`` (rank 0; ``out`` is None elsewhere)."""

    @abc.abstractmethod
    def from_grid(self, g: np.ndarray | None, y, x) -> None:
        """Set PETSc vector ``y`` from grid ``g`` (rank 0); rows off the grid get their value from ``x``."""

    def natural_rows(self) -> np.ndarray | None:
        """Optional: this rank's rows of the operator (PETSc order) as natural indices of the transfer's grid ``shape``
        (x fastest), -1 for rows off the grid (e.g. Dirichlet rows a finite-element assembly keeps). Given them, the
        PC builds its grid levels on that grid (:mod:`.hierarchy`) down to the network's training grid and gathers
        only the network's level; None (the default): the transfer maps to one grid and the network runs on it."""
        return None

    def grid_view(self) -> np.ndarray | None:
        """Optional: an array (rank 0) aliasing the transfer's own gather buffer. The PC passes it as ``out`` to
        ``to_grid`` and as ``g`` to ``from_grid``, and the transfer then skips its copies. None: use PC buffers."""
        return None

    def destroy(self) -> None:
        """Free the PETSc objects this transfer created."""


class NaturalGridTransfer(GridTransfer):
    """The unknowns are the points of a structured grid in natural order (x fastest).

    Either a plain matrix whose global numbering is natural (``-accel_grid NX,NY[,NZ]``), or a DMDA, whose
    global (per-rank block) ordering is mapped to natural order with the DMDA's own scatter.
    The gather scatter and work vectors are created once here, never per apply.
    """

    def __init__(self, template, shape: tuple[int, ...], dmda=None, spacing: tuple[float, ...] | None = None):
        from petsc4py import PETSc

        self.shape = tuple(int(s) for s in shape)
        self.spacing = spacing or tuple(1.0 / (n + 1) for n in self.shape)
        size = int(np.prod(self.shape))
        if template.getSize() != size:
            raise GridError(f"the operator has {template.getSize()} rows but the grid {'x'.join(map(str, self.shape))} "
                            f"has {size} points; fix -accel_grid (C order: slowest axis first is NOT expected, give "
                            f"NX,NY[,NZ] with x first)")
        self._dmda = dmda
        self._natural = dmda.createNaturalVector() if dmda is not None else None
        source = self._natural if dmda is not None else template
        self._scatter, self._zero = PETSc.Scatter.toZero(source)
        self._rank = template.getComm().getRank()
        self._view = self._zero.getArray().reshape(self.shape) if self._rank == 0 else None

    def grid_view(self):
        return self._view

    def to_grid(self, x, out):
        src = x
        if self._dmda is not None:
            self._dmda.globalToNatural(x, self._natural)
            src = self._natural
        self._scatter.scatter(src, self._zero, addv=False, mode=False)
        if self._rank == 0 and out is not self._view:
            out[...] = self._view

    def from_grid(self, g, y, x):
        if self._rank == 0 and g is not self._view:
            self._view[...] = g
        dst = self._natural if self._dmda is not None else y
        self._scatter.scatter(self._zero, dst, addv=False, mode=True)
        if self._dmda is not None:
            self._dmda.naturalToGlobal(self._natural, y)

    def destroy(self):
        for obj in (self._scatter, self._zero, self._natural):
            if obj is not None:
                obj.destroy()
        self._scatter = self._zero = self._natural = self._view = None


def dmda_grid_shape(dm) -> tuple[int, ...]:
    """C-ordered grid shape of a scalar DMDA (raises GridError for other DMs)."""
    if dm is None or dm.getType() != "da":
        raise GridError("no DMDA attached to the solver")
    if dm.getDof() != 1:
        raise GridError(f"the DMDA has {dm.getDof()} unknowns per point; the neural preconditioner handles scalar "
                        "problems (dof 1) only")
    return tuple(reversed(dm.getSizes()))


def parse_grid_option(text: str) -> tuple[int, ...]:
    """'NX,NY[,NZ]' (x first, as PETSc's -da_grid_x/y/z) -> C-ordered shape (slowest axis first)."""
    try:
        sizes = [int(s) for s in text.replace("x", ",").split(",") if s.strip()]
    except ValueError:
        sizes = []
    if len(sizes) not in (2, 3) or min(sizes) < 1:
        raise GridError(f"-accel_grid {text!r} is not 'NX,NY' or 'NX,NY,NZ' with positive integers")
    return tuple(reversed(sizes))
