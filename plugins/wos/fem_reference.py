"""Finite-element reference solutions (DOLFINx 0.5+) of ``-Laplace(u) = f``, ``u = g`` on disks and star shapes.

The mesh is built without gmsh: rings of nodes at ``(i / n_r) R(t_j)``, a centre node and triangles between
rings, so its boundary nodes lie on the exact curve ``r = R(t)``. Used by the verification tests, the WoS-NO
held-out references and the error-versus-time benchmark.
"""
from __future__ import annotations

import numpy as np


def polar_mesh_arrays(R, n_r: int, n_t: int):
    """Nodes (n, 2) and triangles (m, 3) of the polar mesh of ``r < R(t)`` (R vectorised in t)."""
    t = np.linspace(0, 2 * np.pi, n_t, endpoint=False)
    Rt = R(t)
    rings = [np.zeros((1, 2))]
    for i in range(1, n_r + 1):
        s = i / n_r
        rings.append(np.stack([s * Rt * np.cos(t), s * Rt * np.sin(t)], axis=1))
    x = np.concatenate(rings)
    j = np.arange(n_t)
    jn = (j + 1) % n_t
    cells = [np.stack([np.zeros(n_t, dtype=np.int64), 1 + j, 1 + jn], axis=1)]
    for i in range(1, n_r):
        a0, a1 = 1 + (i - 1) * n_t, 1 + i * n_t
        cells.append(np.stack([a0 + j, a1 + j, a1 + jn], axis=1))
        cells.append(np.stack([a0 + j, a1 + jn, a0 + jn], axis=1))
    return x, np.concatenate(cells)


def polar_mesh(R, n_r: int, n_t: int, comm=None):
    """A DOLFINx triangle mesh of ``r < R(t)`` (serial by default: references are solved per rank)."""
    import ufl
    from dolfinx import mesh as dmesh
    from mpi4py import MPI

    comm = comm or MPI.COMM_SELF
    x, cells = polar_mesh_arrays(R, n_r, n_t)
    if comm.rank != 0:
        x, cells = np.zeros((0, 2)), np.zeros((0, 3), dtype=np.int64)
    domain = ufl.Mesh(ufl.VectorElement("Lagrange", ufl.triangle, 1))
    return dmesh.create_mesh(comm, cells, x, domain)


class FEMSolution:
    """A solved P-k field with point evaluation."""

    def __init__(self, mesh, uh):
        self.mesh, self.uh = mesh, uh

    def __call__(self, points) -> np.ndarray:
        from dolfinx import geometry

        P = np.zeros((len(points), 3))
        P[:, :2] = np.asarray(points, dtype=np.float64)[:, :2]
        tree = geometry.BoundingBoxTree(self.mesh, self.mesh.topology.dim)
        cand = geometry.compute_collisions(tree, P)
        hits = geometry.compute_colliding_cells(self.mesh, cand, P)
        cells = []
        for i in range(len(P)):
            links = hits.links(i)
            if len(links) == 0:
                raise ValueError(f"point {P[i, :2].tolist()} is outside the finite-element mesh")
            cells.append(links[0])
        return self.uh.eval(P, np.asarray(cells, dtype=np.int32)).reshape(-1)


def solve_poisson(R, source, boundary, n_r: int = 48, n_t: int = 192, degree: int = 2) -> FEMSolution:
    """Solve ``-Laplace(u) = source`` in ``r < R(t)``, ``u = boundary`` on ``r = R(t)``.

    source, boundary: callables on points of shape (n, 2) (the boundary one is only read at boundary nodes).
    """
    import ufl
    from dolfinx import fem
    from dolfinx import mesh as dmesh
    from dolfinx.fem.petsc import LinearProblem

    msh = polar_mesh(R, n_r, n_t)
    V = fem.FunctionSpace(msh, ("Lagrange", degree))
    f = fem.Function(V)
    f.interpolate(lambda x: source(x[:2].T))
    g = fem.Function(V)
    g.interpolate(lambda x: boundary(x[:2].T))
    msh.topology.create_connectivity(1, 2)
    facets = dmesh.exterior_facet_indices(msh.topology)
    bc = fem.dirichletbc(g, fem.locate_dofs_topological(V, 1, facets))
    u, v = ufl.TrialFunction(V), ufl.TestFunction(V)
    a = ufl.inner(ufl.grad(u), ufl.grad(v)) * ufl.dx
    L = f * v * ufl.dx
    problem = LinearProblem(a, L, bcs=[bc], petsc_options={"ksp_type": "preonly", "pc_type": "lu"})
    uh = problem.solve()
    # free the PETSc objects now: a KSP that outlives the interpreter can crash petsc4py at exit (in PetscFinalize)
    problem.solver.destroy()
    return FEMSolution(msh, uh)
