"""PETSc binary matrix files (what ``-ksp_view_mat binary:A_0.dat`` or ``MatView`` with a binary viewer writes), read
and written with numpy alone, so training on a user's operators needs no PETSc.

Format (PETSc's default build: 32-bit indices, real double scalars, big-endian): int32 class id 1211216, rows,
columns, nonzeros; int32 nonzeros per row; int32 column indices; float64 values.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.sparse as sp

from .errors import AccelError

MAT_FILE_CLASSID = 1211216


class MatrixFileError(AccelError):
    """A matrix file that cannot be used for training (unreadable, not a PETSc matrix, wrong size)."""


def read_petsc_matrix(path: str | Path) -> sp.csr_matrix:
    """One PETSc binary matrix as CSR; MatrixFileError naming the file if it is anything else."""
    path = Path(path)
    raw = path.read_bytes()
    head = np.frombuffer(raw[:16], ">i4") if len(raw) >= 16 else np.zeros(0, ">i4")
    if len(head) < 4 or head[0] != MAT_FILE_CLASSID:
        raise MatrixFileError(f"{path} is not a PETSc binary matrix (no MAT_FILE_CLASSID header); write one with "
                              "-ksp_view_mat binary:FILE or MatView(A, PetscViewerBinaryOpen(...))")
    m, n, nz = (int(v) for v in head[1:4])
    expected = 16 + 4 * m + 4 * nz + 8 * nz
    if m < 0 or n < 0 or nz < 0 or len(raw) < expected:
        raise MatrixFileError(f"{path}: a PETSc matrix header for {m}x{n} with {nz} nonzeros but {len(raw)} bytes; the "
                              "file is truncated or was written by a PETSc with 64-bit indices or complex scalars")
    counts = np.frombuffer(raw, ">i4", m, 16).astype(np.int64)
    cols = np.frombuffer(raw, ">i4", nz, 16 + 4 * m).astype(np.int64)
    vals = np.frombuffer(raw, ">f8", nz, 16 + 4 * m + 4 * nz).astype(np.float64)
    if counts.sum() != nz or (nz and (cols.min() < 0 or cols.max() >= n)):
        raise MatrixFileError(f"{path}: inconsistent PETSc matrix (row counts or column indices out of range)")
    indptr = np.concatenate([[0], np.cumsum(counts)])
    return sp.csr_matrix((vals, cols, indptr), shape=(m, n))


def write_petsc_matrix(path: str | Path, A: sp.spmatrix) -> None:
    """Write ``A`` in PETSc's binary format (for tests and examples; PETSc's MatView writes the same bytes)."""
    A = sp.csr_matrix(A)
    A.sort_indices()
    m, n = A.shape
    head = np.array([MAT_FILE_CLASSID, m, n, A.nnz], ">i4")
    with open(path, "wb") as f:
        f.write(head.tobytes())
        f.write(np.diff(A.indptr).astype(">i4").tobytes())
        f.write(A.indices.astype(">i4").tobytes())
        f.write(A.data.astype(">f8").tobytes())
