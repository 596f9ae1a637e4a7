"""Training / fine-tuning / prediction commands end to end on tiny data, and surrogate initial guesses for KSPs."""
from __future__ import annotations

import json

import numpy as np
import pytest
from petsc4py import PETSc

from accel.cli import main
from accel.errors import ModelError
from accel.integrations.petsc.guess import GuessWarning, attach_guess, guess_from_options
from accel.plugins.neural_operator.data import darcy, store

GRID = 16


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    d = tmp_path_factory.mktemp("no")
    data = d / "darcy.npz"
    assert main(["data", "darcy", "--n", "48", "--grid", str(GRID), "--kind", "lognormal", "--out", str(data)]) == 0
    out = d / "fno"
    assert main(["train", "fno", "--data", str(data), "--out", str(out), "--epochs", "15", "--batch", "8",
                 "--n-test", "8", "--lr", "5e-3", "--modes", "4", "4", "--width", "8", "--layers", "2",
                 "--padding", "2"]) == 0
    return data, out


def test_train_writes_checkpoint_and_model_with_metadata(trained):
    from accel import modelmeta

    data, out = trained
    meta = modelmeta.read(out.with_suffix(".onnx"))
    assert meta.plugin == "neural_operator" and meta.problem == "darcy" and meta.dim == 2
    assert meta.recipe.startswith("accel train fno --data")
    assert meta.settings["test_rel_l2"] < 0.5  # 15 epochs on 40 samples: well below the zero predictor's 1.0


def test_energy_loss_is_the_operators_energy_norm_and_darcy_only(trained, tmp_path, capsys):
    import torch

    from accel.plugins.neural_operator.train import relative_energy

    rng = np.random.default_rng(5)
    a = darcy.coefficient(rng, GRID, "lognormal")
    u, _ = darcy.solve(a)
    e = rng.standard_normal((GRID, GRID))
    A = darcy.assemble(a)
    expect = np.sqrt(e.ravel() @ (A @ e.ravel()) / (u.ravel() @ (A @ u.ravel())))
    t = lambda v: torch.tensor(v)[None, None]  # noqa: E731
    assert float(relative_energy(t(u + e), t(u), t(a))) == pytest.approx(expect, rel=1e-10)
    assert float(relative_energy(t(u), t(u), t(a))) == 0.0
    # the same tiny training as the fixture's, in the energy norm: a lower held-out energy-norm error
    from accel.plugins.neural_operator.surrogate import Surrogate

    data, l2_model = trained
    out = tmp_path / "fe"
    assert main(["train", "fno", "--data", str(data), "--out", str(out), "--loss", "energy", "--epochs", "15",
                 "--batch", "8", "--n-test", "8", "--lr", "5e-3", "--modes", "4", "4", "--width", "8", "--layers",
                 "2", "--padding", "2"]) == 0
    arrays, _ = store.load(data, "darcy")
    a, u = arrays["a"][-8:], arrays["u"][-8:]

    def held_out_energy_error(model):
        sur = Surrogate(model.with_suffix(".onnx"))
        pred = np.concatenate([sur.predict(a[i:i + 1, None]) for i in range(len(a))])
        return float(relative_energy(*(torch.tensor(np.asarray(v, np.float64)).reshape(len(a), 1, GRID, GRID)
                                       for v in (pred, u, a))))

    assert held_out_energy_error(out) < 0.9 * held_out_energy_error(l2_model)  # measured 0.57 vs 0.69
    ns = tmp_path / "ns.npz"
    assert main(["data", "ns", "--n", "2", "--grid", "16", "--T", "3", "--out", str(ns)]) == 0
    capsys.readouterr()
    assert main(["train", "fno", "--data", str(ns), "--out", str(tmp_path / "n"), "--loss", "energy",
                 "--n-test", "1", "--in-frames", "1", "--out-frames", "2"]) == 2
    assert "loss 'energy' does not fit navier_stokes data; valid losses: l2" in capsys.readouterr().err


def test_finetune_lowers_the_residual_and_reports_l2(trained, tmp_path, capsys):
    data, out = trained
    report = tmp_path / "ft.jsonl"
    assert main(["finetune", "--checkpoint", str(out.with_suffix(".pt")), "--data", str(data), "--samples", "2",
                 "--iterations", "20", "--lr", "3e-3", "--jsonl", str(report)]) == 0
    captured = capsys.readouterr()
    assert "relative L2 on 2 held-out samples" in captured.out
    assert "sample 1/2: relative L2" in captured.out + captured.err  # reported as each sample finishes
    *samples, last = [json.loads(line) for line in report.read_text().splitlines()]
    assert [s["index"] for s in samples] == [0, 1] and last["summary"]["samples"] == 2
    for s in samples:
        assert s["modes_after"] == [6, 6] and s["residual_after"] < s["residual_before"]
    # the report is a user's file too: a second run does not overwrite it without --force
    assert main(["finetune", "--checkpoint", str(out.with_suffix(".pt")), "--data", str(data), "--samples", "1",
                 "--iterations", "1", "--jsonl", str(report)]) == 2
    assert "ft.jsonl already exists; pass --force" in capsys.readouterr().err


def test_finetune_refuses_data_of_another_family(trained, tmp_path, capsys):
    _, out = trained
    other = tmp_path / "ns.npz"
    store.save(other, "navier_stokes", {"n": 1}, {"w": np.zeros((1, 50, 16, 16), np.float32)})
    assert main(["finetune", "--checkpoint", str(out.with_suffix(".pt")), "--data", str(other)]) == 2
    assert "trained on 'darcy' data" in capsys.readouterr().err


def test_predict_command(trained, tmp_path, capsys):
    data, out = trained
    assert main(["predict", "--model", str(out.with_suffix(".onnx")), "--input", str(data), "--samples", "4",
                 "--problem", "darcy", "--out", str(tmp_path / "p.npy")]) == 0
    assert "relative L2 vs the data" in capsys.readouterr().out
    assert np.load(tmp_path / "p.npy").shape == (4, 1, GRID, GRID)
    assert main(["predict", "--model", str(out.with_suffix(".onnx")), "--input", str(data), "--problem",
                 "navier_stokes", "--out", str(tmp_path / "q.npy")]) == 2
    assert "not 'navier_stokes'" in capsys.readouterr().err


def _problem(seed=5):
    a = darcy.coefficient(np.random.default_rng(seed), GRID, "lognormal")
    A = darcy.petsc_matrix(darcy.assemble(a))
    b, x = A.createVecLeft(), A.createVecRight()
    b.set(1.0)
    u, _ = darcy.solve(a, rtol=1e-12)
    return a, A, b, x, u


def _solve(A, b, x, guess=None, inputs=None, pc="icc", **kw):
    ksp = PETSc.KSP().create(PETSc.COMM_SELF)
    ksp.setOperators(A)
    ksp.setType("cg")
    ksp.getPC().setType(pc)
    ksp.setNormType(PETSc.KSP.NormType.UNPRECONDITIONED)
    ksp.setTolerances(rtol=1e-8, atol=0.0)
    x.zeroEntries()
    report = attach_guess(ksp, guess, inputs, b, x, **kw) if guess is not None else None
    ksp.solve(b, x)
    its, reason = ksp.getIterationNumber(), ksp.getConvergedReason()
    ksp.destroy()
    assert reason > 0
    return its, report


def test_accurate_guess_cuts_iterations():
    a, A, b, x, u = _problem()
    cold, _ = _solve(A, b, x)
    smooth = np.sin(np.pi * (np.arange(GRID) + 0.5) / GRID)
    close = lambda inputs: u * (1 + 1e-4 * np.outer(smooth, smooth))  # noqa: E731 - a near-exact "surrogate"
    warm, rep = _solve(A, b, x, close, a)
    assert rep.used and rep.energy < 0 and rep.residual < 1e-2
    assert warm <= 0.7 * cold
    ref = np.linalg.norm(x.getArray() - u.ravel()) / np.linalg.norm(u)
    assert ref < 1e-6


def test_trained_surrogate_guess_is_used_and_logged(trained, caplog):
    from accel.plugins.neural_operator.surrogate import Surrogate

    _, out = trained
    a, A, b, x, u = _problem()
    cold, _ = _solve(A, b, x)
    with caplog.at_level("INFO", logger="accel.integrations.petsc.guess"):
        warm, rep = _solve(A, b, x, Surrogate(out.with_suffix(".onnx"), problem="darcy"), a)
    assert rep.used and rep.energy < 0 and np.isfinite(rep.residual)
    assert "surrogate initial guess: relative residual" in caplog.text
    assert warm <= cold + 2  # a 15-epoch toy model (about 25% error) is accepted but barely helps


@pytest.mark.parametrize("criterion", ["energy", "residual"])
def test_guess_worse_than_zero_is_discarded_with_a_warning(criterion):
    a, A, b, x, u = _problem()
    cold, _ = _solve(A, b, x)
    wrong = lambda inputs: -3.0 * u  # noqa: E731 - e.g. a model of another sign convention or family
    with pytest.warns(GuessWarning, match="discarded"):
        its, rep = _solve(A, b, x, wrong, a, criterion=criterion)
    assert not rep.used and rep.residual > 1.0 and its == cold


def test_guess_input_errors():
    a, A, b, x, u = _problem()
    with pytest.raises(ValueError, match="predicted 64 values but the solution vector has 256"):
        _solve(A, b, x, lambda inputs: np.ones((8, 8)), a)


def test_nan_input_and_wrong_family_model_are_refused(trained):
    from accel.plugins.neural_operator.surrogate import Surrogate

    _, out = trained
    a, A, b, x, u = _problem()
    bad = a.copy()
    bad[2, 3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        _solve(A, b, x, Surrogate(out.with_suffix(".onnx")), bad)
    with pytest.raises(ModelError, match="trained on the 'darcy' family"):
        _solve(A, b, x, str(out.with_suffix(".onnx")), a, problem="navier_stokes")


def test_guess_from_options(trained):
    _, out = trained
    a, A, b, x, u = _problem()
    ksp = PETSc.KSP().create(PETSc.COMM_SELF)
    ksp.setOptionsPrefix("nog_")
    ksp.setOperators(A)
    assert guess_from_options(ksp, a, b, x) is None  # -nog_accel_guess unset: nothing happens
    opts = PETSc.Options()
    opts["nog_accel_guess"] = str(out.with_suffix(".onnx"))
    opts["nog_accel_guess_problem"] = "darcy"
    try:
        ksp.setType("cg")
        rep = guess_from_options(ksp, a, b, x)
        assert rep.used and ksp.getInitialGuessNonzero()
        ksp.solve(b, x)
        assert ksp.getConvergedReason() > 0
    finally:
        del opts["nog_accel_guess"]
        del opts["nog_accel_guess_problem"]
        ksp.destroy()


def test_guess_under_mpi(trained, run_mpi):
    _, out = trained
    res = run_mpi(2, ["examples/neural_operator/darcy_guess.py", str(out.with_suffix(".onnx")), "--grid", str(GRID),
                      "--samples", "2"])
    assert res.returncode == 0, res.stderr[-2000:]
    lines = [ln for ln in res.stdout.splitlines() if ln.startswith("sample")]
    assert len(lines) == 2 and all("used True" in ln for ln in lines)
    for ln in lines:
        cold = int(ln.split("cold ")[1].split(" its")[0])
        warm = int(ln.split("guess ")[1].split(" its")[0])
        assert warm <= cold + 2


def test_shipped_darcy_surrogate_through_the_registry():
    from accel.registry import get_registry

    sur = get_registry().create("surrogate", "darcy")
    assert sur.meta.recipe.startswith("accel train fno") and sur.meta.problem == "darcy"
    a = darcy.coefficient(np.random.default_rng(77), 64, "lognormal")
    u, _ = darcy.solve(a)
    pred = sur.predict(a)
    assert pred.shape == (64, 64)
    # held-out mean 1.3e-2, max 3.7e-2 on the guess sweep (docs/benchmarks)
    assert np.linalg.norm(pred - u) / np.linalg.norm(u) < 0.06


def test_guess_by_component_name_from_options():
    a = darcy.coefficient(np.random.default_rng(8), 64, "lognormal")
    A = darcy.petsc_matrix(darcy.assemble(a))
    b, x = A.createVecLeft(), A.createVecRight()
    b.set(1.0)
    ksp = PETSc.KSP().create(PETSc.COMM_SELF)
    ksp.setOptionsPrefix("comp_")
    ksp.setOperators(A)
    ksp.setType("cg")
    opts = PETSc.Options()
    opts["comp_accel_guess"] = "darcy"  # the shipped model, through the registry
    try:
        rep = guess_from_options(ksp, a, b, x)
        assert rep.used and rep.energy < 0 and 0.8 < rep.scale < 1.25
    finally:
        del opts["comp_accel_guess"]
        ksp.destroy()


def test_training_resumes_from_a_checkpoint(trained, tmp_path):
    import torch

    from accel import modelmeta

    data, out = trained
    first = modelmeta.read(out.with_suffix(".onnx")).settings["test_rel_l2"]
    assert main(["train", "fno", "--data", str(data), "--out", str(tmp_path / "more"), "--resume",
                 str(out.with_suffix(".pt")), "--epochs", "3", "--batch", "8", "--n-test", "8", "--lr", "1e-3"]) == 0
    ck = torch.load(tmp_path / "more.pt", weights_only=True)
    assert ck["config"]["width"] == 8 and ck["config"]["modes"] == (4, 4)
    assert ck["info"]["test_rel_l2"] < first * 1.1  # continues from the trained weights, not from scratch


def test_shipped_navier_stokes_surrogate_on_fresh_trajectories():
    from accel.plugins.neural_operator.data import navier_stokes
    from accel.registry import get_registry

    sur = get_registry().create("surrogate", "navier_stokes")
    assert sur.meta.recipe.startswith("accel train fno") and sur.meta.problem == "navier_stokes"
    # two trajectories from a seed no data set used, made exactly like the training data (64x64, dt 1e-2)
    w = navier_stokes.generate(2, grid=64, nu=1e-3, T=50.0, dt=1e-2, seed=4242)["w"]
    pred = sur.predict(w[:, :10])
    assert pred.shape == (2, 40, 64, 64)
    err = np.linalg.norm((pred - w[:, 10:]).reshape(2, -1), axis=1) / np.linalg.norm(w[:, 10:].reshape(2, -1), axis=1)
    assert err.max() < 1.5e-2  # 40-step rollout; held-out mean 7.0e-3 over 30 trajectories (docs/benchmarks)
    coarse = sur.predict(w[:, :10, ::2, ::2])  # the same file at 32x32
    assert np.abs(coarse - pred[..., ::2, ::2]).max() < 0.05 * np.abs(pred).max()


def test_navier_stokes_example_reports_the_rollout_error(capsys, tmp_path):
    import importlib.util
    import re
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "examples" / "neural_operator" / "ns_surrogate.py"
    spec = importlib.util.spec_from_file_location("ns_surrogate_example", path)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    assert example.main(["--samples", "1", "--seed", "31", "--plot", str(tmp_path / "ns.png")]) == 0
    out = capsys.readouterr().out
    err = float(re.search(r"mean relative L2 over t = 11..50: (\S+)", out).group(1))
    assert err < 1.5e-2 and (tmp_path / "ns.png").stat().st_size > 10_000


@pytest.mark.parametrize("name, shape", [("darcy_fno", (2, 1, 40, 40)), ("ns_arfno", (1, 10, 32, 32))])
def test_shipped_models_rebuild_in_torch_from_their_onnx_weights(name, shape):
    import torch

    from accel.plugins.neural_operator.checkpoint import load_checkpoint
    from accel.plugins.neural_operator.surrogate import Surrogate

    model, info = load_checkpoint(name)  # no .pt is shipped: the weights come from the ONNX initializers
    x = np.random.default_rng(5).standard_normal(shape).astype(np.float32)
    x = np.exp(x) if name == "darcy_fno" else x
    with torch.no_grad():
        rebuilt = model(torch.from_numpy(x)).numpy()
    ref = Surrogate(name).predict(x)
    assert np.abs(rebuilt - ref).max() < 1e-5 * np.abs(ref).max()
    assert info["family"] == {"darcy_fno": "darcy", "ns_arfno": "navier_stokes"}[name]


def test_finetune_command_refines_the_shipped_darcy_model(tmp_path, capsys):
    data = tmp_path / "d64.npz"
    assert main(["data", "darcy", "--n", "2", "--grid", "64", "--kind", "lognormal", "--seed", "91",
                 "--out", str(data)]) == 0
    report = tmp_path / "ft.jsonl"
    assert main(["finetune", "--checkpoint", "darcy_fno", "--data", str(data), "--samples", "1",
                 "--iterations", "15", "--jsonl", str(report)]) == 0
    s, _ = [json.loads(line) for line in report.read_text().splitlines()]
    assert s["modes_before"] == [12, 12] and s["modes_after"] == [18, 18]
    assert s["residual_after"] < 0.5 * s["residual_before"]


def test_onnx_without_a_model_config_cannot_be_fine_tuned(trained, tmp_path, capsys):
    import shutil

    from accel import modelmeta

    _, out = trained
    old = tmp_path / "old.onnx"
    shutil.copy(out.with_suffix(".onnx"), old)
    meta = modelmeta.read(old)
    meta.settings = {k: v for k, v in meta.settings.items() if k != "config"}
    modelmeta.write(old, meta)
    data, _ = trained
    assert main(["finetune", "--checkpoint", str(old), "--data", str(data)]) == 2
    assert "does not record its model config" in capsys.readouterr().err
