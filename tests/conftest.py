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
    # by name, not by absolute path: Open MPI treats an absolute mpirun path like --prefix and puts /usr/bin first on
    # the ranks' PATH, which would hide the venv's python3 from a C program that loads Python with -python
    cmd = ["mpirun", "-n", str(n)]
    if not Path(args[0]).is_file() or args[0].endswith(".py"):
        cmd.append(sys.executable)
    cmd += args
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=full_env, cwd=ROOT)


@pytest.fixture
def run_mpi():
    return mpirun


@pytest.fixture(scope="session")
def tiny_dcdm_models(tmp_path_factory):
    """Tiny DCDM models trained here in seconds: a 2D Poisson one, a 3D one and one whose output is NaN."""
    import torch

    from accel.plugins.dcdm.export import export
    from accel.plugins.dcdm.train import TrainConfig, train

    root = tmp_path_factory.mktemp("models")
    cycle = {"pre": 2, "post": 2, "omega": 0.67}
    net2, hist2 = train(TrainConfig(problem="poisson2d", grid=(32, 32), width=8, steps=150, samples=128, ritz=64,
                                    lr=3e-3, threads=1))
    export(net2, root / "p2.onnx", "poisson2d", (32, 32), cycle, "tests: tiny 2D")
    net3, _ = train(TrainConfig(problem="poisson3d", grid=(8, 8, 8), width=4, steps=5, samples=16, ritz=16, threads=1))
    export(net3, root / "p3.onnx", "poisson3d", (8, 8, 8), cycle, "tests: tiny 3D")
    with torch.no_grad():
        net2.out.weight.fill_(float("nan"))
    export(net2, root / "nan2.onnx", "poisson2d", (32, 32), cycle, "tests: NaN output")
    return {"p2": root / "p2.onnx", "p3": root / "p3.onnx", "nan2": root / "nan2.onnx", "net2_history": hist2}
