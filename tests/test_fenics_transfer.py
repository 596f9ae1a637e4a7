"""DOF-to-grid transfer on DOLFINx box meshes: orientation, round trips, consistency with the FD stencil, MPI.

Also runnable as a script under mpirun: ``python tests/test_fenics_transfer.py check`` prints grid checksums.
"""
from __future__ import annotations

import sys

import numpy as np
import pytest

dolfinx = pytest.importorskip("dolfinx") if __name__ != "__main__" else __import__("dolfinx")
import scipy.sparse as sp  # noqa: E402
import ufl  # noqa: E402
from dolfinx import fem, mesh  # noqa: E402
from mpi4py import MPI  # noqa: E402
from petsc4py import PETSc  # noqa: E402

from accel.errors import GridError  # noqa: E402
from accel.integrations.fenics import compat  # noqa: E402
from accel.integrations.fenics.transfer import BoxGridTransfer  # noqa: E402

CELLS = {
    "triangle": (2, mesh.CellType.triangle),
    "quadrilateral": (2, mesh.CellType.quadrilateral),
    "tetrahedron": (3, mesh.CellType.tetrahedron),
    "hexahedron": (3, mesh.CellType.hexahedron),
}
LO, HI = np.array([-1.0, 0.5, 0.0]), np.array([2.0, 1.5, 0.5])  # an anisotropic box
N = (6, 4, 3)  # cells per axis, x first


def make_space(cell, comm=MPI.COMM_WORLD, n=N, degree=1):
    dim, ctype = CELLS[cell]
    if dim == 2:
        msh = mesh.create_rectangle(comm, [LO[:2], HI[:2]], list(n[:2]), ctype)
    else:
        msh = mesh.create_box(comm, [LO, HI], list(n), ctype)
    return compat.function_space(msh, ("Lagrange", degree))


def field(x):
    """A smooth non-symmetric function: catches any transposed or flipped axis."""
    return 1.0 + x[0] + 2.0 * x[1] ** 2 + 3.0 * x[2] * x[0]


def grid_points(t: BoxGridTransfer):
    """Coordinates of the interior grid points, C order (x last), as arrays shaped like the grid."""
    axes = [np.linspace(t.lower[a], t.upper[a], t.points[a])[1:-1] for a in range(t.dim)]
    mesh_axes = np.meshgrid(*reversed(axes), indexing="ij")  # slowest axis first
    xs = list(reversed(mesh_axes)) + [np.zeros_like(mesh_axes[0])] * (3 - t.dim)
    return xs


@pytest.mark.parametrize("cell", list(CELLS))
def test_grid_holds_the_field_at_the_right_points(cell):
    V = make_space(cell)
    t = BoxGridTransfer(V)
    dim = CELLS[cell][0]
    assert t.points == tuple(n + 1 for n in N[:dim])
    assert t.shape == tuple(reversed([n - 1 for n in N[:dim]]))
    assert np.allclose(t.spacing, list(reversed([(HI[a] - LO[a]) / N[a] for a in range(dim)])))
    u = fem.Function(V)
    u.interpolate(field)
    out = np.zeros(t.shape, dtype=np.float32) if V.mesh.comm.rank == 0 else None
    t.to_grid(compat.petsc_vec(u), out)
    if V.mesh.comm.rank == 0:
        assert np.allclose(out, field(grid_points(t)), rtol=1e-6)
    t.destroy()


@pytest.mark.parametrize("cell", ["triangle", "hexahedron"])
def test_round_trip_with_padding_and_boundary_rows(cell):
    V = make_space(cell)
    t = BoxGridTransfer(V, multiple=4)
    dim = CELLS[cell][0]
    assert t.shape == tuple(reversed([4 * -(-(n - 1) // 4) for n in N[:dim]]))
    rng = np.random.default_rng(0)
    g = rng.standard_normal(t.shape)
    x = PETSc.Vec().createMPI((V.dofmap.index_map.size_local, V.dofmap.index_map.size_global))
    x.setRandom()
    y = x.duplicate()
    t.from_grid(g, y, x)
    back = np.zeros(t.shape)
    t.to_grid(y, back)
    inner = tuple(slice((p - n) // 2, (p - n) // 2 + n) for p, n in zip(t.shape, t.interior_shape))
    assert np.array_equal(back[inner], g[inner])
    mask = np.ones(t.shape, bool)
    mask[inner] = False
    assert mask.sum() > 0 and np.all(back[mask] == 0)  # the pad comes back as zeros
    xa, ya = x.array_r, y.array_r
    assert np.array_equal(ya[t._boundary], xa[t._boundary])  # identity (Dirichlet) rows: y_b = r_b
    # with an operator bound, boundary rows are divided by its diagonal
    A = PETSc.Mat().createAIJ(((len(xa), x.getSize()),) * 2, nnz=1)
    A.setDiagonal(x.copy() * 0 + 4.0)
    A.assemble()
    t.set_operator(A)
    t.from_grid(g, y, x)
    assert np.allclose(y.array_r[t._boundary], xa[t._boundary] / 4.0)
    t.destroy()


def test_grid_view_round_trip_without_copies():
    V = make_space("tetrahedron")
    t = BoxGridTransfer(V)
    view = t.grid_view()
    assert view is not None and view.shape == t.shape
    u = fem.Function(V)
    u.interpolate(field)
    vec = compat.petsc_vec(u)
    t.to_grid(vec, view)  # the PC passes the view as out ...
    assert np.allclose(view, field(grid_points(t)))
    view *= 3.0  # ... works in place ...
    y = vec.duplicate()
    t.from_grid(view, y, vec)  # ... and passes it back as g
    expect = 3.0 * vec.array_r
    expect[t._boundary] = vec.array_r[t._boundary]
    assert np.allclose(y.array_r, expect)
    assert BoxGridTransfer(V, multiple=8).grid_view() is None  # padded: the PC's own buffers
    t.destroy()


@pytest.mark.parametrize("n", [(8, 6, 4), (9, 7, 5)])
def test_natural_rows_map_the_dofs_onto_the_grid_the_hierarchy_coarsens(n):
    """The PC's grid hierarchy starts from the mesh's grid: natural_rows puts each DOF at its grid point."""
    V = make_space("hexahedron", n=n)
    t = BoxGridTransfer(V)
    u = fem.Function(V)
    u.interpolate(field)
    vec = compat.petsc_vec(u)
    grid = np.zeros(t.shape)
    t.to_grid(vec, grid)
    rows = t.natural_rows()
    inside = rows >= 0
    assert np.array_equal(np.flatnonzero(~inside), t._boundary)
    assert np.allclose(vec.array_r[inside], grid.reshape(-1)[rows[inside]])
    assert BoxGridTransfer(V, multiple=8).natural_rows() is None  # padded: one grid only
    t.destroy()


def _fd_operator(cell, t):
    """The interior block of the expected FE stiffness matrix on the lattice (x fastest), from 1D factors."""
    n = [p - 2 for p in t.points]
    h = [(t.upper[a] - t.lower[a]) / (t.points[a] - 1) for a in range(t.dim)]
    K = [sp.diags([-1, 2, -1], [-1, 0, 1], (m, m)) / hh for m, hh in zip(n, h)]
    if cell in ("quadrilateral", "hexahedron"):  # Q1: tensor products of 1D stiffness and mass
        M = [sp.diags([1, 4, 1], [-1, 0, 1], (m, m)) * hh / 6 for m, hh in zip(n, h)]
    else:  # P1 on the box's right-angled simplices: the 5/7-point stencil (lumped 1D "mass" = h)
        M = [sp.identity(m) * hh for m, hh in zip(n, h)]
    total = 0
    for a in range(t.dim):
        factors = [K[b] if b == a else M[b] for b in range(t.dim)]
        op = factors[0]
        for f in factors[1:]:
            op = sp.kron(f, op)  # later axes vary slowest
        total = total + op
    return total.tocsr()


@pytest.mark.parametrize("cell", list(CELLS))
def test_fe_operator_matches_fd_stencil_on_the_grid(cell):
    V = make_space(cell)
    t = BoxGridTransfer(V)
    u, v = ufl.TrialFunction(V), ufl.TestFunction(V)
    A = fem.petsc.assemble_matrix(fem.form(ufl.inner(ufl.grad(u), ufl.grad(v)) * ufl.dx))
    A.assemble()
    x, y = A.createVecs()
    x.set(0.0)
    g = np.random.default_rng(1).standard_normal(t.shape)
    t.from_grid(g, y, x)  # interior = g, boundary rows = 0
    z = y.duplicate()
    A.mult(y, z)
    out = np.zeros(t.shape)
    t.to_grid(z, out)
    expected = (_fd_operator(cell, t) @ g.reshape(-1)).reshape(t.shape)
    assert np.allclose(out, expected, rtol=1e-10, atol=1e-10)
    if cell in ("triangle", "tetrahedron"):  # exactly the (scaled) 5/7-point Laplacian the network was trained on
        diag = 2 * sum(np.prod(t.spacing) / s**2 for s in t.spacing)
        assert np.allclose(_fd_operator(cell, t).diagonal(), diag)
    for obj in (A, x, y, z):
        obj.destroy()
    t.destroy()


def test_vector_valued_space_is_refused():
    V = make_space("triangle")
    W = fem.VectorFunctionSpace(V.mesh, ("Lagrange", 1))
    with pytest.raises(GridError, match=r"vector-valued.*scalar P1/Q1|scalar P1/Q1.*vector-valued"):
        BoxGridTransfer(W)


def test_p2_space_is_refused():
    V = make_space("triangle", degree=2)
    with pytest.raises(GridError, match="degree 2"):
        BoxGridTransfer(V)


def test_non_box_mesh_is_refused():
    V = make_space("triangle")
    V.mesh.geometry.x[:, 1] += 0.05 * np.sin(3 * V.mesh.geometry.x[:, 0])  # a wavy channel, not a box
    V2 = compat.function_space(V.mesh, ("Lagrange", 1))
    with pytest.raises(GridError, match="not a structured box mesh"):
        BoxGridTransfer(V2)


def test_fine_lattice_coordinates_are_not_split_by_rounding():
    """1025 points per axis: coordinates i/1024 that straddle a rounding boundary are still one lattice line each
    (rounding to 9 decimals made 1280 of them and refused the 1024^2 unit square)."""
    msh = mesh.create_unit_square(MPI.COMM_WORLD, 1024, 2, mesh.CellType.triangle)
    t = BoxGridTransfer(compat.function_space(msh, ("Lagrange", 1)))
    assert t.points == (1025, 3)
    t.destroy()


def test_two_ranks_give_the_serial_grid(run_mpi):
    res = run_mpi(2, [__file__, "check"], timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr
    lines = [ln for ln in res.stdout.splitlines() if ln.startswith("grid ")]
    assert len(lines) == len(CELLS), res.stdout
    for ln in lines:
        assert ln.endswith("ok"), ln


def _mpi_check():
    comm = MPI.COMM_WORLD
    for cell in CELLS:
        V = make_space(cell, n=(8, 5, 4))
        t = BoxGridTransfer(V, multiple=4)
        assert comm.allreduce(V.dofmap.index_map.size_local > 0, op=MPI.LAND)  # really distributed
        u = fem.Function(V)
        u.interpolate(field)
        out = np.zeros(t.shape) if comm.rank == 0 else None
        vec = compat.petsc_vec(u)
        t.to_grid(vec, out)
        ok = True
        if comm.rank == 0:
            inner = tuple(slice((p - n) // 2, (p - n) // 2 + n) for p, n in zip(t.shape, t.interior_shape))
            ok = np.allclose(out[inner], field(grid_points(t)))
            out = out * 2.0
        y = vec.duplicate()
        t.from_grid(out, y, vec)
        # interior doubled, boundary rows copied: y = 2u inside, u on the boundary
        expect = vec.array_r * 2.0
        expect[t._boundary] = vec.array_r[t._boundary]
        ok = comm.allreduce(bool(ok and np.allclose(y.array_r, expect)), op=MPI.LAND)
        if comm.rank == 0:
            print(f"grid {cell} ranks={comm.size} {'ok' if ok else 'MISMATCH'}", flush=True)
        y.destroy()
        t.destroy()


if __name__ == "__main__" and sys.argv[1:] == ["check"]:
    try:
        _mpi_check()
    except BaseException:
        import traceback

        traceback.print_exc()
        MPI.COMM_WORLD.Abort(1)  # never leave the other rank waiting in a collective
