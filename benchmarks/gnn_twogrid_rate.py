"""The two-grid rate of the gnn factor as a smoother: rho of E = (I - M A)(I - P Ac^-1 P^T A)(I - M A), with M the
factor (classical FSAI or a gnn model) in one Richardson sweep each side (``fsai2``: FSAI, two sweeps) and an exact
coarse solve on PETSc GAMG's finest interpolation (as the ``twogrid`` training loss), by power iteration in the
A-norm (E is A-self-adjoint and positive semi-definite).

    .venv/bin/python benchmarks/gnn_twogrid_rate.py out/gnn-cases/plate_h0.01_c10000_s101.A.dat [more matrices] \
        --model shipped=plugins/gnn/models/gnn-diffusion.onnx --model tg=out/gnn-twogrid/tg.onnx
"""
from __future__ import annotations

import argparse

import numpy as np
import scipy.linalg as sl
import scipy.sparse as sp


def _load(path: str):
    from petsc4py import PETSc

    viewer = PETSc.Viewer().createBinary(path, "r")
    try:
        return PETSc.Mat().load(viewer)
    finally:
        viewer.destroy()


def _factor(A, plugin: str, model: str | None) -> sp.csr_matrix:
    """G of M = G^T G as the NeuralPC builds it on A (unscaled variables)."""
    from accel.integrations.petsc.solvers import Solver

    options = {"ksp_type": "cg", "pc_type": "python", "pc_python_type": "accel.NeuralPC", "accel_plugin": plugin}
    if model:
        options["accel_model"] = model
    solver = Solver(A, options, max_it=1)
    b = A.createVecLeft()
    b.set(1.0)
    try:
        solver.run(b)
        G = solver.ksp.getPC().getPythonContext().component.G
        return sp.csr_matrix(G.getValuesCSR()[::-1], shape=G.getSize())
    finally:
        solver.destroy()
        b.destroy()


def two_grid_rate(A: sp.csr_matrix, G: sp.csr_matrix, P: sp.csr_matrix, sweeps: int = 1, iterations: int = 150,
                  seed: int = 0) -> float:
    coarse = sl.cho_factor((P.T @ A @ P).toarray())

    def smooth(e):
        for _ in range(sweeps):
            e = e - G.T @ (G @ (A @ e))
        return e

    def cycle(e):
        e = smooth(e)
        return smooth(e - P @ sl.cho_solve(coarse, P.T @ (A @ e)))

    v = np.random.default_rng(seed).standard_normal(A.shape[0])
    for _ in range(iterations):
        v = cycle(v)
        v /= np.sqrt(v @ (A @ v))
    return float(cycle(v) @ (A @ v))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("matrices", nargs="+", help="PETSc binary matrices")
    parser.add_argument("--model", action="append", default=[], metavar="LABEL=PATH", help="a gnn model (repeatable)")
    parser.add_argument("--iterations", type=int, default=150, help="power iterations")
    args = parser.parse_args(argv)
    models = [("fsai", None, 1), ("fsai2", None, 2)] + [(*m.split("=", 1), 1) for m in args.model]
    from accel.plugins.gnn.train import gamg_interpolation

    print("| matrix | rows | coarse rows | " + " | ".join(label for label, _, _ in models) + " |")
    print("|---|---|---|" + "---|" * len(models))
    for path in args.matrices:
        A = _load(path)
        try:
            ia, ja, a = A.getValuesCSR()
            As = sp.csr_matrix((a, ja, ia), shape=A.getSize())
            P = gamg_interpolation(As)
            rates = [two_grid_rate(As, _factor(A, "fsai" if m is None else "gnn", m), P, sweeps, args.iterations)
                     for _, m, sweeps in models]
        finally:
            A.destroy()
        print(f"| {path.rsplit('/', 1)[-1]} | {As.shape[0]:,} | {P.shape[1]:,} | "
              + " | ".join(f"{r:.3f}" for r in rates) + " |", flush=True)


if __name__ == "__main__":
    main()
