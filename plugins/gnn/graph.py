"""The matrix as the network sees it: padded neighbour lists of a block of rows (numpy only, no PETSc, no torch).

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

from dataclasses import dataclass

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

    @classmethod
    def from_scipy(cls, A) -> "Block":
        """The whole of a scipy sparse matrix as one block (one process, or training)."""
        A = A.tocsr()
        A.sort_indices()
        return cls(np.arange(A.shape[0], dtype=np.int64), A.indptr.astype(np.int64), A.indices.astype(np.int64),
                   A.data.astype(np.float64))


@dataclass
class PaddedGraph:
    """The network's inputs for one block, plus what is needed to read its output back as matrix rows."""

    node: np.ndarray        # [n, len(NODE_FEATURES)] float32
    edge: np.ndarray        # [n, K, len(EDGE_FEATURES)] float32
    neighbours: np.ndarray  # [n, K] int64, local node numbers (padding: the row itself)
    valid: np.ndarray       # [n, K] bool
    columns: np.ndarray     # [n, K] int64 global column of each slot (-1 on padding)
    diagonal: np.ndarray    # [n] float64, a_ii
    rows: np.ndarray        # [n] int64 global row numbers
    scaled: tuple = ()      # the block's A (local numbering, diagonally scaled) in CSR: indptr, indices, values

    def inputs(self) -> dict[str, np.ndarray]:
        return {"node": self.node, "edge": self.edge, "neighbours": self.neighbours}

    def lower_csr(self, slot_values: np.ndarray, which: np.ndarray):
        """CSR (indptr, global column indices, values) of the lower-triangular factor rows ``which`` (local node
        numbers) from per-slot values ``slot_values`` [n, K] of the *scaled* problem, unscaled back to A:
        G_ij = Gs_ij / sqrt(a_jj)."""
        cols = self.columns[which]
        keep = self.valid[which] & (cols <= self.rows[which, None])
        counts = keep.sum(axis=1)
        indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        gcols = cols[keep]
        local_cols = self.neighbours[which][keep]
        vals = slot_values[which][keep].astype(np.float64) / np.sqrt(self.diagonal[local_cols])
        return indptr, gcols, vals


def local_positions(block: Block) -> tuple[np.ndarray, np.ndarray]:
    """For every stored entry: the local number of its column's row in the block, and whether it is in the block
    (a lookup table over the block's range of global rows: one gather, no search)."""
    n = len(block.rows)
    first = int(block.rows[0]) if n else 0
    table = np.full(int(block.rows[-1]) - first + 1 if n else 0, -1, np.int64)
    table[block.rows - first] = np.arange(n)
    shifted = block.indices - first
    inrange = (shifted >= 0) & (shifted < len(table))
    pos = np.where(inrange, table[np.where(inrange, shifted, 0)], -1)
    inside = pos >= 0
    return np.where(inside, pos, 0), inside


def diagonal_and_checks(block: Block) -> np.ndarray:
    """The diagonal of the block's rows; raises OperatorError on NaN/Inf, a missing, zero or negative diagonal."""
    n = len(block.rows)
    row_of = np.repeat(np.arange(n), np.diff(block.indptr))
    if not np.all(np.isfinite(block.values)):
        bad = block.rows[row_of[~np.isfinite(block.values)][0]]
        raise OperatorError(f"the matrix has NaN or Inf entries (first in row {bad}); check the assembly "
                            "(coefficients, mesh) before solving")
    on_diag = block.indices == block.rows[row_of]
    diag = np.zeros(n)
    np.add.at(diag, row_of[on_diag], block.values[on_diag])
    if np.any(diag <= 0):
        i = int(np.argmax(diag <= 0))
        raise OperatorError(f"row {block.rows[i]} has diagonal {diag[i]:g}: the gnn preconditioner needs a symmetric "
                            "positive definite matrix with a positive diagonal (flip the sign of the form if it is "
                            "negative definite; give Dirichlet rows a positive diagonal)")
    return diag


def padded_graph(block: Block, diag: np.ndarray | None = None, pattern: str = "a", near: np.ndarray | None = None,
                 hops: int = 0) -> PaddedGraph:
    """Node features from full rows, edges restricted to columns inside the block, neighbour lists padded.

    ``pattern`` "a": the edges are A's non-zeros; "a2": those of A^2 (block-local product: exact for rows whose
    neighbours' rows are in the block), with the value a_ij (0 on the fill-in). The FSAI edge feature is computed
    for the rows within ``hops`` hops of the rows ``near`` (local numbers; None: every row), zero elsewhere: a
    network with ``hops`` layers reads no other row's edges for the factor rows ``near``, and FSAI's per-row
    solves are most of the graph's cost."""
    n = len(block.rows)
    diag = diagonal_and_checks(block) if diag is None else diag
    counts = np.diff(block.indptr)
    row_of = np.repeat(np.arange(n), counts)
    cols = block.indices
    off = cols != block.rows[row_of]
    scaled_row = block.values / diag[row_of]
    degree = np.bincount(row_of[off], minlength=n).astype(np.float64)
    row_sum = np.bincount(row_of[off], weights=scaled_row[off], minlength=n)
    abs_row_sum = np.bincount(row_of[off], weights=np.abs(scaled_row[off]), minlength=n)
    node = np.stack([np.log1p(degree), row_sum, abs_row_sum], axis=1).astype(np.float32)

    pos, inside = local_positions(block)
    r, c = row_of[inside], pos[inside]
    v = block.values[inside] / np.sqrt(diag[r] * diag[c])
    a_indptr = np.concatenate([[0], np.cumsum(np.bincount(r, minlength=n))]).astype(np.int64)
    scaled = (a_indptr, c, v)
    if pattern == "a2":
        r, c, v = _square_pattern(n, a_indptr, c, v)
    elif pattern != "a":
        raise ValueError(f"unknown factor pattern {pattern!r}; valid: {', '.join(PATTERNS)}")
    kept = np.bincount(r, minlength=n)
    K = max(int(kept.max(initial=1)), 1)
    start = np.concatenate([[0], np.cumsum(kept)[:-1]])
    slot = np.arange(len(r)) - start[r]
    neighbours = np.repeat(np.arange(n, dtype=np.int64)[:, None], K, axis=1)
    neighbours[r, slot] = c
    valid = np.zeros((n, K), bool)
    valid[r, slot] = True
    columns = np.full((n, K), -1, np.int64)
    columns[r, slot] = block.rows[c]
    edge = np.zeros((n, K, len(EDGE_FEATURES)), np.float32)
    edge[r, slot, 0] = v
    edge[r, slot, 1] = c < r
    edge[r, slot, 2] = c > r
    edge[r, slot, 3] = c == r
    graph = PaddedGraph(node, edge, neighbours, valid, columns, diag, block.rows, scaled)
    from .fsai import fsai_slot_values

    edge[..., 4] = fsai_slot_values(graph, np.arange(n) if near is None else within_hops(graph, near, hops))
    return graph


def within_hops(graph: PaddedGraph, rows: np.ndarray, hops: int) -> np.ndarray:
    """Local numbers of the rows within ``hops`` hops of ``rows`` in the graph (sorted)."""
    mask = np.zeros(len(graph.rows), bool)
    mask[rows] = True
    for _ in range(hops):
        mask[graph.neighbours[mask][graph.valid[mask]]] = True
    return np.nonzero(mask)[0]


def _square_pattern(n: int, indptr: np.ndarray, indices: np.ndarray, values: np.ndarray):
    """(rows, columns, values) of the pattern of A^2 in row-major order (columns ascending within a row), with A's
    scaled value on A's entries and 0 on the fill-in."""
    from .fsai import square_rows

    sq_indptr, sq_indices, sq_values = square_rows(indptr, np.ascontiguousarray(indices, np.int64),
                                                   np.ascontiguousarray(values, np.float64))
    return np.repeat(np.arange(n, dtype=np.int64), np.diff(sq_indptr)), sq_indices, sq_values


def check_symmetric(block: Block, owned: np.ndarray, rtol: float = 1e-10) -> None:
    """Raise OperatorError unless a_ij = a_ji (to ``rtol`` of the largest entry) for every owned row i.

    ``owned``: local numbers of rows whose neighbours' rows are all in the block (any block with one ring of
    overlap), so the check is exact without communication."""
    import scipy.sparse as sp

    n = len(block.rows)
    row_of = np.repeat(np.arange(n), np.diff(block.indptr))
    pos, inside = local_positions(block)
    local = sp.csr_matrix((block.values[inside], (row_of[inside], pos[inside])), shape=(n, n))
    mine = local[owned]
    diff = abs(mine - local.T.tocsr()[owned])
    scale = max(float(abs(mine).max()) if mine.nnz else 0.0, 1e-300)
    worst = float(diff.max()) if diff.nnz else 0.0
    if worst > rtol * scale:
        coo = diff.tocoo()
        i = coo.row[int(np.argmax(coo.data))]
        raise OperatorError(f"the matrix is not symmetric (|a_ij - a_ji| up to {worst:.3g}, near row "
                            f"{block.rows[owned[i]]}): the gnn preconditioner is SPD and needs an SPD matrix; "
                            "assemble the symmetric form (Dirichlet rows and columns both eliminated) or use a "
                            "preconditioner for non-symmetric systems")
