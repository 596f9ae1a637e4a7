"""Data generation: the solvers are right, the on-disk format is reused, and broken files give clear errors."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from accel.plugins.neural_operator.data import darcy, navier_stokes, store

torch.set_num_threads(1)


def test_darcy_solution_satisfies_the_finite_volume_system():
    rng = np.random.default_rng(0)
    a = darcy.coefficient(rng, 32, "piecewise")
    assert set(np.unique(a)) == {3.0, 12.0}
    u, its = darcy.solve(a)
    A = darcy.assemble(a)
    assert abs(A - A.T).max() < 1e-9
    assert np.linalg.norm(A @ u.ravel() - 1.0) / np.sqrt(u.size) < 1e-9
    assert its <= 20 and u.min() > 0  # maximum principle for f = 1 > 0


def test_darcy_converges_to_the_constant_coefficient_solution():
    # a = 1: -Lap u = 1 on the unit square; the centre value of the exact solution is 0.07367
    errs = []
    for n in (16, 32):
        u, _ = darcy.solve(np.ones((n, n)))
        centre = u[n // 2 - 1: n // 2 + 1, n // 2 - 1: n // 2 + 1].mean()
        errs.append(abs(centre - 0.0736713532))
    assert errs[1] < errs[0] / 3 and errs[1] < 1e-3


def test_navier_stokes_single_mode_decays_at_the_viscous_rate():
    # w = cos(2 pi (x + 2y)) has zero advection (u is parallel to the level lines): w(t) = w0 exp(-nu 4 pi^2 |k|^2 t)
    n, nu, T = 32, 1e-2, 1.0
    t = torch.arange(n, dtype=torch.float64) / n
    y, x = torch.meshgrid(t, t, indexing="ij")
    w0 = torch.cos(2 * math.pi * (x + 2 * y))[None]
    w = navier_stokes.simulate(w0, nu, T, record_dt=0.5, dt=1e-2, forcing="none")
    for r, time in enumerate((0.5, 1.0)):
        expect = w0[0] * math.exp(-nu * 4 * math.pi**2 * 5 * time)
        assert (w[0, r].double() - expect).abs().max() < 5e-5  # Crank-Nicolson, second order in dt


def test_navier_stokes_time_step_converged():
    gen = torch.Generator().manual_seed(0)
    w0 = navier_stokes.initial_vorticity(gen, 2, 32)
    a = navier_stokes.simulate(w0, 1e-3, 2.0, dt=1e-2)
    b = navier_stokes.simulate(w0, 1e-3, 2.0, dt=5e-3)
    assert ((a - b).norm() / b.norm()).item() < 1e-5
    assert a.shape == (2, 2, 32, 32)


def test_store_reuses_and_detects_corrupt_or_missing_files(tmp_path):
    out = tmp_path / "set.npz"
    params = {"n": 2, "grid": 8}
    assert not store.reusable(out, "darcy", params)
    with pytest.raises(store.DataError, match="does not exist; generate it with"):
        store.load(out, "darcy")
    store.save(out, "darcy", params, {"a": np.ones((2, 8, 8)), "u": np.zeros((2, 8, 8))})
    assert store.reusable(out, "darcy", params)
    assert not store.reusable(out, "darcy", {"n": 3, "grid": 8})
    arrays, info = store.load(out, "darcy")
    assert arrays["a"].shape == (2, 8, 8) and info["params"] == params
    with pytest.raises(store.DataError, match="holds 'darcy' data, not 'navier_stokes'"):
        store.load(out, "navier_stokes")
    data = out.read_bytes()
    out.write_bytes(data[: len(data) // 2])  # an interrupted copy
    assert not store.reusable(out, "darcy", params)
    with pytest.raises(store.DataError, match=r"corrupt.*accel data darcy --n 2 --grid 8 --out"):
        store.load(out, "darcy")


def test_accel_data_command_generates_then_reuses(tmp_path, capsys):
    from accel.cli import main

    out = tmp_path / "d.npz"
    assert main(["data", "darcy", "--n", "3", "--grid", "16", "--out", str(out)]) == 0
    assert "wrote" in capsys.readouterr().out
    assert main(["data", "darcy", "--n", "3", "--grid", "16", "--out", str(out)]) == 0
    assert "reusing" in capsys.readouterr().out
    arrays, info = store.load(out, "darcy")
    assert arrays["u"].shape == (3, 16, 16) and info["command"].startswith("accel data darcy --n 3")


def test_vorticity_residual_separates_solver_data_from_perturbed_data():
    from accel.plugins.neural_operator.residuals import h_minus1_norm, vorticity_residual

    gen = torch.Generator().manual_seed(3)
    w = navier_stokes.simulate(navier_stokes.initial_vorticity(gen, 1, 32), 1e-3, 8.0, dt=1e-2).double()
    f = navier_stokes.forcing_field(32, "kolmogorov")
    exact = h_minus1_norm(vorticity_residual(w, 1.0, 1e-3, f)).item()
    off = h_minus1_norm(vorticity_residual(w * 1.01, 1.0, 1e-3, f)).item()
    assert exact < off / 4  # Simpson's rule over unit-spaced snapshots resolves a 1% error


def test_flow_map_residual_has_no_quadrature_floor():
    from accel.plugins.neural_operator.residuals import (h_minus1_norm, vorticity_flow_residual,
                                                          vorticity_residual)

    gen = torch.Generator().manual_seed(3)
    w = navier_stokes.simulate(navier_stokes.initial_vorticity(gen, 1, 32), 1e-3, 8.0, dt=1e-2).double()
    f = navier_stokes.forcing_field(32, "kolmogorov")
    scale = h_minus1_norm(w[:, 1:] - w[:, :-1]).item()
    simpson = h_minus1_norm(vorticity_residual(w, 1.0, 1e-3, f)).item() / scale
    flow = h_minus1_norm(vorticity_flow_residual(w, 1.0, 1e-3, f, substeps=20)).item() / scale
    exact = h_minus1_norm(vorticity_flow_residual(w, 1.0, 1e-3, f, substeps=100)).item() / scale
    off = h_minus1_norm(vorticity_flow_residual(w * 1.01, 1.0, 1e-3, f, substeps=20)).item() / scale
    assert flow < simpson / 10  # the solver's scheme between snapshots, not a quadrature over them
    assert exact < 1e-6  # the data solver's own step (dt = 1e-2): zero up to float32 storage
    assert off > 100 * flow


def test_unknown_time_residual_lists_the_valid_ones():
    from accel.errors import AccelError
    from accel.plugins.neural_operator.finetune import FinetuneConfig

    with pytest.raises(AccelError, match="valid: flow, simpson"):
        FinetuneConfig(time_residual="euler")
    with pytest.raises(AccelError, match="substeps must be at least 1"):
        FinetuneConfig(substeps=0)


@pytest.mark.parametrize("time_residual", ["flow", "simpson"])
@pytest.mark.parametrize("name,config,widened", [
    ("sfno", dict(modes=(2, 3, 3), width=6, layers=2, time_padding=2, projection=8), [3, 4, 4]),
    ("arfno", dict(context=2, step=dict(modes=(3, 3), width=6, layers=2, projection=8)), [4, 4])])
def test_fine_tuning_lowers_the_navier_stokes_residual(name, config, widened, time_residual):
    from accel.plugins.neural_operator.finetune import FinetuneConfig, finetune
    from accel.plugins.neural_operator.models import build_model

    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(4)
    w = navier_stokes.simulate(navier_stokes.initial_vorticity(gen, 1, 16), 1e-3, 8.0, dt=1e-2)
    model = build_model(name, in_frames=4, out_frames=4, **config)
    model.fit_normaliser(w[:, :4], w[:, 4:])
    cfg = FinetuneConfig(iterations=15, lr=1e-2, time_residual=time_residual, substeps=5)
    tuned, rep = finetune(model, w[:, :4], "navier_stokes", cfg, y=w[:, 4:])
    assert rep["modes_after"] == widened
    assert rep["residual_after"] < 0.9 * rep["residual_before"]


def test_training_on_a_missing_or_corrupt_file_says_how_to_regenerate(tmp_path, capsys):
    import re

    from accel.cli import main

    assert main(["train", "fno", "--data", str(tmp_path / "none.npz"), "--out", str(tmp_path / "m")]) == 2
    assert "does not exist; generate it with" in capsys.readouterr().err
    out = tmp_path / "d.npz"
    assert main(["data", "darcy", "--n", "2", "--grid", "8", "--out", str(out)]) == 0
    out.write_bytes(b"not a zip file")
    assert main(["train", "fno", "--data", str(out), "--out", str(tmp_path / "m")]) == 2
    assert re.search(r"corrupt.*accel data darcy --n 2 --grid 8", capsys.readouterr().err)
    # a re-run of the generating command repairs it
    assert main(["data", "darcy", "--n", "2", "--grid", "8", "--out", str(out)]) == 0
    assert store.load(out, "darcy")[0]["a"].shape == (2, 8, 8)


def test_rollout_model_trains_on_two_data_sets_and_beats_persistence(tmp_path, capsys):
    import torch

    from accel.cli import main

    sets = []
    for seed in (0, 1):
        sets.append(str(tmp_path / f"ns{seed}.npz"))
        assert main(["data", "ns", "--n", "8", "--grid", "16", "--T", "8", "--batch", "8", "--seed", str(seed),
                     "--out", sets[-1]]) == 0
    common = ["--out", str(tmp_path / "ar"), "--model", "arfno", "--context", "2", "--in-frames", "3",
              "--out-frames", "5", "--batch", "8", "--n-test", "4", "--modes", "4", "4", "--width", "8",
              "--layers", "2", "--lr", "5e-3"]
    assert main(["train", "fno", "--data", sets[0], sets[0], *common, "--epochs", "1"]) == 2
    assert "share a seed" in capsys.readouterr().err
    assert main(["train", "fno", "--data", *sets, *common, "--unroll", "2", "--epochs", "25"]) == 0
    ck = torch.load(tmp_path / "ar.pt", weights_only=True)
    assert ck["name"] == "arfno" and ck["info"]["n_train"] == 12 and ck["info"]["unroll"] == 2
    w = store.load(sets[1], "navier_stokes")[0]["w"][-4:]
    truth, last = w[:, 3:8], w[:, 2:3]
    persistence = float(np.mean(np.linalg.norm((truth - last).reshape(4, -1), axis=1)
                                / np.linalg.norm(truth.reshape(4, -1), axis=1)))
    # the held-out rollout (4 trajectories of the second file, 5 frames) beats "nothing changes" clearly
    assert ck["info"]["test_rel_l2"] < 0.3 * persistence  # measured 0.20x


def test_data_sets_of_different_parameters_are_not_mixed(tmp_path, capsys):
    from accel.cli import main

    a, b = str(tmp_path / "a.npz"), str(tmp_path / "b.npz")
    assert main(["data", "ns", "--n", "2", "--grid", "8", "--T", "4", "--batch", "2", "--out", a]) == 0
    assert main(["data", "ns", "--n", "2", "--grid", "8", "--T", "4", "--nu", "1e-2", "--seed", "1",
                 "--batch", "2", "--out", b]) == 0
    assert main(["train", "fno", "--data", a, b, "--out", str(tmp_path / "m"), "--model", "arfno",
                 "--in-frames", "2", "--out-frames", "2", "--n-test", "1", "--epochs", "1"]) == 2
    assert "one family and one set of parameters" in capsys.readouterr().err
