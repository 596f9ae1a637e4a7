"""WoS against a DOLFINx finite-element solution of a Poisson problem on the same (star-shaped) domain."""
import numpy as np

from accel.plugins.wos.estimator import WalkOnSpheres, WoSSettings
from accel.plugins.wos.fem_reference import polar_mesh_arrays, solve_poisson
from accel.plugins.wos.problems import StarPoisson


def test_polar_mesh_boundary_lies_on_the_curve():
    inst = StarPoisson.default()
    x, cells = polar_mesh_arrays(inst.R, 6, 32)
    assert cells.shape == (32 + 2 * 5 * 32, 3) and x.shape == (1 + 6 * 32, 2)
    outer = x[-32:]
    t = np.arctan2(outer[:, 1], outer[:, 0])
    assert np.allclose(np.hypot(outer[:, 0], outer[:, 1]), inst.R(t))


def test_wos_matches_dolfinx_poisson_within_error_bars():
    inst = StarPoisson.default()  # Gaussian sources, Fourier boundary data, star domain
    fem = solve_poisson(inst.R, inst.source, inst.boundary, n_r=48, n_t=192, degree=2)
    coarse = solve_poisson(inst.R, inst.source, inst.boundary, n_r=24, n_t=96, degree=2)
    X = np.array([[0.0, 0.0], [0.2, 0.1], [-0.5, 0.3], [0.6, -0.4], [0.1, -0.75]])
    u_fe = fem(X)
    fe_err = np.abs(u_fe - coarse(X))  # a conservative estimate of the fine solution's own error
    assert np.max(fe_err) < 5e-3
    prob = inst.problem()
    res = WalkOnSpheres(prob.domain, prob.boundary, prob.source, WoSSettings(walks=20000, seed=3)).solve(X)
    assert res.total_overruns == 0
    diff = np.abs(res.value - u_fe)
    # Monte Carlo bars (4 sigma) + the FE error + the epsilon-shell bias (|grad u| * eps)
    assert np.all(diff < 4 * res.stderr + fe_err + 5e-3), (diff, res.stderr)
    # and not trivially: the solution varies far more than the tolerance
    assert np.ptp(u_fe) > 0.3
