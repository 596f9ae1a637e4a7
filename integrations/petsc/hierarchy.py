"""Geometric grid hierarchies for the neural preconditioner: cell-centred linear interpolation between a grid and
the grid with half the points per axis, as distributed PETSc matrices, and the choice of the number of levels.

The network is trained on one grid size. On finer grids the PC runs Jacobi-smoothed levels with line-searched
coarse corrections down to the size the network knows (Galerkin coarse operators P^T A P), so the network always
sees the problem at its training resolution and the iteration count stays nearly independent of the grid size.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from accel.errors import GridError


def _interp1d(n: int) -> sp.csr_matrix:
    """Linear interpolation from n/2 coarse to n fine cell-centred points (zero Dirichlet outside the grid)."""
    if n % 2:
        raise GridError(f"a grid level needs even extents, got {n}")
    i = np.arange(n)
    x = (i + 0.5) / 2 - 0.5                  # fine point in coarse index coordinates
    j0 = np.floor(x).astype(int)
    w1 = x - j0
    rows = np.concatenate([i, i])
    cols = np.concatenate([j0, j0 + 1])
    vals = np.concatenate([1 - w1, w1])
    keep = (cols >= 0) & (cols < n // 2) & (vals > 0)
    return sp.csr_matrix((vals[keep], (rows[keep], cols[keep])), shape=(n, n // 2))


def _constant1d(n: int) -> sp.csr_matrix:
    """Piecewise-constant interpolation: each coarse cell value copied to its two fine cells."""
    if n % 2:
        raise GridError(f"a grid level needs even extents, got {n}")
    i = np.arange(n)
    return sp.csr_matrix((np.ones(n), (i, i // 2)), shape=(n, n // 2))


def interpolation(shape: tuple[int, ...], kind: str = "linear", coarse_shape: tuple[int, ...] | None = None
                  ) -> sp.csr_matrix:
    """Natural-order interpolation from ``coarse_shape`` (default ``coarse(shape)``) to ``shape`` (C order, slowest
    axis first); ``kind`` "linear" (cell-centred multilinear) or "constant" (aggregation)."""
    if coarse_shape is not None and tuple(coarse_shape) != coarse(shape):
        raise GridError(f"no interpolation from {coarse_shape} to {shape} (each level halves every extent)")
    one_d = {"linear": _interp1d, "constant": _constant1d}
    if kind not in one_d:
        raise GridError(f"unknown interpolation {kind!r}; valid: {', '.join(one_d)}")
    P = None
    for n in shape:
        Pi = one_d[kind](n)
        P = Pi if P is None else sp.kron(P, Pi, format="csr")
    return P


def coarse(shape: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(n // 2 for n in shape)


def auto_levels(shape: tuple[int, ...], target: tuple[int, ...] | None, multiple: int = 1) -> int:
    """Halvings until no extent exceeds the network's training grid ``target`` (0 without a target); stops early
    where an extent turns odd or stops being a multiple the network can take."""
    if not target or len(target) != len(shape):
        return 0
    levels, cur = 0, tuple(shape)
    while any(n > t for n, t in zip(cur, target)) and all(n % 2 == 0 and (n // 2) % multiple == 0 for n in cur):
        cur = coarse(cur)
        levels += 1
    return levels


def plan_levels(shape: tuple[int, ...], target: tuple[int, ...] | None, multiple: int = 1, levels: int = -1
                ) -> list[tuple[int, ...]]:
    """The grid shapes from ``shape`` down to the network's grid, both included (``[shape]`` when the network runs
    on the fine grid). ``levels`` >= 0 fixes the number of coarsenings; -1 chooses them from the training grid."""
    n = auto_levels(shape, target, multiple) if levels < 0 else levels
    shapes = [tuple(shape)]
    for _ in range(n):
        shapes.append(coarse(shapes[-1]))
    return shapes


def petsc_interpolation(P_natural: sp.csr_matrix, fine_template, natural_rows=None):
    """``P_natural`` as a PETSc AIJ matrix whose rows follow ``fine_template``'s layout.

    ``natural_rows`` maps the rank's owned rows (in PETSc order) to natural indices, for a DMDA; None means the
    PETSc order is natural. Columns (coarse points) are natural, split by PETSc."""
    from petsc4py import PETSc

    r0, r1 = fine_template.getOwnershipRange()
    rows = np.arange(r0, r1) if natural_rows is None else np.asarray(natural_rows)
    local = P_natural[rows].tocsr()
    local.sort_indices()
    P = PETSc.Mat().create(comm=fine_template.getComm())
    P.setSizes(((r1 - r0, P_natural.shape[0]), (PETSc.DECIDE, P_natural.shape[1])))
    P.setType(PETSc.Mat.Type.AIJ)
    P.setUp()
    P.setPreallocationCSR((local.indptr.astype(PETSc.IntType), local.indices.astype(PETSc.IntType), local.data))
    P.assemble()
    return P
