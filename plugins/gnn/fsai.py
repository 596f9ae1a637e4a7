"""Classical factored sparse approximate inverse (FSAI, Kolotilina & Yeremin) on the lower triangle of the graph's
pattern (tril(A), or tril(A^2) for a graph built with ``pattern="a2"``).

For each row i with lower pattern S_i (columns j <= i), solve A[S_i, S_i] g = e_i and scale g by 1/sqrt(g_i):
then G A G^T has a unit diagonal and M = G^T G approximates A^-1 (G approximates the inverse Cholesky factor).
Computed on the diagonally scaled matrix from the padded neighbour lists, one small Cholesky solve per row in a
compiled loop (numba); the small matrix A[S_i, S_i] is read from A's rows through a position table (O(|S_i|
nnz per row)), so long rows of the A^2 pattern cost no search over the slots. It is the gnn plugin's ablation (the same structure with a closed-form factor), its
fallback, and the network's starting point.
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
