"""Extra network inputs derived from the operator (numpy; shared by training and the solve path).

A model's metadata lists its input channels by name (``settings["inputs"]``, the residual first); every other
name is computed here from the operator on the network's grid, the same way in training (scipy matrices) and at
solve time (the PC's network-level PETSc operator):

``diagonal``      the diagonal over its median (walls, obstacles; the shipped obstacle models)
``log_diagonal``  log of the diagonal over its median (coefficient contrast over orders of magnitude)
``coupling_<a>``  per axis a (z, y, x: the C-ordered axes' names), minus the operator's coupling of each point to the
                  next layer along a, over the point's diagonal: the face coefficient of a 5/7-point stencil (k_face
                  / sum of k_faces for diffusion, 1/(2 dim) for the Laplacian), the whole layer's coupling for 9/27-
                  point stencils (Galerkin coarse operators, P1 elements). 0 at the last layer and on solid cells.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

AXIS_NAMES = "zyx"
COEFFICIENT_INPUTS = ("log_diagonal", "coupling")


def normalized_diagonal(diag: np.ndarray) -> np.ndarray:
    """The operator's diagonal over its median: 1 in the bulk at any resolution or scaling (Galerkin coarse
    operators included), below 1 next to Neumann walls and in solid cells."""
    d = np.asarray(diag, dtype=np.float64)
    med = float(np.median(d))
    return (d / med if med > 0 else d).astype(np.float32)


def coupling_names(dim: int) -> list[str]:
    """The coupling channels of a ``dim``-D grid, in C axis order (slowest axis first)."""
    return [f"coupling_{a}" for a in AXIS_NAMES[3 - dim:]]


def input_names(dim: int, diagonal: bool = False, coefficients: bool = False) -> list[str]:
    """The channel names of a network trained with ``--diagonal-input`` and/or ``--coefficient-input``."""
    names = ["residual"]
    if diagonal:
        names.append("diagonal")
    if coefficients:
        names += ["log_diagonal", *coupling_names(dim)]
    return names


def needs_couplings(names: Sequence[str]) -> bool:
    return any(n.startswith("coupling_") for n in names)


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


def scipy_couplings(A, shape: Sequence[int]) -> np.ndarray:
    """:func:`plane_couplings` of a scipy matrix in natural order (x fastest) on the C-ordered grid ``shape``."""
    A = A.tocsr()
    return plane_couplings(lambda g: (A @ g.ravel()).reshape(g.shape), shape)


def input_channels(names: Sequence[str], diagonal: np.ndarray | None, couplings: np.ndarray | None) -> np.ndarray:
    """(len(names) - 1, *shape) float32: the channels after the residual, from the operator's diagonal (grid) and
    :func:`plane_couplings` (needed only for ``coupling_*`` names). ValueError for a name it does not know."""
    d = np.asarray(diagonal, dtype=np.float64)
    axes = {f"coupling_{a}": i for i, a in enumerate(AXIS_NAMES[3 - d.ndim:])}
    safe = np.where(d > 0, d, 1.0)
    out = []
    for name in names[1:]:
        if name == "diagonal":
            out.append(normalized_diagonal(d))
        elif name == "log_diagonal":
            med = float(np.median(safe))
            out.append(np.log(safe / (med if med > 0 else 1.0)))
        elif name in axes:
            out.append(np.where(d > 0, -np.asarray(couplings[axes[name]]) / safe, 0.0))
        else:
            raise ValueError(f"unknown input channel {name!r}; known: diagonal, log_diagonal, "
                             f"{', '.join(axes)}")
    return np.array(out, dtype=np.float32).reshape(len(out), *d.shape)
