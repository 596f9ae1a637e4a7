"""AAS plugin: sampler components through the registry, and the bad-input cases (real torch/zuko, no mocks)."""
from __future__ import annotations

import numpy as np
import pytest

from accel.errors import UnknownComponentError
from accel.plugins.aas.domain import Box
from accel.plugins.aas.errors import DomainError, SamplerError, TrainingDiverged
from accel.plugins.aas.flow_sampler import AASSampler
from accel.plugins.aas.problems import get_problem
from accel.plugins.aas.samplers import Sampler
from accel.plugins.aas.trainer import TrainConfig, Trainer, build_sampler
from accel.registry import get_registry, reset_registry

TINY = dict(points=200, width=16, depth=2, eval_points=2500, lr=3e-3)


def test_registry_lists_the_samplers():
    names = {c.name for c in get_registry().components("sampler")}
    assert {"uniform", "rad", "rar-d", "aas"} <= names
    s = build_sampler("rad", get_problem("peak2d"), seed=3)
    assert s.name == "rad" and s.seed == 3


def test_unknown_sampler_lists_valid_names():
    with pytest.raises(UnknownComponentError) as err:
        build_sampler("nope", get_problem("peak2d"))
    msg = str(err.value)
    assert "'nope'" in msg
    for name in ("uniform", "rad", "rar-d", "aas"):
        assert name in msg


def test_zero_volume_domain_is_refused():
    with pytest.raises(DomainError, match="zero volume.*axes \\[1\\]"):
        Box([0.0, 0.5], [1.0, 0.5])
    with pytest.raises(DomainError, match="same length"):
        Box([0.0, 0.0], [1.0])
    assert Box([-1, -1], [1, 1]).volume == pytest.approx(4.0)


def test_unknown_problem_lists_valid_ones():
    with pytest.raises(DomainError, match="peak2d.*peak5d"):
        get_problem("peak3x")


class HalfOutside(Sampler):
    """A third-party sampler that (wrongly) proposes every other point outside the domain."""

    name = "half-outside"

    def sample(self, n):
        x = self.domain.uniform(n, self.rng)
        x[::2, 0] += 5.0
        return x


def test_points_outside_the_domain_are_rejected_and_counted():
    prob = get_problem("peak2d")
    tr = Trainer(TrainConfig(sampler="half-outside", steps=4, stages=2, **TINY), sampler=HalfOutside(prob.domain))
    res = tr.run()
    assert res.rejected == 400  # a pool of 200 points x 2 steps per stage, half outside, 2 stages
    assert all(len(p) == 200 and prob.domain.contains(p).all() for _, p in res.samples)
    assert res.metrics["final_points"] == 200 and res.metrics["points_per_step"] == 200


def test_sampler_with_nothing_inside_is_an_error():
    class AllOutside(Sampler):
        def sample(self, n):
            return self.domain.uniform(n, self.rng) + 10.0

    prob = get_problem("peak2d")
    with pytest.raises(SamplerError, match="no point inside"):
        Trainer(TrainConfig(steps=2, stages=1, **TINY), sampler=AllOutside(prob.domain)).run()


def test_flow_samples_outside_the_box_are_rejected_and_counted():
    prob = get_problem("peak2d")
    s = AASSampler(prob.domain, seed=0, box_scale=0.5, flow_steps=1)  # base N(0,1) spans 2x the box: many outside
    s.refresh(lambda x: np.ones(len(x)), prob.domain.uniform(256, np.random.default_rng(0)))
    x = s.sample_flow(500)
    assert x.shape == (500, 2) and prob.domain.contains(x).all()
    assert s.rejected > 100 and s.proposed - s.rejected >= 500


def test_rad_concentrates_points_where_the_residual_is():
    prob = get_problem("peak2d")
    s = build_sampler("rad", prob, seed=0)
    s.refresh(lambda x: np.exp(-100 * ((x - 0.5) ** 2).sum(1)), None)
    x = s.sample(2000)
    inside = prob.region.contains(x).mean()
    assert inside > 0.05  # uniform: region area 0.04 of 4 -> 1 %; RAD keeps c=1 of uniform mass


def test_rar_d_grows_to_the_budget():
    prob = get_problem("peak2d")
    res = Trainer(TrainConfig(sampler="rar-d", steps=8, stages=4, **TINY)).run()
    sizes = [len(p) for _, p in res.samples]
    assert sizes == [100, 134, 168, 200]


class NaNFlow(AASSampler):
    """AAS whose flow weights turn NaN at the second refresh (a real fault, injected into the real flow)."""

    name = "nan-flow"
    calls = 0

    def refresh(self, residual, points):
        NaNFlow.calls += 1
        if NaNFlow.calls == 2:
            import torch

            with torch.no_grad():
                for p in self.flow.parameters():
                    p.fill_(float("nan"))
        super().refresh(residual, points)


def test_nan_in_flow_log_density_stops_training_and_keeps_checkpoint(tmp_path):
    import torch

    prob = get_problem("peak2d")
    NaNFlow.calls = 0
    cfg = TrainConfig(sampler="nan-flow", steps=9, stages=3, out_dir=str(tmp_path), **TINY)
    tr = Trainer(cfg, sampler=NaNFlow(prob.domain, flow_steps=2))
    with pytest.raises(TrainingDiverged, match="log-density became NaN.*last good weights \\(step 6\\)") as err:
        tr.run()
    assert err.value.step == 6
    ckpt = torch.load(err.value.checkpoint)
    assert ckpt["step"] == 6
    for k, v in ckpt["model"].items():
        assert torch.isfinite(v).all()
        assert torch.equal(v, tr.model.state_dict()[k])  # the model in memory is the good one too


def test_third_party_sampler_registers_through_the_entry_point(tmp_path, monkeypatch):
    (tmp_path / "tp_sampler.py").write_text(
        "from accel import hookimpl\n"
        "from accel.components import ComponentSpec\n"
        "from accel.plugins.aas.samplers import UniformSampler\n"
        "class Mine(UniformSampler):\n    name = 'mine'\n"
        "@hookimpl\n"
        "def accel_components():\n"
        "    return [ComponentSpec('mine', 'sampler', 'tp_sampler:Mine', 'third-party test sampler')]\n")
    dist = tmp_path / "tp_sampler-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: tp-sampler\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[accel]\ntp_sampler = tp_sampler\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    reset_registry()
    try:
        res = Trainer(TrainConfig(sampler="mine", steps=2, stages=2, **TINY)).run()
        assert type(res.model).__name__ == "PINN" and res.metrics["steps"] == 2
        assert "mine" in {c.name for c in get_registry().components("sampler")}
    finally:
        monkeypatch.undo()
        reset_registry()


def test_weighted_rad_weights_undo_its_density():
    """RAD with weighted=True: loss weight x density is the same at every point (U/q importance weights, mean 1)."""
    prob = get_problem("peak2d")
    s = build_sampler("rad", prob, seed=0, weighted=True)
    s.plan(500, 2)
    s.refresh(lambda x: np.exp(-50 * ((x - 0.5) ** 2).sum(1)), None)
    x = s.sample(500)
    w, q = s.loss_weights(x), s.density(x)
    assert w.mean() == pytest.approx(1.0) and w.max() / w.min() > 3  # they differ
    assert np.allclose(w * q, (w * q).mean(), rtol=1e-6)
    assert build_sampler("rad", prob, seed=0).loss_weights(x) is None  # DeepXDE's RAD: the plain mean


def test_rar_d_with_refreshed_uniform_part_keeps_the_added_points():
    prob = get_problem("peak2d")
    s = build_sampler("rar-d", prob, seed=0, refresh_uniform=True)
    s.plan(100, 3)
    first = s.sample(100)
    assert len(first) == 100 and s.n_uniform == 50  # two copies of the 50-point uniform half (no points added yet)
    s.refresh(lambda x: np.exp(-50 * ((x - 0.5) ** 2).sum(1)), first)
    second, third = s.sample(1000), s.sample(1000)
    added = s.points[s.n_uniform:]
    assert len(added) == 25
    # the added points are kept (in the budget's proportion), the uniform part is new at every call
    assert np.isin(added[:, 0], second[:, 0]).all() and np.isin(added[:, 0], third[:, 0]).all()
    assert len(second) == 13 * 75 and not np.isin(second[:650, 0], third[:, 0]).any()


def _weak_modes_error(x, K=16):
    """RMS over the K x K sine modes of the Monte Carlo U_kl = vol * mean(g psi_kl) at the points x against the exact
    integrals, for a smooth g that vanishes on [-1, 1]^2 (the weak term's sums; g separable, so 1D quadrature)."""
    k = np.arange(1, K + 1) * np.pi / 2
    gx = lambda t: (1 - t**2) * np.exp(0.5 * t)  # noqa: E731
    gy = lambda t: (1 - t**2) * np.exp(-0.3 * t) * np.cos(2 * t)  # noqa: E731
    t = (np.arange(200_000) + 0.5) / 100_000 - 1
    ix = (gx(t)[:, None] * np.sin((t[:, None] + 1) * k)).mean(0)
    iy = (gy(t)[:, None] * np.sin((t[:, None] + 1) * k)).mean(0)
    exact = 4.0 * np.outer(ix, iy)
    g = gx(x[:, 0]) * gy(x[:, 1])
    est = 4.0 * (np.sin((x[:, :1] + 1) * k) * g[:, None]).T @ np.sin((x[:, 1:] + 1) * k) / len(x)
    return float(np.sqrt(((est - exact) ** 2).mean()))


def test_sobol_uniform_sets_are_reproducible_inside_and_integrate_the_weak_modes_better():
    """sequence='sobol': sets of the planned size, inside the box, reproducible per seed, new at every draw; the weak
    term's sums U_kl over one 1000-point set are 3x more accurate than over random points (measured: RMS error over
    16 x 16 modes 0.0086 vs 0.030, mean of five sets)."""
    prob = get_problem("peak2d")

    def sampler(seed, sequence="sobol"):
        s = build_sampler("uniform", prob, seed=seed, sequence=sequence)
        s.plan(1000, 10)
        return s

    s = sampler(0)
    a, b = s.sample(5000), s.sample(5000)
    assert a.shape == (5000, 2) and prob.domain.contains(a).all() and s.rejected == 0
    assert np.array_equal(a, sampler(0).sample(5000)) and not np.allclose(a[:1000], sampler(1).sample(1000))
    assert not np.allclose(a, b)  # a fresh scramble per set
    # every set of the planned size is balanced: each quarter of the box holds 250 of its 1000 points (random: +-14)
    quarters = [((a[i:i + 1000] > 0) @ [1, 2] == q).sum() for i in range(0, 5000, 1000) for q in range(4)]
    assert max(abs(n - 250) for n in quarters) <= 2
    sob = np.mean([_weak_modes_error(a[i:i + 1000]) for i in range(0, 5000, 1000)])
    ran = sampler(0, "random").sample(5000)
    rnd = np.mean([_weak_modes_error(ran[i:i + 1000]) for i in range(0, 5000, 1000)])
    assert 0.02 < rnd < 0.04 and sob < 0.4 * rnd
    with pytest.raises(SamplerError, match="sequence must be one of random, sobol"):
        build_sampler("uniform", prob, sequence="halton")


def test_trainer_serves_sobol_sets_whole_and_polishes_on_one_sobol_set():
    """The trainer shuffles the order of a Sobol pool's sets, not their points; an L-BFGS set is one Sobol set of
    the whole size (uniform: the plain mean)."""
    tr = Trainer(TrainConfig(problem="sine2d", sampler="uniform", steps=20, stages=1,
                             sampler_options={"sequence": "sobol"}, **TINY))
    pts, *_ = tr._stage_pool(20)
    batches = tr._batches(len(pts))
    starts = {int(next(batches)[0]) for _ in range(20)}
    assert len(pts) == 20 * 200 and starts == set(range(0, 4000, 200))
    x, _, _, lw, ww = tr._polish_set(512)
    q = ((x.numpy() > x.numpy().mean(0)) @ [1, 2])
    assert x.shape == (512, 2) and lw is None and ww is None
    assert all(abs((q == i).sum() - 128) <= 6 for i in range(4))


def test_rar_d_weak_term_sums_use_its_uniform_rows_only():
    """RAR-D keeps no density for its added points: the weak term's weights are 1 on the uniform rows of what it
    just returned and 0 on the added ones, in the Adam pool and in the L-BFGS sets."""
    prob = get_problem("peak2d")
    s = build_sampler("rar-d", prob, seed=0, refresh_uniform=True)
    s.plan(100, 3)
    first = s.sample(100)
    s.refresh(lambda x: np.exp(-50 * ((x - 0.5) ** 2).sum(1)), first)
    pool = s.sample(1000)
    w = s.weak_weights(pool)
    assert len(pool) == 13 * 75 and w[:650].min() == 1 and w[650:].max() == 0
    assert s.weak_weights(pool.copy()) is None  # only for the points it returned
    assert build_sampler("uniform", prob).weak_weights(pool) is None
    tr = Trainer(TrainConfig(problem="peak2d", sampler="rar-d", steps=40, stages=2, lbfgs_points=400, weak_weight=1.0,
                             weak_adam=True, sampler_options={"refresh_uniform": True}, **TINY))
    tr.run()
    x, _, _, lw, ww = tr._polish_set(400)
    n_added = len(tr.sampler.points) - tr.sampler.n_uniform
    assert lw is None and ww[:200].min() == 1  # the trainer's uniform half
    assert float(ww[200:].sum()) == 200 - n_added  # the sampler's half: its uniform rows only
