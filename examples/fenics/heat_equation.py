"""Heat equation du/dt - div(kappa grad u) = f on the unit cube, u = 0 on the boundary, backward Euler.

The operator M + dt K is assembled once and the same KSP solves every step, so the neural preconditioner's ONNX
Runtime session and the DOF-to-grid map are built once (at the first step) and reused. The accel line is
``accel.accelerate(ksp, space=V)``; without it (``--solver icc|gamg|hypre``) this is an ordinary DOLFINx script.

    python examples/fenics/heat_equation.py --n 32 --steps 20
    python examples/fenics/heat_equation.py --n 32 --steps 20 --solver icc
    mpirun -n 2 python examples/fenics/heat_equation.py --n 16 --steps 5
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import ufl
from dolfinx import fem, mesh
from dolfinx.fem.petsc import apply_lifting, assemble_matrix, assemble_vector, set_bc
from mpi4py import MPI
from petsc4py import PETSc

import accel

CLASSICAL = {
    "icc": {"ksp_type": "cg", "pc_type": "bjacobi", "sub_pc_type": "icc"},
    "gamg": {"ksp_type": "cg", "pc_type": "gamg"},
    "hypre": {"ksp_type": "cg", "pc_type": "hypre", "pc_hypre_type": "boomeramg"},
}


def run(n=32, steps=20, dt=0.02, solver="accel", rtol=1e-8, cell="tetrahedron", model=None, comm=MPI.COMM_WORLD,
        **accel_options):
    """Run the time loop; returns per-step iterations and times (seconds) and the final solution's L2 norm."""
    msh = mesh.create_unit_cube(comm, n, n, n, getattr(mesh.CellType, cell))
    V = fem.FunctionSpace(msh, ("Lagrange", 1))
    u, v = ufl.TrialFunction(V), ufl.TestFunction(V)
    x = ufl.SpatialCoordinate(msh)
    kappa = 1.0 + 0.5 * x[0]
    f = fem.Function(V)  # a heat source, interpolated (cheap to assemble every step)
    f.interpolate(lambda p: 20.0 * np.exp(-((p[0] - 0.5) ** 2 + (p[1] - 0.5) ** 2 + (p[2] - 0.5) ** 2) / 0.02))
    u_n = fem.Function(V)
    u_n.interpolate(lambda p: np.sin(np.pi * p[0]) * np.sin(np.pi * p[1]) * np.sin(np.pi * p[2]))
    a = fem.form(u * v * ufl.dx + dt * kappa * ufl.inner(ufl.grad(u), ufl.grad(v)) * ufl.dx)
    L = fem.form((u_n + dt * f) * v * ufl.dx)
    facets = mesh.locate_entities_boundary(msh, 2, lambda p: np.full(p.shape[1], True))
    bc = fem.dirichletbc(PETSc.ScalarType(0), fem.locate_dofs_topological(V, 2, facets), V)

    A = assemble_matrix(a, bcs=[bc])
    A.assemble()
    b = fem.petsc.create_vector(L)
    uh = fem.Function(V)

    ksp = PETSc.KSP().create(comm)
    ksp.setOperators(A)
    ksp.setOptionsPrefix("heat_")
    opts = PETSc.Options("heat_")
    settings = dict(CLASSICAL.get(solver, {}), ksp_rtol=rtol,
                    ksp_norm_type="unpreconditioned")  # the same stopping test for every solver
    for k, val in settings.items():
        opts[k] = val
    ksp.setFromOptions()
    for k in settings:  # leave the options database as we found it (the next run may pick another solver)
        opts.delValue(k)
    if solver == "accel":
        accel.accelerate(ksp, space=V, model=model, **accel_options)  # <- the one accel line

    try:  # a KSP with a Python PC must be destroyed before the interpreter exits, also after an error
        its, times, solve_times = [], [], []
        for _ in range(steps):
            t0 = time.perf_counter()
            with b.localForm() as loc:
                loc.set(0.0)
            assemble_vector(b, L)
            apply_lifting(b, [a], [[bc]])
            b.ghostUpdate(addv=PETSc.InsertMode.ADD, mode=PETSc.ScatterMode.REVERSE)
            set_bc(b, [bc])
            t1 = time.perf_counter()
            ksp.solve(b, uh.vector)
            solve_times.append(time.perf_counter() - t1)
            uh.x.scatter_forward()
            if ksp.getConvergedReason() <= 0:
                raise RuntimeError(f"step {len(its)}: the {solver} solve did not converge "
                                   f"(reason {ksp.getConvergedReason()})")
            u_n.x.array[:] = uh.x.array
            times.append(time.perf_counter() - t0)
            its.append(ksp.getIterationNumber())
        pc_stats = ksp.getPC().getPythonContext().stats() if solver == "accel" else {}  # where the time went
    finally:
        ksp.destroy()
        A.destroy()
        b.destroy()
    norm = np.sqrt(comm.allreduce(fem.assemble_scalar(fem.form(uh * uh * ufl.dx)), op=MPI.SUM))
    dofs = V.dofmap.index_map.size_global
    return {"solver": solver, "n": n, "dofs": dofs, "steps": steps, "iterations": its, "times": times,
            "solve_times": solve_times, "norm": norm, "pc_stats": pc_stats}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=32, help="cells per side")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--dt", type=float, default=0.02)
    parser.add_argument("--rtol", type=float, default=1e-8)
    parser.add_argument("--cell", default="tetrahedron", choices=["tetrahedron", "hexahedron"])
    parser.add_argument("--solver", default="accel", choices=["accel", *CLASSICAL])
    parser.add_argument("--model", default=None, help="ONNX model (default: the shipped 3D Poisson model)")
    args = parser.parse_args()
    r = run(args.n, args.steps, args.dt, args.solver, args.rtol, args.cell, args.model)
    if MPI.COMM_WORLD.rank == 0:
        t, s = r["times"], r["solve_times"]
        later = sum(t[1:]) / max(1, len(t) - 1)
        print(f"{r['solver']}: {r['dofs']} dofs, {r['steps']} steps, iterations per step {r['iterations']}")
        print(f"total {sum(t):.3f} s (solves {sum(s):.3f} s), first step {t[0]:.3f} s, later steps {later:.4f} s each, "
              f"|u|_L2 {r['norm']:.10f}")


if __name__ == "__main__":
    main()
