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
    res = train("--matrices", pattern, "--grid", "5,6", "--unroll", "3", *TINY, "--out", str(tmp_path / "x.onnx"))
    assert res.returncode == 2 and "--unroll needs --loss energy" in res.stderr and "Traceback" not in res.stderr


def test_model_trained_for_another_dimension_is_refused_on_the_problem(tiny_dcdm_models):
    """A 2D model on a 3D grid: a clear error before any solve."""
    from accel.errors import GridError, ModelError

    A = problems.to_petsc(problems.build("poisson3d", (8, 8, 8)).matrix)
    b = random_rhs(A)
    with pytest.raises((GridError, ModelError), match=r"2D"):
        solve(A, b, "fcg2+neural", extra={"accel_model": str(tiny_dcdm_models["p2"]), "accel_grid": "8,8,8"})
    A.destroy()
    b.destroy()


def anisotropic(shape, kx, ky):
    """kx * (-d2/dx2) + ky * (-d2/dy2), 5-point, Dirichlet walls, natural order (x fastest)."""
    ny, nx = shape

    def second(n):
        return sp.diags([-np.ones(n - 1), 2 * np.ones(n), -np.ones(n - 1)], [-1, 0, 1])

    return (kx * sp.kron(sp.eye(ny), second(nx)) + ky * sp.kron(second(ny), sp.eye(nx))).tocsr()


def test_coefficient_channels_of_a_known_matrix():
    """coupling_<axis> = the next layer's face coefficient over the diagonal; 0 on the last layer; log-diagonal 0
    for a constant diagonal. A 9-point stencil's diagonal neighbours count in the layer's sum."""
    from accel.plugins.dcdm import features

    shape = (3, 4)
    A = anisotropic(shape, kx=2.0, ky=1.0)  # diagonal 6: x faces 2/6, y faces 1/6
    names = features.input_names(2, coefficients=True)
    assert names == ["residual", "log_diagonal", "coupling_y", "coupling_x"]
    ch = features.input_channels(names, A.diagonal().reshape(shape), features.scipy_couplings(A, shape))
    assert ch.shape == (3, 3, 4) and np.abs(ch[0]).max() == 0
    assert np.allclose(ch[1][:2], 1 / 6) and np.allclose(ch[1][2], 0)
    assert np.allclose(ch[2][:, :3], 1 / 3) and np.allclose(ch[2][:, 3], 0)
    nine = A.tolil()
    nine[0, 5] = -0.5  # (y0, x0) -> (y1, x1): a diagonal neighbour in the next y layer and the next x layer
    c = features.scipy_couplings(nine.tocsr(), shape)
    assert c[0][0, 0] == -1.5 and c[1][0, 0] == -2.5 and c[0][0, 1] == -1.0


def layered_diffusion(shape, seed, contrast=100.0):
    """-div(k grad u) with k piecewise constant on 4-cell blocks, log-uniform over ``contrast``: G^T diag(k_face) G
    with G the differences across every face (Dirichlet walls), any dimension, natural order (x fastest)."""
    rng = np.random.default_rng(seed)
    k = contrast ** rng.uniform(0, 1, [-(-n // 4) for n in shape])
    for axis in range(len(shape)):
        k = np.repeat(k, 4, axis=axis)
    k = k[tuple(slice(0, n) for n in shape)]
    out = 0
    for axis, n in enumerate(shape):
        diff = sp.diags([-np.ones(n), np.ones(n)], [0, -1], shape=(n + 1, n))
        G = sp.csr_matrix(np.ones((1, 1)))
        for a, m in enumerate(shape):
            G = sp.kron(G, diff if a == axis else sp.eye(m))
        pad = [(1, 1) if a == axis else (0, 0) for a in range(len(shape))]
        kp = np.pad(k, pad, mode="edge")
        lo = tuple(slice(0, -1) if a == axis else slice(None) for a in range(len(shape)))
        hi = tuple(slice(1, None) if a == axis else slice(None) for a in range(len(shape)))
        face = 2 * kp[lo] * kp[hi] / (kp[lo] + kp[hi])
        out = out + G.T @ sp.diags(face.ravel()) @ G
    return out.tocsr()


@pytest.mark.parametrize("shape", [(8, 12), (8, 6, 10)])
def test_network_level_couplings_from_petsc_equal_scipy(shape):
    """At solve time the channels come from the PC's coarse operator through its gather: the same numbers, 2D and
    3D."""
    from accel.integrations.petsc.levels import GridLevels
    from accel.plugins.dcdm import features

    coarse_shape = tuple(n // 2 for n in shape)
    A = problems.to_petsc(layered_diffusion(shape, 0))
    levels = GridLevels(A, [shape, coarse_shape], coarse_operator="galerkin")
    try:
        got = levels.network_couplings()
        indptr, indices, values = levels.network_operator.getValuesCSR()  # one rank: the whole coarse operator
        m = int(np.prod(coarse_shape))
        coarse = sp.csr_matrix((values, indices, indptr), shape=(m, m))
    finally:
        levels.destroy()
        A.destroy()
    ref = features.scipy_couplings(coarse, coarse_shape)
    assert got.shape == (len(shape), *coarse_shape) and np.allclose(got, ref, rtol=1e-12, atol=1e-12)
    for a, n in enumerate(coarse_shape):  # the last layer has no next one; inside, the couplings are mostly negative
        assert not ref[a].take(n - 1, axis=a).any() and np.median(ref[a].take(range(n - 1), axis=a)) < 0


def test_a_model_with_coefficient_channels_loads_and_solves(tmp_path):
    """Trained through the Python entry point with coefficient_input: the metadata lists its channels, the PC builds
    them from the matrix (one level with -accel_grid; through a coarse level on a DMDA twice the size) and it beats
    plain CG on a held-out member."""
    from petsc4py import PETSc

    from accel.plugins.dcdm.fit import fit

    pairs = [((16, 16), layered_diffusion((16, 16), i)) for i in range(3)]
    out = tmp_path / "coef.onnx"
    meta, history, _ = fit(pairs, out, steps=60, ritz=16, samples=32, width=4, threads=1, loss="energy",
                           coefficient_input=True, unroll=2)
    assert meta.settings["inputs"] == ["residual", "log_diagonal", "coupling_y", "coupling_x"]
    assert meta.settings["conditioning"] == "gate"
    assert "coefficient_input=True" in meta.recipe and history[-1]["smoothed"] < history[0]["loss"]
    for n, dm in ((16, None), (32, PETSc.DMDA().create([32, 32], dof=1, stencil_width=1))):
        A = problems.to_petsc(layered_diffusion((n, n), 99))
        b = random_rhs(A)
        extra = {"accel_model": str(out), "accel_threads": 1, **({} if dm else {"accel_grid": f"{n},{n}"})}
        try:
            r = solve(A, b, "fcg2+neural", extra=extra, dm=dm)
            cg = solve(A, b, "cg", dm=dm)
            assert r.residual < 1e-8 and r.iterations < 0.45 * cg.iterations, (n, r.iterations, cg.iterations)
        finally:
            for obj in (A, b, dm):
                if obj is not None:
                    obj.destroy()


def test_coefficient_channels_on_a_dolfinx_box_mesh_follow_new_values(tmp_path):
    """On a DOLFINx box mesh (P1, variable k), the channels the PC hands the network are the features of its
    network-level operator, and a second solve with new coefficient values (same matrix: the update path)
    refreshes them; both solves match ICC's answer."""
    pytest.importorskip("dolfinx")
    torch = pytest.importorskip("torch")
    import ufl
    from dolfinx import fem, mesh
    from dolfinx.fem.petsc import LinearProblem
    from mpi4py import MPI

    import accel
    from accel.plugins.dcdm import features
    from accel.plugins.dcdm.export import export
    from accel.plugins.dcdm.network import build_model

    with torch.random.fork_rng():
        torch.manual_seed(0)
        net = build_model("dcdm-unet", dim=2, width=4, in_channels=4, conditioning="gate").eval()
    net.input_names = features.input_names(2, coefficients=True)
    model = tmp_path / "gate.onnx"
    export(net, model, "diffusion2d", (8, 8), {"pre": 1, "post": 1, "omega": 0.67}, "tests: untrained, seed 0")

    msh = mesh.create_unit_square(MPI.COMM_WORLD, 32, 32)
    V = fem.FunctionSpace(msh, ("Lagrange", 1))
    u, v = ufl.TrialFunction(V), ufl.TestFunction(V)
    x = ufl.SpatialCoordinate(msh)
    c = fem.Constant(msh, 2.0)
    k = ufl.exp(c * ufl.sin(3 * x[0]) * ufl.cos(2 * x[1]))
    facets = mesh.locate_entities_boundary(msh, 1, lambda p: np.full(p.shape[1], True))
    bc = fem.dirichletbc(fem.Constant(msh, 0.0), fem.locate_dofs_topological(V, 1, facets), V)
    a, L = k * ufl.inner(ufl.grad(u), ufl.grad(v)) * ufl.dx, v * ufl.dx
    problem = LinearProblem(a, L, bcs=[bc], petsc_options={"ksp_rtol": 1e-10})
    accel.accelerate(problem, model=str(model))
    ref = LinearProblem(a, L, bcs=[bc], petsc_options={"ksp_type": "cg", "pc_type": "icc", "ksp_rtol": 1e-12})
    seen = []
    try:
        for value in (2.0, -1.0):
            c.value = value
            uh = problem.solve().x.array.copy()
            assert problem.solver.getConvergedReason() > 0
            expected = ref.solve().x.array
            assert np.abs(uh - expected).max() < 1e-7 * np.abs(expected).max()
            ctx = problem.solver.getPC().getPythonContext()
            levels = ctx.grid_levels
            shape = levels.network_shape
            want = features.input_channels(net.input_names, levels.network_diagonal(), levels.network_couplings())
            got = ctx.component._in[0, 1:][tuple(slice(0, n) for n in shape)]
            assert np.allclose(got, want, atol=1e-6) and np.abs(want[1:]).max() > 0.05
            seen.append(got.copy())
        assert np.abs(seen[0][0] - seen[1][0]).max() > 0.5  # the log-diagonal followed the new coefficient
    finally:
        problem.solver.destroy()
        ref.solver.destroy()


TWO_RANK_COUPLINGS = """
import sys
import numpy as np
from petsc4py import PETSc
sys.path.insert(0, "tests")
from test_dcdm_own_operators import layered_diffusion
from accel.integrations.petsc.levels import GridLevels
from accel.plugins.dcdm import problems

shape, coarse = (8, 6, 10), (4, 3, 5)
result = {}
for name, comm in (("split", PETSc.COMM_WORLD), ("one", PETSc.COMM_SELF)):
    A = problems.to_petsc(layered_diffusion(shape, 1), comm=comm)
    levels = GridLevels(A, [shape, coarse], coarse_operator="galerkin")
    result[name] = levels.network_couplings()
    levels.destroy()
    A.destroy()
if PETSc.COMM_WORLD.getRank() == 0:
    print("MAXDIFF", np.abs(result["split"] - result["one"]).max(), "MAX", np.abs(result["one"]).max())
else:
    assert result["split"] is None
"""


def test_couplings_on_two_ranks_equal_one_rank(run_mpi):
    res = run_mpi(2, ["-c", TWO_RANK_COUPLINGS], timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    diff, top = (float(w) for w in res.stdout.split("MAXDIFF")[1].split()[::2][:2])
    assert diff < 1e-12 * top and top > 1
