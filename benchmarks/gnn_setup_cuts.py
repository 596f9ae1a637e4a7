"""The gnn set-up per component (rows, checks, graph, network, assembly) on one cached matrix, one process.

    .venv/bin/python benchmarks/gnn_unstructured.py --family inclusion --h 0.013 --contrast 1e4 \
        --cache out/gnn-cases --assemble-only
    flock /tmp/accel-bench.lock taskset -c 0 .venv/bin/python benchmarks/gnn_setup_cuts.py \
        out/gnn-cases/inclusion_h0.013_c10000_s101 --solve

Each component is set up ``--repeat`` times after a warm-up on a small matrix (numba loads its compiled kernels and
ONNX Runtime builds its session there); the fastest set-up is printed with its breakdown, then (``--solve``) the CG
iterations with the factor applied by PETSc (rtol 1e-8, unpreconditioned residual norm, the case's right-hand
side). ``--model``/``--model2`` compare other tril(A)/tril(A^2) models with the shipped ones; ``--threads`` sets
ONNX Runtime's intra-op threads; ``--chunk`` the rows per network evaluation. ``--before REV``: also the plugin
as it was at git revision REV (its code and shipped models, extracted to a temporary folder and imported under
another name), each component's "before" row right before its "now" row, in the same process.
"""
from __future__ import annotations

import argparse
import importlib
import resource
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

from accel.cliargs import positive_int

COMPONENTS = ("gnn", "gnn2", "fsai", "fsai2")


def _small_matrix():
    from petsc4py import PETSc

    small = PETSc.Mat().createAIJ(size=(400, 400), nnz=5)
    for i in range(400):
        small.setValue(i, i, 4.0)
        for j in (i - 1, i + 1, i - 20, i + 20):
            if 0 <= j < 400:
                small.setValue(i, j, -1.0)
    small.assemble()
    return small


def _before(rev: str, folder: Path):
    """The gnn plugin's preconditioner module and shipped models at git revision ``rev``, as package ``gnn_before``."""
    root = Path(__file__).resolve().parent.parent
    archive = subprocess.run(["git", "-C", str(root), "archive", rev, "plugins/gnn"], check=True,
                             capture_output=True).stdout
    target = folder / "gnn_before"
    with tempfile.TemporaryFile() as fh:
        fh.write(archive)
        fh.seek(0)
        with tarfile.open(fileobj=fh) as tar:
            tar.extractall(folder)  # our own repository's archive
    (folder / "plugins" / "gnn").rename(target)
    sys.path.insert(0, str(folder))
    module = importlib.import_module("gnn_before.preconditioner")
    models = {}
    from accel import modelmeta

    for f in sorted((target / "models").glob("*.onnx")):
        models.setdefault(modelmeta.read(f).settings.get("pattern", "a"), str(f))
    return module, models


def _component(name: str, model: str | None, model2: str | None, threads: int, chunk: int | None, module=None):
    from accel.components import PreconditionerConfig
    from accel.runtime import RuntimeSettings

    if module is None:
        from accel.plugins.gnn import preconditioner as module
    FSAIPreconditioner, GNNPreconditioner = module.FSAIPreconditioner, module.GNNPreconditioner

    extra = {"gnn_pattern": "a2" if name.endswith("2") else "a"}
    if chunk:
        extra["gnn_chunk"] = chunk
    if name.startswith("fsai"):
        return FSAIPreconditioner(PreconditionerConfig(extra=extra))
    return GNNPreconditioner(PreconditionerConfig(model=model2 if name == "gnn2" else model, extra=extra,
                                                  runtime=RuntimeSettings(threads=threads)))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("matrix", help="STEM of STEM.A.dat (and STEM.b.dat for --solve), PETSc binary files")
    p.add_argument("--components", default=",".join(COMPONENTS), help=f"comma list of {', '.join(COMPONENTS)}")
    p.add_argument("--model", default=None, help="tril(A) model (default: the shipped one)")
    p.add_argument("--model2", default=None, help="tril(A^2) model (default: the shipped one)")
    p.add_argument("--threads", type=positive_int, default=1, help="ONNX Runtime intra-op threads")
    p.add_argument("--chunk", type=positive_int, default=None, help="gnn_chunk (default: the component's)")
    p.add_argument("--repeat", type=positive_int, default=1, help="set-ups per component (the fastest is shown)")
    p.add_argument("--solve", action="store_true", help="also solve with CG and print the iterations")
    p.add_argument("--before", metavar="REV", default=None, help="also time the plugin as of git revision REV")
    p.add_argument("--evaluated", action="store_true",
                   help="also print how many rows the network evaluates (chunks with their rings), untimed")
    args = p.parse_args(argv)
    names = [c.strip() for c in args.components.split(",") if c.strip()]
    unknown = [c for c in names if c not in COMPONENTS]
    if unknown:
        p.error(f"unknown component(s) {', '.join(unknown)}; valid: {', '.join(COMPONENTS)}")
    for path in [args.matrix + ".A.dat"] + ([args.matrix + ".b.dat"] if args.solve else []):
        if not Path(path).is_file():
            p.error(f"{path} does not exist; write it with benchmarks/gnn_unstructured.py --cache ... --assemble-only")
    from petsc4py import PETSc

    viewer = PETSc.Viewer().createBinary(args.matrix + ".A.dat", "r")
    A = PETSc.Mat().load(viewer)
    viewer.destroy()
    variants = [("now", None, args.model, args.model2)]
    scratch = tempfile.TemporaryDirectory() if args.before else None
    if args.before:
        module, models = _before(args.before, Path(scratch.name))
        variants.insert(0, (f"before ({args.before})", module, models.get("a"), models.get("a2")))
    small = _small_matrix()
    for _, module, model, model2 in variants:
        for name in names:
            component = _component(name, model, model2, args.threads, args.chunk, module)
            component.initialize(small)
            component.destroy()
    small.destroy()
    print(f"| unknowns | component | code | set-up s | rows | checks | graph | network | assemble | peak memory GB |"
          f"{' CG its |' if args.solve else ''}")
    print(f"|---|---|---|---|---|---|---|---|---|---|{'---|' if args.solve else ''}")
    evaluated = {}
    try:
        for name in names:
            for label, module, model, model2 in variants:
                best = None
                for _ in range(args.repeat):
                    component = _component(name, model, model2, args.threads, args.chunk, module)
                    t0 = time.perf_counter()
                    component.initialize(A)
                    seconds = time.perf_counter() - t0
                    if best is None or seconds < best[0]:
                        best = (seconds, dict(component.breakdown))
                    component.destroy()
                seconds, parts = best
                if args.evaluated and module is None and name.startswith("gnn"):
                    evaluated[name] = _evaluated_rows(A, _component(name, model, model2, args.threads, args.chunk))
                peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
                cells = [f"{parts.get(k, 0.0):.3f}" for k in ("rows", "checks", "graph")]
                cells += [f"{parts['factor']:.3f}" if "network" in parts else "", f"{parts['assemble']:.3f}"]
                its = (f" {_iterations(A, args.matrix, name, model, model2) if module is None else ''} |"
                       if args.solve else "")
                print(f"| {A.getSize()[0]} | {name} | {label} | {seconds:.3f} | {' | '.join(cells)} | {peak:.1f} |"
                      f"{its}", flush=True)
        for name, text in evaluated.items():
            print(f"{name}: the network evaluates {text}")
    finally:
        A.destroy()
        if scratch is not None:
            scratch.cleanup()
    return 0


def _evaluated_rows(A, component) -> str:
    """How many rows the network evaluates (its chunks with their rings) over the rows of A, for ``component``'s
    rings and chunk size (one process): the chunks' share of repeated work."""
    from accel.plugins.gnn.distributed import overlapped_block
    from accel.plugins.gnn.graph import diagonal_and_checks
    from accel.plugins.gnn.preconditioner import chunks

    size = component.options["gnn_chunk"]
    block, owned = overlapped_block(A, component.rings)
    total = sum(len(sub.rows) for sub, *_ in chunks(block, diagonal_and_checks(block), owned, component.rings, size))
    return f"{total} rows in {size}-row chunks ({total / len(owned):.2f}x)"


def _iterations(A, stem: str, name: str, model, model2) -> int:
    from petsc4py import PETSc

    sys.path.insert(0, str(Path(__file__).parent))
    from gnn_common import run

    viewer = PETSc.Viewer().createBinary(stem + ".b.dat", "r")
    b = PETSc.Vec().load(viewer)
    viewer.destroy()
    result = run(A, b, f"cg+{name}-native", model=model, model2=model2)
    b.destroy()
    return result.iterations


if __name__ == "__main__":
    raise SystemExit(main())
