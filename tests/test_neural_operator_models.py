"""Spectral layers vs torch.fft, ONNX Runtime vs torch at several resolutions, and the model-level bad inputs."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from accel.errors import AccelError, GridError, ModelError
from accel.plugins.neural_operator.export import _op_types, export_onnx
from accel.plugins.neural_operator.models import build_model
from accel.plugins.neural_operator.spectral import SpectralConv, reference_spectral
from accel.plugins.neural_operator.surrogate import Surrogate

torch.set_num_threads(1)


@pytest.mark.parametrize("modes,grid", [((4, 5), (16, 16)), ((6, 6), (32, 24)), ((8, 8), (17, 15)),
                                        ((12, 12), (64, 64)), ((3, 4, 5), (8, 12, 16)), ((2, 6, 6), (10, 32, 32))])
def test_spectral_layer_matches_torch_fft(modes, grid):
    torch.manual_seed(0)
    layer = SpectralConv(3, 2, modes)
    x = torch.randn(2, 3, *grid)
    ref = reference_spectral(x, layer)
    err = (layer(x) - ref).abs().max().item()
    assert err < 1e-5 * max(1.0, ref.abs().max().item())


def test_widened_layer_keeps_the_old_operator():
    torch.manual_seed(1)
    layer = SpectralConv(2, 2, (4, 4, 3))
    wide = layer.widen((6, 8, 5))
    x = torch.randn(1, 2, 16, 20, 20)
    assert (wide(x) - layer(x)).abs().max().item() < 1e-6
    assert wide.modes == (6, 8, 5)


def test_resolution_below_kept_modes_is_refused_by_the_layer():
    layer = SpectralConv(1, 1, (8, 8))
    with pytest.raises(GridError, match="too coarse.*at least 16x15"):
        layer(torch.randn(1, 1, 12, 12))


def test_unknown_model_name_lists_valid_ones():
    with pytest.raises(AccelError, match="valid names: arfno, fno2d, sfno"):
        build_model("unet")


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    torch.manual_seed(2)
    d = tmp_path_factory.mktemp("onnx")
    fno = build_model("fno2d", modes=(6, 6), width=8, layers=2, padding=4, projection=16)
    sfno = build_model("sfno", in_frames=3, out_frames=5, modes=(2, 4, 4), width=6, layers=2, time_padding=2,
                       projection=16)
    arfno = build_model("arfno", in_frames=4, out_frames=6, context=2, step=dict(modes=(4, 4), width=6, layers=2,
                                                                                  projection=16))
    arfno.step.norm.out_std.fill_(0.1)  # increments small against the state, as in training
    return {"fno": (fno, export_onnx(fno, d / "fno.onnx", problem="darcy")),
            "sfno": (sfno, export_onnx(sfno, d / "sfno.onnx", problem="navier_stokes")),
            "arfno": (arfno, export_onnx(arfno, d / "arfno.onnx", problem="navier_stokes"))}


@pytest.mark.parametrize("name", ["fno", "sfno", "arfno"])
def test_onnx_matches_torch_at_several_resolutions(exported, name):
    model, path = exported[name]
    ops = _op_types(path)
    assert "DFT" not in ops and "MatMul" in ops
    sur = Surrogate(path)
    for n in (12, 20, 32, 48):
        x = torch.randn(2, sur.channels, n, n)
        y = sur.predict(x.numpy())
        with torch.no_grad():
            ref = model(x).numpy()
        assert y.shape == ref.shape
        assert np.abs(y - ref).max() < 1e-5 * max(1.0, np.abs(ref).max())


def test_surrogate_bad_inputs(exported):
    _, fno_path = exported["fno"]
    _, sfno_path = exported["sfno"]
    sur = Surrogate(fno_path, problem="darcy")
    assert sur.meta.min_grid == 8
    with pytest.raises(GridError, match="below the 8 points per axis"):
        sur.predict(np.ones((6, 6), np.float32))
    bad = np.ones((16, 16), np.float32)
    bad[3, 4] = np.nan
    with pytest.raises(ValueError, match="1 NaN/inf"):
        sur.predict(bad)
    with pytest.raises(ModelError, match="takes 2D fields"):
        sur.predict(np.ones((1, 1, 8, 8, 8), np.float32))
    with pytest.raises(ModelError, match="trained on the 'darcy' family, not 'navier_stokes'"):
        Surrogate(fno_path, problem="navier_stokes")
    with pytest.raises(ModelError, match="takes 3 input channel"):
        Surrogate(sfno_path).predict(np.ones((1, 2, 16, 16), np.float32))
    with pytest.raises(ModelError, match="no neural-operator model named"):
        Surrogate("no_such_model")


def test_fractional_padding_exports_for_any_resolution(tmp_path):
    torch.manual_seed(3)
    model = build_model("fno2d", modes=(4, 4), width=6, layers=1, padding=0, padding_fraction=0.125, projection=8)
    assert model.pad_cells(32) == 4 and model.pad_cells(33) == 5 and model.min_grid() == 7
    sur = Surrogate(export_onnx(model, tmp_path / "frac.onnx", problem="darcy", sample_grid=16))
    for n in (8, 24, 41):
        x = torch.randn(1, 1, n, n)
        with torch.no_grad():
            ref = model(x).numpy()
        assert np.abs(sur.predict(x.numpy()) - ref).max() < 1e-5 * max(1.0, np.abs(ref).max())


def test_rollout_model_is_one_loop_around_one_step(exported):
    model, path = exported["arfno"]
    import onnx

    m = onnx.load(str(path))
    assert [n.op_type for n in m.graph.node].count("Loop") == 1
    assert not any(n.op_type == "Conv" for n in m.graph.node)  # the step network lives only in the loop body
    x = torch.randn(1, 4, 16, 16)
    with torch.no_grad():
        y = model(x)
        # the rollout is the step applied to its own output: frame k+1 = frame k + step(frames k-1, k)
        inc = model.step(torch.stack([y[:, 2], y[:, 3]], 1))[:, 0]
    assert torch.allclose(y[:, 4], y[:, 3] + inc, atol=1e-6)
    assert y.shape == (1, 6, 16, 16)


def test_rollout_model_config_errors():
    with pytest.raises(AccelError, match="context 5 must be between 1 and in_frames"):
        build_model("arfno", in_frames=4, out_frames=6, context=5)
    from accel.plugins.neural_operator.models import FNO2d, MarkovFNO

    with pytest.raises(AccelError, match="step model takes 1 frames; context is 2"):
        MarkovFNO(FNO2d(in_channels=1, padding=0), in_frames=4, context=2)
