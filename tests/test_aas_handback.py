"""AAS plugin: the PINN handed back to DOLFINx/PETSc as a CG initial guess (real ONNX Runtime, PETSc, mpirun -n 2)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from accel.errors import ModelError
from accel.plugins.aas.export import export_onnx
from accel.plugins.aas.handback import handback
from accel.plugins.aas.problems import get_problem

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "plugins" / "aas" / "models" / "layer2d_pinn.onnx"  # boundary-layer PINN trained with AAS, rel L2 0.08


def test_shipped_pinn_saves_cg_iterations():
    r = handback(SHIPPED, n=64, rtol=1e-8, pc="none")
    assert r.dofs == 65 * 65
    assert r.its_zero == 177  # zero guess, CG without PC, rtol 1e-8 (deterministic)
    assert r.its_guess < r.its_zero and r.saved >= 3  # measured 170: an 8 % guess saves little (docs/benchmarks/aas.md)
    assert r.guess_rel_err < 0.1


def test_handback_under_mpi(run_mpi):
    res = run_mpi(2, [str(ROOT / "examples" / "aas" / "handback_petsc.py"), str(SHIPPED), "--n", "64"])
    assert res.returncode == 0, res.stderr[-2000:]
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out["ranks"] == 2 and out["dofs"] == 65 * 65
    assert abs(out["its_zero"] - 177) <= 3 and out["its_guess"] < out["its_zero"]


def test_shipped_model_is_listed_by_the_registry():
    from accel.registry import get_registry

    assert SHIPPED in get_registry().model_files("aas")


def test_handback_refuses_a_5d_pinn(tmp_path):
    import torch

    from accel.plugins.aas.model import PINN

    prob = get_problem("peak5d")
    torch.manual_seed(0)
    path = export_onnx(PINN(prob.domain, 4, 1), tmp_path / "p5.onnx", prob, recipe="test")
    with pytest.raises(ModelError, match="5D PINN"):
        handback(path, n=8)
