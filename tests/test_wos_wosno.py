"""WoS-NO: batched family targets agree with the single-problem estimator; tiny training runs end to end."""
import json

import numpy as np

from accel.plugins.wos.estimator import WalkOnSpheres, WoSSettings
from accel.plugins.wos.problems import StarPoisson
from accel.plugins.wos.wosno.family import StarFamily


def test_family_targets_match_the_single_problem_estimator():
    rng = np.random.default_rng(0)
    insts = [StarPoisson.sample(rng) for _ in range(3)]
    pts = [i.interior_points(6, rng) for i in insts]
    vals, over, steps = StarFamily(insts).estimate(pts, 4000, 1e-3, 1000, np.random.default_rng(1))
    assert over == 0 and steps > 3 * 6 * 4000
    for inst, p, v in zip(insts, pts, vals):
        prob = inst.problem()
        ref = WalkOnSpheres(prob.domain, prob.boundary, prob.source, WoSSettings(walks=4000, seed=2)).solve(p)
        assert np.all(np.abs(v - ref.value) < 4 * np.sqrt(2) * ref.stderr + 1e-3), (v - ref.value) / ref.stderr


def test_family_reports_step_limit_overruns():
    rng = np.random.default_rng(3)
    insts = [StarPoisson.sample(rng) for _ in range(2)]
    pts = [i.interior_points(50, rng) for i in insts]
    _, over, _ = StarFamily(insts).estimate(pts, 10, 1e-3, 3, rng)
    assert over > 100  # 3 steps is far too few: the count must say so


def test_train_wos_no_tiny_end_to_end(tmp_path, capsys):
    from accel.cli import main

    out = tmp_path / "res.json"
    rc = main(["train", "wos-no", "--instances", "8", "--test-instances", "2", "--steps", "40", "--interior", "64",
               "--boundary", "32", "--batch", "4", "--walks", "4", "--width", "32", "--depth", "2", "--methods", "wos,pinn,pinn-time",
               "--no-progress", "--out", str(out)])
    assert rc == 0
    text = capsys.readouterr().out
    assert "pinn / wos relative L2 ratio" in text and "stopped by max_steps" in text
    res = json.loads(out.read_text())["results"]
    assert res["wos"]["steps"] == 40 and res["pinn"]["steps"] == 40
    assert res["pinn-time"]["seconds"] <= res["wos"]["seconds"] + 1.0  # the wall-time budget is respected
    w = res["wos"]
    assert w["wos_walks"] == 8 * 64 * 4 * 20  # 40 steps of 4-instance batches: 20 epochs of fresh walks
    assert 0 <= w["wos_overruns"] < 0.3 * w["wos_walks"]
    for m in res.values():
        assert np.all(np.isfinite(m["rel_l2"])) and len(m["rel_l2"]) == 2


def test_narrow_sources_keep_their_mass_and_the_family_targets_stay_unbiased():
    """--source-width: a narrower Gaussian with the same mass; WoS family targets still match the estimator."""
    import pytest

    wide = StarPoisson.sample(np.random.default_rng(5))
    narrow = StarPoisson.sample(np.random.default_rng(5), sigma=0.05)
    g = np.linspace(-1.5, 1.5, 601)
    X, Y = np.meshgrid(g, g)
    P = np.stack([X.ravel(), Y.ravel()], 1)
    cell = (g[1] - g[0]) ** 2
    assert np.isclose(narrow.source(P).sum() * cell, wide.source(P).sum() * cell, rtol=1e-3)
    assert narrow.source(P).max() > 5 * wide.source(P).max()
    rng = np.random.default_rng(6)
    insts = [StarPoisson.sample(rng, sigma=0.05) for _ in range(2)]
    pts = [i.interior_points(4, rng) for i in insts]
    vals, over, _ = StarFamily(insts).estimate(pts, 4000, 1e-3, 1000, np.random.default_rng(1))
    assert over == 0
    for inst, p, v in zip(insts, pts, vals):
        prob = inst.problem()
        ref = WalkOnSpheres(prob.domain, prob.boundary, prob.source, WoSSettings(walks=4000, seed=2)).solve(p)
        assert np.all(np.abs(v - ref.value) < 4 * np.sqrt(2) * ref.stderr + 1e-3), (v - ref.value) / ref.stderr
    with pytest.raises(ValueError, match="source width"):
        StarPoisson.sample(rng, sigma=0.0)
    with pytest.raises(ValueError, match="one source width"):
        StarFamily([wide, narrow])
