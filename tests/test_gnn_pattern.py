"""The gnn plugin's wider pattern (tril(A^2)), its PCMAT apply and the per-size choice of the network, on the real
stack: the factor's definition on a small matrix, CG iteration counts, the native apply against the Python PC,
and the same factor on 1 and 2 ranks with the doubled rings."""
from __future__ import annotations

import dataclasses
import shutil

import numpy as np
import pytest
import scipy.sparse as sp

from accel.components import PreconditionerConfig
from accel.errors import SolverConfigError
from accel.integrations.petsc.solvers import random_rhs, solve

from test_gnn import _petsc, _poisson

CG = {"ksp_type": "cg", "ksp_norm_type": "unpreconditioned"}
NEURAL = {**CG, "pc_type": "python", "pc_python_type": "accel.NeuralPC"}


@pytest.fixture(scope="session")
def tiny_a2(tmp_path_factory):
    """A tiny tril(A^2) model trained here in seconds."""
    from accel.plugins.gnn.export import export
    from accel.plugins.gnn.graph import Block, padded_graph
    from accel.plugins.gnn.train import TrainConfig, train

    root = tmp_path_factory.mktemp("gnn_a2")
    mats = [_poisson(10), _poisson(14)]
    net, _ = train(mats, TrainConfig(hidden=8, layers=1, steps=40, lr=1e-2, probes=8, loss="inverse", pattern="a2"))
    export(net, root / "a2.onnx", "tests: tiny a2", pattern="a2",
           check=padded_graph(Block.from_scipy(mats[0]), pattern="a2"))
    return str(root / "a2.onnx")


def test_square_pattern_graph_and_fsai_on_a_small_matrix():
    """The a2 graph's slots are exactly A^2's non-zeros (a_ij on A's, 0 on the fill-in); the FSAI factor is on
    tril(A^2) and meets its definition there: (G A)_ij = 0 for j in the pattern, j != i, and diag(G A G^T) = 1."""
    from accel.plugins.gnn.fsai import fsai_slot_values
    from accel.plugins.gnn.graph import Block, padded_graph

    A = _poisson(7)
    n = A.shape[0]
    g = padded_graph(Block.from_scipy(A), pattern="a2")
    slots = sp.csr_matrix((np.ones(int(g.valid.sum())), (np.nonzero(g.valid)[0], g.columns[g.valid])), shape=A.shape)
    square = (abs(A) @ abs(A)).tocsr()
    assert (slots != (square != 0)).nnz == 0
    d = np.sqrt(A.diagonal())
    values = sp.csr_matrix((g.edge[..., 0][g.valid], (np.nonzero(g.valid)[0], g.columns[g.valid])), shape=A.shape)
    np.testing.assert_allclose(values.toarray(), A.toarray() / np.outer(d, d), atol=1e-7)
    assert g.neighbours.shape[1] == 13  # the 5-point stencil squared

    indptr, cols, vals = g.lower_csr(fsai_slot_values(g, np.arange(n)), np.arange(n))
    G = sp.csr_matrix((vals, cols, indptr), shape=A.shape)
    assert (G != 0).nnz == sp.tril(square).nnz
    pattern = sp.tril(square).toarray() != 0
    np.fill_diagonal(pattern, False)
    assert np.abs((G @ A).toarray()[pattern]).max() < 1e-12
    np.testing.assert_allclose((G @ A @ G.T).diagonal(), 1.0, rtol=1e-12)


def test_fsai_on_the_square_pattern_takes_fewer_cg_iterations():
    """The wider pattern pays on a variable-coefficient 2D Laplacian (576 unknowns): 45 -> 33 CG iterations."""
    A = _petsc(_poisson(24))
    b = random_rhs(A)
    one = solve(A, b, {**NEURAL, "accel_plugin": "fsai"})
    two = solve(A, b, {**NEURAL, "accel_plugin": "fsai", "accel_gnn_pattern": "a2"})
    A.destroy()
    b.destroy()
    assert one.converged and two.converged and two.residual < 1e-7
    assert (one.iterations, two.iterations) == (45, 33)


def test_a2_model_reads_its_pattern_and_refuses_another(tiny_a2):
    from accel.plugins.gnn.preconditioner import GNNPreconditioner

    c = GNNPreconditioner(PreconditionerConfig(model=tiny_a2))
    assert (c.pattern, c.hops, c.rings) == ("a2", 2, 4)  # 1 layer: 2 hops of A^2's graph, 4 rings of A's
    c.destroy()
    with pytest.raises(SolverConfigError, match="gnn_pattern a differs from the pattern 'a2'"):
        GNNPreconditioner(PreconditionerConfig(model=tiny_a2, extra={"gnn_pattern": "a"}))


def test_shipped_a2_model_is_picked_by_the_pattern_option_and_beats_classical_fsai():
    """-accel_gnn_pattern a2 without a model: the shipped tril(A^2) model, on a gmsh plate it was not trained on,
    takes fewer CG iterations than classical FSAI on the same pattern, itself fewer than FSAI on tril(A)."""
    from accel.plugins.gnn.problems import diffusion

    p = diffusion("plate", 0.05, contrast=1e4, seed=123)
    its = [solve(p.A, p.b, {**NEURAL, "accel_plugin": plugin, **pattern}).iterations
           for plugin, pattern in (("fsai", {}), ("fsai", {"accel_gnn_pattern": "a2"}),
                                   ("gnn", {"accel_gnn_pattern": "a2"}))]
    p.destroy()
    assert its == [62, 42, 41]  # 996 unknowns


def test_refuses_a_model_of_an_unknown_pattern(tiny_a2, tmp_path):
    from accel import modelmeta
    from accel.errors import ModelError
    from accel.plugins.gnn.preconditioner import GNNPreconditioner

    path = tmp_path / "a3.onnx"
    shutil.copy(tiny_a2, path)
    meta = modelmeta.read(path)
    modelmeta.write(path, dataclasses.replace(meta, settings={**meta.settings, "pattern": "a3"}))
    with pytest.raises(ModelError, match="pattern 'a3', which this accel does not build"):
        GNNPreconditioner(PreconditionerConfig(model=str(path)))


def test_network_min_rows_gives_the_classical_factor(tiny_a2):
    """Below gnn_network_min_rows the component writes classical FSAI on its pattern (no network)."""
    from accel.plugins.gnn.preconditioner import FSAIPreconditioner, GNNPreconditioner

    A = _petsc(_poisson(8))
    c = GNNPreconditioner(PreconditionerConfig(model=tiny_a2, extra={"gnn_network_min_rows": 65}))
    f = FSAIPreconditioner(PreconditionerConfig(extra={"gnn_pattern": "a2"}))
    c.initialize(A)
    f.initialize(A)
    same = c.G.equal(f.G)
    assert c.breakdown["network"] == 0.0
    for obj in (c, f, A):
        obj.destroy()
    assert same


@pytest.mark.parametrize("apply", ["composite", "product"])
def test_native_cg_matches_the_python_apply(tiny_a2, apply):
    """PCMAT with M = G^T G: the same CG iterations as accel.NeuralPC with the same component."""
    from accel.integrations.petsc.solvers import Solver
    from accel.plugins.gnn.native import NativeFactor

    A = _petsc(_poisson(20))
    b = random_rhs(A)
    python = solve(A, b, {**NEURAL, "accel_plugin": "gnn", "accel_model": tiny_a2})
    solver = Solver(A, {**CG, "pc_type": "none"})
    native = NativeFactor(solver.ksp, "gnn", model=tiny_a2, apply=apply)
    result = solver.run(b)
    assert solver.ksp.getPC().getType() == "mat"
    native.destroy()
    solver.destroy()
    A.destroy()
    b.destroy()
    assert result.converged and result.residual < 1e-7
    assert result.iterations == python.iterations


def test_native_smoothers_match_the_python_smoothers():
    """GAMG with PCMAT smoothers (M = G^T G of each level) takes the iterations of GAMG with the Python PC smoother
    on every level; with FSAI below the finest level it is the same hierarchy with classical coarse smoothers."""
    from accel.integrations.petsc.solvers import Solver
    from accel.plugins.gnn.native import NativeSmoothers
    from accel.plugins.gnn.problems import diffusion

    p = diffusion("square", 24, contrast=1e4, cell="triangle")
    gamg = {**CG, "pc_type": "gamg"}
    python = solve(p.A, p.b, {**gamg, "mg_levels_pc_type": "python", "mg_levels_pc_python_type": "accel.NeuralPC",
                              "mg_levels_accel_plugin": "fsai"})
    counts = []
    for learned in (None, 1):
        solver = Solver(p.A, gamg)
        solver.ksp.setUp()
        native = NativeSmoothers(solver.ksp, "fsai", learned_levels=learned)
        levels = solver.ksp.getPC().getMGLevels()
        kinds = [solver.ksp.getPC().getMGSmoother(level).getPC().getType() for level in range(1, levels)]
        result = solver.run(p.b)
        native.destroy()
        solver.destroy()
        assert kinds == ["mat"] * (levels - 1) and result.converged
        counts.append(result.iterations)
    p.destroy()
    assert counts == [python.iterations] * 2


MPI_SCRIPT = r"""
import sys, json
import numpy as np
from petsc4py import PETSc
from accel.components import PreconditionerConfig
from accel.plugins.gnn.preconditioner import FSAIPreconditioner, GNNPreconditioner
viewer = PETSc.Viewer().createBinary(sys.argv[1], "r")
A = PETSc.Mat().load(viewer); viewer.destroy()
out = {}
for name, c in (("gnn", GNNPreconditioner(PreconditionerConfig(model=sys.argv[2]))),
                ("fsai", FSAIPreconditioner(PreconditionerConfig(extra={"gnn_pattern": "a2"})))):
    c.initialize(A)
    rows = [(int(i), [int(k) for k in c.G.getRow(i)[0]], [float(v) for v in c.G.getRow(i)[1]])
            for i in range(*c.G.getOwnershipRange())]
    rows = A.getComm().tompi4py().gather(rows)
    c.destroy()
    if A.getComm().rank == 0:
        out[name] = [r for part in rows for r in part]
if A.getComm().rank == 0:
    print("RESULT", json.dumps(out))
A.destroy()
"""


@pytest.mark.mpi
def test_a2_factor_is_the_same_on_one_and_two_ranks(tiny_a2, run_mpi, tmp_path):
    """The a2 pattern doubles the rings each rank reads: G (learned and classical) is the same on any partition."""
    import json

    from accel.matrixio import write_petsc_matrix

    write_petsc_matrix(tmp_path / "A.dat", _poisson(16))
    script = tmp_path / "run.py"
    script.write_text(MPI_SCRIPT)
    results = []
    for n in (1, 2):
        out = run_mpi(n, [str(script), str(tmp_path / "A.dat"), tiny_a2])
        assert out.returncode == 0, out.stderr[-2000:]
        results.append(json.loads([ln for ln in out.stdout.splitlines() if ln.startswith("RESULT")][0][7:]))
    for name in ("gnn", "fsai"):
        assert len(results[0][name]) == 256
        for (i, c1, v1), (j, c2, v2) in zip(results[0][name], results[1][name]):
            assert i == j and c1 == c2
            np.testing.assert_allclose(v1, v2, rtol=1e-5, atol=1e-7)


def test_a2_chunked_fallback_is_classical_fsai(tmp_path):
    """tril(A^2) in chunks (its FSAI per chunk, no whole-block pattern): a NaN network falls back to classical FSAI
    on tril(A^2), the same operator as the fsai component's."""
    import torch

    from accel.plugins.gnn.export import export
    from accel.plugins.gnn.network import GatedFactorGNN
    from accel.plugins.gnn.preconditioner import FSAIPreconditioner, GNNPreconditioner
    from test_gnn import _operator_dense

    net = GatedFactorGNN(hidden=4, layers=1)
    with torch.no_grad():
        net.out_own.bias.fill_(float("nan"))
    export(net, tmp_path / "nan-a2.onnx", "tests: NaN output", pattern="a2")
    A = _petsc(_poisson(8))
    with pytest.warns(RuntimeWarning, match="falling back to the classical FSAI"):
        M = _operator_dense(GNNPreconditioner(PreconditionerConfig(model=str(tmp_path / "nan-a2.onnx"),
                                                                   extra={"gnn_chunk": 9})), A)
    ref = _operator_dense(FSAIPreconditioner(PreconditionerConfig(extra={"gnn_pattern": "a2"})), A)
    A.destroy()
    np.testing.assert_allclose(M, ref, rtol=1e-12)
