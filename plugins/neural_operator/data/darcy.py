"""The parametric elliptic family: Darcy flow -div(a grad u) = f on the unit square, u = 0 on the boundary.

Discretisation: cell-centred finite volumes on an n x n grid (5-point stencil, harmonic-mean face coefficients, the
Dirichlet value imposed half a cell outside the boundary cells). The coefficient ``a`` is drawn from a Gaussian
random field g ~ N(0, (-Lap + tau^2)^-alpha): "piecewise" thresholds it (a = 12 where g >= 0, else 3, as in the FNO
Darcy benchmark), "lognormal" takes a = exp(g). Solved with PETSc CG + GAMG to rtol 1e-10.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

KINDS = ("piecewise", "lognormal")


def gaussian_field(rng: np.random.Generator, n: int, alpha: float = 2.0, tau: float = 3.0) -> np.ndarray:
    """A zero-mean Gaussian random field on an n x n periodic grid, sampled spectrally, unit-ish variance."""
    k = np.fft.fftfreq(n, d=1.0 / n)
    kx, ky = np.meshgrid(k, k, indexing="ij")
    amp = (4 * np.pi**2 * (kx**2 + ky**2) + tau**2) ** (-alpha / 2)
    amp[0, 0] = 0.0
    xi = rng.standard_normal((n, n)) + 1j * rng.standard_normal((n, n))
    g = np.fft.ifft2(amp * xi).real
    return g / (g.std() + 1e-30)


def coefficient(rng: np.random.Generator, n: int, kind: str = "piecewise", contrast: tuple[float, float] = (3.0, 12.0),
                sigma: float = 1.0) -> np.ndarray:
    if kind not in KINDS:
        raise ValueError(f"unknown coefficient kind {kind!r}; valid: {', '.join(KINDS)}")
    g = gaussian_field(rng, n)
    if kind == "piecewise":
        return np.where(g >= 0, contrast[1], contrast[0])
    return np.exp(sigma * g)


def assemble(a: np.ndarray) -> sp.csr_matrix:
    """The SPD finite-volume matrix for coefficient ``a`` (n x n cells, row index i*n + j, i = y, j = x)."""
    n = a.shape[0]
    if a.shape != (n, n):
        raise ValueError(f"coefficient must be square, got {a.shape}")
    if not np.all(np.isfinite(a)) or np.any(a <= 0):
        raise ValueError("coefficient must be finite and positive everywhere")
    h2 = (1.0 / n) ** 2
    idx = np.arange(n * n).reshape(n, n)
    diag = np.zeros((n, n))
    rows, cols, vals = [], [], []
    for axis in (0, 1):
        lo = [slice(None)] * 2
        hi = [slice(None)] * 2
        lo[axis], hi[axis] = slice(0, -1), slice(1, None)
        t = 2.0 * a[tuple(lo)] * a[tuple(hi)] / (a[tuple(lo)] + a[tuple(hi)]) / h2  # harmonic mean face
        diag[tuple(lo)] += t
        diag[tuple(hi)] += t
        rows += [idx[tuple(lo)].ravel(), idx[tuple(hi)].ravel()]
        cols += [idx[tuple(hi)].ravel(), idx[tuple(lo)].ravel()]
        vals += [-t.ravel(), -t.ravel()]
        # boundary faces: u = 0 half a cell away -> transmissibility 2 a / h^2
        first = [slice(None)] * 2
        last = [slice(None)] * 2
        first[axis], last[axis] = 0, -1
        diag[tuple(first)] += 2.0 * a[tuple(first)] / h2
        diag[tuple(last)] += 2.0 * a[tuple(last)] / h2
    rows.append(idx.ravel())
    cols.append(idx.ravel())
    vals.append(diag.ravel())
    return sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n * n, n * n))


def petsc_matrix(A: sp.csr_matrix, comm=None):
    """A PETSc AIJ matrix with the rows in the grid's C order, distributed by PETSc's default layout on ``comm``."""
    from petsc4py import PETSc

    comm = comm or PETSc.COMM_SELF
    A = A.tocsr()
    A.sort_indices()
    n = A.shape[0]
    M = PETSc.Mat().create(comm)
    M.setSizes(((PETSc.DECIDE, n), (PETSc.DECIDE, n)))
    M.setType("aij")
    M.setPreallocationNNZ(5)
    lo, hi = M.getOwnershipRange()
    local = A[lo:hi]
    M.setValuesCSR(local.indptr.astype(PETSc.IntType), local.indices.astype(PETSc.IntType), local.data)
    M.assemble()
    return M


def solve(a: np.ndarray, f: float = 1.0, rtol: float = 1e-10, pc: str = "gamg") -> tuple[np.ndarray, int]:
    """Solve one Darcy problem with PETSc CG + ``pc``; returns (u on the n x n grid, iterations)."""
    from petsc4py import PETSc

    from accel.errors import ConvergenceError

    n = a.shape[0]
    A = petsc_matrix(assemble(a))
    b = A.createVecLeft()
    b.set(f)
    x = A.createVecRight()
    ksp = PETSc.KSP().create(PETSc.COMM_SELF)
    try:
        ksp.setOperators(A)
        ksp.setType("cg")
        ksp.getPC().setType(pc)
        ksp.setNormType(PETSc.KSP.NormType.UNPRECONDITIONED)
        ksp.setTolerances(rtol=rtol, atol=0.0, max_it=2000)
        ksp.solve(b, x)
        if ksp.getConvergedReason() <= 0:
            raise ConvergenceError(f"Darcy solve did not converge (reason {ksp.getConvergedReason()})")
        return x.getArray().reshape(n, n).copy(), ksp.getIterationNumber()
    finally:
        ksp.destroy()
        A.destroy()
        b.destroy()
        x.destroy()


def generate(n_samples: int, grid: int, kind: str = "piecewise", seed: int = 0, progress=None) -> dict[str, np.ndarray]:
    """``n_samples`` (coefficient, solution) pairs; ``progress`` (optional) is called once per sample."""
    rng = np.random.default_rng(seed)
    a_all = np.empty((n_samples, grid, grid), np.float32)
    u_all = np.empty((n_samples, grid, grid), np.float32)
    for s in range(n_samples):
        a = coefficient(rng, grid, kind)
        u, _ = solve(a)
        a_all[s], u_all[s] = a, u
        if progress is not None:
            progress()
    return {"a": a_all, "u": u_all}
