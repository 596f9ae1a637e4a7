"""Matrix-layout preconditioner components through accel.NeuralPC: plain CG on 1 and 2 ranks, and as the level
smoother inside PETSc's GAMG (one context per level, options under each level's prefix).

The component is the third-party example plugin's ``jacobi-matrix`` (y = omega D^-1 x), installed with pip as a
user would: its iterations must equal PETSc's own Jacobi exactly, which shows the PC adds nothing of its own."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

HERE = Path(__file__).parent


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory):
    target = tmp_path_factory.mktemp("site")
    pip = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                          "--target", str(target), str(HERE / "thirdparty_plugin")], capture_output=True, text=True,
                         timeout=300)
    assert pip.returncode == 0, pip.stderr
    return target


def run(site, ranks: int, code: str, *args: str) -> subprocess.CompletedProcess:
    """``code`` under ``mpirun -n ranks`` (by name) with the plugin importable, limited to 60 s (a hang fails)."""
    script = Path(site) / f"script_{abs(hash(code))}.py"
    script.write_text(textwrap.dedent(code))
    env = dict(os.environ, PYTHONPATH=str(site), OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
               OMPI_MCA_rmaps_base_oversubscribe="1", OMP_NUM_THREADS="1")
    return subprocess.run(["timeout", "60", "mpirun", "-n", str(ranks), sys.executable, str(script), *args],
                          capture_output=True, text=True, env=env, timeout=90)


CG = """
import sys
import petsc4py; petsc4py.init(sys.argv)
from petsc4py import PETSc
from accel.integrations.petsc.solvers import random_rhs, solve
from accel.plugins.dcdm import problems

p = problems.build('obstacles2d', (48, 48))   # a varying diagonal: Jacobi differs from no preconditioner
A = problems.to_petsc(p.matrix); b = random_rhs(A)
cg = {'ksp_type': 'cg', 'ksp_norm_type': 'unpreconditioned'}
ref = solve(A, b, {**cg, 'pc_type': 'jacobi'})
none = solve(A, b, {**cg, 'pc_type': 'none'})
nn = solve(A, b, {**cg, 'pc_type': 'python', 'pc_python_type': 'accel.NeuralPC', 'accel_plugin': 'jacobi-matrix',
                  'accel_jacobi_omega': 0.5})
PETSc.Sys.Print('its', ref.iterations, none.iterations, nn.iterations, nn.pc_stats['applies'], f'{nn.residual:.1e}')
A.destroy(); b.destroy()
"""


@pytest.mark.parametrize("ranks", [1, 2])
def test_plain_cg_with_a_matrix_component(plugin_site, ranks):
    res = run(plugin_site, ranks, CG)
    assert res.returncode == 0, res.stdout + res.stderr[-3000:]
    ref, none, its, applies, residual = res.stdout.split("its")[1].split()
    # CG is invariant to scaling the preconditioner (omega 0.5): exactly PETSc's Jacobi count, fewer than none
    assert int(its) == int(ref) < int(none), res.stdout
    assert int(applies) >= int(its) and float(residual) < 1e-8


GAMG = """
import sys
import petsc4py; petsc4py.init(sys.argv)
from petsc4py import PETSc
from accel.integrations.petsc.solvers import random_rhs, solve
from accel.plugins.dcdm import problems

p = problems.build('poisson3d', (24, 24, 24))
A = problems.to_petsc(p.matrix); b = random_rhs(A)
gamg = {'ksp_type': 'cg', 'ksp_norm_type': 'unpreconditioned', 'pc_type': 'gamg', 'mg_levels_ksp_type': 'chebyshev'}
ref = solve(A, b, {**gamg, 'mg_levels_pc_type': 'jacobi'})
opts = PETSc.Options()
for k, v in {'ksp_type': 'cg', 'ksp_norm_type': 'unpreconditioned', 'pc_type': 'gamg',
             'mg_levels_ksp_type': 'chebyshev', 'mg_levels_pc_type': 'python',
             'mg_levels_pc_python_type': 'accel.NeuralPC', 'mg_levels_accel_plugin': 'jacobi-matrix',
             'mg_levels_1_accel_jacobi_omega': '0.5'}.items():
    opts['g_' + k] = v
ksp = PETSc.KSP().create(); ksp.setOptionsPrefix('g_'); ksp.setOperators(A); ksp.setTolerances(rtol=1e-8, atol=0)
ksp.setFromOptions()
x = A.createVecRight(); ksp.solve(b, x)
mg = ksp.getPC()
contexts = [mg.getMGSmoother(l).getPC().getPythonContext() for l in range(1, mg.getMGLevels())]
prefixes = [mg.getMGSmoother(l).getPC().getOptionsPrefix() for l in range(1, mg.getMGLevels())]
omegas = [c.component.omega for c in contexts]
PETSc.Sys.Print('its', ref.iterations, ksp.getIterationNumber(), ksp.getConvergedReason(), len(set(map(id, contexts))),
                len(contexts), min(c.applies for c in contexts), ' '.join(prefixes), ' '.join(map(str, omegas)))
del mg, contexts  # no petsc4py reference may outlive the KSP (PETSc would destroy it after Python is gone)
ksp.destroy(); x.destroy(); A.destroy(); b.destroy()
"""


@pytest.mark.parametrize("ranks", [1, 2])
def test_matrix_component_as_the_gamg_level_smoother(plugin_site, ranks):
    res = run(plugin_site, ranks, GAMG)
    assert res.returncode == 0, res.stdout + res.stderr[-3000:]
    words = res.stdout.split("its")[1].split()
    ref, its, reason, distinct, levels, applies = map(int, words[:6])
    n = levels
    prefixes, omegas = words[6:6 + n], [float(w) for w in words[6 + n:6 + 2 * n]]
    # Chebyshev/Jacobi inside GAMG, whether PETSc's Jacobi or the component: the same iterations
    assert its == ref and reason > 0 and levels >= 1, res.stdout
    assert distinct == levels and applies > 0  # one context per level, every one used
    assert prefixes == [f"g_mg_levels_{level}_" for level in range(1, levels + 1)]
    assert omegas[0] == 0.5 and all(w == 1.0 for w in omegas[1:])  # -mg_levels_1_accel_... reaches level 1 only
