"""The gnn factor trained as a multigrid smoother: the ``twogrid`` loss (the S-norm error after a two-grid cycle on
the interpolation PETSc GAMG makes on the training matrix, the factor's sweep before and after)."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from accel.errors import AccelError


def _diffusion(n: int) -> sp.csr_matrix:
    """2D 5-point diffusion with a coefficient jumping by 100 on a stripe pattern, unevenly scaled rows (SPD)."""
    T = sp.diags([-1, 2, -1], [-1, 0, 1], shape=(n, n))
    A = sp.kronsum(T, T).tocsr()
    k = 1.0 + 99.0 * ((np.arange(n * n) // n) % 5 == 0)
    D = sp.diags(np.sqrt(k))
    return (D @ A @ D).tocsr()


def test_coarse_correction_is_the_exact_S_orthogonal_projection():
    """After the coarse correction the error is S-orthogonal to the coarse space (P_s^T S e = 0), and a coarse
    vector is removed entirely: the loss's coarse step is GAMG's Galerkin correction in the scaled variables."""
    import torch

    from accel.plugins.gnn.train import _Sample, gamg_interpolation

    A = _diffusion(24)
    P = gamg_interpolation(A)
    sample = _Sample(A, coarse=True)
    assert P.shape[0] == 576 and 20 < P.shape[1] < 300
    e = torch.randn(576, 3, generator=torch.Generator().manual_seed(0))
    corrected = sample.coarse.correct(sample.S, e)
    residual = sample.coarse.Pt @ (sample.S @ corrected).double()
    assert float(residual.abs().max()) < 1e-5 * float((sample.coarse.Pt @ (sample.S @ e).double()).abs().max())
    coarse_vector = (sample.coarse.P @ torch.randn(P.shape[1], 1, dtype=torch.float64)).float()
    assert float(sample.coarse.correct(sample.S, coarse_vector).norm()) < 1e-4 * float(coarse_vector.norm())


def test_twogrid_training_lowers_the_two_grid_error():
    """40 steps on one 576-row matrix lower the two-grid error from classical FSAI's (the untrained network), on 32
    held-out probes: the mean (the probes as drawn) by 7%; with ``cycles`` (the probes first run through 5 cycles,
    so the loss sees the slowest modes) the error of the slowest modes (20 cycles first) by 2% (measured 0.929 and
    0.977 of FSAI's: a tril(A) factor has little room as a one-sweep smoother, see docs/benchmarks/gnn.md)."""
    import torch

    from accel.plugins.gnn.network import build_network
    from accel.plugins.gnn.train import TrainConfig, _Sample, loss_value, probes, train

    A = _diffusion(24)
    sample = _Sample(A, coarse=True)
    w = probes(sample, 32, 4, torch.Generator().manual_seed(123))
    fsai_factor = build_network("gated", 8, 1)(*sample.inputs)
    ratios = {}
    for cycles in (0, 5):
        net, history = train([A], TrainConfig(hidden=8, layers=1, steps=40, lr=3e-2, loss="twogrid", probes=8,
                                               seed=0, cycles=cycles))
        with torch.no_grad():
            seen = 20 if cycles else 0
            ratios[cycles] = (float(loss_value("twogrid", net(*sample.inputs), sample, w, seen))
                              / float(loss_value("twogrid", fsai_factor, sample, w, seen)))
    assert ratios[0] < 0.95 and ratios[5] < 0.985, ratios


def test_twogrid_needs_a_coarse_level():
    from accel.plugins.gnn.train import TrainConfig, train

    diagonal = sp.diags(np.linspace(1.0, 2.0, 30)).tocsr()  # no couplings: GAMG keeps one level (any size)
    with pytest.raises(AccelError, match="GAMG made one level on a 30-row training matrix"):
        train([_diffusion(8), diagonal], TrainConfig(hidden=4, layers=1, steps=1, loss="twogrid"))


def test_train_command_with_the_twogrid_loss_keeps_its_recipe(tmp_path):
    import subprocess
    import sys

    from accel import modelmeta
    from accel.matrixio import write_petsc_matrix
    from conftest import ROOT

    write_petsc_matrix(tmp_path / "A_0.dat", _diffusion(12))
    out = tmp_path / "m.onnx"

    def accel(*extra):
        return subprocess.run([sys.executable, "-m", "accel.cli", "train", "gnn", "--matrices",
                               str(tmp_path / "A_*.dat"), "--steps", "3", "--hidden", "4", "--layers", "1",
                               "--no-progress", "--out", str(out), *extra],
                              capture_output=True, text=True, cwd=ROOT, timeout=300)

    r = accel("--loss", "twogrid", "--cycles", "2")
    assert r.returncode == 0, r.stderr
    assert "--loss twogrid" in modelmeta.read(out).recipe and "--cycles 2" in modelmeta.read(out).recipe
    bad = accel("--loss", "twogrid", "--cycles", "-1", "--force")
    assert bad.returncode == 2 and "--cycles" in bad.stderr and "Traceback" not in bad.stderr
