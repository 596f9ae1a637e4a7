"""The matrix as the network sees it: padded neighbour lists of a block of rows (numpy and the compiled loops of
:mod:`.kernels`; no PETSc, no torch).

A block is a set of rows of the system matrix A, given in CSR with *global* column indices and full rows (every
non-zero of each row, also those whose column lies outside the block). Nodes are the block's rows; edges are the
non-zeros whose column is also in the block. What the network reads:

* node features (:data:`NODE_FEATURES`), from the full row, so they do not depend on where a rank's block ends:
  log(1 + number of off-diagonal non-zeros), the off-diagonal row sum and absolute row sum divided by the diagonal;
* edge features (:data:`EDGE_FEATURES`) per padded slot: the diagonally scaled value a_ij / sqrt(a_ii a_jj),
  whether the column is below, above or on the diagonal in the *global* numbering (the output is a lower-triangular
  factor, so the network must know which slots it writes), and the classical FSAI factor's value on the lower
  slots (the network corrects it). FSAI of row v reads the rows of v's neighbours only, so it is exact for every
  row the network aggregates at (those within ``rings - 1`` of an owned row);
* neighbour indices (local node numbers), padded to the longest row with the row's own index (padded slots have
  all-zero edge features, so the network's masked sums ignore them).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from accel.errors import AccelError

NODE_FEATURES = ("log_degree", "row_sum", "abs_row_sum")
EDGE_FEATURES = ("value", "lower", "upper", "self", "fsai")
# the factor's pattern: "a" the lower triangle of A, "a2" the lower triangle of A^2 (the graph then has an edge for
# every distance-2 pair, with value 0 where a_ij = 0); a block then needs twice the rings (see pattern_rings)
PATTERNS = ("a", "a2")


def pattern_rings(pattern: str, hops: int) -> int:
    """Rings of A's graph a block needs so that rows within ``hops`` hops of the factor's graph are exact."""
    return 2 * hops if pattern == "a2" else hops


class OperatorError(AccelError):
    """The matrix cannot take an SPD factored preconditioner (non-square, non-symmetric, bad diagonal, NaN)."""


@dataclass
class Block:
    """Rows ``rows`` (sorted global indices) of A in CSR with global column indices (full rows)."""

    rows: np.ndarray
    indptr: np.ndarray
    indices: np.ndarray
    values: np.ndarray
    local: tuple | None = field(default=None, repr=False)  # kernels.local_csr (filled on first use)

    @classmethod
    def from_scipy(cls, A) -> "Block":
        """The whole of a scipy sparse matrix as one block (one process, or training)."""
        A = A.tocsr()
        A.sort_indices()
        return cls(np.arange(A.shape[0], dtype=np.int64), A.indptr.astype(np.int64), A.indices.astype(np.int64),
                   A.data.astype(np.float64))


@dataclass
class FactorPattern:
    """The factor's graph on a block, in local numbering (CSR, columns sorted): A's entries inside the block (pattern
    "a") or those of A^2 (pattern "a2"), with the scaled value a_ij / sqrt(a_ii a_jj) (0 on A^2's fill-in); ``lower``
    counts each row's entries with column <= row (a prefix of the row, the diagonal last); ``scaled``: the block's A
    in local numbering, scaled, in CSR (what FSAI's small systems read)."""

    indptr: np.ndarray
    cols: np.ndarray
    values: np.ndarray
    lower: np.ndarray
    diagonal: np.ndarray    # [n] float64, a_ii
    rows: np.ndarray        # [n] int64 global row numbers
    scaled: tuple

    @property
    def width(self) -> int:
        """The longest row (the padded lists' width)."""
        return max(int(np.diff(self.indptr).max(initial=1)), 1)

    def lower_rows(self, which: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(indptr, global columns) of the factor rows ``which``: the lower entries of each."""
        from . import kernels

        return kernels.lower_structure(np.ascontiguousarray(which, np.int64), self.indptr, self.cols, self.lower,
                                       self.rows)

    def lower_values(self, values: np.ndarray, which: np.ndarray) -> np.ndarray:
        """The factor rows ``which`` (order of :meth:`lower_rows`) from values on the pattern's entries (scaled
        problem), unscaled: G_ij = Gs_ij / sqrt(a_jj)."""
        from . import kernels

        return kernels.lower_rows_flat(np.ascontiguousarray(which, np.int64), self.indptr, self.cols, self.lower,
                                       self.diagonal, values)

    def self_entries(self) -> np.ndarray:
        """1.0 on each row's diagonal entry, 0 elsewhere (the Jacobi factor's scaled values)."""
        row_of = np.repeat(np.arange(len(self.rows)), np.diff(self.indptr))
        return (self.cols == row_of).astype(np.float64)


def factor_pattern(block: Block, diag: np.ndarray, pattern: str = "a") -> FactorPattern:
    """The factor's graph on ``block`` (see :class:`FactorPattern`); "a2" is a block-local product, exact for rows
    whose neighbours' rows are in the block."""
    from . import kernels

    a_indptr, a_cols, a_vals = _local(block)
    scaled = (a_indptr, a_cols, kernels.scale_values(a_indptr, a_cols, a_vals, diag))
    if pattern == "a":
        indptr, cols, values = scaled
    elif pattern == "a2":
        from .fsai import square_rows

        indptr, cols, values = square_rows(*scaled)
    else:
        raise ValueError(f"unknown factor pattern {pattern!r}; valid: {', '.join(PATTERNS)}")
    return FactorPattern(indptr, cols, values, kernels.lower_counts(indptr, cols), diag, block.rows, scaled)


def _local(block: Block):
    """The block's entries whose column is one of its rows, in local numbering (computed once per block)."""
    from . import kernels

    if block.local is None:
        block.local = kernels.local_csr(block.rows, block.indptr, block.indices, block.values)
    return block.local


@dataclass
class PaddedGraph:
    """The network's inputs for one block, plus the factor's pattern to read its output back as matrix rows."""

    node: np.ndarray        # [n, len(NODE_FEATURES)] float32
    edge: np.ndarray        # [n, K, len(EDGE_FEATURES)] float32
    neighbours: np.ndarray  # [n, K] int64, local node numbers (padding: the row itself)
    pattern: FactorPattern
    fsai: np.ndarray        # classical FSAI's scaled values on the pattern's entries (0 on rows not computed)

    @property
    def diagonal(self) -> np.ndarray:
        return self.pattern.diagonal

    @property
    def rows(self) -> np.ndarray:
        return self.pattern.rows

    @property
    def valid(self) -> np.ndarray:
        """[n, K] bool: the slot holds an entry of the pattern (not padding)."""
        return np.arange(self.neighbours.shape[1])[None, :] < np.diff(self.pattern.indptr)[:, None]

    @property
    def columns(self) -> np.ndarray:
        """[n, K] int64: the global column of each slot (-1 on padding)."""
        return np.where(self.valid, self.rows[self.neighbours], -1)

    def inputs(self) -> dict[str, np.ndarray]:
        return {"node": self.node, "edge": self.edge, "neighbours": self.neighbours}

    def lower_csr(self, slot_values: np.ndarray, which: np.ndarray):
        """CSR (indptr, global column indices, values) of the lower-triangular factor rows ``which`` (local node
        numbers) from per-slot values ``slot_values`` [n, K] of the *scaled* problem, unscaled back to A:
        G_ij = Gs_ij / sqrt(a_jj)."""
        from . import kernels

        p = self.pattern
        return kernels.lower_rows_padded(np.ascontiguousarray(which, np.int64), p.indptr, p.cols, p.lower, p.rows,
                                         p.diagonal, slot_values)


def diagonal_and_checks(block: Block) -> np.ndarray:
    """The diagonal of the block's rows; raises OperatorError on NaN/Inf, a missing, zero or negative diagonal."""
    from . import kernels

    diag, bad = kernels.diagonal(block.rows, block.indptr, block.indices, block.values)
    if bad >= 0:
        raise OperatorError(f"the matrix has NaN or Inf entries (first in row {block.rows[bad]}); check the assembly "
                            "(coefficients, mesh) before solving")
    if np.any(diag <= 0):
        i = int(np.argmax(diag <= 0))
        raise OperatorError(f"row {block.rows[i]} has diagonal {diag[i]:g}: the gnn preconditioner needs a symmetric "
                            "positive definite matrix with a positive diagonal (flip the sign of the form if it is "
                            "negative definite; give Dirichlet rows a positive diagonal)")
    return diag


@dataclass
class ParentFSAI:
    """Classical FSAI computed once on a whole block (``pattern``, ``values``: :func:`fsai.fsai_values`), read by
    the chunks cut from it (``local``: a chunk's rows as the block's local numbers) instead of each chunk solving
    again the rows it shares with its neighbours' rings."""

    pattern: FactorPattern
    values: np.ndarray
    local: np.ndarray | None  # None: the chunk is the whole block (its pattern and values are used as they are)


def padded_graph(block: Block, diag: np.ndarray | None = None, pattern: str = "a", near: np.ndarray | None = None,
                 hops: int = 0, parent: ParentFSAI | None = None) -> PaddedGraph:
    """Node features from full rows, edges restricted to columns inside the block, neighbour lists padded.

    ``pattern`` "a": the edges are A's non-zeros; "a2": those of A^2 (block-local product: exact for rows whose
    neighbours' rows are in the block), with the value a_ij (0 on the fill-in). The FSAI edge feature is computed
    for the rows within ``hops`` hops of the rows ``near`` (local numbers; None: every row), zero elsewhere: a
    network with ``hops`` layers reads no other row's edges for the factor rows ``near``, and FSAI's per-row
    solves are most of the graph's cost. With ``parent`` those rows' values are copied from the FSAI of the block
    this one was cut from (the same numbers: such a row and the rows FSAI reads for it are complete here)."""
    from . import kernels
    from .fsai import fsai_values

    diag = diagonal_and_checks(block) if diag is None else diag
    node = kernels.node_features(block.rows, block.indptr, block.indices, block.values, diag)
    if parent is not None and parent.local is None:  # the parent's own block (one chunk), ``near`` its rows
        p, fsai = parent.pattern, parent.values
    else:
        p = factor_pattern(block, diag, pattern)
        which = np.arange(len(block.rows)) if near is None else within_hops(p, near, hops)
        if parent is None:
            fsai = fsai_values(p, which)
        else:
            fsai = np.zeros(len(p.cols))
            bad = kernels.copy_rows(which, parent.local, p.indptr, parent.pattern.indptr, parent.values, fsai)
            if bad >= 0:  # a bug, not bad input: the chunk lacks part of a row it must hold whole
                raise RuntimeError(f"chunk row {block.rows[bad]} differs from the block's row (rings too few)")
    neighbours, edge = kernels.pad(p.indptr, p.cols, p.values, fsai, p.width)
    return PaddedGraph(node, edge, neighbours, p, fsai)


def within_hops(pattern: FactorPattern, rows: np.ndarray, hops: int) -> np.ndarray:
    """Local numbers of the rows within ``hops`` hops of ``rows`` in the factor's graph (sorted)."""
    from . import kernels

    return np.nonzero(kernels.within_hops(pattern.indptr, pattern.cols, np.ascontiguousarray(rows, np.int64),
                                          hops))[0]


def check_symmetric(block: Block, owned: np.ndarray, rtol: float = 1e-10) -> None:
    """Raise OperatorError unless a_ij = a_ji (to ``rtol`` of the largest entry) for every owned row i.

    ``owned``: local numbers of rows whose neighbours' rows are all in the block (any block with one ring of
    overlap), so the check is exact without communication. One compiled pass (a binary search per entry)."""
    from . import kernels

    mask = np.zeros(len(block.rows), bool)
    mask[owned] = True
    worst, where, scale = kernels.symmetry_defect(*_local(block), mask)
    if worst > rtol * max(scale, 1e-300):
        raise OperatorError(f"the matrix is not symmetric (|a_ij - a_ji| up to {worst:.3g}, near row "
                            f"{block.rows[where]}): the gnn preconditioner is SPD and needs an SPD matrix; "
                            "assemble the symmetric form (Dirichlet rows and columns both eliminated) or use a "
                            "preconditioner for non-symmetric systems")
