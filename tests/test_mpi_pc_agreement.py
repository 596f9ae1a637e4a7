"""No hang on any rank: an option that only one rank gets (or that fails on one rank only) ends with a clear error on
every rank. Each case runs a real 2-rank solve under ``timeout 60 mpirun -n 2`` (by name); a hang exits 124."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent("""
    import json, sys
    import petsc4py; petsc4py.init([])
    from petsc4py import PETSc
    from accel.errors import AccelError
    from accel.integrations.petsc.solvers import random_rhs
    from accel.plugins.dcdm import problems

    common, per_rank = json.loads(sys.argv[1]), json.loads(sys.argv[2])
    rank = PETSc.COMM_WORLD.getRank()
    opts = PETSc.Options()
    for k, v in {**common, **per_rank.get(str(rank), {})}.items():
        opts['r_' + k] = v
    A = problems.to_petsc(problems.build('poisson2d', (32, 32)).matrix); b = random_rhs(A); x = A.createVecRight()
    ksp = PETSc.KSP().create(); ksp.setOptionsPrefix('r_'); ksp.setOperators(A); ksp.setTolerances(rtol=1e-8)
    try:
        ksp.setFromOptions()
        ksp.solve(b, x)
        line, code = f'rank {rank} solved in {ksp.getIterationNumber()} iterations', 0
    except AccelError as exc:
        line, code = f'rank {rank} failed: {exc}', 3
    with open(f'{sys.argv[3]}/rank{rank}.txt', 'w') as f:  # one file per rank: mpirun may interleave stdout
        f.write(line)
    ksp.destroy(); A.destroy(); b.destroy(); x.destroy()
    sys.exit(code)
""")

FCG = {"ksp_type": "fcg", "ksp_fcg_mmax": "2", "ksp_fcg_truncation_type": "standard",
       "ksp_norm_type": "unpreconditioned", "pc_type": "python", "pc_python_type": "accel.NeuralPC",
       "accel_grid": "32,32"}


def run_two_ranks(tmp_path, common: dict, per_rank: dict) -> subprocess.CompletedProcess:
    script = tmp_path / "per_rank.py"
    script.write_text(SCRIPT)
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
               OMPI_MCA_rmaps_base_oversubscribe="1", OMP_NUM_THREADS="1")
    for old in tmp_path.glob("rank*.txt"):
        old.unlink()
    res = subprocess.run(["timeout", "60", "mpirun", "-n", "2", sys.executable, str(script), json.dumps(common),
                          json.dumps(per_rank), str(tmp_path)], capture_output=True, text=True, env=env, timeout=90)
    res.lines = {f.stem[4:]: f.read_text() for f in sorted(tmp_path.glob("rank*.txt"))}
    return res


def assert_both_ranks_fail(res, pattern: str):
    assert res.returncode not in (0, 124), f"returncode {res.returncode} (124: hang)\n{res.stdout}\n{res.stderr[-2000:]}"
    lines = res.lines
    assert set(lines) == {"0", "1"}, res.stdout + res.stderr[-2000:]
    import re

    for line in lines.values():
        assert "failed:" in line and re.search(pattern, line), line


@pytest.mark.parametrize("per_rank,pattern", [
    ({"1": {"ksp_type": "cg"}}, r"KSP type 'cg' cannot use the neural preconditioner"),
    ({"1": {"ksp_type": "fgmres"}}, r"the KSP type differs between ranks \('fcg' on rank 0, 'fgmres' on rank 1\)"),
    ({"1": {"accel_smoother": "foo"}}, r"-r_accel_smoother differs between ranks \('jacobi' on rank 0, 'foo' on rank 1\)"),
    ({"1": {"accel_threads": "abc"}}, r"-r_accel_threads 'abc' is not an integer"),
    ({"1": {"accel_grid": "16,64"}}, r"-r_accel_grid differs between ranks"),
    ({"0": {"accel_fallback": "none"}}, r"-r_accel_fallback differs between ranks"),
], ids=["ksp_type", "ksp_type_flexible", "smoother", "threads", "grid", "fallback"])
def test_an_option_on_one_rank_fails_on_both(tmp_path, per_rank, pattern):
    assert_both_ranks_fail(run_two_ranks(tmp_path, FCG, per_rank), pattern)


def test_an_invalid_option_on_every_rank_fails_on_both(tmp_path):
    res = run_two_ranks(tmp_path, {**FCG, "accel_smoother": "foo"}, {})
    assert_both_ranks_fail(res, r"-accel_smoother 'foo' is not supported; valid: jacobi, sor")


def test_fallback_none_when_the_network_fails_mid_solve(tmp_path, tiny_dcdm_models):
    """The NaN check is made on rank 0 and broadcast, so every rank takes the same branch: an error on both with
    -accel_fallback none, the fallback PC on both otherwise."""
    common = {**FCG, "accel_model": str(tiny_dcdm_models["nan2"])}
    assert_both_ranks_fail(run_two_ranks(tmp_path, {**common, "accel_fallback": "none"}, {}),
                           r"network returned NaN/Inf and -accel_fallback is none")
    res = run_two_ranks(tmp_path, common, {})
    assert res.returncode == 0, res.stdout + res.stderr[-2000:]
    assert all("solved in" in line for line in res.lines.values()) and len(res.lines) == 2


def test_a_matrix_component_option_on_one_rank_fails_on_both(tmp_path):
    """A matrix component's own option (here the gnn plugin's FSAI ablation, no model needed) given to one rank only:
    ``gnn_apply explicit`` on one rank would transpose G there alone and leave the other rank waiting."""
    common = {"ksp_type": "cg", "pc_type": "python", "pc_python_type": "accel.NeuralPC", "accel_plugin": "fsai"}
    res = run_two_ranks(tmp_path, common, {"1": {"accel_gnn_apply": "transpose"}})
    assert_both_ranks_fail(res, r"-r_accel_gnn_apply differs between ranks "
                                r"\('explicit' on rank 0, 'transpose' on rank 1\)")
    res = run_two_ranks(tmp_path, common, {})
    assert res.returncode == 0, res.stdout + res.stderr[-2000:]
    assert all("solved in" in line for line in res.lines.values()) and len(res.lines) == 2
