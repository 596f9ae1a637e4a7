"""Hand the trained PINN back to the classical solver: its ONNX prediction at the DOFs of a DOLFINx P1 mesh is the
initial guess of a PETSc CG solve of the same problem; the iterations saved against a zero guess are reported.

The source term is the exact Laplacian written in UFL (high quadrature degree: the peak is narrow). Works under MPI:
every rank evaluates the network at the coordinates of its own DOFs (ghosts included), no gather needed.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np

from accel.errors import ConvergenceError, ModelError

log = logging.getLogger(__name__)


@dataclass
class HandbackResult:
    n: int
    dofs: int
    pc: str
    rtol: float
    its_zero: int
    its_guess: int
    guess_rel_err: float  # |guess - u_h| / |u_h| (l2 over DOFs)
    solve_s_zero: float
    solve_s_guess: float
    eval_s: float

    @property
    def saved(self) -> int:
        return self.its_zero - self.its_guess


def _ufl_exact(name: str, x, ufl):
    if name == "peak2d":
        return ufl.exp(-1000 * ((x[0] - 0.5) ** 2 + (x[1] - 0.5) ** 2))
    if name == "layer2d":
        import math

        eps = 0.02
        e1 = math.exp(-1 / eps)
        s = 0.5 * (x[0] + 1)
        return (s - (ufl.exp((s - 1) / eps) - e1) / (1 - e1)) * (1 - x[1] ** 2)
    raise ModelError(f"the PETSc hand-back covers the 2D problems peak2d and layer2d, not {name!r}")


def handback(onnx_path, n: int = 128, rtol: float = 1e-8, pc: str = "none", threads: int = 1,
             comm=None) -> HandbackResult:
    import ufl
    from dolfinx import fem, mesh
    from dolfinx.fem.petsc import apply_lifting, assemble_matrix, assemble_vector, set_bc
    from mpi4py import MPI
    from petsc4py import PETSc

    from accel.runtime import ModelSession, RuntimeSettings

    comm = comm or MPI.COMM_WORLD
    sess = ModelSession(onnx_path, RuntimeSettings.parse("CPU", threads))
    sess.meta.check_plugin("aas", str(onnx_path))
    if sess.meta.dim != 2:
        raise ModelError(f"{onnx_path} is a {sess.meta.dim}D PINN; the DOLFINx hand-back builds a 2D mesh")
    low, high = sess.meta.settings.get("domain_low", [-1, -1]), sess.meta.settings.get("domain_high", [1, 1])
    msh = mesh.create_rectangle(comm, [np.array(low, float), np.array(high, float)], [n, n], mesh.CellType.triangle)
    V = fem.FunctionSpace(msh, ("Lagrange", 1))
    u, v = ufl.TrialFunction(V), ufl.TestFunction(V)
    x = ufl.SpatialCoordinate(msh)
    f = -ufl.div(ufl.grad(_ufl_exact(sess.meta.problem, x, ufl)))
    dx = ufl.dx(metadata={"quadrature_degree": 8})
    a = fem.form(ufl.inner(ufl.grad(u), ufl.grad(v)) * ufl.dx)
    L = fem.form(f * v * dx)
    facets = mesh.locate_entities_boundary(msh, 1, lambda p: np.full(p.shape[1], True))
    bc = fem.dirichletbc(PETSc.ScalarType(0), fem.locate_dofs_topological(V, 1, facets), V)
    A = assemble_matrix(a, bcs=[bc])
    A.assemble()
    b = assemble_vector(L)
    apply_lifting(b, [a], [[bc]])
    b.ghostUpdate(addv=PETSc.InsertMode.ADD, mode=PETSc.ScatterMode.REVERSE)
    set_bc(b, [bc])

    ksp = PETSc.KSP().create(comm)
    ksp.setOperators(A)
    ksp.setType("cg")
    ksp.getPC().setType(pc)
    ksp.setTolerances(rtol=rtol, atol=0.0, max_it=20000)

    def solve(x0):  # x0 holds the initial guess (zero or the PINN's) and receives the solution
        ksp.setInitialGuessNonzero(True)
        t = time.perf_counter()
        ksp.solve(b, x0)
        dt = time.perf_counter() - t
        if ksp.getConvergedReason() <= 0:
            raise ConvergenceError(f"CG did not converge (reason {ksp.getConvergedReason()}) in {ksp.getIterationNumber()} "
                                   "iterations; raise max_it or use a preconditioner")
        return ksp.getIterationNumber(), dt

    uh0 = fem.Function(V)
    its0, t0 = solve(uh0.vector)

    t = time.perf_counter()
    pts = V.tabulate_dof_coordinates()[:, :2].astype(np.float32)
    pred = sess.run(pts).reshape(-1)
    eval_s = time.perf_counter() - t
    if not np.all(np.isfinite(pred)):
        raise ModelError(f"{onnx_path} predicts NaN/inf at some DOFs; retrain the PINN")
    ug = fem.Function(V)
    ug.x.array[:] = pred
    set_bc(ug.vector, [bc])  # the boundary rows of A are identity rows: give them their exact value
    guess = ug.vector.copy()
    itsg, tg = solve(ug.vector)
    diff = guess.copy()
    diff.axpy(-1.0, ug.vector)
    rel = diff.norm() / ug.vector.norm()
    res = HandbackResult(n, V.dofmap.index_map.size_global, pc, rtol, its0, itsg, float(rel), t0, tg, eval_s)
    for obj in (ksp, A, b, guess, diff):
        obj.destroy()
    return res
