"""Training and benchmark families: variable-coefficient diffusion, -div(k grad u) = f, assembled by DOLFINx.

Meshes: ``plate`` (2D rectangle [0,2]x[0,1] with three circular holes) and ``inclusion`` (3D unit box minus a
ball) from gmsh (built on rank 0, distributed by ``dolfinx.io.gmshio.model_to_mesh``), or DOLFINx's own box
meshes for ``square``/``cube`` with any cell type. Coefficient: k = contrast ** s(x) with s a random smooth field
in [0, 1] sharpened towards two phases (``contrast`` 10 or 1e4), piecewise constant per cell. Dirichlet data on the
outer faces x = 0 and x = x_max; the holes and the inclusion are Neumann boundaries.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

FAMILIES = ("plate", "inclusion", "square", "cube")
_gmsh_started = False


@dataclass
class Problem:
    A: object        # petsc4py Mat (distributed), Dirichlet rows and columns eliminated
    b: object        # petsc4py Vec
    V: object        # the DOLFINx function space
    name: str

    def destroy(self):
        self.A.destroy()
        self.b.destroy()


def gmsh_mesh(family: str, h: float, comm, seed: int = 0):
    """A DOLFINx mesh of ``plate`` or ``inclusion`` with characteristic length ``h``; the model is built on rank 0."""
    import gmsh
    from dolfinx.io import gmshio

    global _gmsh_started
    if not _gmsh_started:  # gmsh 4.8 has no isInitialized()
        gmsh.initialize()
        _gmsh_started = True
    gmsh.option.setNumber("General.Terminal", 0)
    gdim = 2 if family == "plate" else 3
    if comm.rank == 0:
        gmsh.model.add(f"{family}-{seed}")
        occ = gmsh.model.occ
        rng = np.random.default_rng(seed)
        if family == "plate":
            body = occ.addRectangle(0, 0, 0, 2, 1)
            holes = [(2, occ.addDisk(0.45 + 0.55 * k + 0.05 * rng.uniform(-1, 1), 0.5 + 0.15 * rng.uniform(-1, 1),
                                     0, r, r)) for k, r in enumerate(0.12 + 0.06 * rng.uniform(size=3))]
            occ.cut([(2, body)], holes)
        else:
            body = occ.addBox(0, 0, 0, 1, 1, 1)
            ball = occ.addSphere(*(0.5 + 0.1 * rng.uniform(-1, 1, 3)), 0.25 + 0.05 * rng.uniform())
            occ.cut([(3, body)], [(3, ball)])
        occ.synchronize()
        gmsh.model.addPhysicalGroup(gdim, [e[1] for e in gmsh.model.getEntities(gdim)], 1)
        gmsh.option.setNumber("Mesh.CharacteristicLengthMin", h)
        gmsh.option.setNumber("Mesh.CharacteristicLengthMax", h)
        gmsh.model.mesh.generate(gdim)
    mesh, _, _ = gmshio.model_to_mesh(gmsh.model, comm, 0, gdim=gdim)
    if comm.rank == 0:
        gmsh.model.remove()
    return mesh


def box_mesh(family: str, n: int, comm, cell: str):
    from dolfinx import mesh as dmesh

    kind = getattr(dmesh.CellType, cell)
    if family == "square":
        return dmesh.create_rectangle(comm, [np.zeros(2), np.ones(2)], [n, n], kind)
    return dmesh.create_box(comm, [np.zeros(3), np.ones(3)], [n, n, n], kind)


def smooth_field(points: np.ndarray, seed: int, modes: int = 6, sharpness: float = 4.0) -> np.ndarray:
    """A random smooth field in [0, 1] at ``points`` [m, 3]: a few random Fourier modes through a sharpened logistic."""
    rng = np.random.default_rng(seed)
    dim = points.shape[1]
    k = rng.normal(0.0, 4.0, (modes, dim))
    phase = rng.uniform(0, 2 * np.pi, modes)
    amp = rng.normal(0.0, 1.0, modes) / np.sqrt(modes)
    s = (amp * np.sin(points @ k.T + phase)).sum(axis=1)
    return 1.0 / (1.0 + np.exp(-sharpness * s / (s.std() + 1e-12)))


def diffusion(family: str, size, contrast: float = 10.0, degree: int = 1, seed: int = 0, comm=None,
              cell: str | None = None) -> Problem:
    """Assemble the problem. ``size``: mesh length h (gmsh families) or cells per side (box families);
    ``cell``: DOLFINx cell type name for box families (triangle, quadrilateral, tetrahedron, hexahedron)."""
    import ufl
    from dolfinx import fem, mesh as dmesh
    from dolfinx.fem.petsc import assemble_matrix, assemble_vector, apply_lifting, set_bc
    from mpi4py import MPI
    from petsc4py import PETSc

    comm = comm or MPI.COMM_WORLD
    if family in ("plate", "inclusion"):
        mesh = gmsh_mesh(family, float(size), comm, seed)
    elif family in ("square", "cube"):
        mesh = box_mesh(family, int(size), comm, cell or ("triangle" if family == "square" else "tetrahedron"))
    else:
        raise ValueError(f"unknown family {family!r}; valid: {', '.join(FAMILIES)}")
    tdim = mesh.topology.dim
    V = fem.FunctionSpace(mesh, ("Lagrange", degree))
    Q = fem.FunctionSpace(mesh, ("DG", 0))
    kappa = fem.Function(Q)
    cells = np.arange(mesh.topology.index_map(tdim).size_local + mesh.topology.index_map(tdim).num_ghosts,
                      dtype=np.int32)
    mid = dmesh.compute_midpoints(mesh, tdim, cells)
    kappa.x.array[:] = contrast ** smooth_field(mid, seed)
    xmax = float(comm.allreduce(mesh.geometry.x[:, 0].max(), op=MPI.MAX))
    facets = dmesh.locate_entities_boundary(mesh, tdim - 1, lambda x: np.isclose(x[0], 0.0) | np.isclose(x[0], xmax))
    dofs = fem.locate_dofs_topological(V, tdim - 1, facets)
    bc = fem.dirichletbc(PETSc.ScalarType(0), dofs, V)
    u, v = ufl.TrialFunction(V), ufl.TestFunction(V)
    x = ufl.SpatialCoordinate(mesh)
    a = fem.form(kappa * ufl.inner(ufl.grad(u), ufl.grad(v)) * ufl.dx)
    L = fem.form(ufl.exp(-10 * sum((x[i] - 0.5) ** 2 for i in range(tdim))) * v * ufl.dx)
    A = assemble_matrix(a, bcs=[bc])
    A.assemble()
    b = assemble_vector(L)
    apply_lifting(b, [a], bcs=[[bc]])
    b.ghostUpdate(addv=PETSc.InsertMode.ADD, mode=PETSc.ScatterMode.REVERSE)
    set_bc(b, [bc])
    return Problem(A, b, V, f"{family}-{size}-c{contrast:g}-p{degree}-s{seed}")


def to_scipy(A):
    """A serial PETSc AIJ matrix as scipy CSR (training reads whole matrices on one process)."""
    import scipy.sparse as sp

    indptr, indices, values = A.getValuesCSR()
    return sp.csr_matrix((values, indices, indptr), shape=A.getSize())
