"""Relative L2 (global, peak/layer region, background) versus collocation budget and wall time for the samplers of
the AAS plugin, over several seeds. One JSON line per run is appended to --out (runs already there are skipped, so
an interrupted sweep resumes); --report prints the markdown tables of docs/benchmarks/aas.md from such files.

    nice -n 10 .venv/bin/python benchmarks/aas_compare.py --problem peak2d --samplers uniform,rar-d,aas \
        --seeds 0,1,2 --points 1000,2000 --steps 1500 --out benchmarks/results/aas_peak2d.jsonl
    .venv/bin/python benchmarks/aas_compare.py --report benchmarks/results/aas_*.jsonl
"""
from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np


def _key(d):
    return (d["problem"], d["sampler"], int(d["seed"]), int(d["points"]), int(d["steps"]), int(d["stages"]))


def run(args) -> int:
    from accel.plugins.aas.trainer import TrainConfig, Trainer

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    done = {_key(json.loads(line)) for line in out.read_text().splitlines() if line.strip()} if out.exists() else set()
    opts = json.loads(args.sampler_options) if args.sampler_options else {}
    for points in [int(p) for p in args.points.split(",")]:
        for seed in [int(s) for s in args.seeds.split(",")]:
            for sampler in args.samplers.split(","):
                row = dict(problem=args.problem, sampler=sampler, seed=seed, points=points, steps=args.steps,
                           stages=args.stages)
                if _key(row) in done:
                    continue
                cfg = TrainConfig(problem=args.problem, sampler=sampler, points=points, steps=args.steps,
                                  stages=args.stages, seed=seed, width=args.width, depth=args.depth,
                                  sampler_options=opts.get(sampler, {}), eval_points=args.eval_points)
                res = Trainer(cfg).run()
                if args.save_models and seed == 0:
                    from accel.plugins.aas.export import export_onnx

                    recipe = (f".venv/bin/python benchmarks/aas_compare.py --problem {args.problem} --samplers {sampler} "
                              f"--seeds 0 --points {points} --steps {args.steps} --stages {args.stages} "
                              f"--save-models DIR")
                    export_onnx(res.model, Path(args.save_models) / f"{args.problem}_{sampler}_{points}.onnx",
                                res.problem, recipe=recipe, settings={"sampler": sampler, "metrics": res.metrics})
                curve = [[h["wall_s"], h["step"], h["rel_l2"], h["region_rel_l2"], h["background_rms"]]
                         for h in res.history if "rel_l2" in h]
                row.update(metrics=res.metrics, curve=curve, width=args.width, depth=args.depth)
                with open(out, "a") as fh:
                    fh.write(json.dumps(row) + "\n")
                m = res.metrics
                print(f"{args.problem} {sampler:8s} seed {seed} points {points}: rel L2 {m['rel_l2']:.4g} region "
                      f"{m['region_rel_l2']:.4g} background {m['background_rms']:.3g} in {m['wall_s']:.0f} s", flush=True)
    return 0


def _ms(v):
    v = np.asarray(v, float)
    return f"{v.mean():.3g} ± {v.std():.2g}" if len(v) > 1 else f"{v.mean():.3g}"


def report(files) -> int:
    rows = [json.loads(line) for f in files for line in Path(f).read_text().splitlines() if line.strip()]
    groups = defaultdict(list)
    for r in rows:
        groups[(r["problem"], r["points"], r["steps"], r["sampler"])].append(r)
    print("| problem | points | steps | sampler | seeds | rel L2 | region rel L2 | background RMS | wall s | "
          "best rel L2 during run |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for (prob, pts, steps, sampler), rs in sorted(groups.items()):
        m = [r["metrics"] for r in rs]
        best = [min(c[2] for c in r["curve"]) for r in rs]
        print(f"| {prob} | {pts} | {steps} | {sampler} | {len(rs)} | {_ms([x['rel_l2'] for x in m])} | "
              f"{_ms([x['region_rel_l2'] for x in m])} | {_ms([x['background_rms'] for x in m])} | "
              f"{_ms([x['wall_s'] for x in m])} | {_ms(best)} |")
    print()
    print("Relative L2 versus wall time (mean over seeds at each stage end: wall s / rel L2):")
    print()
    for (prob, pts, steps, sampler), rs in sorted(groups.items()):
        n = min(len(r["curve"]) for r in rs)
        wall = np.mean([[c[0] for c in r["curve"][:n]] for r in rs], 0)
        rel = np.mean([[c[2] for c in r["curve"][:n]] for r in rs], 0)
        pts_s = ", ".join(f"{w:.0f}/{e:.3g}" for w, e in zip(wall, rel))
        print(f"- {prob}, {pts} points, {sampler}: {pts_s}")
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--problem", default="peak2d")
    p.add_argument("--samplers", default="uniform,rar-d,aas")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--points", default="2000", help="comma-separated collocation budgets")
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument("--stages", type=int, default=10)
    p.add_argument("--width", type=int, default=64)
    p.add_argument("--depth", type=int, default=4)
    p.add_argument("--eval-points", type=int, default=20000)
    p.add_argument("--sampler-options", default="", help='JSON: {"aas": {"uniform_fraction": 0.5}}')
    p.add_argument("--save-models", default="", help="export the seed-0 networks to ONNX files in this folder")
    p.add_argument("--out", default="benchmarks/results/aas.jsonl")
    p.add_argument("--report", nargs="*", metavar="JSONL", help="print the tables from these result files and exit")
    args = p.parse_args(argv)
    if args.report is not None:
        return report(args.report)
    import torch

    torch.set_num_threads(1)
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
