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

from collections.abc import Sequence

import numpy as np

from accel.integrations.petsc.hierarchy import plane_couplings

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
