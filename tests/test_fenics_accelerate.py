"""accel.accelerate on real DOLFINx solves: same answers as classical solvers, user settings respected, bad input,
and the examples on 1 and 2 MPI ranks (same iteration counts)."""
from __future__ import annotations

import importlib.util
import logging
import re
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("dolfinx")
import ufl  # noqa: E402
from dolfinx import fem, mesh  # noqa: E402
from dolfinx.fem.petsc import LinearProblem  # noqa: E402
from mpi4py import MPI  # noqa: E402
from petsc4py import PETSc  # noqa: E402

import accel  # noqa: E402
from accel.errors import AccelError, GridError, ModelError, SolverConfigError  # noqa: E402
from accel.integrations.fenics import compat, neural_pc  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples" / "fenics"


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """Tiny deterministic DCDM networks (untrained, seed 0) exported with accel metadata: the real ONNX path,
    independent of which trained models are shipped."""
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    from accel.plugins.dcdm.export import export
    from accel.plugins.dcdm.network import build_model

    out = {}
    folder = tmp_path_factory.mktemp("fenics_models")
    for dim in (2, 3):
        torch.manual_seed(0)
        net = build_model("dcdm-unet", dim=dim, width=4).eval()
        path = folder / f"tiny{dim}d.onnx"
        export(net, path, f"poisson{dim}d", (8,) * dim, {"pre": 1, "post": 1, "omega": 0.67}, "tests: untrained, seed 0")
        out[dim] = str(path)
    return out


def poisson_problem(n=16, petsc_options=None, cell=mesh.CellType.triangle):
    msh = mesh.create_unit_square(MPI.COMM_WORLD, n, n, cell)
    V = fem.FunctionSpace(msh, ("Lagrange", 1))
    u, v = ufl.TrialFunction(V), ufl.TestFunction(V)
    x = ufl.SpatialCoordinate(msh)
    a = (1 + 0.5 * ufl.sin(2 * ufl.pi * x[0])) * ufl.inner(ufl.grad(u), ufl.grad(v)) * ufl.dx
    L = ufl.exp(-((x[0] - 0.3) ** 2 + (x[1] - 0.6) ** 2) / 0.02) * v * ufl.dx
    facets = mesh.locate_entities_boundary(msh, 1, lambda p: np.full(p.shape[1], True))
    g = fem.Function(V)
    g.interpolate(lambda p: 0.1 * p[0] * (1 - p[1]))  # non-zero Dirichlet data
    bc = fem.dirichletbc(g, fem.locate_dofs_topological(V, 1, facets))
    return LinearProblem(a, L, bcs=[bc], petsc_options=petsc_options or {}), V


def load_example(name):
    spec = importlib.util.spec_from_file_location(f"fenics_example_{name}", EXAMPLES / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_linear_problem_gives_the_classical_solution(models, caplog):
    ref_problem, _ = poisson_problem(petsc_options={"ksp_type": "cg", "pc_type": "icc", "ksp_rtol": 1e-12})
    ref = ref_problem.solve().x.array.copy()
    options = {"ksp_rtol": 1e-10}
    given = dict(options)
    problem, _ = poisson_problem(petsc_options=options)
    with caplog.at_level(logging.INFO, logger="accel"):
        assert accel.accelerate(problem, model=models[2]) is problem  # chains
    assert "changed from gmres to fcg" in caplog.text
    ksp = problem.solver
    assert ksp.getType() == "fcg" and ksp.getPC().getType() == "python"
    assert ksp.getNormType() == PETSc.KSP.NormType.UNPRECONDITIONED
    uh = problem.solve()
    assert ksp.getConvergedReason() > 0
    assert np.abs(uh.x.array - ref).max() < 1e-7 * np.abs(ref).max()
    assert neural_pc(problem).applies >= ksp.getIterationNumber() > 0  # the network really ran
    assert options == given  # the user's dict is untouched
    ksp.destroy()
    ref_problem.solver.destroy()


def test_a_non_flexible_ksp_the_user_chose_is_kept_or_refused(models):
    options = {"ksp_type": "cg", "ksp_rtol": 1e-10}
    problem, _ = poisson_problem(petsc_options=options)
    with pytest.raises(SolverConfigError, match=r"'cg'.*ksp_type='fcg'"):
        accel.accelerate(problem, model=models[2])
    assert problem.solver.getType() == "cg"  # untouched after the error
    accel.accelerate(problem, model=models[2], ksp_type="fcg")  # asked: accelerate chooses
    problem.solve()
    assert problem.solver.getType() == "fcg" and problem.solver.getConvergedReason() > 0
    assert options == {"ksp_type": "cg", "ksp_rtol": 1e-10}
    problem.solver.destroy()
    flexible, _ = poisson_problem(petsc_options={"ksp_type": "fgmres"})
    accel.accelerate(flexible, model=models[2])
    flexible.solve()
    assert flexible.solver.getType() == "fgmres" and flexible.solver.getConvergedReason() > 0
    flexible.solver.destroy()


def test_newton_solver_matches_classical(models):
    ex = load_example("nonlinear_poisson")
    acc = ex.run(n=16, solver="accel", model=models[2])
    ref = ex.run(n=16, solver="icc")
    assert acc["newton_steps"] == ref["newton_steps"]
    assert len(acc["iterations"]) == acc["newton_steps"] and min(acc["iterations"]) > 0
    assert acc["norm"] == pytest.approx(ref["norm"], rel=1e-7)


def test_heat_equation_builds_the_session_once(models, caplog):
    ex = load_example("heat_equation")
    with caplog.at_level(logging.INFO, logger="accel"):
        acc = ex.run(n=8, steps=3, solver="accel", model=models[3])
    assert caplog.text.count("neural PC ready") == 1  # one set-up for all steps: same operator
    ref = ex.run(n=8, steps=3, solver="icc")
    assert acc["norm"] == pytest.approx(ref["norm"], rel=1e-7)
    assert all(i > 0 for i in acc["iterations"])


def test_petsc_options_alone_on_a_box_mesh(models):
    ref_problem, _ = poisson_problem(petsc_options={"ksp_type": "cg", "pc_type": "icc", "ksp_rtol": 1e-12})
    ref = ref_problem.solve().x.array.copy()
    options = {"ksp_type": "fcg", "ksp_fcg_mmax": 2, "ksp_fcg_truncation_type": "standard",
               "ksp_norm_type": "unpreconditioned", "ksp_rtol": 1e-10, "pc_type": "python",
               "pc_python_type": "accel.integrations.fenics.pc.FenicsNeuralPC", "accel_model": models[2]}
    problem, V = poisson_problem(petsc_options=options)
    uh = problem.solve()
    ctx = problem.solver.getPC().getPythonContext()
    assert problem.solver.getConvergedReason() > 0 and ctx.applies > 0
    assert ctx.transfer.shape == (15, 15)  # the network at the mesh's resolution (no coarsening by options)
    assert np.abs(uh.x.array - ref).max() < 1e-7 * np.abs(ref).max()
    problem.solver.destroy()
    ref_problem.solver.destroy()


def test_petsc_options_alone_for_a_newton_solver(models):
    from dolfinx.fem.petsc import NonlinearProblem
    from dolfinx.nls.petsc import NewtonSolver

    msh = mesh.create_unit_square(MPI.COMM_WORLD, 16, 16)
    V = fem.FunctionSpace(msh, ("Lagrange", 1))
    facets = mesh.locate_entities_boundary(msh, 1, lambda p: np.full(p.shape[1], True))
    bc = fem.dirichletbc(PETSc.ScalarType(0), fem.locate_dofs_topological(V, 1, facets), V)
    norms = {}
    for kind in ("neural", "lu"):
        uh, v = fem.Function(V), ufl.TestFunction(V)
        F = (1 + uh**2) * ufl.inner(ufl.grad(uh), ufl.grad(v)) * ufl.dx - 10 * v * ufl.dx
        newton = NewtonSolver(MPI.COMM_WORLD, NonlinearProblem(F, uh, bcs=[bc]))
        newton.rtol = 1e-10
        ksp = newton.krylov_solver
        if kind == "neural":
            opts = PETSc.Options(ksp.getOptionsPrefix())
            settings = {"ksp_type": "fcg", "ksp_fcg_mmax": 2, "ksp_fcg_truncation_type": "standard",
                        "ksp_norm_type": "unpreconditioned", "ksp_rtol": 1e-10, "pc_type": "python",
                        "pc_python_type": "accel.integrations.fenics.pc.FenicsNeuralPC", "accel_model": models[2]}
            for k, val in settings.items():
                opts[k] = val
            ksp.setFromOptions()
            for k in settings:
                opts.delValue(k)
        steps, converged = newton.solve(uh)
        assert converged
        if kind == "neural":
            ctx = ksp.getPC().getPythonContext()
            assert ctx.transfer.shape == (15, 15) and ctx.applies > 0
        norms[kind] = uh.x.norm()
        ksp.destroy()
    assert norms["neural"] == pytest.approx(norms["lu"], rel=1e-8)


def test_petsc_options_alone_without_a_dolfinx_problem_is_refused(models):
    A = PETSc.Mat().createAIJ((16, 16), nnz=1)
    A.setDiagonal(A.createVecLeft() * 0 + 2.0)
    A.assemble()
    ksp = _ksp()
    ksp.setOperators(A)
    ksp.setType("fcg")
    pc = ksp.getPC()
    pc.setType("python")
    pc.setPythonType("accel.integrations.fenics.pc.FenicsNeuralPC")
    b, x = A.createVecs()
    b.set(1.0)
    with pytest.raises(GridError, match="no DOLFINx LinearProblem owning this operator.*accelerate"):
        ksp.solve(b, x)
    ksp.destroy()
    A.destroy()


def test_snes_target_gets_the_pc_on_its_ksp(models):
    msh = mesh.create_unit_square(MPI.COMM_WORLD, 8, 8)
    snes = PETSc.SNES().create(MPI.COMM_WORLD)
    assert accel.accelerate(snes, space=fem.FunctionSpace(msh, ("Lagrange", 1)), model=models[2]) is snes
    ksp = snes.getKSP()
    assert ksp.getType() == "fcg" and ksp.getPC().getType() == "python"
    assert ksp.getPC().getPythonContext().transfer.shape == (7, 7)
    snes.destroy()


# -- bad input -------------------------------------------------------------------------------------------------------
def _ksp():
    ksp = PETSc.KSP().create(MPI.COMM_WORLD)
    return ksp


def test_vector_valued_and_p2_spaces_are_refused(models):
    msh = mesh.create_unit_square(MPI.COMM_WORLD, 4, 4)
    ksp = _ksp()
    with pytest.raises(GridError, match="vector-valued"):
        accel.accelerate(ksp, space=fem.VectorFunctionSpace(msh, ("Lagrange", 1)), model=models[2])
    with pytest.raises(GridError, match="degree 2"):
        accel.accelerate(ksp, space=fem.FunctionSpace(msh, ("Lagrange", 2)), model=models[2])
    assert ksp.getPC().getType() != "python"  # nothing attached on failure
    ksp.destroy()


def test_mesh_that_is_not_a_box_is_refused(models):
    msh = mesh.create_unit_square(MPI.COMM_WORLD, 6, 6)
    r = msh.geometry.x
    r[:, :2] = (r[:, :2] - 0.5) * (1 + 0.3 * (r[:, 1:2] - 0.5) ** 2)  # bulge: no longer a tensor lattice
    ksp = _ksp()
    with pytest.raises(GridError, match="not a structured box mesh.*transfer="):
        accel.accelerate(ksp, space=fem.FunctionSpace(msh, ("Lagrange", 1)), model=models[2])
    ksp.destroy()


def test_model_for_another_dimension_is_refused(models):
    problem, _ = poisson_problem(n=8)
    with pytest.raises(ModelError, match=r"trained for 3D.*2D"):
        accel.accelerate(problem, model=models[3])
    problem.solver.destroy()


def test_a_ksp_without_space_and_unknown_options_are_refused(models):
    ksp = _ksp()
    with pytest.raises(AccelError, match="space=V"):
        accel.accelerate(ksp, model=models[2])
    problem, _ = poisson_problem(n=8)
    with pytest.raises(AccelError, match="unknown option.*modle.*valid:.*model"):
        accel.accelerate(problem, modle=models[2])
    with pytest.raises(SolverConfigError, match="not a flexible"):
        accel.accelerate(problem, model=models[2], ksp_type="cg")
    with pytest.raises(AccelError, match="coarsen must be"):
        accel.accelerate(problem, model=models[2], coarsen=-1)
    with pytest.raises(AccelError, match="takes a LinearProblem"):
        accel.accelerate(object())
    ksp.destroy()
    problem.solver.destroy()


def test_empty_problem_prefix_is_refused_where_required():
    with pytest.raises(SolverConfigError, match="non-empty petsc_options_prefix"):
        compat.check_options_prefix("", version=(0, 10, 0))
    compat.check_options_prefix("heat_", version=(0, 10, 0))
    compat.check_options_prefix("", version=(0, 5, 2))  # 0.5 makes its own prefix
    assert compat.requires_options_prefix((0, 10, 1)) and not compat.requires_options_prefix((0, 9, 0))
    assert compat._parse("0.10.0.post2") == (0, 10, 0)


# -- MPI: the examples on 1 and 2 ranks --------------------------------------------------------------------------------
EXAMPLE_RUNS = {
    "poisson_variable_coefficient": ["--n", "32"],
    "poisson_variable_coefficient:options-only": ["--n", "32", "--options-only"],
    "heat_equation": ["--n", "8", "--steps", "3"],
    "nonlinear_poisson": ["--n", "16"],
}


def _numbers(text):
    its = re.search(r"iterations(?: per step)? \[?([\d, ]+)\]?", text)
    norm = re.search(r"\|u\|_L2 ([\d.]+)", text)
    assert its and norm, text
    return [int(s) for s in re.findall(r"\d+", its.group(1))], float(norm.group(1))


@pytest.mark.parametrize("name", list(EXAMPLE_RUNS))
def test_examples_give_the_same_iterations_on_two_ranks(name, models, run_mpi):
    dim = 3 if name == "heat_equation" else 2
    args = [str(EXAMPLES / f"{name.split(':')[0]}.py"), *EXAMPLE_RUNS[name], "--model", models[dim]]
    results = {}
    for n in (1, 2):
        res = run_mpi(n, args, timeout=150)
        assert res.returncode == 0, res.stdout + res.stderr[-3000:]
        results[n] = _numbers(res.stdout)
    assert results[1][0] == results[2][0]  # identical iteration counts
    assert results[2][1] == pytest.approx(results[1][1], rel=1e-7)


def test_surrogate_guess_starts_every_solve_and_a_bad_one_is_discarded(models):
    """accelerate(..., guess=...): the prediction (on the mesh's grid) starts the solve; the boundary rows take the
    Dirichlet data. A perfect surrogate leaves almost nothing to do; one worse than zero is dropped with a warning."""
    from accel.integrations.petsc.guess import GuessWarning

    ref, V = poisson_problem(n=32, petsc_options={"ksp_type": "cg", "pc_type": "icc", "ksp_rtol": 1e-12})
    u_ref = ref.solve()
    truth = fem.Function(V)
    truth.x.array[:] = u_ref.x.array

    cold, _ = poisson_problem(n=32, petsc_options={"ksp_rtol": 1e-8})
    accel.accelerate(cold, model=models[2])
    cold.solve()
    cold_its = cold.solver.getIterationNumber()

    warm, _ = poisson_problem(n=32, petsc_options={"ksp_rtol": 1e-8})
    # the "surrogate" maps its input (here: the true solution on the grid) to the prediction
    accel.accelerate(warm, model=models[2], guess=lambda field: field, guess_inputs=truth)
    uh = warm.solve()
    report = neural_pc(warm).last_guess
    assert report.used and report.residual < 1e-6, report
    assert warm.solver.getIterationNumber() <= 1 < cold_its
    assert np.linalg.norm(uh.x.array - u_ref.x.array) <= 1e-6 * np.linalg.norm(u_ref.x.array)

    bad, _ = poisson_problem(n=32, petsc_options={"ksp_rtol": 1e-8})
    accel.accelerate(bad, model=models[2], guess=lambda field: -10 * field, guess_inputs=lambda: truth)
    with pytest.warns(GuessWarning, match="discarded"):
        ub = bad.solve()
    assert not neural_pc(bad).last_guess.used
    assert bad.solver.getIterationNumber() == cold_its
    assert np.linalg.norm(ub.x.array - u_ref.x.array) <= 1e-6 * np.linalg.norm(u_ref.x.array)

    with pytest.raises(AccelError, match="guess_inputs has shape"):
        p, _ = poisson_problem(n=32)
        accel.accelerate(p, model=models[2], guess=lambda f: f, guess_inputs=np.zeros((5, 5)))
        p.solve()


# -- choosing the preconditioner ---------------------------------------------------------------------------------------
def _bulged_problem(n=12, degree=1):
    msh = mesh.create_unit_square(MPI.COMM_WORLD, n, n)
    r = msh.geometry.x
    r[:, :2] = (r[:, :2] - 0.5) * (1 + 0.3 * (r[:, 1:2] - 0.5) ** 2)  # no longer a tensor lattice
    V = fem.FunctionSpace(msh, ("Lagrange", degree))
    u, v = ufl.TrialFunction(V), ufl.TestFunction(V)
    facets = mesh.locate_entities_boundary(msh, 1, lambda p: np.full(p.shape[1], True))
    bc = fem.dirichletbc(PETSc.ScalarType(0), fem.locate_dofs_topological(V, 1, facets), V)
    a, L = ufl.inner(ufl.grad(u), ufl.grad(v)) * ufl.dx, v * ufl.dx
    return (lambda options: LinearProblem(a, L, bcs=[bc], petsc_options=options)), V


def test_no_plugin_picks_dcdm_on_a_box_mesh_and_says_why(caplog, monkeypatch):
    from accel.integrations.fenics import attach

    built = []

    class CountingTransfer(attach.BoxGridTransfer):
        def __init__(self, *args, **kwargs):
            built.append(1)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(attach, "BoxGridTransfer", CountingTransfer)
    problem, V = poisson_problem(n=16)
    with caplog.at_level(logging.INFO, logger="accel"):
        accel.accelerate(problem)
    assert "chose the dcdm preconditioner: a structured box mesh with a shipped dcdm model" in caplog.text
    assert len(built) == 1  # the transfer built while choosing dcdm is the one the PC uses
    problem.solve()
    assert problem.solver.getType() == "fcg" and problem.solver.getConvergedReason() > 0
    assert problem.solver.getIterationNumber() <= 20
    problem.solver.destroy()


def test_no_plugin_picks_gnn_off_box_meshes_or_names_it_when_missing():
    from accel.integrations.fenics.attach import pick_plugin

    _, V = _bulged_problem()
    plugin, why = pick_plugin(V)
    assert plugin == "gnn" and "not a structured box mesh" in why
    _, V2 = _bulged_problem(degree=2)
    assert pick_plugin(V2)[0] == "gnn"
    with pytest.raises(GridError, match=r"dcdm needs a structured box mesh.*the gnn plugin .* is not installed"):
        pick_plugin(V, available={"dcdm", "twogrid-none"})


def test_a_matrix_component_runs_with_plain_cg_on_any_mesh(caplog):
    """A linear matrix-layout component (the gnn plugin's classical FSAI) through accelerate: the default KSP
    becomes CG, no grid is needed, and the answer is the classical one."""
    make, _ = _bulged_problem(n=16)
    ref = make({"ksp_type": "cg", "pc_type": "icc", "ksp_rtol": 1e-12})
    u_ref = ref.solve().x.array.copy()
    plain = make({"ksp_type": "cg", "pc_type": "none", "ksp_rtol": 1e-10})
    plain.solve()
    problem = make({"ksp_rtol": 1e-10})
    with caplog.at_level(logging.INFO, logger="accel"):
        accel.accelerate(problem, plugin="fsai", multigrid=False)
    assert "fsai preconditioner (asked for) on the matrix; KSP type changed from gmres to cg" in caplog.text
    uh = problem.solve()
    ksp = problem.solver
    assert ksp.getType() == "cg" and ksp.getConvergedReason() > 0
    assert ksp.getIterationNumber() < plain.solver.getIterationNumber()
    assert np.abs(uh.x.array - u_ref).max() < 1e-8 * np.abs(u_ref).max()
    assert neural_pc(problem).applies >= ksp.getIterationNumber()
    for p in (ref, plain, problem):
        p.solver.destroy()


def test_petsc_options_alone_with_a_matrix_component_on_any_mesh():
    """-pc_python_type FenicsNeuralPC -accel_plugin fsai with plain CG: no grid is looked for, the mesh need not be
    a box, and the answer is the classical one."""
    make, _ = _bulged_problem(n=16)
    ref = make({"ksp_type": "cg", "pc_type": "icc", "ksp_rtol": 1e-12})
    u_ref = ref.solve().x.array.copy()
    problem = make({"ksp_type": "cg", "ksp_rtol": 1e-10, "pc_type": "python",
                    "pc_python_type": "accel.integrations.fenics.pc.FenicsNeuralPC", "accel_plugin": "fsai"})
    uh = problem.solve()
    ctx = problem.solver.getPC().getPythonContext()
    assert problem.solver.getConvergedReason() > 0 and ctx.transfer is None and ctx.info.layout == "matrix"
    assert np.abs(uh.x.array - u_ref).max() < 1e-8 * np.abs(u_ref).max()
    ref.solver.destroy()
    problem.solver.destroy()


def test_a_linear_matrix_component_goes_on_gamgs_finest_level_by_default(caplog):
    """The one added line with gnn: GAMG with the learned factor on its finest level (accel.LearnedSmootherMG), the
    classical answer, no more iterations than GAMG; multigrid=True with a grid component is refused."""
    from accel.integrations.petsc.smoothed_mg import LearnedSmootherMG

    make, _ = _bulged_problem(n=24)
    ref = make({"ksp_type": "cg", "pc_type": "icc", "ksp_rtol": 1e-12})
    u_ref = ref.solve().x.array.copy()
    gamg = make({"ksp_type": "cg", "pc_type": "gamg", "ksp_rtol": 1e-10, "ksp_norm_type": "unpreconditioned"})
    gamg.solve()
    problem = make({"ksp_rtol": 1e-10})
    with caplog.at_level(logging.INFO, logger="accel"):
        accel.accelerate(problem, plugin="gnn")
    assert "with GAMG and the gnn preconditioner on its finest level (asked for)" in caplog.text
    uh = problem.solve()
    ksp = problem.solver
    ctx = neural_pc(problem)
    assert isinstance(ctx, LearnedSmootherMG) and len(ctx.stats()["learned_levels"]) == 1
    assert ksp.getType() == "cg" and ksp.getConvergedReason() > 0
    assert ksp.getIterationNumber() <= gamg.solver.getIterationNumber()
    assert np.abs(uh.x.array - u_ref).max() < 1e-8 * np.abs(u_ref).max()
    for p in (ref, gamg, problem):
        p.solver.destroy()
    grid_problem, _ = poisson_problem(n=16)
    with pytest.raises(AccelError, match="multigrid=True puts a linear matrix component"):
        accel.accelerate(grid_problem, plugin="dcdm", multigrid=True)
    grid_problem.solver.destroy()
