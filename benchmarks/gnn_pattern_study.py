"""How much a wider factor pattern would give: classical FSAI on tril(A) (the gnn plugin's pattern) against FSAI on
tril(A^2), CG iterations (scipy, rtol 1e-8 on the unpreconditioned residual) on held-out family members. A study
for the next step, not a shipped component: the rows are solved one by one in Python.

    .venv/bin/python benchmarks/gnn_pattern_study.py
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla


def fsai(A: sp.csr_matrix, pattern: sp.csr_matrix) -> sp.csr_matrix:
    """G with G A G^T unit-diagonal, on the lower triangle of ``pattern``."""
    lower = sp.tril(pattern).tocsr()
    lower.sort_indices()
    rows, cols, vals = [], [], []
    Ad = A.toarray() if A.shape[0] < 3000 else None
    for i in range(A.shape[0]):
        S = lower.indices[lower.indptr[i]:lower.indptr[i + 1]]
        B = Ad[np.ix_(S, S)] if Ad is not None else A[S][:, S].toarray()
        e = np.zeros(len(S))
        e[-1] = 1.0
        g = np.linalg.solve(B, e)
        g /= np.sqrt(g[-1])
        rows += [i] * len(S)
        cols += list(S)
        vals += list(g)
    return sp.csr_matrix((vals, (rows, cols)), shape=A.shape)


def iterations(A, M) -> int:
    b = np.random.default_rng(0).standard_normal(A.shape[0])
    count = [0]
    spla.cg(A, b, tol=1e-8, atol=0.0, maxiter=20000, M=M, callback=lambda _: count.__setitem__(0, count[0] + 1))
    return count[0]


def main() -> int:
    from accel.plugins.gnn.problems import diffusion, to_scipy

    print("| problem | unknowns | FSAI tril(A): its, nnz(G)/n | FSAI tril(A^2): its, nnz(G)/n |")
    print("|---|---|---|---|")
    for family, h, contrast in [("plate", 0.02, 1e4), ("inclusion", 0.06, 1e4)]:
        p = diffusion(family, h, contrast, seed=11)
        A = to_scipy(p.A)
        p.destroy()
        out = []
        for pattern in (A, A @ A):
            G = fsai(A, (abs(pattern) > 0).astype(float))
            M = spla.LinearOperator(A.shape, matvec=lambda x, G=G: G.T @ (G @ x))
            out.append(f"{iterations(A, M)}, {G.nnz / A.shape[0]:.1f}")
        print(f"| {family} contrast {contrast:g} | {A.shape[0]} | {out[0]} | {out[1]} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
