"""How accurate must an initial guess be to save Krylov iterations? Darcy 64x64, CG to rtol 1e-8 (unpreconditioned
norm), cold vs guesses whose error is the FNO's own error scaled to a chosen relative L2 (x0 = u + s (u_fno - u)),
or a smooth error of the same size (x0 = u (1 + e * bump)).

    python benchmarks/neural_operator_guess_accuracy.py --model runs/neural_operator/darcy_logn_fno.onnx --n 10

With --checkpoint (the model's .pt), it also reports a Galerkin refit of the guess: the energy-optimal combination of
the guess and the network's last hidden features (x0 = V (V^T A V)^+ V^T b), i.e. whether the missing accuracy lies
in the span of what the network computes.
"""
from __future__ import annotations

import argparse
import sys

import numpy as np


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True)
    p.add_argument("--n", type=int, default=10)
    p.add_argument("--grid", type=int, default=64)
    p.add_argument("--seed", type=int, default=2000)
    p.add_argument("--checkpoint", help="the model's .pt: also report the Galerkin refit on its hidden features")
    args = p.parse_args(argv)
    from petsc4py import PETSc

    from accel.plugins.neural_operator.data import darcy
    from accel.plugins.neural_operator.surrogate import Surrogate

    sur = Surrogate(args.model, problem="darcy")
    levels = (1e-1, 3e-2, 1e-2, 3e-3, 1e-3, 1e-4)
    c = np.sin(np.pi * (np.arange(args.grid) + 0.5) / args.grid)
    bump = np.outer(c, c)
    rng = np.random.default_rng(args.seed)
    its = {}
    errors = {"l2": [], "energy": [], "refit": []}  # the FNO guess's own errors, relative
    hidden = _hidden_features(args.checkpoint) if args.checkpoint else None
    for _ in range(args.n):
        a = darcy.coefficient(rng, args.grid, "lognormal")
        u, _ = darcy.solve(a, rtol=1e-12)
        fno_err = sur.predict(a) - u
        rel = np.linalg.norm(fno_err) / np.linalg.norm(u)
        A_csr = darcy.assemble(a)
        # CG minimises the error in the energy norm ||e||_A = sqrt(e.A e): that, not L2, is what a guess buys
        energy = np.sqrt(fno_err.ravel() @ (A_csr @ fno_err.ravel()) / (u.ravel() @ (A_csr @ u.ravel())))
        errors["l2"].append(rel)
        errors["energy"].append(energy)
        if hidden is not None:
            V = np.concatenate([sur.predict(a).reshape(1, -1), hidden(a).reshape(-1, u.size)]).T
            x0 = V @ (np.linalg.pinv(V.T @ (A_csr @ V)) @ V.T @ np.ones(u.size))
            e = x0 - u.ravel()
            errors["refit"].append(np.sqrt(e @ (A_csr @ e) / (u.ravel() @ (A_csr @ u.ravel()))))
        A = darcy.petsc_matrix(A_csr)
        b, x = A.createVecLeft(), A.createVecRight()
        b.set(1.0)
        guesses = {("cold", 0): None, ("fno", rel): u + fno_err}
        for e in levels:
            guesses[("fno-shaped", e)] = u + (e / rel) * fno_err
            guesses[("smooth", e)] = u * (1 + e * bump / np.linalg.norm(u * bump) * np.linalg.norm(u))
        for pc in ("gamg", "icc"):
            for key, g in guesses.items():
                ksp = PETSc.KSP().create(PETSc.COMM_SELF)
                ksp.setOperators(A)
                ksp.setType("cg")
                ksp.getPC().setType(pc)
                ksp.setNormType(PETSc.KSP.NormType.UNPRECONDITIONED)
                ksp.setTolerances(rtol=1e-8, atol=0.0, max_it=10000)
                if g is None:
                    x.zeroEntries()
                else:
                    x.setArray(g.ravel())
                    ksp.setInitialGuessNonzero(True)
                ksp.solve(b, x)
                k = (pc, key[0], key[1] if key[0] != "fno" else "own")
                its.setdefault(k, []).append(ksp.getIterationNumber())
                ksp.destroy()
        A.destroy()
        b.destroy()
        x.destroy()
    print(f"Darcy lognormal {args.grid}x{args.grid}, {args.n} fields, CG rtol 1e-8: mean iterations")
    print(f"the FNO guess: relative L2 error {np.mean(errors['l2']):.2e}, relative energy-norm error "
          f"{np.mean(errors['energy']):.2e} (means)")
    if errors["refit"]:
        print(f"Galerkin refit on the guess and the network's last hidden features: relative energy-norm error "
              f"{np.mean(errors['refit']):.2e}")
    for pc in ("gamg", "icc"):
        cold = np.mean(its[(pc, "cold", 0)])
        print(f"{pc}: cold {cold:.1f}; FNO itself {np.mean(its[(pc, 'fno', 'own')]):.1f}")
        for kind in ("fno-shaped", "smooth"):
            row = "  ".join(f"{e:.0e}: {np.mean(its[(pc, kind, e)]):.1f} ({(1 - np.mean(its[(pc, kind, e)]) / cold) * 100:.0f}%)"
                            for e in levels)
            print(f"  {kind:<11} error {row}")
    return 0


def _hidden_features(checkpoint):
    """a -> the FNO's last hidden layer (C, H, W) for ``a`` (torch; the refit study only)."""
    import torch

    from accel.plugins.neural_operator.checkpoint import load_checkpoint

    model, _ = load_checkpoint(checkpoint)
    model.eval()

    def hidden(a):
        with torch.no_grad():
            return model.features(torch.as_tensor(a, dtype=torch.float32)[None, None])[0].double().numpy()
    return hidden


if __name__ == "__main__":
    sys.exit(main())
