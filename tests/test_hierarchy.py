"""The grid hierarchy coarsens any extent and always reaches the network's training grid; bad grids are clear
errors."""
from __future__ import annotations

import numpy as np
import pytest

from accel.errors import GridError
from accel.integrations.petsc import hierarchy
from accel.integrations.petsc.solvers import random_rhs, solve
from accel.plugins.dcdm import problems


@pytest.mark.parametrize("n", [3, 4, 7, 10, 17, 64, 65, 97, 100, 127, 129])
def test_one_dimensional_interpolation_is_exact_for_linear_functions_inside(n):
    P = hierarchy.interpolation((n,))
    m = hierarchy.coarse_extent(n)
    assert P.shape == (n, m) and m == ((n - 1) // 2 if n % 2 else n // 2)
    if n % 2:  # vertex-centred: points at (i+1)/(n+1), coarse point j at fine 2j+1; exact for x up to the last
        x_f, x_c = (np.arange(n) + 1) / (n + 1), (np.arange(m) + 1) / (m + 1)  # point (whose right wall holds 0)
        assert np.allclose((P @ x_c)[:-1], x_f[:-1])
    else:  # cell-centred pairs: exact away from the walls
        x_f, x_c = (np.arange(n) + 0.5) / n, (np.arange(m) + 0.5) / m
        assert np.allclose((P @ x_c)[1:-1], x_f[1:-1])
    Q = hierarchy.interpolation((n,), "constant")
    assert np.allclose(Q.sum(axis=1), 1) and Q.shape == (n, m)


def test_an_axis_of_two_points_is_not_halved():
    assert hierarchy.coarse_extent(2) == 2 and hierarchy.coarse((2, 9)) == (2, 4)


def test_vertex_centred_galerkin_operator_is_the_coarse_laplacian():
    A = problems.poisson((9,))
    P = hierarchy.interpolation((9,))
    assert np.allclose((P.T @ A @ P).toarray(), 0.5 * problems.poisson((4,)).toarray())


@pytest.mark.parametrize("extent", [64, 65, 97, 100, 127, 128, 129, 131, 256, 257])
def test_levels_reach_the_training_grid_from_any_extent(extent):
    for shape in [(extent, extent), (extent, 67, 45)]:
        target = (32,) * len(shape)
        shapes = hierarchy.plan_levels(shape, target, multiple=4)
        assert all(n <= t for n, t in zip(shapes[-1], target)), shapes
        assert min(shapes[-1]) >= 4
        for fine, coarse in zip(shapes, shapes[1:]):
            assert hierarchy.interpolation(fine, "linear", coarse).shape == (np.prod(fine), np.prod(coarse))


def test_the_network_level_is_resampled_onto_extents_the_network_takes():
    """No zero padding at the network's level (it would move the walls the network sees): 100 -> 50 -> 48."""
    assert hierarchy.plan_levels((100, 100), (64, 64), multiple=8) == [(100, 100), (48, 48)]
    assert hierarchy.plan_levels((127, 97), (64, 64), multiple=8) == [(127, 97), (64, 48)]
    P = hierarchy.interpolation((100,), "linear", (48,))
    x = (np.arange(100) + 0.5) / 100
    assert np.allclose((P @ ((np.arange(48) + 0.5) / 48))[2:-2], x[2:-2])  # a resampling exact for linears inside
    Q = hierarchy.interpolation((100,), "constant", (48,))
    assert set(np.asarray(Q.sum(axis=0)).ravel()) <= {2.0, 3.0}


def test_short_axis_stays_while_the_others_halve():
    assert hierarchy.plan_levels((256, 8), (64, 64), multiple=8) == [(256, 8), (128, 8), (64, 8)]


def test_grid_below_the_network_multiple_is_a_clear_error():
    with pytest.raises(GridError, match=r"extent below 8, the smallest grid extent the model takes"):
        hierarchy.plan_levels((64, 5), (64, 64), multiple=8)


def test_interpolation_between_shapes_that_are_not_one_halving_apart_is_refused():
    with pytest.raises(GridError, match=r"no interpolation from 30 to 100 points"):
        hierarchy.interpolation((100,), "linear", (30,))


def test_pcmg_levels_from_the_grid():
    assert len(hierarchy.mg_shapes((128, 128, 128))) == 6 and len(hierarchy.mg_shapes((129,) * 3)) == 6
    assert hierarchy.dmda_mg_levels((129, 129, 129)) == 6 and hierarchy.dmda_mg_levels((65,) * 3) == 5
    assert hierarchy.dmda_mg_levels((128, 128, 128)) == 1  # PETSc's DMDA cannot coarsen 128 points


def test_neural_pc_iterations_at_any_size_stay_within_a_third_of_the_power_of_two_ones():
    """Shipped 2D model (trained at 64^2): odd, prime, 2^k+1 and other extents, mixed per axis."""
    its = {}
    for shape in [(64, 64), (128, 128), (65, 65), (97, 97), (100, 100), (127, 127), (129, 129), (97, 128),
                  (131, 100)]:
        p = problems.build("poisson2d", shape)
        A = problems.to_petsc(p.matrix)
        b = random_rhs(A)
        its[shape] = solve(A, b, "fcg2+neural", extra={"accel_grid": f"{shape[1]},{shape[0]}",
                                                        "accel_threads": 1}).iterations
        A.destroy()
        b.destroy()
    best = min(its[(64, 64)], its[(128, 128)])
    assert max(its.values()) <= 1.3 * best, its


def test_pcmg_baseline_runs_on_any_extent_and_on_two_ranks(run_mpi, tmp_path):
    script = tmp_path / "mg.py"
    script.write_text(
        "import petsc4py; petsc4py.init()\n"
        "from accel.integrations.petsc.solvers import random_rhs, solve\n"
        "from accel.plugins.dcdm import problems\n"
        "for shape in [(65, 65, 65), (50, 37, 41)]:\n"
        "    A = problems.to_petsc(problems.build('poisson3d', shape).matrix); b = random_rhs(A)\n"
        "    r = solve(A, b, 'cg+mg-sor', grid=shape)\n"
        "    if A.getComm().getRank() == 0:\n"
        "        print('its', r.iterations, r.residual, flush=True)\n")
    out = run_mpi(2, [str(script)], timeout=240)
    assert out.returncode == 0, out.stderr
    its = [int(line.split()[1]) for line in out.stdout.splitlines() if line.startswith("its")]
    assert len(its) == 2 and max(its) <= 8, its


def test_dolfinx_box_mesh_runs_through_the_same_hierarchy():
    """A 128x128-cell Q1 mesh (127^2 interior) with the shipped 2D model (trained at 64^2): one level from the
    mesh's grid, iterations as on the 64-cell mesh where the network runs at the mesh's resolution."""
    pytest.importorskip("dolfinx")
    import ufl
    from dolfinx import fem, mesh
    from mpi4py import MPI

    import accel
    from accel.integrations.fenics import compat

    its = {}
    for cells in (64, 128):
        msh = mesh.create_unit_square(MPI.COMM_WORLD, cells, cells, mesh.CellType.quadrilateral)
        V = compat.function_space(msh, ("Lagrange", 1))
        u, v = ufl.TrialFunction(V), ufl.TestFunction(V)
        x = ufl.SpatialCoordinate(msh)
        facets = mesh.locate_entities_boundary(msh, 1, lambda p: np.full(p.shape[1], True))
        bc = fem.dirichletbc(0.0, fem.locate_dofs_topological(V, 1, facets), V)
        problem = compat.linear_problem(ufl.inner(ufl.grad(u), ufl.grad(v)) * ufl.dx,
                                        ufl.sin(7 * x[0]) * ufl.exp(x[1]) * v * ufl.dx, bcs=[bc],
                                        petsc_options={"ksp_rtol": 1e-8, "ksp_norm_type": "unpreconditioned"})
        accel.accelerate(problem, threads=1)
        problem.solve()
        ksp = problem.solver
        ctx = ksp.getPC().getPythonContext()
        assert ksp.getConvergedReason() > 0
        its[cells] = (ksp.getIterationNumber(), ctx.levels)
        ksp.destroy()
    assert its[64][1] == 0 and its[128][1] == 1, its
    assert its[128][0] <= 1.3 * its[64][0], its
