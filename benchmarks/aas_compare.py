"""Relative L2 (global, peak, background) of the AAS plugin's samplers at an equal budget (points per step x steps),
over several seeds. One JSON line per run is appended to --out (runs already there are skipped, so an interrupted
sweep resumes); --report prints the markdown tables of docs/benchmarks/aas.md from such files.

    nice -n 10 .venv/bin/python benchmarks/aas_compare.py --problem peak2d --samplers uniform,rad,rar-d,aas \
        --seeds 0,1,2 --points 1000 --steps 5000 --out benchmarks/results/aas_peak2d.jsonl
    .venv/bin/python benchmarks/aas_compare.py --report benchmarks/results/aas_peak2d.jsonl

--tag labels a variant of the training settings (a sweep point) so that variants of one sampler sit side by side.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np



def _key(d):
    return (d["problem"], d["sampler"], int(d["seed"]), int(d["points"]), int(d["steps"]), int(d["stages"]),
            d.get("tag", ""))


def run(args) -> int:
    from accel.plugins.aas.trainer import TrainConfig, Trainer

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    done = {_key(json.loads(line)) for line in out.read_text().splitlines() if line.strip()} if out.exists() else set()
    opts = json.loads(args.sampler_options) if args.sampler_options else {}
    bc_weight = args.bc_weight if args.bc_weight == "auto" else float(args.bc_weight)
    knobs = dict(lr=args.lr, lr_final=args.lr_final, schedule=args.schedule, resample=args.resample,
                 resample_every=args.resample_every or None, moment_weight=args.moment_weight,
                 boundary=args.boundary, bc_weight=bc_weight, lbfgs_steps=args.lbfgs_steps,
                 lbfgs_points=args.lbfgs_points, lbfgs_rounds=args.lbfgs_rounds, lbfgs_uniform=args.lbfgs_uniform,
                 weak_weight=args.weak_weight, weak_modes=args.weak_modes, weak_adam=args.weak_adam,
                 weak_form=args.weak_form, weak_adam_from=args.weak_adam_from,
                 width=args.width, depth=args.depth, fourier=args.fourier, sigma=args.sigma,
                 clip_grad=args.clip_grad, loss_norm=args.loss_norm)
    for points in [int(p) for p in args.points.split(",")]:
        for seed in [int(s) for s in args.seeds.split(",")]:
            for sampler in args.samplers.split(","):
                row = dict(problem=args.problem, sampler=sampler, seed=seed, points=points, steps=args.steps,
                           stages=args.stages, tag=args.tag)
                if _key(row) in done:
                    continue
                weak = not args.weak_samplers or sampler in args.weak_samplers.split(",")
                cfg = TrainConfig(problem=args.problem, sampler=sampler, points=points, steps=args.steps,
                                  stages=args.stages, seed=seed, sampler_options=opts.get(sampler, {}),
                                  eval_points=args.eval_points,
                                  **dict(knobs, weak_weight=args.weak_weight if weak else 0.0))
                trainer = Trainer(cfg)
                res = trainer.run()
                if args.save_models and seed == 0:
                    from accel.plugins.aas.export import export_onnx

                    recipe = " ".join(["benchmarks/aas_compare.py"] + sys.argv[1:])
                    export_onnx(res.model, Path(args.save_models) / f"{args.problem}_{sampler}_{points}.onnx",
                                res.problem, recipe=recipe, settings={"sampler": sampler, "metrics": res.metrics})
                curve = [[h["wall_s"], h["step"], h["rel_l2"], h["peak_rel_l2"], h["background_rel_l2"]]
                         for h in res.history if "rel_l2" in h]
                row.update(metrics=res.metrics, curve=curve, sampler_options=opts.get(sampler, {}),
                           **dict(knobs, resample_every=trainer.resample_every, weak_weight=cfg.weak_weight),
                           load=os.getloadavg()[0])
                with open(out, "a") as fh:
                    fh.write(json.dumps(row) + "\n")
                m = res.metrics
                print(f"{args.problem} {args.tag} {sampler:8s} seed {seed} points {points}: rel L2 {m['rel_l2']:.4g} "
                      f"peak {m['peak_rel_l2']:.4g} background {m['background_rel_l2']:.3g} in {m['wall_s']:.0f} s",
                      flush=True)
    return 0


def _ms(v):
    v = np.asarray(v, float)
    return f"{v.mean():.3g} ± {v.std():.2g}" if len(v) > 1 else f"{v.mean():.3g}"


def _adam(r):
    """Metrics at the end of the Adam stages (before any L-BFGS polish): the curve's entry of the last stage."""
    return r["curve"][int(r["stages"]) - 1]


def report(files, per_seed: bool) -> int:
    rows = [json.loads(line) for f in files for line in Path(f).read_text().splitlines() if line.strip()]
    groups = defaultdict(list)
    for r in rows:
        groups[(r["problem"], r.get("tag", ""), r["points"], r["steps"], r["sampler"])].append(r)
    if per_seed:
        print("| problem | variant | points x steps (+ L-BFGS) | sampler | every | seed | rel L2 | peak rel L2 | "
              "background rel L2 | after Adam: rel L2 / peak / background | wall s |")
        print("|---|---|---|---|---|---|---|---|---|---|---|")
        for (prob, tag, pts, steps, sampler), rs in sorted(groups.items()):
            for r in sorted(rs, key=lambda r: r["seed"]):
                m, a = r["metrics"], _adam(r)
                lb = f" (+{m.get('lbfgs_evals', 0)})" if m.get("lbfgs_evals") else ""
                print(f"| {prob} | {tag} | {pts} x {steps}{lb} | {sampler} | {r.get('resample_every', 1)} | "
                      f"{r['seed']} | {m['rel_l2']:.3g} | {m['peak_rel_l2']:.3g} | {m['background_rel_l2']:.3g} | "
                      f"{a[2]:.3g} / {a[3]:.3g} / {a[4]:.3g} | {m['wall_s']:.0f} |")
        print()
    print("| problem | variant | points x steps | sampler | seeds | rel L2 | peak rel L2 | background rel L2 | "
          "rel L2 after Adam | wall s |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for (prob, tag, pts, steps, sampler), rs in sorted(groups.items()):
        m = [r["metrics"] for r in rs]
        print(f"| {prob} | {tag} | {pts} x {steps} | {sampler} | {len(rs)} | {_ms([x['rel_l2'] for x in m])} | "
              f"{_ms([x['peak_rel_l2'] for x in m])} | {_ms([x['background_rel_l2'] for x in m])} | "
              f"{_ms([_adam(r)[2] for r in rs])} | {_ms([x['wall_s'] for x in m])} |")
    print()
    print("Relative L2 at each stage end (mean over seeds; wall s / rel L2; the last entry follows L-BFGS if any):")
    print()
    for (prob, tag, pts, steps, sampler), rs in sorted(groups.items()):
        n = min(len(r["curve"]) for r in rs)
        wall = np.mean([[c[0] for c in r["curve"][:n]] for r in rs], 0)
        rel = np.mean([[c[2] for c in r["curve"][:n]] for r in rs], 0)
        curve = ", ".join(f"{w:.0f}/{e:.3g}" for w, e in zip(wall, rel))
        print(f"- {prob} {tag}, {pts} x {steps}, {sampler}: {curve}")
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--problem", default="peak2d")
    p.add_argument("--samplers", default="uniform,rad,rar-d,aas")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--points", default="1000", help="comma-separated collocation points per step")
    p.add_argument("--steps", type=int, default=5000)
    p.add_argument("--stages", type=int, default=10)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--lr-final", type=float, default=1e-5)
    p.add_argument("--schedule", default="cosine", choices=["cosine", "exp", "constant"])
    p.add_argument("--resample", default="step", choices=["step", "stage"])
    p.add_argument("--resample-every", type=int, default=0,
                   help="steps sharing one set of points (0: each sampler's own default: uniform and RAR-D 1, RAD and "
                        "AAS 50)")
    p.add_argument("--boundary", default="hard", choices=["hard", "soft"])
    p.add_argument("--bc-weight", default="1", help="soft boundary weight or 'auto'")
    p.add_argument("--lbfgs-steps", type=int, default=0, help="L-BFGS iterations after Adam (all rounds)")
    p.add_argument("--lbfgs-points", type=int, default=0, help="points per L-BFGS round (0: --points)")
    p.add_argument("--lbfgs-rounds", type=int, default=1, help="L-BFGS rounds, each on a fresh set")
    p.add_argument("--lbfgs-uniform", type=float, default=0.5, help="uniform share of an L-BFGS set")
    p.add_argument("--weak-weight", type=float, default=0.0, help="weight of the weak (H^-1) term (TrainConfig)")
    p.add_argument("--weak-modes", type=int, default=16, help="sine modes per axis of the weak term")
    p.add_argument("--weak-adam", action="store_true", help="the weak term in the Adam steps too (not only L-BFGS)")
    p.add_argument("--weak-adam-from", type=int, default=0, help="with --weak-adam: the first stage that has it")
    p.add_argument("--weak-form", default="values", choices=["values", "residual"],
                   help="how the weak term's modes are estimated (TrainConfig.weak_form)")
    p.add_argument("--weak-samplers", default="",
                   help="comma-separated samplers that get the weak term (empty: all); the others run without it")
    p.add_argument("--clip-grad", type=float, default=0.0, help="clip the Adam gradient's norm to this (0: off)")
    p.add_argument("--loss-norm", type=float, default=0.0,
                   help="divide the Adam loss by its running mean with this decay per step (0: off)")
    p.add_argument("--moment-weight", type=float, default=0.0, help="residual-moment penalty (TrainConfig)")
    p.add_argument("--width", type=int, default=64)
    p.add_argument("--fourier", type=int, default=0, help="random Fourier input features of the model (0: none)")
    p.add_argument("--sigma", type=float, default=10.0, help="their frequency scale")
    p.add_argument("--depth", type=int, default=4)
    p.add_argument("--eval-points", type=int, default=40000)
    p.add_argument("--sampler-options", default="", help='JSON: {"aas": {"uniform_fraction": 0.5}}')
    p.add_argument("--tag", default="", help="label of this settings variant in the tables")
    p.add_argument("--save-models", default="", help="export the seed-0 networks to ONNX files in this folder")
    p.add_argument("--out", default="benchmarks/results/aas.jsonl")
    p.add_argument("--report", nargs="*", metavar="JSONL", help="print the tables from these result files and exit")
    p.add_argument("--per-seed", action="store_true", help="with --report: one row per run too")
    args = p.parse_args(argv)
    if args.report is not None:
        return report(args.report, args.per_seed)
    if args.bc_weight != "auto":
        try:
            float(args.bc_weight)
        except ValueError:
            p.error(f"--bc-weight takes a number or 'auto', got {args.bc_weight!r}")
    import logging

    import torch

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    torch.set_num_threads(1)
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
