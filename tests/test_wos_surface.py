"""WoS plugin surface and bad input: registry component, accel wos, MPI determinism, clear errors."""
import json
import warnings

import numpy as np
import pytest

from accel.errors import ConvergenceError, SolverConfigError
from accel.plugins.wos.domains import Ball, DomainError, SDFDomain, StarShaped
from accel.plugins.wos.estimator import QueryPointError, StepLimitWarning, WalkOnSpheres, WoSSettings
from accel.plugins.wos.problems import UnknownProblemError, get_problem
from accel.registry import get_registry


def _g(P):
    return np.exp(P[:, 0]) * np.cos(P[:, 1])


def test_registry_builds_the_wos_supervisor():
    from accel.components import Supervisor

    sup = get_registry().create("supervisor", "wos", problem="disk-poisson", walks=5000, seed=1)
    assert isinstance(sup, Supervisor)
    X = np.array([[0.2, 0.1], [-0.3, 0.5]])
    est = sup.estimate(X)
    assert np.all(np.abs(est - (1 - np.sum(X ** 2, 1)) / 4) < 0.01)
    # explicit domain and data, and per-call overrides of the data
    sup = get_registry().create("supervisor", "wos", domain=Ball((0, 0), 2.0), boundary=_g, walks=4000)
    assert abs(sup.estimate(np.array([[0.5, 0.5]]), walks=8000)[0] - _g(np.array([[0.5, 0.5]]))[0]) < 0.05
    with pytest.raises(UnknownProblemError, match="valid names: disk-harmonic"):
        get_registry().create("supervisor", "wos", problem="nope")


def test_query_point_outside_the_domain_is_refused():
    w = WalkOnSpheres(Ball((0, 0), 1), _g)
    with pytest.raises(QueryPointError, match=r"1 of 2 query points lie outside the domain .*index 1"):
        w.solve(np.array([[0.1, 0.1], [1.5, 0.0]]))
    with pytest.raises(QueryPointError, match=r"shape \(n, 2\)"):
        w.solve(np.zeros((3, 3)))
    with pytest.raises(QueryPointError, match="NaN"):
        w.solve(np.array([[np.nan, 0.0]]))
    # on the boundary is fine: the walk stops at once with the boundary value
    res = w.solve(np.array([[1.0, 0.0]]))
    assert res.value[0] == pytest.approx(_g(np.array([[1.0, 0.0]]))[0], abs=1e-6) and res.stderr[0] == 0
    star = StarShaped(0.2, 0.1)
    with pytest.raises(QueryPointError, match="outside"):
        WalkOnSpheres(star, _g).solve(np.array([[1.35, 0.0]]))  # the curve crosses the x axis at R(0) = 1.3


def test_wrong_sdf_sign_convention_is_detected():
    inside_positive = lambda X: 1.0 - np.hypot(X[0], X[1])  # noqa: E731  (positive inside: wrong convention)
    with pytest.raises(DomainError, match=r"negative inside and positive outside.*lambda X: -f\(X\)"):
        SDFDomain(inside_positive, ((-1, -1), (1, 1)))
    ok = SDFDomain(lambda X: np.hypot(X[0], X[1]) - 1.0, ((-1, -1), (1, 1)))
    res = WalkOnSpheres(ok, _g, walks=4000).solve(np.array([[0.3, 0.2]]))
    assert abs(res.value[0] - _g(np.array([[0.3, 0.2]]))[0]) < 4 * res.stderr[0] + 2e-3
    with pytest.raises(DomainError, match="no interior"):
        SDFDomain(lambda X: np.hypot(X[0], X[1]) + 1.0, ((-1, -1), (1, 1)))


@pytest.mark.parametrize("eps, match", [(0.0, "positive"), (-1e-3, "positive"), (float("nan"), "positive"),
                                        (2.0, "not smaller than the domain"), (1.0, "not smaller than the domain")])
def test_bad_epsilon(eps, match):
    with pytest.raises(SolverConfigError, match=match):
        WalkOnSpheres(Ball((0, 0), 1), _g, epsilon=eps)


def test_bad_settings():
    with pytest.raises(SolverConfigError, match="walks must be a positive integer"):
        WalkOnSpheres(Ball((0, 0), 1), _g, walks=0)
    with pytest.raises(SolverConfigError, match="dtype"):
        WalkOnSpheres(Ball((0, 0), 1), _g, dtype="float16")
    with pytest.raises(SolverConfigError, match="returned 1 values"):
        WalkOnSpheres(Ball((0, 0), 1), lambda P: np.zeros(1), walks=10).solve(np.array([[0.1, 0.1], [0.2, 0.2]]))


def test_step_limit_overruns_are_counted_and_reported():
    w = WalkOnSpheres(Ball((0, 0), 1), _g, walks=2000, max_steps=3, epsilon=1e-4, seed=0)
    X = np.array([[0.0, 0.0], [0.5, 0.2], [0.99995, 0.0]])
    with pytest.warns(StepLimitWarning, match=r"walks .* reached max_steps=3 .* raise max_steps or epsilon"):
        res = w.solve(X)
    # from the centre the first jump lands on the circle: no overrun there; the others overrun often
    assert res.overruns[0] == 0 and res.overruns[1] > 500 and res.overruns[2] == 0
    assert res.total_overruns == res.overruns.sum()
    with pytest.raises(ConvergenceError, match="max_steps=3"):
        w.solve(X, on_overrun="raise")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # enough steps: no warning at all
        assert w.solve(X, max_steps=1000).total_overruns == 0


def test_accel_wos_command(capsys):
    from accel.cli import main

    assert main(["wos", "--problem", "disk-harmonic", "--points", "0.1,0.2;0.5,-0.5", "--walks", "4000",
                 "--json"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert np.all(np.abs(np.array(out["value"]) - np.array(out["exact"])) < 4 * np.array(out["stderr"]) + 2e-3)
    assert main(["wos", "--problem", "disk-harmonic", "--points", "1.5,0"]) == 2
    assert "outside the domain" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:  # an argparse error now (exit status 2, one line naming the option)
        main(["wos", "--epsilon", "0"])
    assert exc.value.code == 2 and "--epsilon: must be a positive number" in capsys.readouterr().err
    assert main(["wos", "--list"]) == 0 and "star-poisson" in capsys.readouterr().out


@pytest.mark.mpi
def test_same_seed_same_answer_on_two_ranks(run_mpi, tmp_path):
    """Walk blocks are spread over 2 ranks; the result must equal the 1-rank answer bit for bit."""
    rng = np.random.default_rng(0)
    P = rng.uniform(-0.6, 0.6, (20, 2))
    np.save(tmp_path / "pts.npy", P)
    args = ["-m", "accel.cli", "wos", "--problem", "star-poisson", "--points-file", str(tmp_path / "pts.npy"),
            "--walks", "5000", "--seed", "11", "--json"]
    proc = run_mpi(2, args, timeout=240)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["ranks"] == 2
    prob = get_problem("star-poisson")
    serial = WalkOnSpheres(prob.domain, prob.boundary, prob.source, WoSSettings(walks=5000, seed=11)).solve(P)
    assert 20 * 5000 > 3 * WoSSettings().block_size  # several blocks, so both ranks really worked
    assert np.array_equal(np.array(out["value"]), serial.value)
    assert np.array_equal(np.array(out["stderr"]), serial.stderr)
    assert out["steps"] == serial.steps
