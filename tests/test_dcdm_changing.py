"""The changing-operator use case: obstacles that move every step, one KSP kept, the PC following the operator."""
from __future__ import annotations

import numpy as np
from petsc4py import PETSc

from accel.integrations.petsc.solvers import Solver, random_rhs, solve
from accel.plugins.dcdm import problems

FAMILY = {"accel_problem": "random-obstacles2d", "accel_grid": "64,64", "accel_threads": 1}


def test_family_model_generalises_to_unseen_obstacle_fields():
    its = {}
    for label, seed in (("training", 0), ("unseen", 1000)):
        counts = []
        for prob in problems.family("random-obstacles2d", (64, 64), 3, seed):
            A = problems.to_petsc(prob.matrix)
            b = random_rhs(A, solid=prob.solid)
            counts.append(solve(A, b, "fcg2+neural", extra=FAMILY).iterations)
            A.destroy()
            b.destroy()
        its[label] = np.mean(counts)
    assert its["unseen"] <= 1.5 * its["training"] and its["unseen"] <= 40, its


def test_moving_obstacles_one_ksp_every_step_converged_with_a_third_of_icc():
    shape = (64, 64)
    mask = problems.moving_obstacle_mask(shape, 2024, 0)
    A = problems.to_petsc(problems.pressure_poisson(shape, mask, full_pattern=True))
    neural = Solver(A, "fcg2+neural", extra=FAMILY)
    try:
        for step in range(4):
            mask = problems.moving_obstacle_mask(shape, 2024, step)
            csr = problems.pressure_poisson(shape, mask, full_pattern=True)
            assert csr.nnz == A.getInfo()["nz_used"]  # one sparsity pattern for every step
            A.setValuesCSR(csr.indptr.astype(PETSc.IntType), csr.indices.astype(PETSc.IntType), csr.data)
            A.assemble()
            b = random_rhs(A, seed=step, solid=mask)
            r = neural.run(b)
            icc = solve(A, b, "cg+icc")
            assert r.converged and r.residual < 1e-8
            assert 3 * r.iterations <= icc.iterations, (step, r.iterations, icc.iterations)
            b.destroy()
    finally:
        neural.destroy()
        A.destroy()


def test_sealed_pockets_keep_every_frame_solvable():
    for step in range(0, 50, 7):
        solid = problems.moving_obstacle_mask((48, 40), 11, step)
        problems.pressure_poisson((48, 40), solid)  # raises on a fluid region without an outlet
