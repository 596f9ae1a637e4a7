"""Training the neural preconditioner on a user's own operator family, from PETSc binary files, and measuring it on
held-out members of the family against ICC.

    # 1. the family: variable-coefficient diffusion -div(k grad u) on a 64x64 grid, k = exp(smooth random field)
    .venv/bin/python benchmarks/dcdm_own_operators.py write --out out/own --count 40 --grid 64,64
    # 2. train on the first 32 files, exactly as a user would
    accel train dcdm --matrices 'out/own/train/A_*.dat' --grid 64,64 --width 16 --ritz 128 --loss energy \
        --unroll 3 --coefficient-input --out out/own/own.onnx
    # 3. iterations on the 8 held-out members: neural PC vs ICC, the other classical PCs and the shipped model
    .venv/bin/python benchmarks/dcdm_own_operators.py evaluate --out out/own --model out/own/own.onnx --grid 64,64
    # 4. what a perfect network at its working resolution would reach in the same cycle
    .venv/bin/python benchmarks/dcdm_own_operators.py bound --out out/own --grid 64,64

The operator is the 5-point finite-volume stencil with harmonic means of k on the faces and homogeneous Dirichlet
walls, written with PETSc's own MatView (binary viewer), in natural order (x fastest).
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import scipy.sparse as sp

SOLVERS = ["cg+icc", "cg+gamg", "cg+boomeramg", "cg+mg-sor", "fcg2+neural", "fcg2+neural-sor"]


def log_coefficient(shape, seed, sigma=1.0, length=0.1):
    """exp(g), g a Gaussian field of standard deviation ``sigma`` smoothed over ``length`` (unit box)."""
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    g = ndimage.gaussian_filter(rng.standard_normal(shape), [length * n for n in shape], mode="wrap")
    return np.exp(sigma * g / g.std())


def diffusion(k: np.ndarray) -> sp.csr_matrix:
    """-div(k grad u), cell-centred finite volumes, harmonic face means, u = 0 half a cell outside every wall."""
    shape = k.shape
    n = k.size
    idx = np.arange(n).reshape(shape)
    rows, cols, vals = [], [], []
    diag = np.zeros(shape)
    for axis in range(k.ndim):
        lo = tuple(slice(0, -1) if a == axis else slice(None) for a in range(k.ndim))
        hi = tuple(slice(1, None) if a == axis else slice(None) for a in range(k.ndim))
        face = 2 * k[lo] * k[hi] / (k[lo] + k[hi])
        rows += [idx[lo].ravel(), idx[hi].ravel()]
        cols += [idx[hi].ravel(), idx[lo].ravel()]
        vals += [-face.ravel(), -face.ravel()]
        np.add.at(diag, lo, face)
        np.add.at(diag, hi, face)
        first = tuple(0 if a == axis else slice(None) for a in range(k.ndim))
        last = tuple(-1 if a == axis else slice(None) for a in range(k.ndim))
        diag[first] += 2 * k[first]  # the wall value sits half a cell away
        diag[last] += 2 * k[last]
    rows.append(idx.ravel())
    cols.append(idx.ravel())
    vals.append(diag.ravel())
    return sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n))


def write(args):
    import petsc4py

    petsc4py.init()
    from petsc4py import PETSc

    from accel.plugins.dcdm.problems import to_petsc

    shape = tuple(reversed([int(s) for s in args.grid.split(",")]))
    for i in range(args.count):
        folder = Path(args.out) / ("train" if i < args.count - args.held_out else "held_out")
        folder.mkdir(parents=True, exist_ok=True)
        A = to_petsc(diffusion(log_coefficient(shape, seed=i, sigma=args.sigma)))
        viewer = PETSc.Viewer().createBinary(str(folder / f"A_{i:03d}.dat"), "w")
        A.view(viewer)  # what -ksp_view_mat binary:FILE writes
        viewer.destroy()
        A.destroy()
    print(f"wrote {args.count - args.held_out} training and {args.held_out} held-out operators to {args.out}")


def evaluate(args):
    import os

    import petsc4py

    petsc4py.init()
    from accel.integrations.petsc.solvers import random_rhs, solve
    from accel.plugins.dcdm.matrices import load_family
    from accel.plugins.dcdm.preconditioner import default_model
    from accel.plugins.dcdm.problems import to_petsc

    shape = tuple(reversed([int(s) for s in args.grid.split(",")]))
    shipped = default_model(len(shape))
    # the trained model and the shipped Poisson model (never trained on the family) in the same run
    rows = [(s, None) for s in SOLVERS if "neural" not in s]
    rows += [(s, m) for m in (args.model, str(shipped)) for s in SOLVERS if "neural" in s]
    its = {row: [] for row in rows}
    for _, matrix in load_family(str(Path(args.out) / "held_out" / "A_*.dat"), shape):
        A = to_petsc(matrix)
        b = random_rhs(A, seed=7)
        for s, model in rows:
            extra = {"accel_model": model, "accel_grid": args.grid, "accel_threads": 1} if model else None
            r = solve(A, b, s, extra=extra, grid=shape, raise_unconverged=False)
            its[(s, model)].append(r.iterations if r.converged else -1)
        A.destroy()
        b.destroy()
    icc = np.mean(its[("cg+icc", None)])
    for (s, model), v in its.items():
        label = s if model is None else f"{s} ({os.path.basename(model)})"
        print(f"{label:<44} iterations on held-out members {v}  mean {np.mean(v):.1f}  / ICC {np.mean(v) / icc:.2f}")


def _bilinear(n: int) -> sp.csr_matrix:
    """Cell-centred linear interpolation from n/2 to n points (what the network's bilinear upsampling does)."""
    m = n // 2
    x = (np.arange(n) + 0.5) / 2 - 0.5
    j = np.floor(x).astype(int)
    t = x - j
    rows = np.repeat(np.arange(n), 2)
    cols = np.clip(np.stack([j, j + 1], 1).ravel(), 0, m - 1)
    return sp.csr_matrix((np.stack([1 - t, t], 1).ravel(), (rows, cols)), shape=(n, m))


def bound(args):
    """What a perfect network at its working resolution would give: the two-grid cycle (2 + 2 Jacobi sweeps,
    omega 0.67) with the network replaced by an exact Galerkin solve on the half-resolution grid, upsampled
    bilinearly as the network's output is; scipy PCG, rtol 1e-8, on the held-out members."""
    from scipy.sparse.linalg import LinearOperator, cg, splu

    from accel.plugins.dcdm.matrices import load_family

    shape = tuple(reversed([int(s) for s in args.grid.split(",")]))
    P = _bilinear(shape[0])
    for n in shape[1:]:
        P = sp.kron(P, _bilinear(n)).tocsr()
    its = []
    for _, A in load_family(str(Path(args.out) / "held_out" / "A_*.dat"), shape):
        coarse = splu((P.T @ A @ P).tocsc())
        dinv = 1.0 / A.diagonal()

        def cycle(r, A=A, coarse=coarse, dinv=dinv):
            z = np.zeros_like(r)
            for _ in range(2):
                z += 0.67 * dinv * (r - A @ z)
            z += P @ coarse.solve(P.T @ (r - A @ z))
            for _ in range(2):
                z += 0.67 * dinv * (r - A @ z)
            return z

        b = np.random.default_rng(7).standard_normal(A.shape[0])
        count = [0]
        cg(A, b, tol=1e-8, atol=0.0, M=LinearOperator(A.shape, cycle), maxiter=1000,
           callback=lambda _: count.__setitem__(0, count[0] + 1))
        its.append(count[0])
    print(f"exact coarse solve at half resolution, same cycle: iterations {its}  mean {np.mean(its):.1f}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    w = sub.add_parser("write")
    w.add_argument("--out", required=True)
    w.add_argument("--grid", default="64,64")
    w.add_argument("--count", type=int, default=40)
    w.add_argument("--held-out", type=int, default=8)
    w.add_argument("--sigma", type=float, default=1.0, help="standard deviation of log k")
    w.set_defaults(func=write)
    e = sub.add_parser("evaluate")
    e.add_argument("--out", required=True)
    e.add_argument("--model", required=True)
    e.add_argument("--grid", default="64,64")
    e.set_defaults(func=evaluate)
    bd = sub.add_parser("bound", help=bound.__doc__.split(":")[0])
    bd.add_argument("--out", required=True)
    bd.add_argument("--grid", default="64,64")
    bd.set_defaults(func=bound)
    args = ap.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
