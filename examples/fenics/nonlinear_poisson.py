"""Nonlinear Poisson -div((1 + u^2) grad u) = f on the unit square (or cube), u = 0 on the boundary, by Newton.

Every Newton step's linear solve uses the neural preconditioner: ``accel.accelerate(solver, space=V)`` is the one
added line (the grid map is built once; the PC re-runs its set-up for each new Jacobian).

    python examples/fenics/nonlinear_poisson.py
    python examples/fenics/nonlinear_poisson.py --solver icc
    mpirun -n 2 python examples/fenics/nonlinear_poisson.py --n 32
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import ufl
from dolfinx import fem, mesh
from dolfinx.fem.petsc import NonlinearProblem
from dolfinx.nls.petsc import NewtonSolver
from mpi4py import MPI
from petsc4py import PETSc

import accel

CLASSICAL = {
    "icc": {"ksp_type": "cg", "pc_type": "bjacobi", "sub_pc_type": "icc"},
    "gamg": {"ksp_type": "cg", "pc_type": "gamg"},
    "hypre": {"ksp_type": "cg", "pc_type": "hypre", "pc_hypre_type": "boomeramg"},
}


def run(n=64, dim=2, solver="accel", rtol=1e-8, model=None, comm=MPI.COMM_WORLD):
    """Solve; returns Newton steps, the linear iterations of each step, times and the solution's L2 norm."""
    if dim == 2:
        msh = mesh.create_unit_square(comm, n, n)
    else:
        msh = mesh.create_unit_cube(comm, n, n, n)
    V = fem.FunctionSpace(msh, ("Lagrange", 1))
    uh, v = fem.Function(V), ufl.TestFunction(V)
    x = ufl.SpatialCoordinate(msh)
    f = 50.0 * ufl.exp(-sum((x[i] - 0.5) ** 2 for i in range(dim)) / 0.05)
    F = (1 + uh**2) * ufl.inner(ufl.grad(uh), ufl.grad(v)) * ufl.dx - f * v * ufl.dx
    facets = mesh.locate_entities_boundary(msh, dim - 1, lambda p: np.full(p.shape[1], True))
    bc = fem.dirichletbc(PETSc.ScalarType(0), fem.locate_dofs_topological(V, dim - 1, facets), V)

    problem = NonlinearProblem(F, uh, bcs=[bc])
    newton = NewtonSolver(comm, problem)
    newton.rtol = 1e-10
    newton.atol = 1e-12
    ksp = newton.krylov_solver
    opts = PETSc.Options(ksp.getOptionsPrefix())
    settings = dict(CLASSICAL.get(solver, {}), ksp_rtol=rtol, ksp_norm_type="unpreconditioned")
    for k, val in settings.items():
        opts[k] = val
    ksp.setFromOptions()
    for k in settings:
        opts.delValue(k)
    if solver == "accel":
        accel.accelerate(newton, space=V, model=model)  # <- the one accel line

    iterations = []  # linear iterations of each Newton step

    def record(k, i, r):
        if i == 0:  # a new linear solve starts
            iterations.append(0)
        else:
            iterations[-1] = i

    ksp.setMonitor(record)
    t0 = time.perf_counter()
    try:
        steps, converged = newton.solve(uh)
    except BaseException:
        ksp.destroy()  # a KSP with a Python PC must be destroyed before the interpreter exits
        raise
    elapsed = time.perf_counter() - t0
    if not converged:
        ksp.destroy()
        raise RuntimeError(f"Newton did not converge with the {solver} linear solver")
    norm = np.sqrt(comm.allreduce(fem.assemble_scalar(fem.form(uh * uh * ufl.dx)), op=MPI.SUM))
    dofs = V.dofmap.index_map.size_global
    ksp.destroy()  # a KSP with a Python PC must go before the interpreter does
    return {"solver": solver, "n": n, "dim": dim, "dofs": dofs, "newton_steps": steps, "iterations": iterations,
            "time": elapsed, "norm": norm}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=64, help="cells per side")
    parser.add_argument("--dim", type=int, default=2, choices=[2, 3])
    parser.add_argument("--rtol", type=float, default=1e-8)
    parser.add_argument("--solver", default="accel", choices=["accel", *CLASSICAL])
    parser.add_argument("--model", default=None, help="ONNX model (default: the shipped Poisson model)")
    args = parser.parse_args()
    r = run(args.n, args.dim, args.solver, args.rtol, args.model)
    if MPI.COMM_WORLD.rank == 0:
        print(f"{r['solver']}: {r['dofs']} dofs, {r['newton_steps']} Newton steps, linear iterations {r['iterations']}")
        print(f"time {r['time']:.3f} s, |u|_L2 {r['norm']:.10f}")


if __name__ == "__main__":
    main()
