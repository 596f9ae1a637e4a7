"""The gnn plugin on the real stack: ONNX Runtime against torch, the factor's algebra, CG solves on DOLFINx
matrices (any cell type, P1/P2), the partition-independent MPI set-up, training, and every bad input."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import scipy.sparse as sp

from accel.components import PreconditionerConfig
from accel.errors import ModelError
from accel.integrations.petsc.solvers import solve

from conftest import ROOT


def _poisson(n: int = 12) -> sp.csr_matrix:
    """2D 5-point Laplacian with a variable coefficient and Dirichlet rows eliminated (SPD, scaled unevenly)."""
    T = sp.diags([-1, 2, -1], [-1, 0, 1], shape=(n, n))
    A = sp.kronsum(T, T).tocsr()
    k = 1.0 + 9.0 * (np.arange(n * n) % 7 == 0)
    D = sp.diags(np.sqrt(k))
    return (D @ A @ D).tocsr()


def _petsc(A: sp.csr_matrix, comm=None):
    from petsc4py import PETSc

    A = sp.csr_matrix(A)
    M = PETSc.Mat().createAIJ(size=A.shape, csr=(A.indptr, A.indices, A.data), comm=comm or PETSc.COMM_SELF)
    M.assemble()
    return M


@pytest.fixture(scope="session")
def tiny_gnn(tmp_path_factory):
    """Tiny models trained here in seconds: a working one, one for another problem kind, one with NaN output."""
    import torch

    from accel.plugins.gnn.export import export
    from accel.plugins.gnn.graph import Block, padded_graph
    from accel.plugins.gnn.train import TrainConfig, train

    root = tmp_path_factory.mktemp("gnn")
    mats = [_poisson(10), _poisson(14)]
    net, history = train(mats, TrainConfig(hidden=8, layers=2, steps=60, lr=1e-2, probes=8))
    check = padded_graph(Block.from_scipy(mats[0]))
    export(net, root / "tiny.onnx", "tests: tiny", check=check)
    export(net, root / "vector.onnx", "tests: another kind", problem="spd-vector3")
    with torch.no_grad():
        net.out_own.bias.fill_(float("nan"))
    export(net, root / "nan.onnx", "tests: NaN output")
    return {"tiny": str(root / "tiny.onnx"), "vector": str(root / "vector.onnx"), "nan": str(root / "nan.onnx"),
            "history": history, "root": root}


def _gnn(model, **extra):
    from accel.plugins.gnn.preconditioner import GNNPreconditioner

    return GNNPreconditioner(PreconditionerConfig(model=model, extra=extra))


def _fsai():
    from accel.plugins.gnn.preconditioner import FSAIPreconditioner

    return FSAIPreconditioner(PreconditionerConfig())


def _applied_dense(component, A) -> np.ndarray:
    """The set-up component's M as a dense matrix, column by column through its apply."""
    n = A.getSize()[0]
    x, y = A.createVecRight(), A.createVecLeft()
    M = np.zeros((n, n))
    for j in range(n):
        x.set(0.0)
        x.setValue(j, 1.0)
        x.assemble()
        component.apply(x, y)
        M[:, j] = y.getArray()
    x.destroy()
    y.destroy()
    return M


def _operator_dense(component, A) -> np.ndarray:
    """M of a fresh set-up on A as a dense matrix (the component is destroyed after)."""
    component.initialize(A)
    M = _applied_dense(component, A)
    component.destroy()
    return M


# -- the network in ONNX ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["gated", "mlp"])
def test_onnx_matches_torch_with_repeated_indices(tiny_gnn, kind):
    """Padded slots and a row listing the same neighbour twice: ONNX Runtime's Gather + ReduceSum sums them like
    torch (index_add_ would not), for both architectures."""
    import torch

    from accel.plugins.gnn.export import INPUTS
    from accel.plugins.gnn.graph import Block, padded_graph
    from accel.plugins.gnn.network import build_network
    from accel.runtime import ModelSession

    g = padded_graph(Block.from_scipy(_poisson(6)))
    g.neighbours[3, :] = g.neighbours[3, 0]  # every slot of row 3 gathers the same node
    g.edge[3, :, 0] = 0.3
    g.edge[3, :, 1] = 1.0
    g.edge[3, :, 2:] = 0.0
    torch.manual_seed(0)
    net = build_network(kind, hidden=8, layers=2)
    for p in net.parameters():  # a non-trivial output (the trained init is zero)
        torch.nn.init.normal_(p, std=0.2)
    from accel.plugins.gnn.export import export

    path = tiny_gnn["root"] / f"random-{kind}.onnx"
    export(net, path, "tests: random weights", force=True)
    with torch.no_grad():
        ref = net(*(torch.from_numpy(a) for a in (g.node, g.edge, g.neighbours))).numpy()
    out = ModelSession(path, inputs=INPUTS).run_feeds(g.inputs())
    assert np.abs(out).max() > 1e-2
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-6)


def test_model_metadata(tiny_gnn):
    from accel import modelmeta

    m = modelmeta.read(tiny_gnn["tiny"])
    assert (m.plugin, m.problem, m.settings["rings"]) == ("gnn", "spd-scalar", 3)
    assert m.recipe == "tests: tiny"


# -- the factor's algebra -------------------------------------------------------------------------------------------------
def test_fsai_satisfies_its_definition():
    """(G A)_ij = 0 for j in the lower pattern of row i, j != i, and (G A G^T)_ii = 1."""
    from accel.plugins.gnn.fsai import fsai_slot_values
    from accel.plugins.gnn.graph import Block, padded_graph

    A = _poisson(8)
    g = padded_graph(Block.from_scipy(A))
    n = A.shape[0]
    indptr, cols, vals = g.lower_csr(fsai_slot_values(g, np.arange(n)), np.arange(n))
    G = sp.csr_matrix((vals, cols, indptr), shape=A.shape)
    GA = (G @ A).toarray()
    pattern = sp.tril(A).toarray() != 0
    np.fill_diagonal(pattern, False)
    assert np.abs(GA[pattern]).max() < 1e-12
    np.testing.assert_allclose((G @ A @ G.T).diagonal(), 1.0, rtol=1e-12)


@pytest.mark.parametrize("which", ["gnn", "fsai"])
def test_operator_is_symmetric_positive_definite(tiny_gnn, which):
    A = _petsc(_poisson(7))
    M = _operator_dense(_gnn(tiny_gnn["tiny"]) if which == "gnn" else _fsai(), A)
    A.destroy()
    np.testing.assert_allclose(M, M.T, atol=1e-12 * np.abs(M).max())
    assert np.linalg.eigvalsh(M).min() > 0


def test_chunked_evaluation_gives_the_same_factor(tiny_gnn):
    """Rows evaluated in chunks of 7, each with its rings of neighbours: the same operator as one evaluation."""
    A = _petsc(_poisson(9))
    M = _operator_dense(_gnn(tiny_gnn["tiny"], gnn_chunk=7), A)
    ref = _operator_dense(_gnn(tiny_gnn["tiny"]), A)
    A.destroy()
    np.testing.assert_allclose(M, ref, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("chunk", [None, 7])
def test_jacobi_fallback(tiny_gnn, chunk):
    A = _petsc(_poisson(5))
    with pytest.warns(RuntimeWarning, match="falling back to the classical JACOBI"):
        M = _operator_dense(_gnn(tiny_gnn["nan"], gnn_fallback="jacobi", **({"gnn_chunk": chunk} if chunk else {})), A)
    d = _poisson(5).diagonal()
    A.destroy()
    np.testing.assert_allclose(M, np.diag(1.0 / d), rtol=1e-12)


def test_apply_modes_agree(tiny_gnn):
    """A stored G^T (the default) and MatMultTranspose with G give the same operator."""
    A = _petsc(_poisson(6))
    M = _operator_dense(_gnn(tiny_gnn["tiny"], gnn_apply="transpose"), A)
    ref = _operator_dense(_gnn(tiny_gnn["tiny"]), A)
    A.destroy()
    np.testing.assert_allclose(M, ref, rtol=1e-12, atol=1e-14)


def test_update_refills_the_factor_in_place(tiny_gnn):
    """An update with new values on the same pattern keeps the PETSc matrices (what a MATCOMPOSITE or PCMAT built
    on them holds) and gives the operator a fresh set-up gives."""
    A = _petsc(_poisson(6))
    B = _petsc(_poisson(6) * 3.0 + sp.diags(np.linspace(0.1, 1.0, 36)))
    component = _gnn(tiny_gnn["tiny"])
    component.initialize(A)
    handles = (component.G.handle, component.Gt.handle)
    component.update(B)
    assert (component.G.handle, component.Gt.handle) == handles
    M = _applied_dense(component, B)
    component.destroy()
    ref = _operator_dense(_gnn(tiny_gnn["tiny"]), B)
    for obj in (A, B):
        obj.destroy()
    np.testing.assert_allclose(M, ref, rtol=1e-12, atol=1e-14)


# -- solves -----------------------------------------------------------------------------------------------------------
def _cg(A, b, plugin="gnn", model=None, **options):
    """Plain CG with the component through accel.NeuralPC, from the options database alone."""
    opts = {"ksp_type": "cg", "ksp_norm_type": "unpreconditioned", "pc_type": "python",
            "pc_python_type": "accel.NeuralPC", "accel_plugin": plugin, **options}
    if model:
        opts["accel_model"] = model
    return solve(A, b, opts)


def test_plain_cg_converges_with_fewer_iterations_than_jacobi(tiny_gnn):
    from accel.integrations.petsc.solvers import random_rhs

    A = _petsc(_poisson(24))
    b = random_rhs(A)
    jac = solve(A, b, {"ksp_type": "cg", "pc_type": "jacobi", "ksp_norm_type": "unpreconditioned"})
    r = _cg(A, b, model=tiny_gnn["tiny"])
    A.destroy()
    b.destroy()
    assert r.converged and r.residual < 1e-7
    assert r.iterations < jac.iterations


CELLS = [("square", "triangle", 1, 10), ("square", "triangle", 2, 6), ("square", "quadrilateral", 1, 10),
         ("square", "quadrilateral", 2, 6), ("cube", "tetrahedron", 1, 5), ("cube", "tetrahedron", 2, 3),
         ("cube", "hexahedron", 1, 5), ("cube", "hexahedron", 2, 3)]


@pytest.mark.parametrize("family,cell,degree,n", CELLS, ids=[f"{c[1]}-P{c[2]}" for c in CELLS])
def test_any_cell_and_degree(tiny_gnn, family, cell, degree, n):
    """The network sees only the matrix: P1 and P2 on triangles, quadrilaterals, tetrahedra and hexahedra."""
    from accel.plugins.gnn.problems import diffusion

    p = diffusion(family, n, contrast=100.0, degree=degree, cell=cell)
    plain = solve(p.A, p.b, {"ksp_type": "cg", "pc_type": "none", "ksp_norm_type": "unpreconditioned"})
    r = _cg(p.A, p.b, model=tiny_gnn["tiny"])
    p.destroy()
    assert r.converged and r.residual < 1e-7
    assert r.iterations < plain.iterations


def test_gamg_level_smoother(tiny_gnn):
    """The component as the smoother of every GAMG level (run on each level's Galerkin matrix): converges in no
    more iterations than GAMG's default Chebyshev/Jacobi smoother."""
    from accel.plugins.gnn.problems import diffusion

    p = diffusion("square", 24, contrast=1e4, cell="triangle")
    base = {"ksp_type": "cg", "ksp_norm_type": "unpreconditioned", "pc_type": "gamg"}
    default = solve(p.A, p.b, base)
    smoother = solve(p.A, p.b, {**base, "mg_levels_pc_type": "python", "mg_levels_pc_python_type": "accel.NeuralPC",
                                "mg_levels_accel_plugin": "gnn", "mg_levels_accel_model": tiny_gnn["tiny"]})
    p.destroy()
    assert smoother.converged and smoother.residual < 1e-7
    assert smoother.iterations <= default.iterations


def test_shipped_model_beats_classical_fsai():
    """The shipped model on a gmsh plate with holes it was not trained on: fewer CG iterations than FSAI."""
    from accel.plugins.gnn.problems import diffusion

    p = diffusion("plate", 0.05, contrast=1e4, seed=123)
    fsai = _cg(p.A, p.b, "fsai")
    gnn = _cg(p.A, p.b)
    p.destroy()
    assert gnn.converged and fsai.converged
    assert gnn.iterations < fsai.iterations


@pytest.mark.parametrize("pattern, name", [("default", "gnn-diffusion.onnx"), ("a", "gnn-diffusion.onnx"),
                                           ("a2", "gnn-diffusion-a2.onnx")])
def test_shipped_model_per_pattern_is_chosen_by_name(pattern, name):
    """Another shipped model of the same pattern (one sorting first) never becomes the default by accident."""
    from accel import modelmeta
    from accel.plugins.gnn.preconditioner import shipped_model

    chosen = shipped_model(pattern)
    assert chosen.name == name
    assert modelmeta.read(chosen).settings["pattern"] == ("a" if pattern == "default" else pattern)


MPI_SCRIPT = r"""
import sys, json
import numpy as np
from petsc4py import PETSc
from accel.components import PreconditionerConfig
from accel.plugins.gnn.preconditioner import GNNPreconditioner
from accel.integrations.petsc.solvers import solve
viewer = PETSc.Viewer().createBinary(sys.argv[1], "r")
A = PETSc.Mat().load(viewer); viewer.destroy()
b = A.createVecLeft(); r0, r1 = b.getOwnershipRange()
b.setArray(np.random.default_rng(0).standard_normal(A.getSize()[0])[r0:r1])
c = GNNPreconditioner(PreconditionerConfig(model=sys.argv[2]))
c.initialize(A)
rows = [(int(i), [int(k) for k in c.G.getRow(i)[0]], [float(v) for v in c.G.getRow(i)[1]]) for i in range(*c.G.getOwnershipRange())]
rows = A.getComm().tompi4py().gather(rows)
c.destroy()
res = solve(A, b, {"ksp_type": "cg", "ksp_norm_type": "unpreconditioned", "pc_type": "python",
                  "pc_python_type": "accel.NeuralPC", "accel_plugin": "gnn", "accel_model": sys.argv[2]})
if A.getComm().rank == 0:
    print("RESULT", json.dumps({"its": res.iterations, "res": res.residual, "rows": [r for part in rows for r in part]}))
A.destroy(); b.destroy()
"""


@pytest.mark.mpi
def test_same_factor_and_iterations_on_one_and_two_ranks(tiny_gnn, run_mpi, tmp_path):
    """Each rank reads its rows plus the network's rings of overlap: G is the same on any partition."""
    import json

    from accel.matrixio import write_petsc_matrix

    write_petsc_matrix(tmp_path / "A.dat", _poisson(20))
    script = tmp_path / "run.py"
    script.write_text(MPI_SCRIPT)
    results = []
    for n in (1, 2):
        out = run_mpi(n, [str(script), str(tmp_path / "A.dat"), tiny_gnn["tiny"]])
        assert out.returncode == 0, out.stderr[-2000:]
        line = [ln for ln in out.stdout.splitlines() if ln.startswith("RESULT")][0]
        results.append(json.loads(line[7:]))
    one, two = results
    assert abs(one["its"] - two["its"]) <= 1 and two["res"] < 1e-7
    for (i, c1, v1), (j, c2, v2) in zip(one["rows"], two["rows"]):
        assert i == j and c1 == c2
        np.testing.assert_allclose(v1, v2, rtol=1e-5, atol=1e-7)


# -- bad input ----------------------------------------------------------------------------------------------------------
def _refused(A, match, model):
    from accel.plugins.gnn.graph import OperatorError

    c = _gnn(model)
    with pytest.raises((OperatorError, ModelError), match=match):
        c.initialize(A)
    c.destroy()
    A.destroy()


def test_refuses_non_square(tiny_gnn):
    _refused(_petsc(sp.random(5, 7, density=0.5, format="csr", random_state=0) + sp.eye(5, 7)), "not square",
             tiny_gnn["tiny"])


@pytest.mark.parametrize("i,j,value", [(0, 1, -3.0), (0, 12, -0.5), (12, 0, -0.5)],
                         ids=["values", "entry-above-only", "entry-below-only"])
def test_refuses_non_symmetric(tiny_gnn, i, j, value):
    """Unequal values, and an entry whose mirror is not stored at all (either side of the diagonal)."""
    A = _poisson(5).tolil()
    A[i, j] = value
    _refused(_petsc(A.tocsr()), "not symmetric", tiny_gnn["tiny"])


@pytest.mark.parametrize("value", [0.0, -4.0])
def test_refuses_bad_diagonal(tiny_gnn, value):
    A = _poisson(5).tolil()
    A[2, 2] = value
    _refused(_petsc(A.tocsr()), "diagonal", tiny_gnn["tiny"])


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_refuses_non_finite_matrix(tiny_gnn, value):
    A = _poisson(5).tolil()
    A[3, 4] = A[4, 3] = value
    _refused(_petsc(A.tocsr()), "NaN or Inf", tiny_gnn["tiny"])


def test_refuses_model_for_another_problem_kind(tiny_gnn):
    """-accel_problem names the kind the user's matrix is; a model trained for another kind is refused at set-up."""
    from accel.integrations.petsc.solvers import random_rhs

    A = _petsc(_poisson(5))
    b = random_rhs(A)
    with pytest.raises(Exception, match="trained for 'spd-vector3' problems, not 'spd-scalar'"):
        _cg(A, b, model=tiny_gnn["vector"], accel_problem="spd-scalar")
    A.destroy()
    b.destroy()


def test_refuses_vector_problem_with_scalar_model(tiny_gnn):
    from petsc4py import PETSc

    B = sp.kron(_poisson(4), sp.eye(2)).tocsr()
    A = PETSc.Mat().createAIJ(size=B.shape, bsize=2, csr=(B.indptr, B.indices, B.data), comm=PETSc.COMM_SELF)
    A.assemble()
    _refused(A, "block size 2", tiny_gnn["tiny"])


def test_refuses_a_model_of_another_plugin(tiny_dcdm_models):
    with pytest.raises(ModelError, match="belongs to plugin 'dcdm'"):
        _gnn(str(tiny_dcdm_models["p2"]))


def test_refuses_a_model_with_other_input_features(tiny_gnn, tmp_path):
    import shutil

    from accel import modelmeta

    path = tmp_path / "old.onnx"
    shutil.copy(tiny_gnn["tiny"], path)
    meta = modelmeta.read(path)
    meta.settings["edge_features"] = ["value", "lower", "upper", "self"]
    modelmeta.write(path, meta)
    with pytest.raises(ModelError, match="exported for other inputs.*retrain it with the recipe"):
        _gnn(str(path))


@pytest.mark.parametrize("chunk", [None, 7])
def test_non_finite_network_output_falls_back_to_fsai(tiny_gnn, chunk):
    """The fallback factor is classical FSAI to rounding, also when the network ran in chunks (the FSAI edge
    feature then comes from the whole block's FSAI, computed once)."""
    A = _petsc(_poisson(6))
    with pytest.warns(RuntimeWarning, match="falling back to the classical FSAI"):
        M = _operator_dense(_gnn(tiny_gnn["nan"], **({"gnn_chunk": chunk} if chunk else {})), A)
    ref = _operator_dense(_fsai(), A)
    A.destroy()
    np.testing.assert_allclose(M, ref, rtol=1e-12)


def test_unknown_component_option():
    from accel.errors import SolverConfigError

    with pytest.raises(SolverConfigError, match="unknown gnn option.*valid: gnn_fallback, gnn_apply, gnn_chunk"):
        _gnn(None, shift=1.0)
    with pytest.raises(SolverConfigError, match="gnn_chunk must be a positive integer"):
        _gnn(None, gnn_chunk=0)
    with pytest.raises(SolverConfigError, match="gnn_network_min_rows must be a positive integer"):
        _gnn(None, gnn_network_min_rows="many")


# -- training command ---------------------------------------------------------------------------------------------------
def _accel(*args):
    return subprocess.run([sys.executable, "-m", "accel.cli", *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=300)


def test_train_command_writes_a_model_with_its_recipe_and_refuses_overwrite(tmp_path):
    from accel import modelmeta
    from accel.matrixio import write_petsc_matrix

    for i, n in enumerate((8, 10)):
        write_petsc_matrix(tmp_path / f"A_{i}.dat", _poisson(n))
    out = tmp_path / "m.onnx"
    args = ["train", "gnn", "--matrices", str(tmp_path / "A_*.dat"), "--steps", "3", "--hidden", "4", "--layers",
            "1", "--no-progress", "--out", str(out)]
    r = _accel(*args)
    assert r.returncode == 0, r.stderr
    meta = modelmeta.read(out)
    assert meta.recipe.startswith("accel train gnn --matrices") and "A_*.dat" in meta.recipe
    assert meta.settings["rings"] == 2
    lines = (tmp_path / "m.log.jsonl").read_text().splitlines()
    assert len(lines) >= 1 and "loss" in lines[-1]
    again = _accel(*args)
    assert again.returncode == 2 and "--force" in again.stderr and "Traceback" not in again.stderr


def test_train_command_empty_glob_and_non_petsc_file(tmp_path):
    r = _accel("train", "gnn", "--matrices", str(tmp_path / "none_*.dat"), "--out", str(tmp_path / "m.onnx"))
    assert r.returncode == 2 and "matches no file" in r.stderr and "Traceback" not in r.stderr
    (tmp_path / "A_0.dat").write_text("not a matrix\n")
    r = _accel("train", "gnn", "--matrices", str(tmp_path / "A_*.dat"), "--out", str(tmp_path / "m.onnx"))
    assert r.returncode == 2 and "is not a PETSc binary matrix" in r.stderr and "Traceback" not in r.stderr


def test_train_command_refuses_a_non_symmetric_matrix(tmp_path):
    from accel.matrixio import write_petsc_matrix

    A = _poisson(5).tolil()
    A[0, 1] = -3.0
    write_petsc_matrix(tmp_path / "A_0.dat", A.tocsr())
    r = _accel("train", "gnn", "--matrices", str(tmp_path / "A_*.dat"), "--out", str(tmp_path / "m.onnx"))
    assert r.returncode == 2 and "A_0.dat: the matrix is not symmetric" in r.stderr and "Traceback" not in r.stderr


def test_train_from_python_with_petsc_matrices():
    """The Python entry point takes an iterable of matrices (here petsc4py Mats) and lowers the loss."""
    from accel.plugins.gnn.train import TrainConfig, train

    mats = [_petsc(_poisson(8)), _petsc(_poisson(9))]
    net, history = train(iter(mats), TrainConfig(hidden=4, layers=1, steps=40, lr=1e-2))
    for A in mats:
        A.destroy()
    assert history[-1]["smoothed"] < history[0]["loss"]


# -- DOLFINx ------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("plugin", ["gnn", None])
def test_accelerate_a_dolfinx_problem_on_a_gmsh_mesh(plugin, caplog):
    """accel.accelerate on a LinearProblem over a gmsh plate with holes: gnn (asked for, or chosen because the mesh
    is not a box), plain CG, converged with fewer iterations than CG alone."""
    import logging

    import ufl
    from dolfinx import fem, mesh as dmesh
    from dolfinx.fem.petsc import LinearProblem
    from mpi4py import MPI

    import accel
    from accel.plugins.gnn.problems import gmsh_mesh

    mesh = gmsh_mesh("plate", 0.06, MPI.COMM_WORLD, seed=3)
    V = fem.FunctionSpace(mesh, ("Lagrange", 1))
    facets = dmesh.locate_entities_boundary(mesh, 1, lambda x: (x[0] < 1e-8) | (x[0] > 2 - 1e-8))
    bc = fem.dirichletbc(0.0, fem.locate_dofs_topological(V, 1, facets), V)
    u, v = ufl.TrialFunction(V), ufl.TestFunction(V)
    a = ufl.inner(ufl.grad(u), ufl.grad(v)) * ufl.dx
    L = fem.Constant(mesh, 1.0) * v * ufl.dx
    its = {}
    for name in ("plain", "gnn"):
        opts = {"ksp_type": "cg", "pc_type": "none", "ksp_rtol": 1e-8, "ksp_norm_type": "unpreconditioned"}
        problem = LinearProblem(a, L, bcs=[bc], petsc_options=opts)
        if name == "gnn":
            with caplog.at_level(logging.INFO):
                accel.accelerate(problem, plugin=plugin)
        uh = problem.solve()
        ksp = problem.solver
        its[name] = (ksp.getIterationNumber(), ksp.getConvergedReason(), ksp.getPC().getType())
        assert np.all(np.isfinite(uh.x.array))
        ksp.destroy()
    assert its["gnn"][1] > 0 and its["gnn"][2] == "python"
    assert its["gnn"][0] < its["plain"][0]
    if plugin is None:
        assert "chose the gnn preconditioner" in caplog.text


@pytest.mark.mpi
def test_unmodified_c_program_with_plain_cg_and_gnn(run_mpi):
    """An unmodified PETSc C program selects gnn from the options database alone, plain CG, 1 and 2 ranks."""
    import os
    import shutil
    from pathlib import Path

    if shutil.which("mpicc") is None:
        pytest.fail("mpicc not found: scripts/setup.sh installs petsc-dev (which brings the MPI compilers)")
    make = subprocess.run(["make", "-s", "-C", str(ROOT / "examples" / "c"), "laplace3d"], capture_output=True,
                          text=True, timeout=120)
    assert make.returncode == 0, make.stderr
    driver = str(ROOT / "examples" / "c" / "laplace3d")
    env = {"PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", "")}
    cg = ["-ksp_type", "cg", "-ksp_norm_type", "unpreconditioned"]
    gnn = ["-python", *cg, "-pc_type", "python", "-pc_python_type", "accel.NeuralPC", "-accel_plugin", "gnn"]

    def iterations(res):
        assert res.returncode == 0, res.stdout + res.stderr
        words = res.stdout.split()
        return int(words[words.index("iterations") + 1]), float(words[words.index("true_relative_residual") + 1])

    plain, _ = iterations(run_mpi(1, [driver, "-n", "16", *cg, "-pc_type", "none"]))
    its1, res1 = iterations(run_mpi(1, [driver, "-n", "16", *gnn], env=env))
    its2, res2 = iterations(run_mpi(2, [driver, "-n", "16", *gnn], env=env))
    assert res1 < 1e-8 and res2 < 1e-8
    assert its1 < plain and abs(its1 - its2) <= 3, (its1, its2, plain)
