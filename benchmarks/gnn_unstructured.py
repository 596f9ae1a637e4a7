"""CG + gnn, GAMG with the gnn smoother and their classical ablations on unstructured gmsh meshes of non-box
domains (a 2D plate with three holes, a 3D box minus a ball), P1 variable-coefficient diffusion, contrast 10 and
1e4, rtol 1e-8 on the unpreconditioned residual norm. Every row is one PETSc KSP configured from options (the gnn
rows through accel.NeuralPC), set up and solved in the same process, one after the other.

    flock /tmp/accel-bench.lock .venv/bin/python benchmarks/gnn_unstructured.py --family plate --h 0.02,0.01,0.005
    flock /tmp/accel-bench.lock mpirun -n 2 .venv/bin/python benchmarks/gnn_unstructured.py --family plate --h 0.01

Prints one markdown row per configuration (iterations, set-up, solve, total; for the gnn rows the share of the
network in the set-up and the network's time over the solve's) and appends JSON lines to --jsonl.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

ROWS = ["cg+icc", "cg+fsai", "cg+gnn", "cg+fsai-native", "cg+gnn-native", "cg+fsai2", "cg+gnn2", "cg+fsai2-native",
        "cg+gnn2-native", "gamg", "gamg+gnn", "gamg+gnn-fine", "gamg+fsai", "gamg+gnn-native", "gamg+fsai-native",
        "gamg+gnn-native-fine", "gamg+gnn-native-fine-cheb", "gamg+fsai-native-fine-cheb", "gamg+gnn2-native-fine",
        "gamg+fsai2-native-fine", "gamg+jacobi", "gamg+sor", "gamg+icc", "boomeramg", "boomeramg-3d"]
# the Python-apply twins of the native rows (same iterations, tested) are left out by default, except gamg+gnn
# the recommended configuration (docs/benchmarks/gnn.md): GAMG, the network's factor on the finest level applied by
# PETSc with one undamped Richardson sweep before and after the coarse correction, GAMG's Chebyshev/Jacobi below
BEST = "gamg+gnn-native-fine-rich"
DEFAULT_ROWS = [r for r in ROWS if r not in ("cg+fsai", "cg+gnn", "cg+fsai2", "cg+gnn2", "gamg+fsai", "gamg+jacobi")]
# cheaper uses of the factor on GAMG's finest level (Richardson, one Chebyshev step, pre-smoothing only), each with
# its classical FSAI twin, and GAMG's default smoother with one step per level; not in the default rows
ROWS += ["learned-mg", "learned-mg+fsai"]  # the same as BEST and its twin, through accel.LearnedSmootherMG's options
ROWS += ["gamg-cheb1"] + [f"gamg+{plugin}-native-fine-{variant}" for variant in ("rich", "rich2", "cheb1", "rich-pre")
                          for plugin in ("gnn", "fsai")]


def main(argv=None) -> int:
    from accel.cliargs import existing_file, positive_float

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--family", choices=("plate", "inclusion"), help="required unless --summary")
    p.add_argument("--h", default="0.02", help="comma-separated mesh sizes (smaller: more unknowns)")
    p.add_argument("--contrast", default="10,1e4", help="comma-separated coefficient contrasts")
    p.add_argument("--rows", default=",".join(DEFAULT_ROWS), help=f"comma-separated rows from {', '.join(ROWS)}")
    p.add_argument("--model", default=None, help="gnn model (default: the shipped one)")
    p.add_argument("--model2", default=None, help="tril(A^2) gnn model of the gnn2 rows (default: --model)")
    p.add_argument("--seed", type=int, default=101, help="mesh and coefficient seed (held out: training used 0-5)")
    p.add_argument("--rtol", type=positive_float, default=1e-8)
    p.add_argument("--jsonl", default="docs/results/gnn_unstructured.jsonl")
    p.add_argument("--cache", default=None, help="folder of PETSc binary A and b per case: read when present, else "
                   "assembled and written there (so a timed run need not mesh and assemble under the lock)")
    p.add_argument("--assemble-only", action="store_true", help="fill --cache and stop (no solves)")
    p.add_argument("--summary", metavar="JSONL", type=existing_file, nargs="+", default=None,
                   help="print the best-configuration table from JSONL records of earlier runs and stop")
    p.add_argument("--best", default=BEST, help=f"the row shown as the best gnn configuration (default {BEST})")
    p.add_argument("--before", metavar="REV", default=None,
                   help="also run each PETSc-native gnn/fsai row with the plugin as of git revision REV (its code and "
                        "shipped models), right before the row itself, in the same process: a before/after pair "
                        "under the same load (row name ROW@REV)")
    p.add_argument("--before-last", action="store_true", help="with --before: the REV row right after the row")
    args = p.parse_args(argv)
    if args.summary:
        print(summary(args.summary, args.best))
        return 0
    if not args.family:
        p.error("--family is required (plate or inclusion)")
    rows = args.rows.split(",")
    unknown = sorted(set(rows) - set(ROWS))
    if unknown:
        p.error(f"unknown rows {', '.join(unknown)}; valid: {', '.join(ROWS)}")

    from mpi4py import MPI

    from accel.plugins.gnn.problems import diffusion
    from gnn_common import run

    comm = MPI.COMM_WORLD
    run_id = comm.bcast(f"{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-{os.getpid()}")
    before = None
    if args.before:
        import importlib
        import tempfile

        from gnn_common import NATIVE
        from gnn_setup_cuts import _before

        scratch = tempfile.TemporaryDirectory()
        _, before_models = _before(args.before, Path(scratch.name))
        before = (importlib.import_module("gnn_before.native"), before_models.get("a"), before_models.get("a2"))
        twin = {name: [f"{name}@{args.before}"] if name in NATIVE else [] for name in rows}
        rows = [r for name in rows for r in ([name] + twin[name] if args.before_last else twin[name] + [name])]
    if args.assemble_only and not args.cache:
        p.error("--assemble-only needs --cache")
    out = Path(args.jsonl)
    # once per process: numba loads the compiled FSAI kernel and ONNX Runtime its libraries; timed apart so that
    # the first gnn row of the first problem is not charged for it
    t0 = time.perf_counter()
    warm = diffusion("square", 4, contrast=10.0, comm=comm)
    run(warm.A, warm.b, "cg+gnn", model=args.model)
    if before:  # the other revision's compiled kernels (numba compiles them into the scratch folder) and model
        for name in ("cg+gnn-native", "cg+fsai-native"):
            run(warm.A, warm.b, name, model=args.model or before[1], native=before[0])
    if any("2" in row.split("+")[-1] for row in rows):  # the tril(A^2) kernels and model
        run(warm.A, warm.b, "cg+gnn2", model2=args.model2 or args.model)
    warm.destroy()
    if comm.rank == 0:
        print(f"one-time start-up of the gnn components in this process: {time.perf_counter() - t0:.1f} s")
    for h in (float(v) for v in args.h.split(",")):
        if args.assemble_only:
            for contrast in (float(v) for v in args.contrast.split(",")):
                cached_problem(args, h, contrast, comm).destroy()
            continue
        for contrast in (float(v) for v in args.contrast.split(",")):
            t0 = time.perf_counter()
            prob = cached_problem(args, h, contrast, comm)
            assemble = time.perf_counter() - t0
            n = prob.A.getSize()[0]
            if comm.rank == 0:
                print(f"\n{args.family} h={h:g} contrast={contrast:g}: {n} unknowns, {comm.size} rank(s), "
                      f"mesh+assembly {assemble:.1f} s\n")
                print("| row | its | set-up s | solve s | total s | network share of set-up | network / solve | "
                      "its / ICC's | total / ICC's | total / GAMG's |")
                print("|---|---|---|---|---|---|---|---|---|---|", flush=True)
            reference = {}  # the cg+icc and gamg rows of this case, for the ratio columns (rows listed after them)
            for name in rows:
                if "@" in name:  # the same row with the plugin as of --before (its shipped models unless --model)
                    module, model_a, model_a2 = before
                    r = run(prob.A, prob.b, name.split("@")[0], model=args.model or model_a, rtol=args.rtol,
                            model2=args.model2 or args.model or model_a2, native=module)
                else:
                    r = run(prob.A, prob.b, name, model=args.model, rtol=args.rtol, model2=args.model2 or args.model)
                net = r.pc_stats.get("network")
                share = f"{net / r.setup_s:.0%}" if net is not None and r.setup_s > 0 else ""
                over = f"{net / r.solve_s:.2f}" if net is not None and r.solve_s > 0 else ""
                tag = "" if r.converged else f" (not converged: reason {r.reason}, residual {r.residual:.1e})"
                if name in ("cg+icc", "gamg"):
                    reference[name] = r
                icc, gamg = reference.get("cg+icc"), reference.get("gamg")
                ratios = (f"{r.iterations / icc.iterations:.2f} | {r.total_s / icc.total_s:.2f}" if icc else " | ")
                ratios += f" | {r.total_s / gamg.total_s:.2f}" if gamg else " | "
                if comm.rank == 0:
                    print(f"| {name}{tag} | {r.iterations} | {r.setup_s:.3f} | {r.solve_s:.3f} | {r.total_s:.3f} | "
                          f"{share} | {over} | {ratios} |", flush=True)
                    record = {"family": args.family, "h": h, "contrast": contrast, "unknowns": n, "ranks": comm.size,
                              "row": name, "iterations": r.iterations, "setup_s": r.setup_s, "solve_s": r.solve_s,
                              "residual": r.residual, "converged": r.converged, "model": args.model or "shipped",
                              "model2": args.model2, "seed": args.seed, "breakdown": r.pc_stats,
                              "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "run": run_id}
                    out.parent.mkdir(parents=True, exist_ok=True)
                    with open(out, "a") as f:
                        f.write(json.dumps(record) + "\n")
            prob.destroy()
    return 0


# the same structure with classical FSAI in the learned factor's place (the ablation shown beside the best row)
TWINS = {"learned-mg": "learned-mg+fsai", "gamg+gnn-native-fine-rich": "gamg+fsai-native-fine-rich"}


def summary(paths, best: str) -> str:
    """One markdown row per case and run that has the best row: its iterations and total time against ICC, GAMG
    and BoomerAMG of the same run (ratios never mix runs), beside the one-level CG + gnn rows of that run."""
    records = [json.loads(line) for path in paths for line in Path(path).read_text().splitlines() if line.strip()]
    runs: dict[tuple, dict[str, dict]] = {}
    for r in records:
        key = (r["family"], r["contrast"], r["unknowns"], r["ranks"], r.get("run", r["date"]))
        runs.setdefault(key, {})[r["row"]] = r
    lines = ["| family | contrast | unknowns | ICC its, total s | GAMG its, total s | BoomerAMG its, total s | "
             f"BoomerAMG-3d its, total s | {best} its, total s | its / ICC's | total / ICC's | total / GAMG's | "
             "total / best BoomerAMG's | classical twin (FSAI in the slot) its, total s | twin's total / ICC's | "
             "cg+gnn: its, total / ICC's | cg+gnn2: its, total / ICC's |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    twin = TWINS.get(best, "")

    def total(r):
        return r["setup_s"] + r["solve_s"]

    def cell(rows, name):
        r = rows.get(name)
        return f"{r['iterations']}, {total(r):.3f}" if r else ""

    for key in sorted(runs, key=lambda k: (k[0], -k[1], k[3], k[2], k[4])):
        rows = runs[key]
        b, icc, gamg = rows.get(best), rows.get("cg+icc"), rows.get("gamg")
        if not (b and icc and gamg):
            continue
        boomer = [total(rows[n]) for n in ("boomeramg", "boomeramg-3d") if n in rows]
        one_level = []
        for name in ("cg+gnn-native", "cg+gnn2-native"):
            # from this run, else from the latest other run of the case that has it, against that run's ICC
            donors = [rows] + [runs[k] for k in sorted(runs, key=lambda k: k[4], reverse=True)
                               if k[:4] == key[:4] and k != key and name in runs[k] and "cg+icc" in runs[k]]
            donor = next((d for d in donors if name in d), None)
            if donor:
                r, ref = donor[name], donor["cg+icc"]
                one_level.append(f"{r['iterations'] / ref['iterations']:.2f}, {total(r) / total(ref):.2f}")
            else:
                one_level.append("")
        ranks = f" ({key[3]} ranks)" if key[3] > 1 else ""
        over_boomer = f"{total(b) / min(boomer):.2f}" if boomer else ""
        lines.append(f"| {key[0]}{ranks} | {key[1]:g} | {key[2]:,} | {cell(rows, 'cg+icc')} | {cell(rows, 'gamg')} | "
                     f"{cell(rows, 'boomeramg')} | {cell(rows, 'boomeramg-3d')} | {cell(rows, best)} | "
                     f"{b['iterations'] / icc['iterations']:.2f} | {total(b) / total(icc):.2f} | "
                     f"{total(b) / total(gamg):.2f} | {over_boomer} | {cell(rows, twin)} | "
                     f"{f'{total(rows[twin]) / total(icc):.2f}' if twin in rows else ''} | {' | '.join(one_level)} |")
    return "\n".join(lines)


class _Loaded:
    def __init__(self, A, b):
        self.A, self.b = A, b

    def destroy(self):
        self.A.destroy()
        self.b.destroy()


_meshes: dict = {}


@contextlib.contextmanager
def _mesh_reused():
    """Within this block the gnn problems' gmsh meshes are made once per (family, h, seed) in this process, so the
    contrasts of one mesh (the same mesh, another coefficient) do not mesh again: about 1M 3D unknowns take many
    minutes of gmsh."""
    from accel.plugins.gnn import problems

    original = problems.gmsh_mesh

    def reused(family, h, comm, seed=0):
        key = (family, h, seed, comm.size)
        if key not in _meshes:
            _meshes.clear()  # one mesh kept at a time
            _meshes[key] = original(family, h, comm, seed)
        return _meshes[key]

    problems.gmsh_mesh = reused
    try:
        yield
    finally:
        problems.gmsh_mesh = original


def cached_problem(args, h: float, contrast: float, comm):
    """The case's A and b: from --cache when there, else assembled (and written to --cache when given)."""
    from petsc4py import PETSc

    from accel.plugins.gnn.problems import diffusion

    if args.cache:
        stem = Path(args.cache) / f"{args.family}_h{h:g}_c{contrast:g}_s{args.seed}"
        files = [stem.with_name(stem.name + ".A.dat"), stem.with_name(stem.name + ".b.dat")]
        if all(f.exists() for f in files):
            objs = []
            for f, kind in zip(files, (PETSc.Mat, PETSc.Vec)):
                viewer = PETSc.Viewer().createBinary(str(f), "r", comm=comm)
                objs.append(kind().create(comm=comm).load(viewer) if kind is PETSc.Vec else kind().load(viewer))
                viewer.destroy()
            return _Loaded(*objs)
    with _mesh_reused():
        prob = diffusion(args.family, h, contrast=contrast, seed=args.seed)
    if args.cache:
        Path(args.cache).mkdir(parents=True, exist_ok=True)
        for f, obj in zip(files, (prob.A, prob.b)):
            viewer = PETSc.Viewer().createBinary(str(f), "w", comm=comm)
            obj.view(viewer)
            viewer.destroy()
    return prob


if __name__ == "__main__":
    raise SystemExit(main())
