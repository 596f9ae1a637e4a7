"""The PETSc neural PC from the options database: configuration, bad input, fallbacks, MPI and the C driver."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from accel.integrations.petsc.solvers import random_rhs
from accel.errors import AccelError, ConvergenceError, GridError, ModelError, SolverConfigError, UnknownComponentError
from accel.integrations.petsc.solvers import solve
from accel.plugins.dcdm import problems

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def poisson2d():
    p = problems.build("poisson2d", (32, 32))
    A = problems.to_petsc(p.matrix)
    b = random_rhs(A)
    yield A, b
    A.destroy()
    b.destroy()


def _neural(A, b, config="fcg2+neural", **extra):
    extra.setdefault("accel_grid", "32,32")
    return solve(A, b, config, rtol=1e-8, extra=extra)


def test_options_are_removed_after_the_solve(poisson2d, tiny_dcdm_models):
    from petsc4py import PETSc

    before = PETSc.Options().getAll()
    r = _neural(*poisson2d, accel_model=str(tiny_dcdm_models["p2"]))
    assert r.residual < 1e-8
    assert PETSc.Options().getAll() == before


def test_default_model_is_the_shipped_one_for_the_dimension(poisson2d, caplog):
    import logging

    with caplog.at_level(logging.INFO, logger="accel"):
        r = _neural(*poisson2d)
    assert r.residual < 1e-8 and r.iterations <= 15
    assert "using shipped dcdm-poisson2d.onnx" in caplog.text


def test_model_for_another_dimension_is_a_clear_error(poisson2d, tiny_dcdm_models):
    with pytest.raises(ModelError, match=r"trained for 3D problems .* but the problem is 2D"):
        _neural(*poisson2d, accel_model=str(tiny_dcdm_models["p3"]))


def test_grid_the_network_cannot_take_is_padded(tiny_dcdm_models):
    p = problems.build("poisson2d", (30, 27))
    A = problems.to_petsc(p.matrix)
    b = random_rhs(A)
    r = solve(A, b, "fcg2+neural", rtol=1e-8, extra={"accel_model": str(tiny_dcdm_models["p2"]), "accel_grid": "27,30"})
    cg = solve(A, b, "cg", rtol=1e-8)
    # zero padding moves the boundary the network sees, so this is weaker than on a fitting grid, but it still helps
    assert r.residual < 1e-8 and r.iterations < 0.75 * cg.iterations, (r.iterations, cg.iterations)


def test_wrong_grid_size_is_a_clear_error(poisson2d):
    with pytest.raises(GridError, match=r"1024 rows but the grid 16x32 has 512 points"):
        _neural(*poisson2d, accel_grid="32,16")


def test_missing_and_corrupt_model_files(poisson2d, tmp_path):
    with pytest.raises(ModelError, match="does not exist"):
        _neural(*poisson2d, accel_model=str(tmp_path / "none.onnx"))
    bad = tmp_path / "corrupt.onnx"
    bad.write_bytes(b"this is not an onnx file")
    with pytest.raises(ModelError, match=r"corrupt.onnx is not a readable ONNX model.*re-create it with its recipe"):
        _neural(*poisson2d, accel_model=str(bad))


def test_unknown_plugin_lists_the_valid_ones(poisson2d):
    with pytest.raises(UnknownComponentError, match=r"unknown preconditioner 'magic'.*dcdm"):
        _neural(*poisson2d, accel_plugin="magic")


def test_non_flexible_ksp_is_refused_with_the_types_to_use(poisson2d, tiny_dcdm_models):
    cfg = {"ksp_type": "cg", "pc_type": "python", "pc_python_type": "accel.NeuralPC"}
    with pytest.raises(SolverConfigError, match=r"KSP type 'cg' cannot use the neural preconditioner.*fcg"):
        _neural(*poisson2d, config=cfg, accel_model=str(tiny_dcdm_models["p2"]))


def test_cuda_requested_without_cuda_is_an_error(poisson2d, tiny_dcdm_models):
    import onnxruntime

    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        pytest.skip("this machine has CUDA")
    with pytest.raises(AccelError, match="CUDA provider was requested"):
        _neural(*poisson2d, accel_model=str(tiny_dcdm_models["p2"]), accel_providers="CUDA,CPU")


def test_nan_from_the_network_switches_to_the_fallback_with_a_warning(poisson2d, tiny_dcdm_models):
    with pytest.warns(RuntimeWarning, match="NaN/Inf; using the 'jacobi' PC for the rest of this solve"):
        r = solve(*poisson2d, "fgmres+neural", rtol=1e-8,
                  extra={"accel_model": str(tiny_dcdm_models["nan2"]), "accel_grid": "32,32"})
    assert r.residual < 1e-8  # converged with Jacobi, and said so
    with pytest.raises(AccelError, match="-accel_fallback is none"):
        _neural(*poisson2d, accel_model=str(tiny_dcdm_models["nan2"]), accel_fallback="none")


def test_unconverged_solve_is_never_silent(poisson2d, tiny_dcdm_models):
    A, b = poisson2d
    with pytest.raises(ConvergenceError, match=r"not converged .* true relative residual"):
        solve(A, b, "cg", rtol=1e-12, max_it=5)


def test_sor_smoother_needs_fewer_iterations_than_jacobi():
    p = problems.build("poisson3d", (16, 16, 16))
    A = problems.to_petsc(p.matrix)
    b = random_rhs(A)
    try:
        jac = solve(A, b, "fcg2+neural", rtol=1e-8, extra={"accel_grid": "16,16,16"})
        sor = solve(A, b, "fcg2+neural", rtol=1e-8, extra={"accel_grid": "16,16,16", "accel_smoother": "sor"})
        sor11 = solve(A, b, "fcg2+neural", rtol=1e-8,
                      extra={"accel_grid": "16,16,16", "accel_smoother": "sor", "accel_cycle_pre": 1, "accel_cycle_post": 1,
                             "accel_smooth_pc_sor_omega": 1.0})
    finally:
        A.destroy()
        b.destroy()
    assert max(jac.residual, sor.residual, sor11.residual) < 1e-8
    # measured: Jacobi 13, SOR 2+2 6, SOR 1+1 8 (a symmetric SOR sweep smooths far more than a Jacobi one)
    assert sor.iterations <= jac.iterations // 2 + 1, (sor.iterations, jac.iterations)
    assert sor11.iterations <= jac.iterations - 3, (sor11.iterations, jac.iterations)


def test_unknown_smoother_lists_the_valid_ones(poisson2d):
    with pytest.raises(SolverConfigError, match=r"-accel_smoother 'gauss' is not supported; valid: jacobi, sor"):
        _neural(*poisson2d, accel_smoother="gauss")


def test_unknown_cycle_type_lists_the_valid_ones(poisson2d):
    with pytest.raises(SolverConfigError, match=r"-accel_cycle_type 'w': valid are v, k"):
        _neural(*poisson2d, accel_cycle_type="w")


def test_same_iterations_on_one_and_two_ranks(run_mpi, tmp_path):
    script = tmp_path / "ranks.py"
    script.write_text(
        "import petsc4py; petsc4py.init([])\n"
        "from petsc4py import PETSc\n"
        "from accel.plugins.dcdm import problems\n"
        "from accel.integrations.petsc.solvers import solve\n"
        "from accel.integrations.petsc.solvers import random_rhs\n"
        "for name, shape in [('poisson2d', (64, 64)), ('poisson3d', (16, 16, 16))]:\n"
        "    p = problems.build(name, shape); A = problems.to_petsc(p.matrix); b = random_rhs(A)\n"
        "    s = solve(A, b, 'fcg2+neural', rtol=1e-8, extra={'accel_grid': ','.join(map(str, reversed(shape))),\n"
        "                                                     'accel_smoother': 'sor'})\n"
        "    assert s.residual < 1e-8, s  # processor-local SOR: counts may differ between 1 and 2 ranks\n"
        "    r = solve(A, b, 'fcg2+neural', rtol=1e-8, extra={'accel_grid': ','.join(map(str, reversed(shape)))})\n"
        "    PETSc.Sys.Print(name, r.iterations, f'{r.residual:.2e}')\n"
        "    A.destroy(); b.destroy()\n")
    one, two = run_mpi(1, [str(script)]), run_mpi(2, [str(script)])
    assert one.returncode == 0 and two.returncode == 0, one.stderr + two.stderr
    lines1, lines2 = one.stdout.split("\n"), two.stdout.split("\n")
    its1 = [l.split()[1] for l in lines1 if l.strip()]
    its2 = [l.split()[1] for l in lines2 if l.strip()]
    assert its1 == its2 and len(its1) == 2
    assert all(float(l.split()[2]) < 1e-8 for l in lines2 if l.strip())


# -- the unmodified C program -------------------------------------------------------------------------------------
NEURAL_ARGS = ["-python", "-ksp_type", "fcg", "-ksp_fcg_mmax", "2", "-ksp_fcg_truncation_type", "standard",
               "-ksp_norm_type", "unpreconditioned", "-pc_type", "python", "-pc_python_type", "accel.NeuralPC"]


@pytest.fixture(scope="module")
def c_driver():
    if shutil.which("mpicc") is None:
        pytest.fail("mpicc not found: scripts/setup.sh installs petsc-dev (which brings the MPI compilers)")
    make = subprocess.run(["make", "-s", "-C", str(ROOT / "examples" / "c"), "laplace3d"],
                          capture_output=True, text=True, timeout=120)
    assert make.returncode == 0, make.stderr
    return ROOT / "examples" / "c" / "laplace3d"


def _c_env():
    import sys

    venv_bin = str(Path(sys.executable).parent)
    return {"PATH": venv_bin + os.pathsep + os.environ.get("PATH", "")}


def _iterations(res):
    assert res.returncode == 0, res.stdout + res.stderr
    words = res.stdout.split()
    return int(words[words.index("iterations") + 1]), float(words[words.index("true_relative_residual") + 1])


def test_unmodified_c_program_uses_the_neural_pc_on_one_and_two_ranks(c_driver, run_mpi):
    icc_its, _ = _iterations(run_mpi(1, [str(c_driver), "-n", "32", "-ksp_type", "cg", "-pc_type", "icc",
                                         "-ksp_norm_type", "unpreconditioned"]))
    its1, res1 = _iterations(run_mpi(1, [str(c_driver), "-n", "32", *NEURAL_ARGS], env=_c_env()))
    its2, res2 = _iterations(run_mpi(2, [str(c_driver), "-n", "32", *NEURAL_ARGS], env=_c_env()))
    assert res1 < 1e-8 and res2 < 1e-8
    assert its1 == its2 and its1 <= icc_its / 2, (its1, its2, icc_its)


def test_python_exception_inside_the_pc_called_from_c_is_logged_and_fails_the_solve(c_driver, run_mpi):
    args = [a if a != "fcg" else "cg" for a in NEURAL_ARGS]
    res = run_mpi(1, [str(c_driver), "-n", "16", *args], env=_c_env())
    assert res.returncode != 0
    assert "Traceback" in res.stderr and "KSP type 'cg' cannot use the neural preconditioner" in res.stderr


def test_non_flexible_ksp_set_in_code_is_refused_at_solve(poisson2d, tiny_dcdm_models):
    from petsc4py import PETSc

    from accel import NeuralPC

    A, b = poisson2d
    ksp = PETSc.KSP().create()
    ksp.setOperators(A)
    ksp.setType("gmres")  # set in code, not in the options database
    pc = ksp.getPC()
    pc.setType("python")
    ctx = NeuralPC()
    pc.setPythonContext(ctx)
    opts = PETSc.Options()
    opts["accel_model"], opts["accel_grid"] = str(tiny_dcdm_models["p2"]), "32,32"
    try:
        pc.setFromOptions()
        x = A.createVecRight()
        with pytest.raises(SolverConfigError, match="KSP type 'gmres' cannot use the neural preconditioner"):
            ksp.solve(b, x)
        x.destroy()
    finally:
        opts.delValue("accel_model")
        opts.delValue("accel_grid")
        ksp.destroy()


def test_a_new_operator_keeps_the_onnx_session(poisson2d, tiny_dcdm_models):
    """Newton steps and time steps reset the operator: the PC keeps its ONNX Runtime session."""
    from petsc4py import PETSc

    A, b = poisson2d
    ksp = PETSc.KSP().create()
    ksp.setOptionsPrefix("keep_")
    opts = PETSc.Options()
    for k, v in {"ksp_type": "fcg", "ksp_norm_type": "unpreconditioned", "pc_type": "python",
                 "pc_python_type": "accel.NeuralPC", "accel_model": str(tiny_dcdm_models["p2"]),
                 "accel_grid": "32,32"}.items():
        opts["keep_" + k] = v
    try:
        ksp.setOperators(A)
        ksp.setTolerances(rtol=1e-8)
        ksp.setFromOptions()
        x = A.createVecRight()
        ksp.solve(b, x)
        ctx = ksp.getPC().getPythonContext()
        session, first = ctx.component.session, ksp.getIterationNumber()
        B = A.copy()
        B.scale(2.0)
        ksp.setOperators(B)
        ksp.solve(b, x)
        assert ctx.component.session is session and ksp.getIterationNumber() == first
        B.destroy()
        x.destroy()
    finally:
        for k in list(opts.getAll()):
            if k.startswith("keep_"):
                opts.delValue(k)
        ksp.destroy()
