"""Training on a user's own operator family: PETSc binary matrices through the CLI, (shape, matrix) pairs through
Python, the recipe stored in the model, and every bad input a clear error."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import scipy.sparse as sp

from accel import modelmeta
from accel.errors import AccelError
from accel.integrations.petsc.solvers import random_rhs, solve
from accel.plugins.dcdm import problems
from accel.matrixio import read_petsc_matrix, write_petsc_matrix

TINY = ["--steps", "30", "--ritz", "16", "--samples", "32", "--width", "4", "--threads", "1", "--no-progress"]


def reaction_diffusion(shape, seed):
    """A member of a small SPD family: the Laplacian plus a random positive reaction term."""
    rng = np.random.default_rng(seed)
    return (problems.poisson(shape) + sp.diags(rng.uniform(0.0, 0.5, int(np.prod(shape))))).tocsr()


def petsc_files(folder, shape, count=3):
    """Written by PETSc itself (MatView with a binary viewer, as -ksp_view_mat binary:FILE does)."""
    from petsc4py import PETSc

    folder.mkdir(exist_ok=True)
    for i in range(count):
        A = problems.to_petsc(reaction_diffusion(shape, i), comm=PETSc.COMM_SELF)
        viewer = PETSc.Viewer().createBinary(str(folder / f"A_{i}.dat"), "w", comm=PETSc.COMM_SELF)
        A.view(viewer)
        viewer.destroy()
        A.destroy()
    return str(folder / "A_*.dat")


def train(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "accel.cli", "train", "dcdm", *args], capture_output=True, text=True,
                          timeout=300, cwd=cwd)


def test_reader_matches_what_petsc_writes(tmp_path):
    pattern = petsc_files(tmp_path / "m", (6, 5), count=1)
    A = read_petsc_matrix(pattern.replace("*", "0"))
    assert abs(A - reaction_diffusion((6, 5), 0)).max() == 0
    write_petsc_matrix(tmp_path / "w.dat", A)
    assert (tmp_path / "w.dat").read_bytes() == (tmp_path / "m" / "A_0.dat").read_bytes()


def test_cli_trains_on_petsc_matrices_and_the_model_preconditions_a_held_out_member(tmp_path):
    pattern = petsc_files(tmp_path / "m", (16, 16))
    out = tmp_path / "own.onnx"
    res = train("--matrices", pattern, "--grid", "16,16", "--name", "reaction", *TINY, "--out", str(out))
    assert res.returncode == 0, res.stderr
    meta = modelmeta.read(out)
    assert meta.problem == "reaction" and meta.train_grid == (16, 16) and meta.dim == 2
    assert meta.recipe.startswith(f"accel train dcdm --matrices '{pattern}' --name reaction --grid 16,16")
    A = problems.to_petsc(reaction_diffusion((16, 16), 99))
    b = random_rhs(A)
    r = solve(A, b, "fcg2+neural", extra={"accel_model": str(out), "accel_grid": "16,16", "accel_threads": 1})
    cg = solve(A, b, "cg")
    assert r.residual < 1e-8 and r.iterations < cg.iterations
    A.destroy()
    b.destroy()


def test_python_entry_point_takes_shape_matrix_pairs(tmp_path):
    from accel.plugins.dcdm.fit import fit

    pairs = [((12, 16), reaction_diffusion((12, 16), i)) for i in range(2)]
    meta, history, _ = fit(pairs, tmp_path / "py.onnx", steps=20, ritz=16, samples=32, width=4, threads=1)
    assert meta.train_grid == (12, 16) and meta.problem == "custom" and np.isfinite(history[-1]["loss"])
    assert meta.recipe.startswith("python: accel.plugins.dcdm.fit.fit(2 operator(s) on ['12x16']")
    assert modelmeta.read(tmp_path / "py.onnx").recipe == meta.recipe
    with pytest.raises(AccelError, match="already exists"):
        fit(pairs, tmp_path / "py.onnx", steps=1)
    with pytest.raises(AccelError, match=r"operator 0 is 192x192 but its grid 8x8 has 64 points"):
        fit([((8, 8), pairs[0][1])], tmp_path / "bad.onnx", steps=1)


def test_matrix_of_the_wrong_size_for_the_grid(tmp_path):
    pattern = petsc_files(tmp_path / "m", (6, 5), count=1)
    res = train("--matrices", pattern, "--grid", "8,8", *TINY, "--out", str(tmp_path / "x.onnx"))
    assert res.returncode == 2 and "is a 30x30 matrix but --grid 8,8 has 64 points" in res.stderr
    assert "Traceback" not in res.stderr and not (tmp_path / "x.onnx").exists()


def test_file_that_is_not_a_petsc_matrix(tmp_path):
    (tmp_path / "A_0.dat").write_bytes(b"not a matrix at all")
    res = train("--matrices", str(tmp_path / "A_*.dat"), "--grid", "4,4", *TINY, "--out", str(tmp_path / "x.onnx"))
    assert res.returncode == 2 and "is not a PETSc binary matrix" in res.stderr and "Traceback" not in res.stderr


def test_glob_that_matches_nothing(tmp_path):
    res = train("--matrices", str(tmp_path / "none_*.dat"), "--grid", "4,4", *TINY, "--out", str(tmp_path / "x.onnx"))
    assert res.returncode == 2 and "matches no file" in res.stderr


def test_matrices_need_a_grid_and_exclude_a_problem(tmp_path):
    pattern = petsc_files(tmp_path / "m", (6, 5), count=1)
    res = train("--matrices", pattern, *TINY, "--out", str(tmp_path / "x.onnx"))
    assert res.returncode == 2 and "--matrices needs --grid" in res.stderr
    res = train("--matrices", pattern, "--problem", "poisson2d", "--grid", "5,6", *TINY, "--out", str(tmp_path / "x.onnx"))
    assert res.returncode == 2 and "exclude each other" in res.stderr


def test_model_trained_for_another_dimension_is_refused_on_the_problem(tiny_dcdm_models):
    """A 2D model on a 3D grid: a clear error before any solve."""
    from accel.errors import GridError, ModelError

    A = problems.to_petsc(problems.build("poisson3d", (8, 8, 8)).matrix)
    b = random_rhs(A)
    with pytest.raises((GridError, ModelError), match=r"2D"):
        solve(A, b, "fcg2+neural", extra={"accel_model": str(tiny_dcdm_models["p2"]), "accel_grid": "8,8,8"})
    A.destroy()
    b.destroy()
