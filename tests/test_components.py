"""Every built-in sampler, surrogate and supervisor follows its protocol in accel/components.py, and does what the
protocol's users rely on (shapes, weights, estimates)."""
from __future__ import annotations

import numpy as np
import pytest

from accel.components import Sampler, Supervisor, Surrogate
from accel.registry import get_registry

REG = get_registry()


@pytest.mark.parametrize("name", [c.name for c in REG.components("sampler") if REG.plugins[c.plugin].builtin])
def test_builtin_samplers_follow_the_sampler_protocol(name):
    from accel.plugins.aas.problems import get_problem

    problem = get_problem("peak2d")
    sampler = REG.create("sampler", name, domain=problem.domain, seed=0)
    assert isinstance(sampler, Sampler)
    sampler.plan(64, 2)  # the trainer's call order: plan, sample + loss_weights, refresh, sample + loss_weights
    x = sampler.sample(64)
    assert 0 < len(x) <= 64 and x.shape[1] == 2 and problem.domain.contains(x).all()
    w = sampler.loss_weights(x)
    assert w is None or (np.shape(w) == (len(x),) and np.all(np.asarray(w) > 0))


@pytest.mark.parametrize("name", [c.name for c in REG.components("surrogate") if REG.plugins[c.plugin].builtin])
def test_builtin_surrogates_follow_the_surrogate_protocol(name):
    sur = REG.create("surrogate", name)
    assert isinstance(sur, Surrogate)
    channels, grid = (1, 32) if sur.problem == "darcy" else (10, 32)
    y = sur.predict(np.ones((1, channels, grid, grid), np.float32))
    assert y.shape[0] == 1 and y.shape[-2:] == (grid, grid) and np.isfinite(y).all()


def test_builtin_supervisor_follows_the_supervisor_protocol():
    sup = REG.create("supervisor", "wos", problem="disk-harmonic", walks=2000, seed=3)
    assert isinstance(sup, Supervisor)
    points = np.array([[0.1, 0.2], [-0.3, 0.0]])
    est = sup.estimate(points)
    exact = sup.estimate(points, walks=20000)  # an override for this call only
    assert est.shape == (2,) and np.abs(est - exact).max() < 0.05


def test_an_object_missing_a_method_is_not_a_sampler():
    class NoPlan:
        def sample(self, n):
            return np.zeros((n, 2))

    assert not isinstance(NoPlan(), Sampler)
