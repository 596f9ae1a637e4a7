"""Classical factored sparse approximate inverse (FSAI, Kolotilina & Yeremin) on the lower triangle of the graph's
pattern (tril(A), or tril(A^2) for a graph built with ``pattern="a2"``).

For each row i with lower pattern S_i (columns j <= i), solve A[S_i, S_i] g = e_i and scale g by 1/sqrt(g_i):
then G A G^T has a unit diagonal and M = G^T G approximates A^-1 (G approximates the inverse Cholesky factor).
Computed on the diagonally scaled matrix from the padded neighbour lists, one small Cholesky solve per row in a
compiled loop (numba); the small matrix A[S_i, S_i] is read from A's rows through a position table (O(|S_i| nnz
per row)), so long rows of the A^2 pattern cost no search over the slots. It is the gnn plugin's ablation (the
same structure with a closed-form factor), its fallback, and the network's starting point.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from .graph import PaddedGraph


def fsai_slot_values(graph: PaddedGraph, which: np.ndarray) -> np.ndarray:
    """Per-slot factor values [n, K] (scaled problem, float64) for rows ``which``; other rows and slots are zero."""
    lower = graph.valid & (graph.columns <= graph.rows[:, None])
    out = np.zeros(graph.neighbours.shape)
    indptr, indices, values = graph.scaled
    _fsai_rows(np.ascontiguousarray(which, np.int64), graph.neighbours, lower, indptr,
               np.ascontiguousarray(indices, np.int64), np.ascontiguousarray(values, np.float64), out)
    return out


@njit(cache=True, nogil=True)
def _fsai_rows(which, neighbours, lower, indptr, indices, values, out):  # pragma: no cover - compiled
    n, K = neighbours.shape
    slots = np.empty(K, np.int64)
    nodes = np.empty(K, np.int64)
    where = np.full(n, -1, np.int64)  # position of a node in the current row's pattern, -1 outside it
    B = np.empty((K, K))
    g = np.empty(K)
    for i in which:
        s = 0
        for k in range(K):  # lower slots in ascending column order: the diagonal comes last
            if lower[i, k]:
                slots[s] = k
                nodes[s] = neighbours[i, k]
                where[nodes[s]] = s
                s += 1
        for a in range(s):
            for b in range(s):
                B[a, b] = 0.0
            for e in range(indptr[nodes[a]], indptr[nodes[a] + 1]):
                b = where[indices[e]]
                if b >= 0:
                    B[a, b] = values[e]
        for a in range(s):
            where[nodes[a]] = -1
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
            out[i, slots[a]] = g[a] * scale


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
