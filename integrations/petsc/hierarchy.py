"""Geometric grid hierarchies on structured grids of any size: the levels the neural preconditioner runs down to
the network's training grid, their interpolations as distributed PETSc matrices, and the level counts of the
classical geometric multigrid baselines. One module for every grid source (DMDA, ``-accel_grid``, DOLFINx box
meshes).

Any extent coarsens, one axis at a time:

* odd n = 2m + 1 (e.g. 2^k + 1, 65, 97, 127, primes): vertex-centred halving to m points. The grid's points are the
  interior vertices of a mesh with n + 1 cells; every other vertex is a coarse point, and linear interpolation is
  exact there (the classical DMDA/FEM coarsening of Dirichlet-eliminated grids);
* even n: cell-centred halving to n/2 points (linear interpolation with weights 3/4, 1/4; zero outside the grid).

``constant`` interpolation (aggregation) joins the same pairs (the odd extent's last point joins the last pair).
The network is fully convolutional: coarse grids it cannot take as is are zero-padded to its grid multiple by the
preconditioner component; the levels stop once every extent is at most the training grid's.

:func:`plane_couplings` reads an operator's coupling between neighbouring grid layers from its action alone (the
coefficient inputs of grid networks, in training and at set-up).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import scipy.sparse as sp

from accel.errors import GridError

KINDS = ("linear", "constant")


def coarse_extent(n: int) -> int:
    """Points left after one halving of an axis of ``n`` points (``n`` itself when it cannot be halved)."""
    if n < 3:
        return n
    return (n - 1) // 2 if n % 2 else n // 2


def coarse(shape: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(coarse_extent(n) for n in shape)


def _linear1d(n: int, m: int | None = None) -> sp.csr_matrix:
    """1D linear interpolation from m (default ``coarse_extent(n)``) points onto n points (zero Dirichlet outside
    the grid): vertex-centred for odd n halved, else cell-centred (any m < n: a resampling)."""
    m = coarse_extent(n) if m is None else m
    if n % 2 == 0 or m != (n - 1) // 2:  # cell-centred: fine point i at coarse coordinate (i + 0.5) m / n - 0.5
        x = (np.arange(n) + 0.5) * m / n - 0.5
        j0 = np.floor(x).astype(int)
        w = x - j0
        rows, cols, vals = np.r_[np.arange(n), np.arange(n)], np.r_[j0, j0 + 1], np.r_[1 - w, w]
        keep = (cols >= 0) & (cols < m) & (vals > 0)
        return sp.csr_matrix((vals[keep], (rows[keep], cols[keep])), shape=(n, m))
    # vertex-centred: coarse point j is fine point 2j + 1, its neighbours get half
    j = np.arange(m)
    rows = np.concatenate([2 * j + 1, 2 * j, 2 * j + 2])
    cols = np.concatenate([j, j, j])
    vals = np.concatenate([np.ones(m), np.full(m, 0.5), np.full(m, 0.5)])
    return sp.csr_matrix((vals, (rows, cols)), shape=(n, m))


def _constant1d(n: int, m: int | None = None) -> sp.csr_matrix:
    """Piecewise-constant interpolation: each coarse value copied to its aggregate of fine points (pairs when m is
    ``coarse_extent(n)``; for other m the aggregates of a resampling, of 2 and 3 points)."""
    i = np.arange(n)
    if m is None or m == coarse_extent(n):
        m = coarse_extent(n)
        return sp.csr_matrix((np.ones(n), (i, np.minimum(i // 2, m - 1))), shape=(n, m))
    return sp.csr_matrix((np.ones(n), (i, np.minimum((2 * i + 1) * m // (2 * n), m - 1))), shape=(n, m))


def _axis(n: int, nc: int, kind: str) -> sp.csr_matrix:
    if nc == n:  # an axis too short to halve stays (semi-coarsening)
        return sp.identity(n, format="csr")
    if n < 3 or not (n / 3 <= nc < n):
        raise GridError(f"no interpolation from {nc} to {n} points along an axis: each level maps n points to "
                        f"{coarse_extent(n)} (n/2 for even n, (n-1)/2 for odd n), to between n/3 and n points (a "
                        f"resampling onto the network's grid multiple), or keeps n")
    return (_linear1d if kind == "linear" else _constant1d)(n, nc)


def interpolation(shape: tuple[int, ...], kind: str = "linear", coarse_shape: tuple[int, ...] | None = None
                  ) -> sp.csr_matrix:
    """Natural-order interpolation from ``coarse_shape`` (default ``coarse(shape)``) to ``shape`` (C order, slowest
    axis first); ``kind`` "linear" or "constant" (aggregation). An axis whose coarse extent equals its fine extent
    is not coarsened."""
    if kind not in KINDS:
        raise GridError(f"unknown interpolation {kind!r}; valid: {', '.join(KINDS)}")
    coarse_shape = coarse(shape) if coarse_shape is None else tuple(coarse_shape)
    if len(coarse_shape) != len(shape):
        raise GridError(f"no interpolation from {coarse_shape} to {shape}: different numbers of axes")
    P = None
    for n, nc in zip(shape, coarse_shape):
        Pi = _axis(int(n), int(nc), kind)
        P = Pi if P is None else sp.kron(P, Pi, format="csr")
    return P


def plan_levels(shape: tuple[int, ...], target: tuple[int, ...] | None, multiple: int = 1, levels: int = -1
                ) -> list[tuple[int, ...]]:
    """The grid shapes from ``shape`` down to the network's grid, both included (``[shape]`` when the network runs
    on the fine grid). ``levels`` >= 0 fixes the number of coarsenings; -1 halves until every extent is at most the
    training grid ``target``'s (no target: no levels). Every axis halves together, so the coarse operators keep the
    fine stencil's proportions; an axis that would drop below ``multiple`` (the network's smallest grid extent) stays
    as it is. Raises GridError for a grid the network cannot take at all (an extent below ``multiple``)."""
    shape = tuple(int(n) for n in shape)
    multiple = max(1, int(multiple))
    if min(shape) < multiple:
        raise GridError(f"the grid {'x'.join(map(str, shape))} has an extent below {multiple}, the smallest grid extent "
                        f"the model takes (its grid multiple); use a finer grid or a classical preconditioner")
    if target is not None and len(target) and len(target) != len(shape):
        raise GridError(f"the model was trained on a {len(target)}D grid but the problem's grid "
                        f"{'x'.join(map(str, shape))} is {len(shape)}D; pick a {len(shape)}D model")
    shapes = [shape]
    if levels < 0 and not target:
        return shapes
    while True:
        cur = shapes[-1]
        if levels >= 0 and len(shapes) > levels:
            break
        if levels < 0 and all(n <= t for n, t in zip(cur, target)):
            break
        nxt = tuple(c if c >= multiple else n for n, c in zip(cur, coarse(cur)))
        if nxt == cur:
            if levels >= 0:
                raise GridError(f"-accel_levels {levels}: the {'x'.join(map(str, cur))} grid cannot be halved again "
                                f"(extents of at least {max(3, 2 * multiple)} needed)")
            break  # nothing can halve any more: the network runs on the smallest grid there is
        shapes.append(nxt)
    if len(shapes) > 1 and multiple > 1:
        shapes[-1] = _snap(shapes[-2], shapes[-1], multiple)
    return shapes


def _snap(fine: tuple[int, ...], net: tuple[int, ...], multiple: int) -> tuple[int, ...]:
    """The network's level resampled onto the nearest extents it takes as they are (multiples of ``multiple``), so
    no zero padding moves the walls it sees; an extent that cannot move that way is kept (the component pads it)."""
    out = []
    for n, m in zip(fine, net):
        snapped = max(multiple, multiple * int(round(m / multiple)))
        out.append(snapped if n / 3 <= snapped < n else m)
    return tuple(out)


# -- classical geometric multigrid (the PCMG baselines) ------------------------------------------------------------
def mg_shapes(shape: tuple[int, ...], coarsest: int = 4) -> list[tuple[int, ...]]:
    """Level shapes of a geometric multigrid with this module's coarsening, down to extents of about ``coarsest``
    (the coarse grid PCMG solves directly)."""
    shapes = [tuple(int(n) for n in shape)]
    while True:
        nxt = coarse(shapes[-1])
        if min(nxt) < coarsest or nxt == shapes[-1]:
            return shapes
        shapes.append(nxt)


def dmda_mg_levels(shape: tuple[int, ...], coarsest: int = 5) -> int:
    """``-pc_mg_levels`` a DMDA can take: PETSc's DMDA coarsening keeps the end points (n -> (n-1)/2 + 1) and needs
    (n - 1) even on every axis at every level, so 2^k + 1 grids coarsen fully and e.g. 128 not at all (1 level)."""
    levels, cur = 1, [int(n) for n in shape]
    while all((n - 1) % 2 == 0 and (n - 1) // 2 + 1 >= coarsest for n in cur):
        cur = [(n - 1) // 2 + 1 for n in cur]
        levels += 1
    return levels


def petsc_interpolation(P_natural: sp.csr_matrix, fine_template, natural_rows=None):
    """``P_natural`` as a PETSc AIJ matrix whose rows follow ``fine_template``'s layout.

    ``natural_rows`` maps the rank's owned rows (in PETSc order) to natural indices, for a DMDA or a DOLFINx space;
    None means the PETSc order is natural; a negative entry is a row off the grid (e.g. a Dirichlet row of a
    finite-element space), which gets no interpolation. Columns (coarse points) are natural, split by PETSc."""
    from petsc4py import PETSc

    r0, r1 = fine_template.getOwnershipRange()
    rows = None if natural_rows is None else np.asarray(natural_rows)
    if rows is not None and len(rows) != r1 - r0:
        raise GridError(f"{len(rows)} natural row indices for {r1 - r0} owned rows")
    if rows is None or (rows[0] == r0 and np.array_equal(rows, np.arange(r0, r1))):
        local = P_natural[r0:r1]  # natural order (one rank of a DMDA too): a slice, no fancy indexing
    else:
        on_grid = rows >= 0
        local = P_natural[rows].tocsr() if on_grid.all() else _rows_with_gaps(P_natural, rows, on_grid)
    local.sort_indices()
    P = PETSc.Mat().create(comm=fine_template.getComm())
    P.setSizes(((r1 - r0, fine_template.getSize()), (PETSc.DECIDE, P_natural.shape[1])))
    P.setType(PETSc.Mat.Type.AIJ)
    P.setUp()
    P.setPreallocationCSR((local.indptr.astype(PETSc.IntType), local.indices.astype(PETSc.IntType), local.data))
    P.assemble()
    return P


def _rows_with_gaps(P: sp.csr_matrix, rows: np.ndarray, on_grid: np.ndarray) -> sp.csr_matrix:
    """The rows ``rows`` of P, with empty rows where ``on_grid`` is False."""
    picked = P[rows[on_grid]].tocsr()
    counts = np.zeros(len(rows), dtype=np.int64)
    counts[on_grid] = np.diff(picked.indptr)
    indptr = np.concatenate([[0], np.cumsum(counts)])
    return sp.csr_matrix((picked.data, picked.indices, indptr), shape=(len(rows), P.shape[1]))


def plane_couplings(matvec: Callable, shape: Sequence[int], root: bool = True) -> np.ndarray | None:
    """(dim, *shape): for each axis a and grid point i, the sum of A[i, j] over the points j with x_a(j) = x_a(i) + 1.

    Needs only the operator's action ``matvec(grid) -> grid`` (C-ordered grids; on ranks other than the ``root`` it
    is called with None, the same number of times, and its result ignored), so it works for any ordering and rank
    count: three products per axis with the indicator of the layers x_a = c (mod 3). The stencil reaches one layer
    each way, so the product with colour (x_a(i) + 1) mod 3 picks exactly the next layer's entries."""
    shape = tuple(int(n) for n in shape)
    out = np.zeros((len(shape), *shape)) if root else None
    for axis, n in enumerate(shape):
        layer = np.arange(n).reshape([n if a == axis else 1 for a in range(len(shape))]) % 3
        for c in range(3):
            product = matvec(np.broadcast_to(layer == c, shape).astype(np.float64) if root else None)
            if root:
                pick = np.broadcast_to((layer + 1) % 3 == c, shape)
                out[axis][pick] = np.asarray(product).reshape(shape)[pick]
    if root:
        for axis, n in enumerate(shape):  # the last layer has no next layer (x_a + 1 = n is the colour of x_a = 0)
            out[(axis, *(n - 1 if a == axis else slice(None) for a in range(len(shape))))] = 0.0
    return out
