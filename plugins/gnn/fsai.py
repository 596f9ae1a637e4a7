"""Classical factored sparse approximate inverse (FSAI, Kolotilina & Yeremin) on the pattern of tril(A).

For each row i with lower pattern S_i (columns j <= i), solve A[S_i, S_i] g = e_i and scale g by 1/sqrt(g_i):
then G A G^T has a unit diagonal and M = G^T G approximates A^-1 (G approximates the inverse Cholesky factor).
Computed on the diagonally scaled matrix, rows batched by pattern size (one batched dense solve per size), the
entries of each small matrix found by a sorted-key search (no Python loop over rows). It is the gnn plugin's
ablation (the same structure with a closed-form factor), its fallback, and the network's starting point.
"""
from __future__ import annotations

import numpy as np

from .graph import PaddedGraph


def fsai_slot_values(graph: PaddedGraph, which: np.ndarray) -> np.ndarray:
    """Per-slot factor values [n, K] (scaled problem, float64) for rows ``which``; other rows and slots are zero."""
    n, K = graph.neighbours.shape
    r, s = np.nonzero(graph.valid)
    keys = r.astype(np.int64) * n + graph.neighbours[r, s]
    order = np.argsort(keys)
    keys, vals = keys[order], graph.edge[r, s, 0].astype(np.float64)[order]
    out = np.zeros((n, K))
    lower = graph.valid[which] & (graph.columns[which] <= graph.rows[which, None])
    sizes = lower.sum(axis=1)
    for size in np.unique(sizes):
        here = sizes == size
        rows_here = which[here]
        slots = np.nonzero(lower[here])[1].reshape(len(rows_here), size)  # ascending columns: the diagonal is last
        pattern = np.take_along_axis(graph.neighbours[rows_here], slots, axis=1)
        want = (pattern[:, :, None] * n + pattern[:, None, :]).ravel()
        pos = np.minimum(np.searchsorted(keys, want), len(keys) - 1)
        dense = np.where(keys[pos] == want, vals[pos], 0.0).reshape(len(rows_here), size, size)
        rhs = np.zeros((len(rows_here), size, 1))
        rhs[:, -1] = 1.0
        g = np.linalg.solve(dense, rhs)[..., 0]
        g /= np.sqrt(g[:, -1:])
        out[rows_here[:, None], slots] = g
    return out
