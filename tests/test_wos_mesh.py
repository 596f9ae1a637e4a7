"""WoS on mesh domains: the walk radius (grid bound + per-node plane rows) against exact distances, exact stopping
decisions and exits, harmonic estimates on convex and non-convex meshes, and the same walks on 1 and 2 ranks."""
import json

import numpy as np
import pytest

from accel.plugins.wos.estimator import WalkOnSpheres, WoSSettings, run_walks
from accel.plugins.wos.mesh_domain import MeshDomain, boundary_of_dolfinx_mesh
from accel.plugins.wos.program import compile_domain, evaluate


def _closed_curve(radius, n):
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    r = radius(t)
    return MeshDomain(np.stack([r * np.cos(t), r * np.sin(t)], 1), np.stack([np.arange(n), (np.arange(n) + 1) % n], 1))


def _domain(name):
    if name == "circle":  # convex, curved: 1024 distinct lines
        return _closed_curve(lambda t: np.ones_like(t), 1024)
    if name == "flower":  # non-convex: reflex stretches between the petals
        return _closed_curve(lambda t: 1 + 0.3 * np.cos(5 * t), 600)
    if name == "holed":  # two boundary components: the unit circle and a hole (concave from the domain's side)
        t, u = np.linspace(0, 2 * np.pi, 512, endpoint=False), np.linspace(0, 2 * np.pi, 128, endpoint=False)
        V = np.vstack([np.stack([np.cos(t), np.sin(t)], 1), 0.3 * np.stack([np.cos(u), np.sin(u)], 1) + [0.2, 0.1]])
        ring = lambda k, off: off + np.stack([np.arange(k), (np.arange(k) + 1) % k], 1)  # noqa: E731
        return MeshDomain(V, np.vstack([ring(512, 0), ring(128, 512)]))
    from dolfinx import mesh as dmesh
    from mpi4py import MPI

    return boundary_of_dolfinx_mesh(dmesh.create_unit_cube(MPI.COMM_SELF, 4, 4, 4))  # convex, flat faces


def _inside_points(dom, n, seed=0):
    lo, hi = dom.bounds
    X = np.ascontiguousarray(np.random.default_rng(seed).uniform(lo, hi, (n, dom.dim)).T)
    return np.ascontiguousarray(X[:, dom.contains(X)])


def _harmonic(P):
    return np.exp(P[:, 0]) * np.cos(P[:, 1])  # harmonic in 2D and 3D


@pytest.mark.parametrize("name", ["circle", "flower", "holed", "cube"])
def test_walk_radius_is_a_lower_bound_and_stopping_is_exact(name):
    dom = _domain(name)
    prog = compile_domain(dom)
    X = _inside_points(dom, 40000)
    exact = evaluate(prog, X)  # exact everywhere (the default)
    bound = evaluate(prog, X, exact_below=0.0)  # what the walk uses wherever it is at least epsilon
    assert np.all(bound <= exact + 1e-14)
    near = exact < 2 * dom.h
    ratio = bound[near] / exact[near]
    gap = exact[near] - bound[near]
    if name == "cube":  # flat faces: the plane rows are the faces themselves (exact up to a 1e-12 rounding margin)
        assert gap.max() < 1e-11
    elif name == "circle":  # convex but curved: two rows per node, each within a small slack of its segments
        assert np.median(ratio) > 0.99 and np.percentile(ratio, 1) > 0.8 and gap.max() < 1e-4, gap.max()
    else:  # near the reflex stretches a plane row can pass close to the point: a weaker bound, never a larger one
        assert np.median(ratio) > 0.99 and np.percentile(ratio, 10) > 0.8, (np.median(ratio), np.percentile(ratio, 10))
    # with exact_below = epsilon (the walk's call) every value below epsilon is exact: stopping decisions are exact
    eps = 1e-3
    walk = evaluate(prog, X, exact_below=eps)
    assert np.array_equal(walk < eps, exact < eps) and np.array_equal(walk[exact < eps], exact[exact < eps])
    assert np.count_nonzero(exact < eps) > 10


@pytest.mark.parametrize("name", ["flower", "cube"])
def test_walk_exits_are_exact_closest_points(name):
    dom = _domain(name)
    P = _inside_points(dom, 200, seed=1)[:, :4]
    exits, _, over, steps = run_walks(dom, P, 500, 0, 2000, 5, 1e-3, 1000)
    assert not over.any() and steps > 2000 * 5
    d, closest = dom._exact(exits), dom.closest(exits)
    assert np.all(d < 1e-12) and np.allclose(closest, exits, rtol=0, atol=1e-12)


@pytest.mark.parametrize("name", ["circle", "flower", "holed", "cube"])
def test_harmonic_estimates_on_meshes_within_three_standard_errors(name):
    dom = _domain(name)
    X = {"circle": [[0.5, 0.1], [-0.1, 0.4], [0.0, -0.6]], "flower": [[0.9, 0.1], [-0.2, 0.5], [0.1, -0.3]],
         "holed": [[0.8, 0.0], [-0.5, -0.5], [0.2, 0.6]],
         "cube": [[0.5, 0.5, 0.5], [0.2, 0.7, 0.4], [0.9, 0.1, 0.3]]}[name]
    X = np.array(X)
    eps = 1e-4
    res = WalkOnSpheres(dom, _harmonic, settings=WoSSettings(epsilon=eps, walks=40000, seed=6)).solve(X)
    assert res.total_overruns == 0
    err = np.abs(res.value - _harmonic(X))
    assert np.all(err < 3 * res.stderr + np.e * eps), err / res.stderr


_TWO_RANKS = """
import json, numpy as np
from mpi4py import MPI
from accel.plugins.wos.estimator import WalkOnSpheres, WoSSettings
from accel.plugins.wos.mesh_domain import MeshDomain
t = np.linspace(0, 2 * np.pi, 600, endpoint=False)
r = 1 + 0.3 * np.cos(5 * t)
dom = MeshDomain(np.stack([r * np.cos(t), r * np.sin(t)], 1), np.stack([np.arange(600), (np.arange(600) + 1) % 600], 1))
g = lambda P: np.exp(P[:, 0]) * np.cos(P[:, 1])
res = WalkOnSpheres(dom, g, settings=WoSSettings(walks=3000, seed=2, block_size=1024), comm=MPI.COMM_WORLD).solve(
    np.array([[0.9, 0.1], [-0.2, 0.5], [0.1, -0.3]]))
if MPI.COMM_WORLD.rank == 0:
    print(json.dumps({"value": res.value.tolist(), "steps": res.steps}))
"""


@pytest.mark.mpi
def test_mesh_walks_are_the_same_on_two_ranks(run_mpi):
    proc = run_mpi(2, ["-c", _TWO_RANKS], timeout=240)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    t = np.linspace(0, 2 * np.pi, 600, endpoint=False)
    r = 1 + 0.3 * np.cos(5 * t)
    dom = MeshDomain(np.stack([r * np.cos(t), r * np.sin(t)], 1),
                     np.stack([np.arange(600), (np.arange(600) + 1) % 600], 1))
    serial = WalkOnSpheres(dom, _harmonic, settings=WoSSettings(walks=3000, seed=2, block_size=1024)).solve(
        np.array([[0.9, 0.1], [-0.2, 0.5], [0.1, -0.3]]))
    assert out["steps"] == serial.steps and np.array_equal(np.array(out["value"]), serial.value)


def _brute_node_distances(dom):
    """Distance of every grid node to every primitive, the plain way (segments in 2D)."""
    axes = [dom.origin[i] + dom.h * np.arange(dom.shape[i]) for i in range(dom.dim)]
    G = np.stack([a.ravel() for a in np.meshgrid(*axes, indexing="ij")], 1)
    A, B = dom.vertices[dom.cells[:, 0]], dom.vertices[dom.cells[:, 1]]
    E = B - A
    t = np.clip(np.einsum("npk,pk->np", G[:, None, :] - A[None], E) / np.sum(E * E, 1), 0, 1)
    return np.min(np.linalg.norm(G[:, None, :] - (A[None] + t[..., None] * E[None]), axis=2), axis=1)


def test_binned_set_up_gives_exact_node_distances_and_inward_planes_for_any_primitive_order():
    """Set-up searches binned cells outwards and orients primitives across shared vertices/edges; on a domain with a
    hole whose segments run in random directions, node distances equal the brute-force ones and every plane's normal
    points into the domain."""
    t, u = np.linspace(0, 2 * np.pi, 300, endpoint=False), np.linspace(0, 2 * np.pi, 90, endpoint=False)
    V = np.vstack([np.stack([np.cos(t), 0.7 * np.sin(t)], 1), 0.25 * np.stack([np.cos(u), np.sin(u)], 1) + [0.3, 0]])
    ring = lambda k, off: off + np.stack([np.arange(k), (np.arange(k) + 1) % k], 1)  # noqa: E731
    C = np.vstack([ring(300, 0), ring(90, 300)])
    flip = np.random.default_rng(3).random(len(C)) < 0.4
    C[flip] = C[flip][:, ::-1]
    dom = MeshDomain(V, C, grid_nodes=4096)
    dnode = dom._arrays["nodes"][0::2]
    assert np.allclose(dnode, _brute_node_distances(dom), rtol=0, atol=1e-12)
    from accel.plugins.wos.mesh_domain import _inward_planes

    N, c = _inward_planes(dom)
    centre = V[C].mean(axis=1)
    probe = np.ascontiguousarray((centre + 1e-3 * N[:, :2]).T)
    assert dom.contains(probe).all()
