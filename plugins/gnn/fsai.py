"""Classical factored sparse approximate inverse (FSAI, Kolotilina & Yeremin) on the lower triangle of the graph's
pattern (tril(A), or tril(A^2) for a graph built with ``pattern="a2"``).

For each row i with lower pattern S_i (columns j <= i), solve A[S_i, S_i] g = e_i and scale g by 1/sqrt(g_i):
then G A G^T has a unit diagonal and M = G^T G approximates A^-1 (G approximates the inverse Cholesky factor).
Computed on the diagonally scaled matrix from the factor's pattern (CSR, local numbering), one small Cholesky solve
per row in a compiled loop (numba); the small matrix A[S_i, S_i] is read from A's rows through a position table
(O(|S_i| nnz per row)), so long rows of the A^2 pattern cost no search over the slots. It is the gnn plugin's
ablation (the same structure with a closed-form factor), its fallback, and the network's starting point.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from .graph import FactorPattern, PaddedGraph


def fsai_values(pattern: FactorPattern, which: np.ndarray) -> np.ndarray:
    """The scaled factor's values on the pattern's entries (float64) for the rows ``which``; zero elsewhere."""
    out = np.zeros(len(pattern.cols))
    a_indptr, a_cols, a_vals = pattern.scaled
    _fsai_rows(np.ascontiguousarray(which, np.int64), pattern.indptr, pattern.cols, pattern.lower, a_indptr, a_cols,
               a_vals, out)
    return out


def fsai_slot_values(graph: PaddedGraph, which: np.ndarray) -> np.ndarray:
    """Per-slot factor values [n, K] (scaled problem, float64) for rows ``which``; other rows and slots are zero."""
    p = graph.pattern
    flat = fsai_values(p, which)
    out = np.zeros(graph.neighbours.shape)
    counts = np.diff(p.indptr)
    row_of = np.repeat(np.arange(len(counts)), counts)
    out[row_of, np.arange(len(row_of)) - p.indptr[row_of]] = flat
    return out


@njit(cache=True, nogil=True)
def _fsai_rows(which, indptr, cols, lower, a_indptr, a_cols, a_vals, out):  # pragma: no cover - compiled
    n = len(indptr) - 1
    width = 1
    for i in which:
        width = max(width, lower[i])
    where = np.full(n, -1, np.int64)  # position of a node in the current row's lower pattern, -1 outside it
    B = np.empty((width, width))
    g = np.empty(width)
    for i in which:
        s = lower[i]  # the row's lower entries: a prefix in ascending column order, the diagonal last
        base = indptr[i]
        for a in range(s):
            where[cols[base + a]] = a
        for a in range(s):  # the lower triangle of B = A[S_i, S_i] (all Cholesky reads)
            for b in range(a + 1):
                B[a, b] = 0.0
            node = cols[base + a]
            for e in range(a_indptr[node], a_indptr[node + 1]):
                if a_cols[e] > node:  # A's row is sorted: the rest is above B's diagonal
                    break
                b = where[a_cols[e]]
                if b >= 0:
                    B[a, b] = a_vals[e]
        for a in range(s):
            where[cols[base + a]] = -1
        for a in range(s):  # Cholesky B = L L^T in place (B is a principal block of an SPD matrix)
            for b in range(a + 1):
                acc = B[a, b]
                for c in range(b):
                    acc -= B[a, c] * B[b, c]
                if a == b:
                    B[a, a] = np.sqrt(acc)
                else:
                    B[a, b] = acc / B[b, b]
        for a in range(s):  # forward: L y = e_last
            acc = 1.0 if a == s - 1 else 0.0
            for c in range(a):
                acc -= B[a, c] * g[c]
            g[a] = acc / B[a, a]
        for a in range(s - 1, -1, -1):  # backward: L^T x = y
            acc = g[a]
            for c in range(a + 1, s):
                acc -= B[c, a] * g[c]
            g[a] = acc / B[a, a]
        scale = 1.0 / np.sqrt(g[s - 1])
        for a in range(s):
            out[base + a] = g[a] * scale


def square_rows(indptr: np.ndarray, indices: np.ndarray, values: np.ndarray):
    """CSR of the pattern of A^2 (columns sorted) with A's value on A's entries and 0 on the fill-in, from A's CSR
    in local numbering (rows outside the block contribute nothing: exact for rows whose neighbours are inside)."""
    n = len(indptr) - 1
    counts = np.zeros(n + 1, np.int64)
    _square_count(indptr, indices, counts)
    out_ptr = np.cumsum(counts)
    out_idx = np.empty(out_ptr[-1], np.int64)
    out_val = np.empty(out_ptr[-1], np.float64)
    _square_fill(indptr, indices, values, out_ptr, out_idx, out_val)
    return out_ptr, out_idx, out_val


@njit(cache=True, nogil=True)
def _square_count(indptr, indices, counts):  # pragma: no cover - compiled
    n = len(indptr) - 1
    mark = np.full(n, -1, np.int64)
    for i in range(n):
        c = 0
        for e in range(indptr[i], indptr[i + 1]):
            u = indices[e]
            for f in range(indptr[u], indptr[u + 1]):
                w = indices[f]
                if mark[w] != i:
                    mark[w] = i
                    c += 1
        counts[i + 1] = c


@njit(cache=True, nogil=True)
def _square_fill(indptr, indices, values, out_ptr, out_idx, out_val):  # pragma: no cover - compiled
    n = len(indptr) - 1
    mark = np.full(n, -1, np.int64)
    value = np.zeros(n)
    for i in range(n):
        start = out_ptr[i]
        c = start
        for e in range(indptr[i], indptr[i + 1]):
            u = indices[e]
            for f in range(indptr[u], indptr[u + 1]):
                w = indices[f]
                if mark[w] != i:
                    mark[w] = i
                    out_idx[c] = w
                    c += 1
        for k in range(start + 1, c):  # insertion sort: rows are short and arrive nearly sorted
            w = out_idx[k]
            m = k - 1
            while m >= start and out_idx[m] > w:
                out_idx[m + 1] = out_idx[m]
                m -= 1
            out_idx[m + 1] = w
        for e in range(indptr[i], indptr[i + 1]):
            value[indices[e]] = values[e]
        for k in range(start, c):
            out_val[k] = value[out_idx[k]]
        for e in range(indptr[i], indptr[i + 1]):
            value[indices[e]] = 0.0
