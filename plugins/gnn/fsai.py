"""Classical factored sparse approximate inverse (FSAI, Kolotilina & Yeremin) on the pattern of tril(A).

For each row i with lower pattern S_i (columns j <= i), solve A[S_i, S_i] g = e_i and scale g by 1/sqrt(g_i):
then G A G^T has a unit diagonal and M = G^T G approximates A^-1 (G approximates the inverse Cholesky factor).
Computed on the diagonally scaled matrix from the padded neighbour lists, one small Cholesky solve per row in a
compiled loop (numba). It is the gnn plugin's ablation (the same structure with a closed-form factor), its
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
    _fsai_rows(np.ascontiguousarray(which, np.int64), graph.neighbours, lower,
               np.ascontiguousarray(graph.edge[..., 0], np.float64), out)
    return out


@njit(cache=True, nogil=True)
def _fsai_rows(which, neighbours, lower, values, out):  # pragma: no cover - compiled
    K = neighbours.shape[1]
    slots = np.empty(K, np.int64)
    nodes = np.empty(K, np.int64)
    B = np.empty((K, K))
    g = np.empty(K)
    for i in which:
        s = 0
        for k in range(K):  # lower slots in ascending column order: the diagonal comes last
            if lower[i, k]:
                slots[s] = k
                nodes[s] = neighbours[i, k]
                s += 1
        for a in range(s):
            va = nodes[a]
            for b in range(s):
                B[a, b] = 0.0
                vb = nodes[b]
                for k in range(K):
                    if neighbours[va, k] == vb and values[va, k] != 0.0:
                        B[a, b] = values[va, k]
                        break
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
