"""PETSc side of the gnn plugin: each rank's rows plus rings of overlap, and the factor as a distributed AIJ.

A rank reads its own rows plus ``rings`` rings of neighbouring rows (``MatIncreaseOverlap`` on its ownership range,
then ``MatCreateSubMatrices`` with all columns, so rows are complete), never the whole matrix. A network whose
receptive field is at most ``rings`` then computes the same factor rows on any partition.
"""
from __future__ import annotations

import numpy as np

from .graph import Block, OperatorError


def agree(comm, failed: bool) -> bool:
    """True when any rank failed (collective)."""
    from mpi4py import MPI

    return bool(comm.tompi4py().allreduce(bool(failed), op=MPI.LOR))


def check_square(A) -> None:
    (m, n), (M, N) = A.getLocalSize(), A.getSize()
    if M != N:
        raise OperatorError(f"the matrix is {M}x{N}, not square: the gnn preconditioner needs a square SPD matrix")
    if A.getComm().tompi4py().allreduce(int(m != n)):
        raise OperatorError("the matrix's row and column layouts differ on some rank: create it with the same "
                            "local row and column sizes (a square operator distributed like its vectors)")


def overlapped_block(A, rings: int) -> tuple[Block, np.ndarray]:
    """This rank's rows of A plus ``rings`` rings of neighbours, with full rows; and the local numbers of the
    owned rows within the block."""
    from petsc4py import PETSc

    rstart, rend = A.getOwnershipRange()
    N = A.getSize()[0]
    if A.getComm().getSize() == 1:
        indptr, indices, values = A.getValuesCSR()
        rows = np.arange(N, dtype=np.int64)
        return Block(rows, indptr.astype(np.int64), indices.astype(np.int64), values), rows
    iset = PETSc.IS().createStride(rend - rstart, rstart, 1, comm=PETSc.COMM_SELF)
    A.increaseOverlap(iset, rings)
    rows = np.sort(iset.getIndices()).astype(np.int64)
    iset.destroy()
    isrow = PETSc.IS().createGeneral(rows.astype(PETSc.IntType), comm=PETSc.COMM_SELF)
    iscol = PETSc.IS().createStride(N, 0, 1, comm=PETSc.COMM_SELF)
    (sub,) = A.createSubMatrices(isrow, iscol)
    indptr, indices, values = sub.getValuesCSR()
    for obj in (sub, isrow, iscol):
        obj.destroy()
    owned = np.searchsorted(rows, np.arange(rstart, rend))
    return Block(rows, indptr.astype(np.int64), indices.astype(np.int64), values.copy()), owned


def factor_matrix(A, indptr: np.ndarray, columns: np.ndarray, values: np.ndarray):
    """A distributed AIJ with A's row layout from this rank's CSR rows (global column indices)."""
    from petsc4py import PETSc

    G = PETSc.Mat().createAIJ(size=(A.getSizes()[0], A.getSizes()[1]),
                              csr=(indptr.astype(PETSc.IntType), columns.astype(PETSc.IntType), values),
                              comm=A.getComm())
    G.assemble()
    return G


def set_factor_values(G, indptr: np.ndarray, columns: np.ndarray, values: np.ndarray) -> None:
    """Refill this rank's rows of G (same rows and columns as when it was created) with ``values``, in place
    (``indptr`` over the rank's own rows, global columns)."""
    from petsc4py import PETSc

    G.setValuesCSR(indptr.astype(PETSc.IntType), columns.astype(PETSc.IntType), values,
                   addv=PETSc.InsertMode.INSERT_VALUES)
    G.assemble()
