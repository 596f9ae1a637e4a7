"""The demo is a plugin command, and the core imports nothing above it."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_core_imports_nothing_from_plugins_or_integrations():
    bad = []
    for path in sorted((ROOT / "accel").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [("." * node.level) + (node.module or "")]
            for name in names:
                if name.split(".")[0] in ("plugins", "integrations") or name.startswith(
                        ("accel.plugins", "accel.integrations", ".plugins", ".integrations")):
                    bad.append(f"{path.name}:{node.lineno} imports {name}")
    assert not bad, bad


def test_integrations_import_no_plugin():
    """The PETSc and DOLFINx integrations reach components through the registry, never a plugin's module (the one
    exception: a bare .onnx surrogate file is read by the neural-operator plugin's Surrogate class)."""
    allowed = {("petsc/guess.py", "accel.plugins.neural_operator.surrogate")}
    bad = []
    for path in sorted((ROOT / "integrations").rglob("*.py")):
        rel = str(path.relative_to(ROOT / "integrations"))
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) and node.level == 0 else [])
            bad += [f"{rel}:{node.lineno} imports {n}" for n in names
                    if n.startswith(("accel.plugins", "plugins")) and (rel, n) not in allowed]
    assert not bad, bad


def test_library_code_never_switches_the_matplotlib_backend():
    """Plots use the object API (Figure + FigureCanvasAgg): a backend switch or pyplot is process-wide state."""
    paths = list((ROOT / "accel").glob("*.py"))
    for plugin in ("dcdm", "aas"):
        paths += list((ROOT / "plugins" / plugin).rglob("*.py"))
    bad = [str(p.relative_to(ROOT)) for p in paths if any(s in p.read_text() for s in ("matplotlib.use(", "pyplot"))]
    assert not bad, bad


def test_demo_arrives_through_the_dcdm_plugin_hook():
    from accel.cli import build_parser

    parser = build_parser()
    args = parser.parse_args(["demo", "--quick"])
    assert args.func.__module__ == "accel.plugins.dcdm.demo"


def test_quick_demo_solves_every_case_and_plots_residual_against_time(tmp_path):
    """The whole quick demo: every classical and neural row converges to rtol, the plot is written."""
    out = subprocess.run([sys.executable, "-m", "accel.cli", "demo", "--quick", "--threads", "1", "--out",
                          str(tmp_path)], capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert out.returncode == 0, out.stdout + out.stderr
    rows = [line.split() for line in out.stdout.splitlines() if line.endswith(" ok")]
    solvers = {r[2] for r in rows}
    assert {"cg+icc", "cg+gamg", "cg+boomeramg", "cg+boomeramg-3d", "cg+mg-sor", "cg+mg-cheby",
            "fcg2+neural"} <= solvers
    its = {(r[0], r[2]): int(r[3]) for r in rows}
    # the neural PC at most 1/3 of ICC's iterations on every quick case; PCMG is the strongest classical row
    for problem in ("poisson2d", "obstacles2d", "poisson3d"):
        assert 3 * its[(problem, "fcg2+neural")] <= its[(problem, "cg+icc")], its
    assert its[("poisson3d", "cg+mg-sor")] <= 6
    png = tmp_path / "demo_convergence.png"
    assert png.stat().st_size > 10_000 and png.read_bytes()[:4] == b"\x89PNG"
