"""Bad input to the wos, aas and dcdm commands: argparse errors before any work, outputs refused without --force
and written whole (accel.files)."""
from __future__ import annotations

import numpy as np
import pytest

from accel.cli import main


def _argparse_error(capsys, argv, message):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


@pytest.mark.parametrize("argv, message", [
    (["wos", "--points-file", "missing.npy"], "argument --points-file: missing.npy does not exist"),
    (["wos", "--walks", "0"], "argument --walks: must be a positive integer, got 0"),
    (["wos", "--epsilon=-1e-3"], "argument --epsilon: must be a positive number"),
    (["train", "wos-no", "--steps", "-3"], "argument --steps: must be a positive integer, got -3"),
    (["train", "wos-no", "--methods", "pinn-time,wos"], "'pinn-time' needs 'wos' first"),
    (["train", "wos-no", "--methods", "wos,nope"], "unknown method(s) 'nope'"),
    (["train", "dcdm", "--steps", "-3", "--out", "neg.onnx"], "argument --steps: must be a positive integer"),
])
def test_bad_arguments_are_argparse_errors(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _argparse_error(capsys, argv, message)
    assert list(tmp_path.iterdir()) == []  # nothing written, not even a half-made model


def test_wos_output_is_refused_without_force_and_written_whole(capsys, tmp_path):
    out = tmp_path / "u.npz"
    out.write_bytes(b"keep")
    argv = ["wos", "--problem", "disk-harmonic", "--points", "0.1,0.2", "--walks", "200", "--out", str(out)]
    assert main(argv) == 2
    assert "u.npz already exists; pass --force" in capsys.readouterr().err and out.read_bytes() == b"keep"
    assert main(argv + ["--force"]) == 0
    with np.load(out) as f:
        x, y = f["points"][0]
        assert f["value"].shape == (1,) and abs(f["value"][0] - np.exp(x) * np.cos(y)) < 4 * f["stderr"][0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["u.npz"]


def test_pinn_training_refuses_an_occupied_output_folder(capsys, tmp_path):
    _argparse_error(capsys, ["train", "pinn", "--steps", "-3", "--out", str(tmp_path / "run")],
                    "argument --steps: must be a positive integer, got -3")
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "history.csv").write_text("results of an earlier run")
    assert main(["train", "pinn", "--steps", "2", "--out", str(tmp_path / "run")]) == 2
    assert "run already exists; pass --force" in capsys.readouterr().err
    assert (tmp_path / "run" / "history.csv").read_text() == "results of an earlier run"
