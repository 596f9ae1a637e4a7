"""A user's operator family on a structured grid from PETSc binary matrix files, as (shape, CSR matrix) pairs for
training (the files are read by :mod:`accel.matrixio`)."""
from __future__ import annotations

import glob
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from accel.matrixio import MatrixFileError, read_petsc_matrix

__all__ = ["MatrixFileError", "load_family"]


def load_family(pattern: str, shape: tuple[int, ...]) -> list[tuple[tuple[int, ...], sp.csr_matrix]]:
    """(shape, matrix) for every file matching ``pattern`` (sorted), each checked against the grid ``shape``
    (C order; matrices in natural order, x fastest)."""
    files = sorted(glob.glob(pattern))
    if not files:
        raise MatrixFileError(f"--matrices {pattern!r} matches no file; quote the pattern so the shell does not expand "
                              "it, and check the folder")
    n = int(np.prod(shape))
    grid = ",".join(map(str, reversed(shape)))
    out = []
    for f in files:
        if Path(f).is_dir():
            raise MatrixFileError(f"{f} (matched by --matrices) is a directory, not a matrix file")
        A = read_petsc_matrix(f)
        if A.shape != (n, n):
            raise MatrixFileError(f"{f} is a {A.shape[0]}x{A.shape[1]} matrix but --grid {grid} has {n} points; give "
                                  "the grid the matrix was assembled on (x first)")
        out.append((tuple(shape), A))
    return out
