"""WoS-NO with the FNO operator: the grid's input fields, stencil and interpolation, the registry, the WoS target
cache and short training runs end to end."""
import json

import numpy as np
import pytest

from accel.errors import AccelError
from accel.plugins.wos.problems import StarPoisson
from accel.plugins.wos.wosno.operators import OPERATORS, StarGrid, build_operator, harmonic_extension


@pytest.mark.parametrize("sigma", [0.2, 0.02])
def test_cell_averaged_source_keeps_its_mass(sigma):
    inst = StarPoisson.sample(np.random.default_rng(1), sigma=sigma)
    grid = StarGrid(64)
    fbar = grid.source_average(inst)
    A = inst.params[2:8].reshape(2, 3)[:, 0]
    mass = 2 * np.pi * sigma ** 2 * A.sum()
    assert abs(fbar.sum() * grid.h ** 2 / mass - 1) < 1e-7
    if sigma < grid.h:  # a point sample would miss the narrow source or overshoot it; the average stays bounded
        assert fbar.max() < inst.source(grid.nodes).max()


def test_grid_mask_level_set_and_margin():
    inst = StarPoisson(np.array([0.2, 0.1, 6.0, 0.2, 0.1, 4.0, -0.25, -0.2, 0.3, 0.5, -0.2, 0.1, 0.15]))
    grid = StarGrid(64)
    assert grid.L == pytest.approx(1.3 + 2 * grid.h)  # two cells around the largest domain of the family
    mask = grid.interior(inst)
    area = np.pi * (1 + 0.2 ** 2 / 2 + 0.1 ** 2 / 2)
    assert abs(mask.sum() * grid.h ** 2 / area - 1) < 0.02
    assert not mask[[0, -1], :].any() and not mask[:, [0, -1]].any()  # every interior stencil is on the grid
    x = grid.inputs(inst)
    assert x.shape == (4, 64, 64) and x.dtype == np.float32
    assert np.array_equal(x[2] > 0.5, x[3] < 0)


def test_harmonic_extension_matches_boundary_data_and_the_mlp_feature():
    import torch

    from accel.plugins.wos.wosno.model import input_features

    inst = StarPoisson.sample(np.random.default_rng(2))
    t = np.linspace(0, 2 * np.pi, 17)
    circle = np.stack([np.cos(t), np.sin(t)], 1)
    assert np.allclose(harmonic_extension(inst.params, circle), inst.boundary_theta(t), atol=1e-12)
    X = np.random.default_rng(3).uniform(-1, 1, (20, 2))
    P = torch.from_numpy(np.repeat(inst.params[None], 20, 0))
    h = input_features(P, torch.from_numpy(X))[:, 1].numpy()
    assert np.allclose(harmonic_extension(inst.params, X), h, atol=1e-12)


def test_five_point_laplacian_and_bilinear_sampling_are_exact_on_low_degree_polynomials():
    import torch

    grid = StarGrid(32)
    X, Y = (torch.from_numpy(a) for a in (grid.X, grid.Y))
    lap = grid.laplacian((3 * X ** 2 - 2 * X * Y + Y ** 2 + X)[None])
    assert torch.allclose(lap, torch.full_like(lap, 8.0), atol=1e-9)
    P = torch.from_numpy(np.random.default_rng(4).uniform(-1.3, 1.3, (1, 50, 2)))
    got = grid.sample((2 * X - 3 * Y + 1)[None], P)
    assert torch.allclose(got, 2 * P[..., 0] - 3 * P[..., 1] + 1, atol=1e-9)


def test_operators_are_chosen_by_registered_name():
    from accel.cli import main
    from accel.plugins.wos.wosno.train import Config, Dataset

    assert set(OPERATORS) == {"mlp", "fno"}
    cfg = Config(instances=2, operator="fno", grid=16, fno_modes=4, fno_width=8)
    ds = Dataset(cfg, 2, np.random.default_rng(0))
    with pytest.raises(AccelError, match="valid names: mlp, fno"):
        build_operator("gino", cfg, ds)
    op = build_operator("fno", cfg, ds)
    assert op.model.config["in_channels"] == 4 and len(op.supervision_points()) == 2
    with pytest.raises(SystemExit) as exc:
        main(["train", "wos-no", "--operator", "gino"])
    assert exc.value.code == 2
    with pytest.raises(SystemExit) as exc:
        main(["train", "wos-no", "--operator", "fno", "--grid", "4"])
    assert exc.value.code == 2


def test_fno_wos_no_learns_and_the_target_cache_replays_the_same_walks(tmp_path, capsys):
    from accel.cli import main

    common = ["train", "wos-no", "--operator", "fno", "--grid", "24", "--fno-modes", "6", "--fno-width", "12",
              "--fno-layers", "2", "--instances", "4", "--test-instances", "2", "--steps", "120", "--batch", "4",
              "--walks", "4", "--boundary", "32", "--lr", "3e-3", "--fem-radial", "16", "--no-progress",
              "--wos-cache", str(tmp_path / "cache")]
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    assert main(common + ["--methods", "wos,pinn", "--out", str(first)]) == 0
    assert main(common + ["--methods", "wos", "--out", str(second)]) == 0
    capsys.readouterr()
    a, b = (json.loads(p.read_text())["results"] for p in (first, second))
    w = a["wos"]
    assert w["operator"] == "fno" and w["steps"] == 120
    assert w["wos_cache_misses"] == 120 and w["wos_cache_hits"] == 0  # one epoch per step (4 instances, batch 4)
    assert b["wos"]["wos_cache_hits"] == 120 and b["wos"]["wos_cache_misses"] == 0
    assert b["wos"]["rel_l2"] == w["rel_l2"] and b["wos"]["wos_steps"] == w["wos_steps"]
    for m in ("wos", "pinn"):  # both learn far more than the zero function (relative L2 1): 0.32 and 0.25 here
        assert np.all(np.isfinite(a[m]["rel_l2"])) and a[m]["rel_l2_mean"] < 0.4, (m, a[m]["rel_l2_mean"])
