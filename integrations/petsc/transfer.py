"""Moving a distributed PETSc vector onto the structured grid a network works on, and back.

The network runs once on rank 0 over the whole grid: ``to_grid`` gathers, ``from_grid`` scatters. Rows that are
not grid points (e.g. Dirichlet rows a finite-element assembly keeps as identity rows) are handled by the transfer
itself in ``from_grid`` so the preconditioner stays consistent with the operator.
"""
from __future__ import annotations

import abc

import numpy as np


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

    def destroy(self) -> None:
        """Free the PETSc objects this transfer created."""
