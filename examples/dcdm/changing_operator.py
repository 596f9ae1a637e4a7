"""A pressure Poisson solve per frame while solid obstacles move: one KSP, the matrix's values updated in place,
the neural preconditioner refreshing itself at every step (no PETSc option changes between steps): its levels stay,
their transfers are masked again where the obstacles moved, and the coarse operators are recomputed in place.

The cycle is the K-cycle (``-accel_cycle_type k``: two flexible CG steps on every coarse level) with one SOR sweep
after each correction, the fastest per step on these problems (docs/benchmarks/dcdm.md).

    .venv/bin/python examples/dcdm/changing_operator.py --size 128 --steps 20

The model is the shipped one trained on a family of random obstacle fields (``-accel_problem random-obstacles2d``;
its recipe is in its metadata: ``accel plugins`` lists it); ``--model PATH`` takes your own.
(benchmarks/dcdm_changing_operator.py runs the same loop against ICC, GAMG, BoomerAMG and PCMG.)
"""
import argparse
import time

import petsc4py

petsc4py.init()
from petsc4py import PETSc  # noqa: E402

from accel.cliargs import positive_int  # noqa: E402
from accel.integrations.petsc.solvers import random_rhs  # noqa: E402
from accel.plugins.dcdm import problems  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("--size", type=positive_int, default=128)
ap.add_argument("--steps", type=positive_int, default=20)
ap.add_argument("--model", default=None)
args = ap.parse_args()
shape = (args.size, args.size)

opts = PETSc.Options()
for key, value in {"ksp_type": "fcg", "ksp_fcg_mmax": 2, "ksp_fcg_truncation_type": "standard",
                   "ksp_norm_type": "unpreconditioned", "ksp_rtol": 1e-8, "pc_type": "python",
                   "pc_python_type": "accel.NeuralPC", "accel_grid": f"{args.size},{args.size}",
                   "accel_smoother": "sor", "accel_cycle_pre": 0, "accel_cycle_post": 1, "accel_cycle_type": "k",
                   **({"accel_model": args.model} if args.model else {"accel_problem": "random-obstacles2d"})}.items():
    opts[key] = value

# one sparsity pattern for every frame (explicit zeros across walls): the matrix is updated in place
A = problems.to_petsc(problems.pressure_poisson(shape, problems.moving_obstacle_mask(shape, 1, 0), full_pattern=True))
ksp = PETSc.KSP().create()
ksp.setOperators(A)
ksp.setFromOptions()
x = A.createVecRight()
r0, r1 = A.getOwnershipRange()
for step in range(args.steps):
    solid = problems.moving_obstacle_mask(shape, 1, step)
    local = problems.pressure_poisson(shape, solid, full_pattern=True)[r0:r1]
    A.setValuesCSR(local.indptr.astype(PETSc.IntType), local.indices.astype(PETSc.IntType), local.data)
    A.assemble()
    b = random_rhs(A, seed=step, solid=solid)
    t = time.perf_counter()
    ksp.solve(b, x)  # the PC sees the new values and updates its levels before the first iteration
    setups = ksp.getPC().getPythonContext().setups  # {"initialize": 1, "update": step} after the first step
    PETSc.Sys.Print(f"step {step:>3}: {ksp.getIterationNumber()} iterations, {time.perf_counter() - t:.3f} s "
                    f"(set-up included), solid fraction {solid.mean():.3f}, PC set-ups {setups}")
    b.destroy()
ksp.destroy()
x.destroy()
A.destroy()
