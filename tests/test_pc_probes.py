"""Probes a careless user makes with the PETSc neural PC: each ends with one clear error (or a correct answer)."""
from __future__ import annotations

import subprocess
import sys

import pytest

from accel.errors import AccelError, GridError, ModelError, SolverConfigError
from accel.integrations.petsc.options import FLEXIBLE_KSP
from accel.integrations.petsc.solvers import random_rhs, solve
from accel.plugins.dcdm import problems


@pytest.fixture
def poisson2d():
    A = problems.to_petsc(problems.build("poisson2d", (32, 32)).matrix)
    b = random_rhs(A)
    yield A, b
    A.destroy()
    b.destroy()


def test_pgmres_is_not_offered_as_flexible(poisson2d):
    """pgmres stalls with a network preconditioner (measured: 548 iterations against 11 for fgmres): refused, not
    recommended."""
    assert "pgmres" not in FLEXIBLE_KSP
    with pytest.raises(SolverConfigError, match=r"KSP type 'pgmres' cannot use.*fgmres") as info:
        solve(*poisson2d, {"ksp_type": "pgmres", "pc_type": "python", "pc_python_type": "accel.NeuralPC"},
              extra={"accel_grid": "32,32"})
    assert "pgmres" not in str(info.value).split("Use one of")[1]


def test_unknown_fallback_pc_is_refused_at_set_up(poisson2d):
    with pytest.raises(SolverConfigError, match=r"-accel_fallback 'nosuchpc' is not a PETSc PC type; valid: none,.*jacobi"):
        solve(*poisson2d, "fcg2+neural", extra={"accel_grid": "32,32", "accel_fallback": "nosuchpc"})


def test_grid_option_contradicting_the_dmda_is_refused():
    from petsc4py import PETSc

    n = 16
    A = problems.to_petsc(problems.build("poisson3d", (n, n, n)).matrix)
    b = random_rhs(A)
    da = PETSc.DMDA().create([n, n, n], dof=1, stencil_width=1)
    try:
        with pytest.raises(GridError, match=r"-accel_grid 64,64 contradicts the attached DMDA's grid 16,16,16"):
            solve(A, b, "fcg2+neural", dm=da, extra={"accel_grid": "64,64"})
        agreeing = solve(A, b, "fcg2+neural", dm=da, extra={"accel_grid": "16,16,16"})
        assert agreeing.residual < 1e-8 and agreeing.iterations <= 15
    finally:
        for obj in (da, A, b):
            obj.destroy()


def test_a_directory_given_as_the_model_says_so(poisson2d, tmp_path):
    with pytest.raises(ModelError, match=r"is a directory, not an \.onnx file; pass the \.onnx file"):
        solve(*poisson2d, "fcg2+neural", extra={"accel_grid": "32,32", "accel_model": str(tmp_path)})


def test_every_model_reader_names_a_directory_and_the_fix(tmp_path):
    """The metadata reader, the ONNX session and the DCDM component share one check (accel.modelmeta)."""
    from accel import modelmeta
    from accel.components import PreconditionerConfig
    from accel.plugins.dcdm.preconditioner import DCDMPreconditioner
    from accel.runtime import ModelSession

    readers = {"modelmeta.read": lambda: modelmeta.read(tmp_path), "ModelSession": lambda: ModelSession(tmp_path),
               "dcdm describe": lambda: DCDMPreconditioner(PreconditionerConfig(model=str(tmp_path))).describe(2)}
    for name, read in readers.items():
        with pytest.raises(ModelError, match=rf"model path {tmp_path} is a directory, not an \.onnx file") as info:
            read()
        assert "\n" not in str(info.value), name
    with pytest.raises(ModelError, match=r"does not exist; pass an existing \.onnx file or omit the model option"):
        ModelSession(tmp_path / "missing.onnx")


def test_a_2d_model_on_a_3d_problem_names_both_dimensions(tiny_dcdm_models):
    A = problems.to_petsc(problems.build("poisson3d", (8, 8, 8)).matrix)
    b = random_rhs(A)
    try:
        with pytest.raises(ModelError, match=r"trained for 2D problems \(poisson2d\) but the problem is 3D") as info:
            solve(A, b, "fcg2+neural", extra={"accel_grid": "8,8,8", "accel_model": str(tiny_dcdm_models["p2"])})
        assert "0x0" not in str(info.value)
    finally:
        A.destroy()
        b.destroy()


def test_an_error_in_set_up_from_python_prints_its_traceback_once(tmp_path):
    script = tmp_path / "fails.py"
    script.write_text(
        "import petsc4py; petsc4py.init([])\n"
        "from accel.integrations.petsc.solvers import random_rhs, solve\n"
        "from accel.plugins.dcdm import problems\n"
        "A = problems.to_petsc(problems.build('poisson2d', (8, 8)).matrix); b = random_rhs(A)\n"
        "solve(A, b, 'fcg2+neural', extra={'accel_grid': '8,8', 'accel_smoother': 'gauss'})\n")
    res = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert res.returncode != 0
    assert res.stderr.count("Traceback (most recent call last)") == 1, res.stderr
    assert res.stderr.count("-accel_smoother 'gauss' is not supported") == 1, res.stderr


def test_an_error_in_set_up_from_c_prints_its_traceback_once(run_mpi):
    import os
    import shutil
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    if shutil.which("mpicc") is None:
        pytest.fail("mpicc not found: scripts/setup.sh installs petsc-dev (which brings the MPI compilers)")
    make = subprocess.run(["make", "-s", "-C", str(root / "examples" / "c"), "laplace3d"], capture_output=True,
                          text=True, timeout=120)
    assert make.returncode == 0, make.stderr
    env = {"PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", "")}
    res = run_mpi(1, [str(root / "examples" / "c" / "laplace3d"), "-n", "8", "-python", "-ksp_type", "cg",
                      "-pc_type", "python", "-pc_python_type", "accel.NeuralPC"], env=env)
    assert res.returncode != 0
    assert res.stderr.count("Traceback (most recent call last)") == 1, res.stderr
    assert "KSP type 'cg' cannot use the neural preconditioner" in res.stderr
