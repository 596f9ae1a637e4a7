"""Shared test helpers: the real stack only (PETSc, DOLFINx, ONNX Runtime, mpirun)."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def mpirun(n: int, args: list[str], timeout: float = 300, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run ``python args`` (or a program if args[0] is a path to one) under ``mpirun -n n``; returns the result."""
    exe = shutil.which("mpirun")
    if exe is None:
        pytest.fail("mpirun not found: run scripts/setup.sh (it installs OpenMPI with DOLFINx)")
    full_env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
                    OMPI_MCA_rmaps_base_oversubscribe="1", OMP_NUM_THREADS="1", **(env or {}))
    cmd = [exe, "-n", str(n)]
    if not Path(args[0]).is_file() or args[0].endswith(".py"):
        cmd.append(sys.executable)
    cmd += args
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=full_env, cwd=ROOT)


@pytest.fixture
def run_mpi():
    return mpirun
