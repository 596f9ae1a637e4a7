"""NeuralPC life cycle (Firedrake's PCBase): initialize once, update when only the operator's values change, and
options given in code kept as defaults that the options database overrides name by name."""
from __future__ import annotations

import pytest

from accel.errors import SolverConfigError
from accel.integrations.petsc.pc import NeuralPC, NeuralPCOptions
from accel.plugins.dcdm import problems
from accel.integrations.petsc.solvers import random_rhs


def _ksp(A, prefix, options, ctx=None):
    from petsc4py import PETSc

    opts = PETSc.Options()
    for k, v in options.items():
        opts[prefix + k] = v
    ksp = PETSc.KSP().create()
    ksp.setOptionsPrefix(prefix)
    ksp.setOperators(A)
    ksp.setTolerances(rtol=1e-8, atol=0.0)
    if ctx is not None:
        pc = ksp.getPC()
        pc.setType("python")
        pc.setPythonContext(ctx)
    ksp.setFromOptions()
    return ksp


def _clear(prefix):
    from petsc4py import PETSc

    opts = PETSc.Options()
    for k in list(opts.getAll()):
        if k.startswith(prefix):
            opts.delValue(k)


FCG = {"ksp_type": "fcg", "ksp_fcg_mmax": 2, "ksp_fcg_truncation_type": "standard",
       "ksp_norm_type": "unpreconditioned", "pc_type": "python", "pc_python_type": "accel.NeuralPC"}


@pytest.mark.parametrize("levels,coarse,smoother", [(0, "aggregation", "jacobi"), (1, "aggregation", "jacobi"),
                                                    (1, "galerkin", "jacobi"), (1, "aggregation", "sor")])
def test_new_values_on_the_same_structure_update_instead_of_initialize(tiny_dcdm_models, levels, coarse, smoother):
    """A second solve with new values of the same matrix (a time step) updates: same session, same levels, and the
    same iterations as a PC built from scratch on the new values (the refreshed Galerkin operators are exact)."""
    p = problems.build("obstacles2d", (64, 64))  # decoupled rows too: the masked transfers must stay right
    A = problems.to_petsc(p.matrix)
    b = random_rhs(A)
    prefix = f"upd{levels}{coarse[0]}{smoother[0]}_"
    options = {**FCG, "accel_model": str(tiny_dcdm_models["p2"]), "accel_grid": "64,64", "accel_levels": levels,
               "accel_coarse_operator": coarse, "accel_smoother": smoother}
    ksp = _ksp(A, prefix, options)
    x = A.createVecRight()
    try:
        ksp.solve(b, x)
        ctx = ksp.getPC().getPythonContext()
        session, levels_obj = ctx.component.session, ctx.grid_levels
        assert ctx.setups == {"initialize": 1, "update": 0} and ctx.levels == levels
        A.scale(3.0)  # new values, same matrix object and pattern
        A.shift(0.5)
        ksp.solve(b, x)
        assert ctx.setups == {"initialize": 1, "update": 1}
        assert ctx.component.session is session and ctx.grid_levels is levels_obj
        updated = ksp.getIterationNumber()
        assert ksp.getConvergedReason() > 0
        fresh = _ksp(A, prefix + "f_", options)
        fresh.solve(b, x)
        assert fresh.getPC().getPythonContext().setups == {"initialize": 1, "update": 0}
        assert updated == fresh.getIterationNumber(), (updated, fresh.getIterationNumber())
        fresh.destroy()
    finally:
        ksp.destroy()
        for v in (x, b, A):
            v.destroy()
        _clear(prefix)


def test_a_new_non_zero_pattern_initializes_again(tiny_dcdm_models):
    from petsc4py import PETSc

    p = problems.build("poisson2d", (32, 32))
    A = problems.to_petsc(p.matrix)
    b = random_rhs(A)
    ksp = _ksp(A, "nnz_", {**FCG, "accel_model": str(tiny_dcdm_models["p2"]), "accel_grid": "32,32"})
    x = A.createVecRight()
    try:
        ksp.solve(b, x)
        ctx = ksp.getPC().getPythonContext()
        first = ksp.getIterationNumber()
        A.setOption(PETSc.Mat.Option.NEW_NONZERO_ALLOCATION_ERR, False)
        A.setValue(0, 500, 0.0, addv=True)  # a new (zero) entry: the pattern changed, the values did not
        A.setValue(500, 0, 0.0, addv=True)
        A.assemble()
        ksp.solve(b, x)
        assert ctx.setups == {"initialize": 2, "update": 0}
        assert ksp.getIterationNumber() == first
    finally:
        ksp.destroy()
        for v in (x, b, A):
            v.destroy()
        _clear("nnz_")


def test_options_set_in_code_are_defaults_the_database_overrides_by_name(tiny_dcdm_models):
    """accelerate(p, model=..., threads=3) then setFromOptions: model and threads stay; a database option given
    overrides only its own name."""
    p = problems.build("poisson2d", (32, 32))
    A = problems.to_petsc(p.matrix)
    ctx = NeuralPC()
    ctx.opts = NeuralPCOptions(model=str(tiny_dcdm_models["p2"]), threads=3, grid="32,32")
    ksp = _ksp(A, "code_", {"ksp_type": "fcg"}, ctx)
    try:
        assert (ctx.opts.model, ctx.opts.threads) == (str(tiny_dcdm_models["p2"]), 3)
        _clear("code_")
        ksp2 = _ksp(A, "code_", {"accel_threads": "2"}, ctx)  # the same context, one name given
        assert (ctx.opts.model, ctx.opts.threads, ctx.opts.grid) == (str(tiny_dcdm_models["p2"]), 2, "32,32")
        ksp2.destroy()
    finally:
        ksp.destroy()
        A.destroy()
        _clear("code_")


@pytest.mark.parametrize("name,value,message", [
    ("accel_threads", "abc", r"-bad_accel_threads 'abc' is not an integer"),
    ("accel_cycle_omega", "fast", r"-bad_accel_cycle_omega 'fast' is not a number"),
    ("accel_check_ksp", "maybe", r"-bad_accel_check_ksp 'maybe' is not a boolean"),
])
def test_option_values_that_do_not_parse_are_named(name, value, message):
    p = problems.build("poisson2d", (8, 8))
    A = problems.to_petsc(p.matrix)
    try:
        with pytest.raises(SolverConfigError, match=message):
            _ksp(A, "bad_", {**FCG, name: value}).destroy()
    finally:
        A.destroy()
        _clear("bad_")


def test_update_on_two_ranks_matches_a_fresh_set_up(run_mpi, tmp_path, tiny_dcdm_models):
    script = tmp_path / "update2.py"
    script.write_text(
        "import sys, petsc4py; petsc4py.init([])\n"
        "from petsc4py import PETSc\n"
        "from accel.integrations.petsc.solvers import random_rhs\n"
        "from accel.plugins.dcdm import problems\n"
        "A = problems.to_petsc(problems.build('obstacles2d', (64, 64)).matrix); b = random_rhs(A)\n"
        "opts = PETSc.Options()\n"
        f"model = {str(tiny_dcdm_models['p2'])!r}\n"
        "for p in ('a_', 'f_'):\n"
        "    for k, v in {'ksp_type': 'fcg', 'ksp_fcg_mmax': 2, 'ksp_fcg_truncation_type': 'standard',\n"
        "                 'ksp_norm_type': 'unpreconditioned', 'pc_type': 'python', 'pc_python_type': 'accel.NeuralPC',\n"
        "                 'accel_model': model, 'accel_grid': '64,64', 'accel_levels': 1}.items():\n"
        "        opts[p + k] = v\n"
        "def ksp_for(p):\n"
        "    k = PETSc.KSP().create(); k.setOptionsPrefix(p); k.setOperators(A); k.setTolerances(rtol=1e-8)\n"
        "    k.setFromOptions(); return k\n"
        "x = A.createVecRight(); ksp = ksp_for('a_'); ksp.solve(b, x)\n"
        "A.scale(3.0); A.shift(0.5); ksp.solve(b, x)\n"
        "setups = ksp.getPC().getPythonContext().setups\n"
        "fresh = ksp_for('f_'); fresh.solve(b, x)\n"
        "PETSc.Sys.Print('result', setups['initialize'], setups['update'], ksp.getIterationNumber(),\n"
        "                fresh.getIterationNumber())\n"
        "ksp.destroy(); fresh.destroy(); A.destroy(); b.destroy(); x.destroy()\n")
    res = run_mpi(2, [str(script)], timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr[-3000:]
    initialize, update, updated, fresh = map(int, res.stdout.split("result")[1].split()[:4])
    assert (initialize, update) == (1, 1) and updated == fresh, res.stdout
