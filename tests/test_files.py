"""accel.files: outputs are complete or absent, existing ones refused without --force; accel.cliargs validators."""
from __future__ import annotations

import argparse

import numpy as np
import pytest

from accel.cliargs import existing_file, int_list, positive_int
from accel.files import OutputExistsError, atomic_output, refuse_existing


def _leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if ".partial" in p.name)


def test_success_renames_and_failure_leaves_nothing(tmp_path):
    out = tmp_path / "sub" / "y.npy"
    with atomic_output(out) as tmp:
        assert tmp.parent == out.parent and tmp.suffix == ".npy" and not out.exists()
        np.save(tmp, np.arange(3))
    assert np.load(out).tolist() == [0, 1, 2]
    bad = tmp_path / "sub" / "z.npy"
    with pytest.raises(RuntimeError, match="boom"):
        with atomic_output(bad) as tmp:
            np.save(tmp, np.arange(3))
            raise RuntimeError("boom")
    assert not bad.exists() and _leftovers(out.parent) == []


def test_existing_output_refused_without_force_and_kept(tmp_path):
    out = tmp_path / "d.npz"
    out.write_bytes(b"user data")
    with pytest.raises(OutputExistsError, match=r"d.npz already exists; pass --force"):
        with atomic_output(out) as tmp:
            tmp.write_bytes(b"new")
    assert out.read_bytes() == b"user data"
    with pytest.raises(OutputExistsError, match="--force"):
        refuse_existing(tmp_path / "other", out)
    with atomic_output(out, force=True) as tmp:
        tmp.write_bytes(b"new")
    assert out.read_bytes() == b"new" and _leftovers(tmp_path) == []


def test_several_files_are_renamed_together_or_not_at_all(tmp_path):
    a, b = tmp_path / "x.npz", tmp_path / "x.json"
    with pytest.raises(ValueError):
        with atomic_output(a, b) as (ta, tb):
            ta.write_text("1")
            raise ValueError
    assert not a.exists() and not b.exists()
    with atomic_output(a, b) as (ta, tb):
        ta.write_text("1")
        tb.write_text("2")
    assert a.read_text() == "1" and b.read_text() == "2"


def test_folder_output(tmp_path):
    out = tmp_path / "run"
    with atomic_output(out, folder=True) as tmp:
        (tmp / "log.csv").write_text("a")
    assert (out / "log.csv").read_text() == "a"
    with atomic_output(out, folder=True, force=True) as tmp:
        (tmp / "new.csv").write_text("b")
    assert sorted(p.name for p in out.iterdir()) == ["new.csv"] and _leftovers(tmp_path) == []


def test_argument_types():
    assert positive_int("3") == 3 and int_list("64,32") == (64, 32)
    for bad in ("0", "-3", "x"):
        with pytest.raises(argparse.ArgumentTypeError):
            positive_int(bad)
    with pytest.raises(argparse.ArgumentTypeError, match="positive"):
        int_list("64,0")
    with pytest.raises(argparse.ArgumentTypeError, match="is a directory"):
        existing_file("/")
    with pytest.raises(argparse.ArgumentTypeError, match="does not exist"):
        existing_file("/no/such/file.npy")


def test_a_folder_is_never_replaced_by_a_file_even_with_force(tmp_path):
    (tmp_path / "keep").mkdir()
    (tmp_path / "keep" / "data.txt").write_text("x")
    with pytest.raises(OutputExistsError, match="is a directory; give a file path"):
        with atomic_output(tmp_path / "keep", force=True) as tmp:
            tmp.write_text("y")
    assert (tmp_path / "keep" / "data.txt").read_text() == "x"
    (tmp_path / "f.txt").write_text("z")
    with pytest.raises(OutputExistsError, match="is a file; give a folder path"):
        with atomic_output(tmp_path / "f.txt", force=True, folder=True):
            pass
