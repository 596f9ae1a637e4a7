"""A plain PETSc C program on a DMDA of any extent: the neural PC from the options database, and PETSc's own
geometric multigrid as the baseline a PETSc user would pick."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NEURAL = ["-python", "-ksp_type", "fcg", "-ksp_fcg_mmax", "2", "-ksp_fcg_truncation_type", "standard",
          "-ksp_norm_type", "unpreconditioned", "-pc_type", "python", "-pc_python_type", "accel.NeuralPC",
          "-accel_threads", "1"]


@pytest.fixture(scope="module")
def driver():
    if shutil.which("mpicc") is None:
        pytest.fail("mpicc not found: scripts/setup.sh installs petsc-dev (which brings the MPI compilers)")
    make = subprocess.run(["make", "-s", "-C", str(ROOT / "examples" / "c"), "laplace3d"], capture_output=True,
                          text=True, timeout=120)
    assert make.returncode == 0, make.stderr
    return str(ROOT / "examples" / "c" / "laplace3d")


def _env():
    return {"PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", "")}


def _run(run_mpi, ranks, args):
    out = run_mpi(ranks, args, env=_env(), timeout=300)
    m = re.search(r"iterations (\d+) true_relative_residual (\S+)", out.stdout)
    assert out.returncode == 0 and m, out.stdout + out.stderr
    return int(m.group(1)), float(m.group(2))


def test_odd_and_mixed_extents_keep_the_iterations_of_the_power_of_two_grid(driver, run_mpi):
    base, _ = _run(run_mpi, 1, [driver, "-n", "32", *NEURAL])
    for size in (["-n", "33"], ["-nx", "33", "-ny", "31", "-nz", "29"]):
        its1, res1 = _run(run_mpi, 1, [driver, *size, *NEURAL])
        its2, res2 = _run(run_mpi, 2, [driver, *size, *NEURAL])
        assert res1 < 1e-8 and res2 < 1e-8
        assert its1 == its2 and its1 <= 1.3 * base, (size, its1, its2, base)


def test_pcmg_with_galerkin_operators_on_the_dmda(driver, run_mpi):
    its, res = _run(run_mpi, 2, [driver, "-n", "33", "-ksp_type", "cg", "-ksp_norm_type", "unpreconditioned",
                                 "-pc_type", "mg", "-pc_mg_levels", "4", "-pc_mg_galerkin", "both",
                                 "-mg_levels_ksp_type", "richardson", "-mg_levels_pc_type", "sor"])
    assert its <= 6 and res < 1e-8


def test_grid_smaller_than_the_network_takes_is_a_clear_error(driver, run_mpi):
    out = run_mpi(1, [driver, "-n", "3", *NEURAL], env=_env(), timeout=120)
    assert out.returncode != 0 and "the smallest grid extent the model takes" in out.stdout + out.stderr


def test_gamg_with_the_learned_finest_smoother_from_options_alone(driver, run_mpi):
    """accel.LearnedSmootherMG from an unmodified C program: no level index, any KSP (plain CG), 2 ranks."""
    cg = [driver, "-python", "-n", "33", "-ksp_type", "cg", "-ksp_norm_type", "unpreconditioned"]
    wrapped = ["-pc_type", "python", "-pc_python_type", "accel.LearnedSmootherMG"]
    gamg, _ = _run(run_mpi, 2, [*cg, "-pc_type", "gamg"])
    one, res1 = _run(run_mpi, 2, [*cg, *wrapped])
    two, res2 = _run(run_mpi, 2, [*cg, *wrapped, "-accel_fine_ksp_max_it", "2"])
    assert res1 < 1e-8 and res2 < 1e-8
    assert one <= gamg and two < gamg, (gamg, one, two)
