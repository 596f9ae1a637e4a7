"""The plugin registry: built-ins and third-party plugins through one entry-point path; broken ones skipped."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from accel.errors import UnknownComponentError
from accel.registry import Registry, get_registry

HERE = Path(__file__).parent


def _run(code: str, extra_path: list[Path], timeout=240) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(str(p) for p in extra_path))
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, env=env,
                          timeout=timeout)


def test_builtins_are_entry_points_with_components():
    reg = get_registry()
    assert {"dcdm", "neural_operator", "wos", "aas"} <= set(reg.plugins)
    names = {c.name for c in reg.components("preconditioner")}
    assert {"dcdm", "twogrid-exact", "twogrid-none"} <= names
    # shipped models are found through the same registry
    assert len(reg.model_files("dcdm")) >= 3


def test_unknown_name_lists_valid_ones():
    with pytest.raises(UnknownComponentError, match=r"unknown preconditioner 'nope'.*valid names: .*dcdm"):
        get_registry().get("preconditioner", "nope")
    with pytest.raises(ValueError, match="valid kinds"):
        get_registry().components("solver")


def test_registry_is_idempotent_and_ordered():
    a, b = Registry().load(), Registry().load()
    assert list(a.plugins) == list(b.plugins) == sorted(a.plugins)
    assert a.load() is a and list(a.plugins) == list(b.plugins)


def _fake_dist(root: Path, name: str, module: str, body: str):
    """A real installed distribution (dist-info with an entry point) whose module is broken in some way."""
    info = root / f"{name}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[accel]\n{name} = {module}\n")
    (root / f"{module}.py").write_text(textwrap.dedent(body))


def test_broken_third_party_plugins_are_reported_and_skipped(tmp_path):
    _fake_dist(tmp_path, "broken_import", "broken_import_mod", "raise ImportError('missing dependency xyz')\n")
    _fake_dist(tmp_path, "broken_hook", "broken_hook_mod", """
        from accel import hookimpl
        @hookimpl
        def accel_components():
            raise RuntimeError('hook exploded')
        """)
    out = _run("""
        import warnings
        warnings.simplefilter('ignore')
        from accel.registry import get_registry
        reg = get_registry()
        print(sorted(reg.plugins))
        for f in reg.failures: print('FAIL', f)
        print(len(reg.components('preconditioner')))
        """, [tmp_path])
    assert out.returncode == 0, out.stderr
    assert "FAIL plugin 'broken_hook'" in out.stdout and "hook raised RuntimeError: hook exploded" in out.stdout
    assert "FAIL plugin 'broken_import'" in out.stdout and "missing dependency xyz" in out.stdout
    assert "'dcdm'" in out.stdout and "broken" not in out.stdout.splitlines()[0]
    cli = subprocess.run([sys.executable, "-m", "accel.cli", "plugins"], capture_output=True, text=True,
                         env=dict(os.environ, PYTHONPATH=str(tmp_path)), timeout=120)
    assert cli.returncode == 0 and "FAILED plugin 'broken_import'" in cli.stdout and "dcdm" in cli.stdout


def test_third_party_plugin_installed_discovered_and_used_in_a_solve(tmp_path):
    target = tmp_path / "site"
    pip = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                          "--target", str(target), str(HERE / "thirdparty_plugin")], capture_output=True, text=True,
                         timeout=300)
    assert pip.returncode == 0, pip.stderr
    listing = subprocess.run([sys.executable, "-m", "accel.cli", "plugins"], capture_output=True, text=True,
                             env=dict(os.environ, PYTHONPATH=str(target)), timeout=120)
    assert "scaled_jacobi  [accel-scaled-jacobi 0.3.0]" in listing.stdout
    assert "scaled-jacobi" in listing.stdout
    out = _run("""
        import petsc4py; petsc4py.init([])
        from accel.plugins.dcdm import problems
        from accel.integrations.petsc.solvers import solve
        from accel.integrations.petsc.solvers import random_rhs
        p = problems.build('poisson2d', (32, 32)); A = problems.to_petsc(p.matrix); b = random_rhs(A)
        r = solve(A, b, 'fcg8+neural', rtol=1e-8, extra={'accel_plugin': 'scaled-jacobi', 'accel_grid': '32,32'})
        c = solve(A, b, 'cg', rtol=1e-8)
        print(r.iterations, c.iterations, r.residual, r.pc_stats['applies'])
        """, [target])
    assert out.returncode == 0, out.stderr
    its, cg_its, res, applies = out.stdout.split()
    # diagonal scaling by a constant is CG in exact arithmetic: the plugin really ran inside the PC
    assert abs(int(its) - int(cg_its)) <= 3 and float(res) < 1e-8 and int(applies) >= int(its)


def test_clashing_names_never_shadow_silently(tmp_path):
    """A real installed distribution whose plugins reuse names: the built-in keeps its plain name (with a warning
    naming the other plugin), two third-party plugins sharing a name are an error naming both, and every component
    stays reachable as PLUGIN:NAME; an entry point named like a built-in plugin is skipped and reported."""
    target = tmp_path / "site"
    pip = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                          "--target", str(target), str(HERE / "thirdparty_shadow")], capture_output=True, text=True,
                         timeout=300)
    assert pip.returncode == 0, pip.stderr
    out = _run("""
        import warnings
        from accel.errors import AmbiguousComponentError
        from accel.registry import get_registry
        reg = get_registry()
        for f in reg.failures: print('FAIL', f)
        print('WOS', reg.plugins['wos'].source.split()[0])
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter('always')
            print('PLAIN', reg.get('preconditioner', 'dcdm').plugin)
            print('WARN', *[str(w.message) for w in caught if 'also declared' in str(w.message)])
        print('QUALIFIED', reg.get('preconditioner', 'aaa_shadow:dcdm').summary)
        print('BUILTIN', reg.get('preconditioner', 'dcdm:dcdm').plugin)
        print('TWIN', reg.get('sampler', 'zzz_twin:twin').summary)
        try:
            reg.get('sampler', 'twin')
        except AmbiguousComponentError as exc:
            print('AMBIGUOUS', exc)
        """, [target])
    assert out.returncode == 0, out.stderr
    lines = {line.split(" ", 1)[0]: line.split(" ", 1)[1] for line in out.stdout.splitlines()}
    assert lines["PLAIN"] == "dcdm" and lines["BUILTIN"] == "dcdm"
    assert "'aaa_shadow' (accel-shadow 0.1.0)" in lines["WARN"] and "aaa_shadow:dcdm" in lines["WARN"]
    assert lines["QUALIFIED"] == "impostor of the built-in dcdm" and lines["TWIN"] == "second twin"
    assert ("'aaa_shadow' (accel-shadow 0.1.0), 'zzz_twin' (accel-shadow 0.1.0)" in lines["AMBIGUOUS"]
            and "aaa_shadow:twin, zzz_twin:twin" in lines["AMBIGUOUS"])
    # the entry point 'wos' of accel-shadow does not replace the built-in plugin 'wos'
    assert lines["WOS"] == "accel" and "plugin 'wos' (accel-shadow 0.1.0) was skipped" in lines["FAIL"]
    with pytest.raises(UnknownComponentError, match="nobody:dcdm"):
        get_registry().get("preconditioner", "nobody:dcdm")
    listing = subprocess.run([sys.executable, "-m", "accel.cli", "plugins"], capture_output=True, text=True,
                             env=dict(os.environ, PYTHONPATH=str(target)), timeout=120)
    assert listing.returncode == 0
    for qualified in ("aaa_shadow:dcdm", "dcdm:dcdm", "aaa_shadow:twin", "zzz_twin:twin"):
        assert f" {qualified} " in listing.stdout  # the listing shows the names that choose between them
    assert "FAILED plugin 'wos' (accel-shadow 0.1.0) was skipped" in listing.stdout


def test_component_names_cannot_hold_the_qualifier_separator():
    from accel.components import ComponentSpec

    with pytest.raises(ValueError, match="free of ':'"):
        ComponentSpec("a:b", "sampler", "m:f")
    assert get_registry().get("preconditioner", "dcdm:dcdm").qualified_name == "dcdm:dcdm"
    # a qualified name finds the plugin's shipped models and passes the models' plugin check
    files = get_registry().model_files("dcdm:dcdm")
    assert files == get_registry().model_files("dcdm") and len(files) >= 3
    from accel import modelmeta

    modelmeta.read(files[0]).check_plugin("dcdm:dcdm")
