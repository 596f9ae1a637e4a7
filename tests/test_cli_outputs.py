"""Bad input to the neural-operator commands ends in one clear line (argparse or accel error, exit 2), outputs are
never overwritten without --force nor left half-made, and checkpoints / model files cannot run code or crash."""
from __future__ import annotations

import json
import shlex
import shutil

import numpy as np
import pytest

from accel import modelmeta
from accel.cli import main
from accel.errors import ModelError


def _fails(capsys, argv, message):
    with pytest.raises(SystemExit) as exc:  # argparse: usage line plus the message, exit status 2
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    return err


@pytest.mark.parametrize("argv, message", [
    (["data", "darcy", "--n", "0"], "argument --n: must be a positive integer, got 0"),
    (["data", "darcy", "--n", "-1"], "argument --n: must be a positive integer, got -1"),
    (["data", "darcy", "--grid", "0"], "argument --grid: must be a positive integer, got 0"),
    (["data", "navier_stokes", "--T", "-5"], "argument --T: must be a positive number, got -5"),
    (["train", "fno", "--data", "x.npz", "--epochs", "-1"], "argument --epochs: must be a positive integer"),
    (["train", "fno", "--data", "x.npz", "--modes", "0", "4"], "argument --modes: must be a positive integer"),
    (["finetune", "--checkpoint", "darcy_fno", "--data", "x", "--samples", "0"], "argument --samples"),
    (["predict", "--model", "darcy_fno", "--input", "x.npy", "--threads", "0"], "argument --threads"),
])
def test_bad_arguments_are_argparse_errors(argv, message, capsys, tmp_path):
    _fails(capsys, argv + ["--out", str(tmp_path / "o")] if argv[0] != "finetune" else argv, message)
    assert list(tmp_path.iterdir()) == []


def test_data_set_never_overwritten_without_force(capsys, tmp_path):
    out = tmp_path / "d.npz"
    assert main(["data", "darcy", "--n", "2", "--grid", "8", "--out", str(out)]) == 0
    before = out.read_bytes()
    # other parameters, same file: refused before any solve, the data set untouched
    assert main(["data", "darcy", "--n", "2", "--grid", "8", "--seed", "1", "--out", str(out)]) == 2
    assert "d.npz, " in (err := capsys.readouterr().err) and "d.json already exist; pass --force" in err
    assert out.read_bytes() == before
    assert main(["data", "darcy", "--n", "2", "--grid", "8", "--seed", "1", "--out", str(out), "--force"]) == 0
    assert out.read_bytes() != before and json.loads(out.with_suffix(".json").read_text())["params"]["seed"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.json", "d.npz"]  # no temporary left behind


def test_regenerate_command_stored_in_a_navier_stokes_data_set_is_accepted(capsys, tmp_path):
    out = tmp_path / "ns.npz"
    assert main(["data", "ns", "--n", "1", "--grid", "8", "--T", "2", "--dt", "0.05", "--batch", "1",
                 "--out", str(out)]) == 0
    command = json.loads(out.with_suffix(".json").read_text())["command"]
    assert command.startswith("accel data navier_stokes ")
    capsys.readouterr()
    assert main(shlex.split(command)[1:]) == 0  # the same parameters: the intact set is recognised and reused
    assert "already holds this data set" in capsys.readouterr().out


def test_predict_refuses_to_overwrite_and_names_a_directory(capsys, tmp_path):
    x = tmp_path / "x.npy"
    np.save(x, np.ones((1, 1, 32, 32), np.float32))
    out = tmp_path / "y.npy"
    out.write_bytes(b"keep me")
    assert main(["predict", "--model", "darcy_fno", "--input", str(x), "--out", str(out)]) == 2
    assert "y.npy already exists; pass --force" in capsys.readouterr().err and out.read_bytes() == b"keep me"
    assert main(["predict", "--model", "darcy_fno", "--input", str(x), "--out", str(out), "--force"]) == 0
    assert np.load(out).shape == (1, 1, 32, 32)
    assert main(["predict", "--model", str(tmp_path), "--input", str(x), "--out", str(tmp_path / "z.npy")]) == 2
    assert f"model path {tmp_path} is a directory" in capsys.readouterr().err


def test_train_refuses_existing_outputs_before_any_work(capsys, tmp_path):
    (tmp_path / "m.onnx").write_bytes(b"a model the user keeps")
    # the data set does not even exist: the refusal comes first, from the arguments alone
    assert main(["train", "fno", "--data", str(tmp_path / "none.npz"), "--out", str(tmp_path / "m")]) == 2
    assert "m.onnx already exists; pass --force" in capsys.readouterr().err
    assert (tmp_path / "m.onnx").read_bytes() == b"a model the user keeps"


def test_a_crafted_checkpoint_cannot_run_code(capsys, tmp_path):
    import torch

    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return exec, (f"open({str(marker)!r}, 'w').write('code ran')",)

    evil = tmp_path / "evil.pt"
    torch.save({"name": "fno2d", "config": {}, "state_dict": {}, "info": {"x": Payload()}}, evil)
    assert main(["finetune", "--checkpoint", str(evil), "--data", str(tmp_path / "d")]) == 2
    assert "is not a plain accel checkpoint" in capsys.readouterr().err
    assert not marker.exists()
    assert main(["finetune", "--checkpoint", str(tmp_path), "--data", str(tmp_path / "d")]) == 2
    assert f"checkpoint {tmp_path} is a directory" in capsys.readouterr().err


@pytest.mark.parametrize("edit, message", [
    ({"grid_multiple": 0}, "'grid_multiple' is 0; expected a positive integer"),
    ({"dim": "2"}, "'dim' is '2'; expected a positive integer"),
    ({"train_grid": [64]}, "'train_grid' is (64,); expected empty or 2 positive integers"),
    ({"format": 99}, "format 99 is newer than this accel reads"),
    ({"surprise": 1}, "unknown fields surprise"),
])
def test_crafted_model_metadata_is_a_model_error(edit, message, tmp_path):
    import onnx

    from accel.plugins.neural_operator.surrogate import SHIPPED, Surrogate

    path = tmp_path / "crafted.onnx"
    shutil.copy(SHIPPED / "darcy_fno.onnx", path)
    model = onnx.load(str(path))
    (prop,) = [p for p in model.metadata_props if p.key == "accel"]
    prop.value = json.dumps(dict(json.loads(prop.value), **edit))
    onnx.save(model, str(path))
    with pytest.raises(ModelError, match=message.replace("(", r"\(").replace(")", r"\)")):
        modelmeta.read(path)
    with pytest.raises(ModelError, match="re-export the model with its recipe"):
        Surrogate(path)
    with pytest.raises(ModelError, match="is not JSON"):
        modelmeta.ModelMeta.from_json("{", "x.onnx")
    with pytest.raises(ModelError, match="JSON list, not an object"):
        modelmeta.ModelMeta.from_json("[1, 2]", "x.onnx")


def test_progress_bars_do_not_flood_a_log_file():
    import io
    import time

    from accel.progress import progress_bar

    log = io.StringIO()  # not a terminal, like a redirected stderr
    with progress_bar(total=400, desc="steps", file=log) as bar:
        for i in range(400):
            time.sleep(0.002)
            bar.update(1)
            bar.set_postfix(loss=f"{1 / (i + 1):.3e}")  # a loss shown every step must not force a line each
    # a terminal bar redraws ten times a second (about 9 lines here); a log gets the first and the last state
    assert log.getvalue().count("\r") <= 3 and "400/400" in log.getvalue()
    quiet = io.StringIO()
    for _ in progress_bar(range(10), file=quiet, enabled=False):
        pass
    assert quiet.getvalue() == ""
