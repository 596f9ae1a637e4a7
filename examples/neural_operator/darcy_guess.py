"""Solve Darcy problems with CG + GAMG, cold and from a neural-operator initial guess (serial or mpirun -n N).

    python examples/neural_operator/darcy_guess.py MODEL.onnx [--grid 64] [--samples 5] [--kind lognormal]

The guess can also be chosen from the options database, e.g. ``-accel_guess MODEL.onnx`` (see --options).
"""
from __future__ import annotations

import argparse
import sys
import time

import numpy as np


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", help="an .onnx file from 'accel train fno' (Darcy data) or a shipped model name")
    p.add_argument("--grid", type=int, default=64)
    p.add_argument("--samples", type=int, default=5)
    p.add_argument("--kind", default="lognormal", choices=("lognormal", "piecewise"))
    p.add_argument("--pc", default="gamg")
    p.add_argument("--seed", type=int, default=123)
    p.add_argument("--options", action="store_true", help="pick the guess with -accel_guess instead of the argument")
    args, petsc_args = p.parse_known_args(argv)
    import petsc4py

    petsc4py.init([sys.argv[0], *petsc_args])
    from petsc4py import PETSc

    from accel.integrations.petsc.guess import attach_guess, guess_from_options
    from accel.plugins.neural_operator.data import darcy
    from accel.plugins.neural_operator.surrogate import Surrogate

    comm = PETSc.COMM_WORLD
    rank = comm.getRank()
    surrogate = Surrogate(args.model, problem="darcy") if rank == 0 and not args.options else None
    if args.options:
        PETSc.Options().setValue("accel_guess", args.model)
    rng = np.random.default_rng(args.seed)
    for s in range(args.samples):
        a = darcy.coefficient(rng, args.grid, args.kind)
        A = darcy.petsc_matrix(darcy.assemble(a), comm)
        b, x = A.createVecLeft(), A.createVecRight()
        b.set(1.0)
        row = []
        for warm in (False, True):
            ksp = PETSc.KSP().create(comm)
            ksp.setOperators(A)
            ksp.setType("cg")
            ksp.getPC().setType(args.pc)
            ksp.setNormType(PETSc.KSP.NormType.UNPRECONDITIONED)
            ksp.setTolerances(rtol=1e-8, atol=0.0, max_it=5000)
            x.zeroEntries()
            t0 = time.perf_counter()
            report = None
            if warm:
                report = (guess_from_options(ksp, a, b, x) if args.options
                          else attach_guess(ksp, surrogate, a, b, x))
            ksp.solve(b, x)
            row.append((ksp.getIterationNumber(), time.perf_counter() - t0, report))
            ksp.destroy()
        if rank == 0:
            (ic, tc, _), (iw, tw, rep) = row
            print(f"sample {s}: cold {ic} its {tc * 1e3:.1f} ms | guess {iw} its {tw * 1e3:.1f} ms "
                  f"(guess residual {rep.residual:.3e}, used {rep.used})", flush=True)
        A.destroy()
        b.destroy()
        x.destroy()
    return 0


if __name__ == "__main__":
    sys.exit(main())
