"""Walk-on-Spheres verification: N^-1/2 error decay, O(epsilon) bias, exact Poisson solutions, CSG and mesh domains."""
import numpy as np
import pytest

from accel.plugins.wos.domains import Ball, Box, StarShaped
from accel.plugins.wos.estimator import WalkOnSpheres, WoSSettings
from accel.plugins.wos.problems import get_problem


def _grid_points(n, radius=0.8, seed=0):
    rng = np.random.default_rng(seed)
    r, t = radius * np.sqrt(rng.uniform(size=n)), rng.uniform(0, 2 * np.pi, n)
    return np.stack([r * np.cos(t), r * np.sin(t)], axis=1)


def test_error_falls_as_inverse_sqrt_of_walks():
    p = get_problem("disk-harmonic")
    X = _grid_points(64)
    walks = [100, 400, 1600, 6400]
    rms, se = [], []
    for i, m in enumerate(walks):
        res = WalkOnSpheres(p.domain, p.boundary, settings=WoSSettings(epsilon=1e-4, walks=m, seed=10 + i)).solve(X)
        rms.append(np.sqrt(np.mean((res.value - p.exact(X)) ** 2)))
        se.append(np.sqrt(np.mean(res.stderr ** 2)))
    slope = np.polyfit(np.log(walks), np.log(rms), 1)[0]
    assert -0.65 < slope < -0.35, (slope, rms)
    # the reported standard errors describe the actual errors
    assert np.all(np.array(rms) / np.array(se) < 1.5) and np.all(np.array(rms) / np.array(se) > 0.6), (rms, se)


def test_bias_is_order_epsilon():
    p = get_problem("disk-harmonic")
    x = np.array([[0.3, 0.4]])
    eps = np.array([0.2, 0.1, 0.05, 0.025])
    bias, se = [], []
    for e in eps:
        r = WalkOnSpheres(p.domain, p.boundary, settings=WoSSettings(epsilon=e, walks=400_000, seed=5)).solve(x)
        bias.append(abs(r.value[0] - p.exact(x)[0]))
        se.append(r.stderr[0])
    bias, se = np.array(bias), np.array(se)
    # |grad u| <= e^1 here, so the bias of stopping eps short of the boundary is below e * eps
    assert np.all(bias <= np.e * eps + 4 * se), (bias, se)
    # and it is really there and shrinks with eps: the largest eps is clearly worse than the smallest
    assert bias[0] > 4 * se[0] and bias[0] > 3 * bias[-1], bias


@pytest.mark.parametrize("name", ["disk-poisson", "ball-poisson", "ball-harmonic", "square-harmonic",
                                  "cube-harmonic", "annulus-harmonic", "two-disks-harmonic"])
def test_named_problems_match_exact_solutions(name):
    p = get_problem(name)
    if p.domain.dim == 2:
        X = np.array([[0.5, 0.5], [0.3, 0.6], [0.6, 0.1]]) if name == "square-harmonic" else \
            np.array([[0.5, 0.1], [-0.1, 0.4], [0.0, -0.3]])
    else:
        X = np.array([[0.5, 0.5, 0.5], [0.2, 0.7, 0.4]]) if name == "cube-harmonic" else \
            np.array([[0.1, 0.2, 0.3], [-0.5, 0.1, 0.2]])
    res = WalkOnSpheres(p.domain, p.boundary, p.source, WoSSettings(epsilon=1e-4, walks=20000, seed=1)).solve(X)
    assert res.total_overruns == 0
    err = np.abs(res.value - p.exact(X))
    assert np.all(err < 4 * res.stderr + 2e-4), (err, res.stderr)


def test_float32_and_float64_agree_within_error_bars():
    p = get_problem("disk-poisson")
    X = _grid_points(8, seed=3)
    out = {}
    for dt in ("float32", "float64"):
        out[dt] = WalkOnSpheres(p.domain, p.boundary, p.source, WoSSettings(walks=20000, dtype=dt, seed=2)).solve(X)
    diff = np.abs(out["float32"].value - out["float64"].value)
    assert np.all(diff < 5 * np.hypot(out["float32"].stderr, out["float64"].stderr))


def test_same_seed_same_answer_and_different_seed_differs():
    p = get_problem("disk-harmonic")
    X = _grid_points(20)
    s = WoSSettings(walks=3000, seed=7, block_size=4096)
    a = WalkOnSpheres(p.domain, p.boundary, settings=s).solve(X).value
    b = WalkOnSpheres(p.domain, p.boundary, settings=s).solve(X).value
    c = WalkOnSpheres(p.domain, p.boundary, settings=WoSSettings(walks=3000, seed=8, block_size=4096)).solve(X).value
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_star_domain_distance_bound_is_conservative():
    """The closed-form star distance must never exceed the true distance (else spheres leave the domain)."""
    from scipy.spatial import cKDTree

    for c1, c2 in [(0.2, 0.1), (0.3, 0.2), (-0.25, 0.15)]:
        d = StarShaped(c1, c2)
        tree = cKDTree(d.boundary_points(100_000))
        X = np.random.default_rng(0).uniform(-1.5, 1.5, (2, 20000))
        X = X[:, d.sdf(X) < 0]
        true = tree.query(X.T)[0]
        b = d.radius(X)
        assert np.all(b <= true + 1e-5)
        near = true < 0.01  # and it is tight near the boundary, where walks end
        assert np.median(b[near] / true[near]) > 0.4


def test_star_domain_harmonic():
    d = StarShaped(0.3, 0.2)
    g = get_problem("disk-harmonic").boundary
    X = np.array([[0.1, 0.2], [0.5, -0.3], [-0.6, 0.0]])
    res = WalkOnSpheres(d, g, settings=WoSSettings(walks=20000, seed=4)).solve(X)
    assert res.total_overruns == 0
    assert np.all(np.abs(res.value - g(X)) < 4 * res.stderr + 1e-3)


def test_mesh_boundaries_give_the_harmonic_solution():
    """A polygon (segments) and a DOLFINx mesh boundary (2D segments, 3D triangles) give the harmonic solution."""
    from dolfinx import mesh as dmesh
    from mpi4py import MPI

    from accel.plugins.wos.mesh_domain import MeshDomain, boundary_of_dolfinx_mesh

    g = get_problem("disk-harmonic").boundary
    t = np.linspace(0, 2 * np.pi, 512, endpoint=False)
    poly = MeshDomain(np.stack([np.cos(t), np.sin(t)], 1), np.stack([np.arange(512), (np.arange(512) + 1) % 512], 1))
    # the grid-accelerated radius is a lower bound on the exact distance, and exact near the boundary
    Y = np.random.default_rng(0).uniform(-1, 1, (2, 5000)).astype(np.float32)
    Y = Y[:, np.hypot(Y[0], Y[1]) < 0.99]
    fast, exact = poly.radius(Y), poly._exact(Y)
    assert np.all(fast <= exact + 1e-6) and np.median(fast / exact) > 0.9
    near = exact < 0.01
    assert np.allclose(fast[near], exact[near])
    X = np.array([[0.2, 0.3], [-0.5, 0.1]])
    res = WalkOnSpheres(poly, g, settings=WoSSettings(walks=10000, seed=1)).solve(X)
    assert np.all(np.abs(res.value - g(X)) < 4 * res.stderr + 1e-3)

    sq = boundary_of_dolfinx_mesh(dmesh.create_unit_square(MPI.COMM_SELF, 8, 8))
    assert sq.dim == 2 and len(sq.cells) == 32
    X = np.array([[0.5, 0.5], [0.2, 0.7]])
    res = WalkOnSpheres(sq, g, settings=WoSSettings(walks=10000, seed=2)).solve(X)
    assert np.all(np.abs(res.value - g(X)) < 4 * res.stderr + 1e-3)

    cube = boundary_of_dolfinx_mesh(dmesh.create_unit_cube(MPI.COMM_SELF, 4, 4, 4))
    assert cube.dim == 3 and len(cube.cells) == 6 * 2 * 16
    X = np.array([[0.5, 0.5, 0.5], [0.3, 0.6, 0.2]])
    res = WalkOnSpheres(cube, g, settings=WoSSettings(walks=5000, seed=3)).solve(X)
    assert np.all(np.abs(res.value - g(X)) < 4 * res.stderr + 1e-3)
    # the estimate on the box mesh agrees with the analytic Box domain
    ref = WalkOnSpheres(Box((0, 0, 0), (1, 1, 1)), g, settings=WoSSettings(walks=5000, seed=3)).solve(X)
    assert np.all(np.abs(res.value - ref.value) < 5 * np.hypot(res.stderr, ref.stderr))


def test_ball_source_sampling_3d_matches_exact():
    p = get_problem("ball-poisson")
    X = np.array([[0.0, 0.0, 0.0], [0.4, -0.3, 0.2]])
    res = WalkOnSpheres(Ball((0, 0, 0), 1), p.boundary, p.source, WoSSettings(walks=50000, seed=9)).solve(X)
    assert np.all(np.abs(res.value - p.exact(X)) < 4 * res.stderr + 1e-4)


def _harmonic(P):
    return np.exp(P[:, 0]) * np.cos(P[:, 1])


def test_compiled_and_python_driven_walks_agree():
    """A domain given as a Python callable walks the same paths (same in-kernel draws) as the compiled one."""
    from accel.plugins.wos.domains import SDFDomain
    from accel.plugins.wos.sources import ConstantSource

    ball = Ball((0, 0), 1)
    as_python = SDFDomain(lambda X: ball.sdf(X), ball.bounds)
    as_python.closest = ball.closest
    X = np.array([[0.3, 0.2], [-0.5, 0.1], [0.0, 0.0]])
    for src, py_src in [(None, None), (ConstantSource(1.0), lambda P: np.ones(len(P)))]:
        a = WalkOnSpheres(ball, _harmonic, src, WoSSettings(walks=3000, seed=3)).solve(X)
        b = WalkOnSpheres(as_python, _harmonic, py_src, WoSSettings(walks=3000, seed=3)).solve(X)
        assert a.steps == b.steps
        # only the exit projection differs (Newton step in the kernel, the ball's closed form here)
        assert np.allclose(a.value, b.value, rtol=0, atol=1e-9), a.value - b.value


def test_walks_do_not_depend_on_the_block_size():
    p = get_problem("disk-poisson")
    X = _grid_points(5, seed=1)
    a = WalkOnSpheres(p.domain, p.boundary, p.source, WoSSettings(walks=3000, seed=4)).solve(X)
    b = WalkOnSpheres(p.domain, p.boundary, p.source, WoSSettings(walks=3000, seed=4, block_size=777)).solve(X)
    assert a.steps == b.steps and np.allclose(a.value, b.value, rtol=0, atol=1e-12)


def test_in_kernel_random_streams_are_uniform_and_independent():
    from scipy import stats

    from accel.plugins.wos import kernel

    keys = kernel.keys_for(np.uint64(9), np.arange(200_000, dtype=np.int64))
    X = np.zeros((2, keys.size))
    jumps = np.zeros(keys.size, dtype=np.int64)
    kernel.jump(X, np.ones(keys.size), keys, jumps)  # one unit jump per walk: a point on the circle
    assert np.allclose(np.hypot(X[0], X[1]), 1, atol=1e-10)
    angle = (np.arctan2(X[1], X[0]) / (2 * np.pi)) % 1.0
    assert stats.kstest(angle, "uniform").pvalue > 1e-3
    X2 = X.copy()
    kernel.jump(X2, np.ones(keys.size), keys, jumps)  # the second jump is independent of the first
    d = X2 - X
    assert abs(np.corrcoef(d[0], X[0])[0, 1]) < 0.01 and abs(np.corrcoef(d[1], X[1])[0, 1]) < 0.01
    assert abs(np.corrcoef(X[0][:-1], X[0][1:])[0, 1]) < 0.01  # neighbouring walks too


def _polygon(n=1024):
    from accel.plugins.wos.mesh_domain import MeshDomain

    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return MeshDomain(np.stack([np.cos(t), np.sin(t)], 1), np.stack([np.arange(n), (np.arange(n) + 1) % n], 1))


@pytest.mark.parametrize("name", ["disk", "union", "difference", "ball", "star", "polygon"])
def test_harmonic_estimates_within_three_standard_errors(name):
    """The throughput benchmark's domains: every estimate within 3 sigma plus the epsilon-shell bias."""
    domain = {"disk": lambda: Ball((0, 0), 1), "union": lambda: Ball((-0.3, 0), 0.7) | Ball((0.3, 0), 0.7),
              "difference": lambda: Ball((0, 0), 1) - Ball((0, 0), 0.2), "ball": lambda: Ball((0, 0, 0), 1),
              "star": lambda: StarShaped(0.2, 0.1), "polygon": _polygon}[name]()
    X = np.array([[0.5, 0.1, 0.2], [-0.1, 0.4, -0.3], [0.0, -0.6, 0.1]])[:, :domain.dim]
    eps = 1e-4
    res = WalkOnSpheres(domain, _harmonic, settings=WoSSettings(epsilon=eps, walks=40000, seed=6)).solve(X)
    assert res.total_overruns == 0
    err = np.abs(res.value - _harmonic(X))
    assert np.all(err < 3 * res.stderr + np.e * eps), err / res.stderr


def test_mesh_inside_test_and_exact_distances():
    """The compiled inside test and candidate-list distances against closed forms (fcpw 1.2's batched contains
    returned all zeros, so these are the kernel's own)."""
    from dolfinx import mesh as dmesh
    from mpi4py import MPI

    from accel.plugins.wos.mesh_domain import boundary_of_dolfinx_mesh

    rng = np.random.default_rng(1)
    poly = _polygon(1024)  # inscribed in the unit circle: chords sag by at most 1 - cos(pi / 1024) = 4.7e-6
    X = rng.uniform(-1.2, 1.2, (2, 2000))
    r = np.hypot(X[0], X[1])
    keep = np.abs(r - 1) > 1e-5
    assert np.array_equal(poly.contains(X[:, keep]), r[keep] < 1)
    inside = r < 0.999
    exact = poly._exact(X[:, inside])
    assert np.all(np.abs(exact - (1 - r[inside])) < 4.8e-6)
    fast = poly.radius(X[:, inside])  # grid bound far away, exact near the boundary
    assert np.all(fast <= exact + 1e-12) and np.all(fast[exact < 0.01] == exact[exact < 0.01])
    cube = boundary_of_dolfinx_mesh(dmesh.create_unit_cube(MPI.COMM_SELF, 4, 4, 4))
    Y = rng.uniform(-0.2, 1.2, (3, 1500))
    in_cube = np.all((Y > 0) & (Y < 1), axis=0)
    assert np.array_equal(cube.contains(Y), in_cube)
    Z = Y[:, in_cube]
    face = np.min(np.minimum(Z, 1 - Z), axis=0)
    assert np.allclose(cube._exact(Z), face, rtol=0, atol=1e-12)
    P = cube.closest(Z)
    assert np.allclose(np.linalg.norm(P - Z, axis=0), face, rtol=0, atol=1e-12)
