"""The DCDM plugin: training lowers the DCDM loss, export matches torch, and the PC cuts iterations."""
from __future__ import annotations

import numpy as np
import pytest

from accel import modelmeta
from accel.integrations.petsc.solvers import random_rhs
from accel.integrations.petsc.solvers import solve
from accel.plugins.dcdm import problems
from accel.runtime import ModelSession


def test_training_lowers_the_dcdm_loss(tiny_dcdm_models):
    hist = tiny_dcdm_models["net2_history"]
    assert hist[-1]["smoothed"] < 0.5 * hist[0]["loss"]


@pytest.mark.parametrize("grid", [(32, 32), (48, 64), (128, 128)])
def test_onnx_runtime_matches_torch_on_several_grids(grid):
    import torch

    from accel.plugins.dcdm.export import check_onnx, export
    from accel.plugins.dcdm.network import build_model

    torch.manual_seed(0)
    net = build_model("dcdm-unet", dim=2, width=4).eval()
    path = f"/tmp/accel-test-export-{grid[0]}.onnx"
    export(net, path, "poisson2d", (16, 16), {}, "test")
    assert check_onnx(net, path, grid) < 1e-5


def test_exported_model_carries_metadata(tiny_dcdm_models):
    meta = modelmeta.read(tiny_dcdm_models["p2"])
    assert (meta.plugin, meta.dim, meta.layout, meta.problem, meta.grid_multiple) == ("dcdm", 2, "NCHW", "poisson2d", 4)
    assert meta.settings["cycle"] == {"pre": 2, "post": 2, "omega": 0.67}


def test_describe_reads_the_model_file_once_per_path(tiny_dcdm_models, monkeypatch):
    """Moving obstacles rebuild the levels, and so call describe, every step: the metadata is read once."""
    from accel.components import PreconditionerConfig
    from accel.plugins.dcdm.preconditioner import DCDMPreconditioner

    reads = []
    real_read = modelmeta.read
    monkeypatch.setattr(modelmeta, "read", lambda path: reads.append(path) or real_read(path))
    pc = DCDMPreconditioner(PreconditionerConfig(model=str(tiny_dcdm_models["p2"])))
    infos = [pc.describe(2) for _ in range(5)]
    assert len(reads) == 1
    assert {(i.train_grid, i.grid_multiple, i.cycle.pre, i.cycle.post) for i in infos} == {((32, 32), 4, 2, 2)}


def test_petsc_cycle_matches_the_torch_cycle_it_was_trained_with(tiny_dcdm_models):
    """The PC's PETSc two-grid cycle is the function the network was trained inside (float32 network)."""
    import torch
    from petsc4py import PETSc

    from accel.components import CycleSettings
    from accel.plugins.dcdm.cycle import apply_cycle
    from accel.plugins.dcdm.train import _sparse

    class OrtNet(torch.nn.Module):
        def __init__(self, path):
            super().__init__()
            self.s = ModelSession(path)

        def forward(self, x):
            return torch.from_numpy(self.s.run(x.numpy())).double()

    p = problems.build("poisson2d", (32, 32))
    A = problems.to_petsc(p.matrix)
    b = random_rhs(A, seed=3)
    pc = PETSc.PC().create()
    pc.setOperators(A)
    pc.setType("python")
    from accel import NeuralPC

    ctx = NeuralPC()
    PETSc.Options()["tcyc_accel_model"] = str(tiny_dcdm_models["p2"])
    PETSc.Options()["tcyc_accel_grid"] = "32,32"
    pc.setOptionsPrefix("tcyc_")
    pc.setPythonContext(ctx)
    pc.setFromOptions()
    pc.setUp()
    z = A.createVecLeft()
    pc.apply(b, z)
    ref = apply_cycle(OrtNet(tiny_dcdm_models["p2"]), _sparse(p.matrix).to(torch.float64),
                      torch.from_numpy(1 / p.matrix.diagonal())[:, None], torch.from_numpy(b.getArray().copy())[:, None],
                      (32, 32), CycleSettings(pre=2, post=2))
    got = z.getArray()
    assert np.linalg.norm(got - ref[:, 0].numpy()) / np.linalg.norm(got) < 1e-5
    for k in ("tcyc_accel_model", "tcyc_accel_grid"):
        PETSc.Options().delValue(k)
    pc.destroy()
    for v in (z, b, A):
        v.destroy()


def test_shipped_model_cuts_iterations_and_converges():
    p = problems.build("poisson2d", (64, 64))
    A = problems.to_petsc(p.matrix)
    b = random_rhs(A)
    icc = solve(A, b, "cg+icc", rtol=1e-8)
    nn = solve(A, b, "fcg2+neural", rtol=1e-8, extra={"accel_grid": "64,64"})
    none = solve(A, b, "fcg2+twogrid-none", rtol=1e-8, extra={"accel_grid": "64,64"})
    assert nn.residual < 1e-8 and nn.iterations <= icc.iterations / 3, (nn.iterations, icc.iterations)
    assert nn.iterations < none.iterations / 3, (nn.iterations, none.iterations)
    assert nn.pc_stats["applies"] >= nn.iterations
    A.destroy()
    b.destroy()


def test_half_resolution_network_without_sweeps_is_refused(tiny_dcdm_models):
    from accel.errors import SolverConfigError

    p = problems.build("poisson2d", (32, 32))
    A = problems.to_petsc(p.matrix)
    b = random_rhs(A)
    with pytest.raises(SolverConfigError, match="needs at least 1 Jacobi sweep"):
        solve(A, b, "fcg2+neural", rtol=1e-6, extra={"accel_model": str(tiny_dcdm_models["p2"]), "accel_grid": "32,32",
                                                     "accel_cycle_pre": 0, "accel_cycle_post": 0})
    A.destroy()
    b.destroy()


def test_ablations_bracket_the_network():
    """The same cycle with an exact coarse solve beats the network, and with no coarse correction loses to it."""
    p = problems.build("poisson2d", (64, 64))  # the shipped model's training grid
    A = problems.to_petsc(p.matrix)
    b = random_rhs(A)
    opts = {"accel_grid": "64,64", "accel_levels": 0}
    exact = solve(A, b, "fcg2+twogrid-exact", rtol=1e-8, extra=opts)
    none = solve(A, b, "fcg2+twogrid-none", rtol=1e-8, extra=opts)
    nn = solve(A, b, "fcg2+neural", rtol=1e-8, extra=opts)
    assert exact.iterations < nn.iterations < none.iterations, (exact.iterations, nn.iterations, none.iterations)
    A.destroy()
    b.destroy()


def test_levels_keep_iterations_flat_as_the_grid_grows():
    """Trained on 64^2, used on 64^2 .. 256^2 through the grid hierarchy: iterations barely grow (ICC's double)."""
    its = []
    for n in (64, 128, 256):
        p = problems.build("poisson2d", (n, n))
        A = problems.to_petsc(p.matrix)
        b = random_rhs(A)
        r = solve(A, b, "fcg2+neural", rtol=1e-8, extra={"accel_grid": f"{n},{n}"})
        assert r.pc_stats["levels"] == {64: 0, 128: 1, 256: 2}[n]
        its.append(r.iterations)
        A.destroy()
        b.destroy()
    assert its[-1] <= 1.5 * its[0], its


def test_obstacle_model_keeps_iterations_flat_and_below_a_third_of_icc():
    """The shipped obstacles model (energy loss, constant transfers recorded in its metadata, solid cells left out of
    the hierarchy): measured 26 / 27 / 29 iterations on 64^2 / 128^2 / 256^2 against ICC's 109 / 217 / 428."""
    its, icc = [], []
    for n in (64, 128, 256):
        p = problems.build("obstacles2d", (n, n))
        A = problems.to_petsc(p.matrix)
        b = random_rhs(A, solid=p.solid)
        r = solve(A, b, "fcg2+neural", rtol=1e-8, extra={"accel_grid": f"{n},{n}", "accel_problem": "obstacles2d"})
        assert r.residual < 1e-8 and r.pc_stats["interpolation"] == ("constant" if n > 64 else "")
        its.append(r.iterations)
        icc.append(solve(A, b, "cg+icc", rtol=1e-8).iterations)
        A.destroy()
        b.destroy()
    assert its[-1] <= 1.5 * its[0], its
    assert all(3 * a <= c for a, c in zip(its, icc)), (its, icc)


def test_train_command_writes_a_model_with_its_recipe_and_never_overwrites(tmp_path):
    import subprocess
    import sys

    out = tmp_path / "m.onnx"
    cmd = [sys.executable, "-m", "accel.cli", "train", "dcdm", "--problem", "poisson2d", "--grid", "16,16",
           "--steps", "5", "--ritz", "16", "--samples", "16", "--width", "4", "--threads", "1", "--no-progress",
           "--out", str(out)]
    first = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr
    meta = modelmeta.read(out)
    assert meta.recipe.startswith("accel train dcdm --problem poisson2d --grid 16,16") and "--steps 5" in meta.recipe
    assert (tmp_path / "m.log.jsonl").read_text().count("loss") >= 1
    before = out.read_bytes()
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert again.returncode == 2 and "exists; pass --force" in again.stderr
    assert out.read_bytes() == before


def test_energy_loss_ranks_an_exact_coarse_solve_first_where_the_residual_loss_does_not():
    """Why --loss energy exists: on the obstacle problem (Neumann walls, lowest eigenvalue ~5e-4) the DCDM paper's
    residual 2-norm scores the exact coarse solve worse than no coarse correction at all; the A-norm error does not."""
    import torch
    from scipy.sparse.linalg import splu

    from accel.integrations.petsc.hierarchy import interpolation
    from accel.plugins.dcdm import spectrum
    from accel.components import CycleSettings
    from accel.plugins.dcdm.cycle import apply_cycle, coupled_rows, dcdm_loss, energy_loss
    from accel.plugins.dcdm.train import _sparse

    shape = (32, 32)
    prob = problems.build("obstacles2d", shape)
    _, vecs = spectrum.ritz_vectors(prob.matrix, 32)
    b = torch.from_numpy(spectrum.training_rhs(vecs, 64)).T.double().contiguous()
    x = torch.from_numpy(splu(prob.matrix.tocsc()).solve(b.numpy()))
    A = _sparse(prob.matrix).to(torch.float64)
    dinv = torch.from_numpy(1 / prob.matrix.diagonal())[:, None]
    mask = torch.from_numpy(coupled_rows(prob.matrix)).double()[:, None]
    P = interpolation(shape)
    lu = splu((P.T @ prob.matrix @ P).tocsc())

    def exact(inp):
        r = inp[:, 0].reshape(inp.shape[0], -1).numpy().T
        return torch.from_numpy((P @ lu.solve(P.T @ r)).T.copy()).reshape(inp.shape[0], 1, *shape)

    def none(inp):
        return inp

    z = {name: apply_cycle(f, A, dinv, b, shape, CycleSettings(pre=2, post=2), mask=mask) for name, f in [("exact", exact), ("none", none)]}
    res = {k: float(dcdm_loss(A, b, v)) for k, v in z.items()}
    eng = {k: float(energy_loss(A, b, x, v)) for k, v in z.items()}
    assert res["exact"] > res["none"], res
    assert eng["exact"] < 0.8 * eng["none"], eng


def test_coupled_rows_agree_between_training_and_the_petsc_cycle():
    from accel.integrations.petsc.cycle import TwoGridCycle
    from accel.plugins.dcdm.cycle import coupled_rows

    prob = problems.build("obstacles2d", (32, 32))
    expected = (~prob.solid).ravel()
    assert np.array_equal(coupled_rows(prob.matrix) > 0, expected)
    A = problems.to_petsc(prob.matrix)
    cyc = TwoGridCycle(A, 2, 2, 0.67)
    assert np.array_equal(cyc.coupled.getArray() > 0, expected)
    cyc.destroy()
    poisson = problems.to_petsc(problems.build("poisson2d", (16, 16)).matrix)
    cyc = TwoGridCycle(poisson, 2, 2, 0.67)
    assert cyc.coupled is None  # nothing to mask: no extra work per apply
    cyc.destroy()
    A.destroy()
    poisson.destroy()
