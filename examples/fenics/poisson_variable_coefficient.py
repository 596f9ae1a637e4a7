"""Poisson with a variable coefficient, -div(kappa grad u) = f on the unit square, u = g on the boundary.

A plain DOLFINx script; the neural preconditioner is the one ``accel.accelerate(problem)`` line.

    python examples/fenics/poisson_variable_coefficient.py            # accelerated
    python examples/fenics/poisson_variable_coefficient.py --classical # the same script with CG + ICC
    python examples/fenics/poisson_variable_coefficient.py --options-only # no accel line: petsc_options alone
    mpirun -n 2 python examples/fenics/poisson_variable_coefficient.py
"""
import argparse
import time

import numpy as np
import ufl
from dolfinx import fem, mesh
from dolfinx.fem.petsc import LinearProblem
from mpi4py import MPI

import accel

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--n", type=int, default=128, help="cells per side")
parser.add_argument("--cell", default="triangle", choices=["triangle", "quadrilateral"])
parser.add_argument("--rtol", type=float, default=1e-8)
parser.add_argument("--model", default=None, help="ONNX model (default: the shipped 2D Poisson model)")
parser.add_argument("--classical", action="store_true", help="solve with CG + ICC instead (no accel line)")
parser.add_argument("--options-only", action="store_true", help="the neural PC from petsc_options alone")
args = parser.parse_args()

comm = MPI.COMM_WORLD
msh = mesh.create_unit_square(comm, args.n, args.n, getattr(mesh.CellType, args.cell))
V = fem.FunctionSpace(msh, ("Lagrange", 1))
u, v = ufl.TrialFunction(V), ufl.TestFunction(V)
x = ufl.SpatialCoordinate(msh)
kappa = 1.0 + 0.5 * ufl.sin(2 * ufl.pi * x[0]) * ufl.cos(2 * ufl.pi * x[1])
f = 10.0 * ufl.exp(-((x[0] - 0.3) ** 2 + (x[1] - 0.6) ** 2) / 0.02)
a = kappa * ufl.inner(ufl.grad(u), ufl.grad(v)) * ufl.dx
L = f * v * ufl.dx
facets = mesh.locate_entities_boundary(msh, 1, lambda p: np.full(p.shape[1], True))
g = fem.Function(V)
g.interpolate(lambda p: 0.1 * p[0] * (1 - p[1]))
bc = fem.dirichletbc(g, fem.locate_dofs_topological(V, 1, facets))

if args.classical:
    options = {"ksp_type": "cg", "pc_type": "bjacobi", "sub_pc_type": "icc", "ksp_rtol": args.rtol,
               "ksp_norm_type": "unpreconditioned"}
elif args.options_only:
    options = {"ksp_type": "fcg", "ksp_fcg_mmax": 2, "ksp_fcg_truncation_type": "standard",
               "ksp_norm_type": "unpreconditioned", "ksp_rtol": args.rtol, "pc_type": "python",
               "pc_python_type": "accel.integrations.fenics.pc.FenicsNeuralPC"}
    if args.model:
        options["accel_model"] = args.model
else:
    options = {"ksp_rtol": args.rtol}
problem = LinearProblem(a, L, bcs=[bc], petsc_options=options)
if not (args.classical or args.options_only):
    accel.accelerate(problem, model=args.model)  # <- the one accel line

t0 = time.perf_counter()
uh = problem.solve()
elapsed = time.perf_counter() - t0
ksp = problem.solver
assert ksp.getConvergedReason() > 0, f"solve did not converge (reason {ksp.getConvergedReason()})"
norm = np.sqrt(comm.allreduce(fem.assemble_scalar(fem.form(uh * uh * ufl.dx)), op=MPI.SUM))
if comm.rank == 0:
    print(f"solver {ksp.getType()}+{ksp.getPC().getType()} iterations {ksp.getIterationNumber()} "
          f"time {elapsed:.3f} s  |u|_L2 {norm:.10f}")
