"""WoS-NO against physics-informed training, both tuned by the same small sweep (learning rate x boundary weight),
on one source width. The data, held-out instances and DOLFINx references are built once and shared by every run.

    nice -n 10 python benchmarks/wos_no_sweep.py --source-width 0.2 --out runs/wosno_sweep_s02.jsonl
    nice -n 10 python benchmarks/wos_no_sweep.py --source-width 0.02 --fem-radial 128 --out runs/wosno_sweep_s002.jsonl

PINN: collocation points redrawn every step and per-instance normalised losses (the defaults of
accel.plugins.wos.wosno.train), plus one run with fixed points at its best setting (the best of fixed/redrawn;
point operator only: the grid operator's residual covers every interior node at every step).
Prints one line per run and, at the end, each method's best setting and the ratio of best relative L2 errors.

The FNO operator (``--operator fno``) with a cache of the WoS targets (every WoS-NO run of a sweep uses the same
walks, so they are computed once):

    nice -n 19 python benchmarks/wos_no_sweep.py --operator fno --source-width 0.2 --steps 400 --wos-weights 1 \
        --pinn-weights 1,10 --wos-cache /tmp/wosno-cache --refs-cache /tmp/wosno-refs --out fno_0.2.jsonl

``--walks-list 1,3,10,30`` instead trains WoS-NO only, once per number of walks per point and epoch at the first
learning rate and boundary weight (the error against the supervision's noise).
"""
from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, replace
from types import SimpleNamespace

import numpy as np

from accel.plugins.wos.wosno.train import Config, Dataset, references, relative_l2, train


def floats(text):
    return [float(v) for v in text.split(",") if v.strip()]


def _references(cfg, test_ds, cache_dir, progress):
    """DOLFINx references of the held-out instances, kept in ``cache_dir`` (they depend on the test set only)."""
    import os

    key = f"refs_s{cfg.sigma}_r{cfg.fem_n_r}_n{cfg.test_instances}_p{cfg.test_points}_seed{cfg.seed}.npz"
    path = os.path.join(cache_dir, key) if cache_dir else None
    if path and os.path.exists(path):
        z = np.load(path)
        return [(z[f"x{i}"], z[f"u{i}"]) for i in range(cfg.test_instances)]
    refs = references(cfg, test_ds, np.random.default_rng(cfg.seed + 2000), progress=progress)
    if path:
        os.makedirs(cache_dir, exist_ok=True)
        np.savez(path + ".tmp.npz", **{f"{k}{i}": v for i, (x, u) in enumerate(refs) for k, v in (("x", x), ("u", u))})
        os.replace(path + ".tmp.npz", path)
    return refs


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--source-width", type=float, default=0.2)
    ap.add_argument("--fem-radial", type=int, default=32)
    ap.add_argument("--instances", type=int, default=32)
    ap.add_argument("--test-instances", type=int, default=8)
    ap.add_argument("--interior", type=int, default=128)
    ap.add_argument("--boundary", type=int, default=64)
    ap.add_argument("--steps", type=int, default=800)
    ap.add_argument("--lrs", type=floats, default=[1e-3, 3e-3])
    ap.add_argument("--wos-lrs", type=floats, help="learning rates for WoS-NO only (default: --lrs)")
    ap.add_argument("--pinn-lrs", type=floats, help="learning rates for PINN only (default: --lrs)")
    ap.add_argument("--refs-cache", help="directory keeping the DOLFINx references between runs (npz per setting)")
    ap.add_argument("--pinn-weights", type=floats, default=[1.0, 10.0, 100.0])
    ap.add_argument("--wos-weights", type=floats, default=[1.0, 10.0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", required=True, help="JSON lines, one per run (appended)")
    ap.add_argument("--operator", default="mlp", help="registered WoS-NO operator: mlp or fno")
    ap.add_argument("--grid", type=int, default=48, help="fno: nodes per axis")
    ap.add_argument("--fno-modes", type=int, default=12)
    ap.add_argument("--fno-width", type=int, default=32)
    ap.add_argument("--walks", type=int, default=10, help="walks per point and epoch")
    ap.add_argument("--max-steps", type=int, default=25, help="WoS step limit (walks stopped by it are biased)")
    ap.add_argument("--walks-list", type=lambda t: [int(v) for v in t.split(",") if v.strip()],
                    help="WoS-NO only, one run per number of walks (first lr and weight)")
    ap.add_argument("--wos-cache", help="directory keeping the WoS targets between runs")
    ap.add_argument("--train-refs", type=int, default=0,
                    help="also score the first K training instances (DOLFINx references; the fit, not generalisation)")
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args()
    base = Config(instances=args.instances, test_instances=args.test_instances, steps=args.steps,
                  interior=args.interior, boundary=args.boundary, sigma=args.source_width, fem_n_r=args.fem_radial,
                  fem_n_t=8 * args.fem_radial, seed=args.seed, operator=args.operator, grid=args.grid,
                  fno_modes=args.fno_modes, fno_width=args.fno_width, walks=args.walks, wos_cache=args.wos_cache,
                  max_steps=args.max_steps)
    progress = not args.no_progress
    train_ds = Dataset(base, base.instances, np.random.default_rng(base.seed))
    test_ds = Dataset(base, base.test_instances, np.random.default_rng(base.seed + 1000))
    t0 = time.perf_counter()
    refs = _references(base, test_ds, args.refs_cache, progress)
    print(f"# references: {time.perf_counter() - t0:.1f} s; source width {args.source_width}", flush=True)
    train_sub = SimpleNamespace(inst=train_ds.inst[:args.train_refs])
    train_refs = (references(base, train_sub, np.random.default_rng(base.seed + 3000), progress)
                  if args.train_refs else [])

    runs = [("wos", replace(base, lr=lr, wos_boundary_weight=w)) for lr in args.wos_lrs or args.lrs
            for w in args.wos_weights]
    runs += [("pinn", replace(base, lr=lr, boundary_weight=w)) for lr in args.pinn_lrs or args.lrs
             for w in args.pinn_weights]
    if args.walks_list:
        lr, w = (args.wos_lrs or args.lrs)[0], args.wos_weights[0]
        runs = [("wos", replace(base, lr=lr, wos_boundary_weight=w, walks=k)) for k in args.walks_list]
    results = []

    def one(method, cfg):
        op, st = train(cfg, method, train_ds, progress=progress)
        err = relative_l2(op, test_ds, refs)
        row = {"operator": cfg.operator, "walks": cfg.walks, "max_steps": cfg.max_steps,
               "wos_overruns": st["wos_overruns"], "wos_walks": st["wos_walks"],
               "wos_seconds_computed": st.get("wos_seconds_computed"), "method": method,
               "pinn_points": cfg.pinn_points if method == "pinn" else None, "lr": cfg.lr,
               "boundary_weight": cfg.wos_boundary_weight if method == "wos" else cfg.boundary_weight,
               "rel_l2_mean": float(err.mean()), "rel_l2_std": float(err.std()), "steps": st["steps"],
               "seconds": st["seconds"], "wos_seconds": st["wos_seconds"], "final_loss": st["final_loss"],
               "config": asdict(cfg)}
        if train_refs:
            fit = relative_l2(op, train_sub, train_refs)
            row["train_rel_l2_mean"], row["train_rel_l2_std"] = float(fit.mean()), float(fit.std())
        results.append(row)
        with open(args.out, "a") as fh:
            fh.write(json.dumps(row) + "\n")
        print(f"{cfg.operator} {method:<5} walks={cfg.walks:<4d} points={row['pinn_points'] or '-':<6} "
              f"lr={cfg.lr:<7g} w={row['boundary_weight']:<5g} "
              f"rel L2 {err.mean():.4f} +- {err.std():.4f}  {st['seconds']:6.1f} s", flush=True)

    for method, cfg in runs:
        one(method, cfg)
    if args.walks_list:
        return
    if {r["method"] for r in results} != {"wos", "pinn"}:  # part of a sweep split over several processes
        return
    best_pinn = min((r for r in results if r["method"] == "pinn"), key=lambda r: r["rel_l2_mean"])
    if args.operator == "mlp":
        one("pinn", replace(base, lr=best_pinn["lr"], boundary_weight=best_pinn["boundary_weight"],
                            pinn_points="fixed"))
    best = {m: min((r for r in results if r["method"] == m), key=lambda r: r["rel_l2_mean"]) for m in ("wos", "pinn")}
    for m, r in best.items():
        print(f"# best {m}: points={r['pinn_points'] or '-'} lr={r['lr']:g} w={r['boundary_weight']:g} "
              f"rel L2 {r['rel_l2_mean']:.4f}")
    print(f"# tuned pinn / tuned wos relative L2: {best['pinn']['rel_l2_mean'] / best['wos']['rel_l2_mean']:.2f}x")


if __name__ == "__main__":
    main()
