"""A DOLFINx Poisson-type problem on an unstructured gmsh mesh (a plate with three holes), solved with plain CG
and the gnn preconditioner: one added line, ``accel.accelerate(problem)`` (it picks gnn because the mesh is not a
box), or ``plugin="gnn"``: GAMG with the learned factor on its finest level (``--one-level``: CG with the factor
alone, ``multigrid=False``). Compares the iterations with CG + ICC on the same matrix.

    .venv/bin/python examples/gnn/plate_with_holes.py --h 0.01 --contrast 1e4
    mpirun -n 2 .venv/bin/python examples/gnn/plate_with_holes.py --h 0.01
"""
from __future__ import annotations

import argparse
import logging


def main(argv=None) -> int:
    from accel.cliargs import positive_float

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--h", type=positive_float, default=0.02, help="mesh size")
    p.add_argument("--contrast", type=positive_float, default=1e4, help="coefficient contrast")
    p.add_argument("--degree", type=int, choices=(1, 2), default=1, help="Lagrange degree")
    p.add_argument("--one-level", action="store_true", help="CG with the learned factor alone (no GAMG)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    import ufl
    from dolfinx import fem, mesh as dmesh
    from dolfinx.fem.petsc import LinearProblem
    from mpi4py import MPI
    from petsc4py import PETSc

    import accel
    from accel.plugins.gnn.problems import gmsh_mesh, smooth_field

    comm = MPI.COMM_WORLD
    mesh = gmsh_mesh("plate", args.h, comm, seed=7)
    V = fem.FunctionSpace(mesh, ("Lagrange", args.degree))
    kappa = fem.Function(fem.FunctionSpace(mesh, ("DG", 0)))
    kappa.interpolate(lambda x: args.contrast ** smooth_field(x.T, seed=7))
    facets = dmesh.locate_entities_boundary(mesh, 1, lambda x: (x[0] < 1e-8) | (x[0] > 2 - 1e-8))
    bc = fem.dirichletbc(PETSc.ScalarType(0), fem.locate_dofs_topological(V, 1, facets), V)
    u, v = ufl.TrialFunction(V), ufl.TestFunction(V)
    a = kappa * ufl.inner(ufl.grad(u), ufl.grad(v)) * ufl.dx
    L = fem.Constant(mesh, PETSc.ScalarType(1.0)) * v * ufl.dx
    # ICC is sequential in PETSc: on several ranks the classical row is block Jacobi with ICC(0) blocks
    icc = {"pc_type": "icc"} if comm.size == 1 else {"pc_type": "bjacobi", "sub_pc_type": "icc"}
    for name in ("gnn", "icc"):
        options = {"ksp_type": "cg", "ksp_rtol": 1e-8, "ksp_norm_type": "unpreconditioned"}
        problem = LinearProblem(a, L, bcs=[bc], petsc_options={**options, **(icc if name == "icc" else {})})
        if name == "gnn":
            # the one added line (plugin=None also picks gnn here)
            accel.accelerate(problem, plugin="gnn", multigrid=not args.one_level)
        problem.solve()
        ksp = problem.solver
        if comm.rank == 0:
            print(f"{name}: {ksp.getIterationNumber()} CG iterations ({V.dofmap.index_map.size_global} unknowns, "
                  f"{comm.size} rank(s))")
        ksp.destroy()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
