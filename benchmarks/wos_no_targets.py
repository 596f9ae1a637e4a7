"""How accurate are WoS-NO's grid targets? The running mean of the WoS estimates an fno sweep cached (one file per
epoch, ``--wos-cache`` of benchmarks/wos_no_sweep.py) against DOLFINx P2 solutions at the same interior nodes.

    nice -n 19 python benchmarks/wos_no_targets.py --source-width 0.2 --fem-radial 32 --wos-cache /tmp/wosno/cache

reads the epochs of the sweep's WoS-NO runs (same seed, instances, grid, walks, step limit) and prints, after 1, 10
and all epochs, the relative L2 error of the targets on the first ``--check`` training instances (nodes at least
2 % inside the curve, clear of the gap between the curve and the reference mesh's straight edges) and the share
of walks stopped by the step limit.
"""
from __future__ import annotations

import argparse

import numpy as np

from accel.plugins.wos.fem_reference import solve_poisson
from accel.plugins.wos.wosno.cache import EstimateCache
from accel.plugins.wos.wosno.family import GRID_NODES
from accel.plugins.wos.wosno.operators import StarGrid
from accel.plugins.wos.wosno.train import Config, Dataset


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--source-width", type=float, default=0.2)
    ap.add_argument("--fem-radial", type=int, default=32)
    ap.add_argument("--instances", type=int, default=32, help="training instances of the sweep")
    ap.add_argument("--grid", type=int, default=48)
    ap.add_argument("--walks", type=int, default=10)
    ap.add_argument("--max-steps", type=int, default=25)
    ap.add_argument("--epsilon", type=float, default=1e-3)
    ap.add_argument("--epochs", type=int, default=100, help="epochs of the sweep's runs (steps x batch / instances)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--check", type=int, default=6, help="training instances compared with DOLFINx")
    ap.add_argument("--wos-cache", required=True)
    args = ap.parse_args()
    cfg = Config(instances=args.instances, interior=128, boundary=64, sigma=args.source_width, seed=args.seed)
    ds = Dataset(cfg, cfg.instances, np.random.default_rng(cfg.seed))  # the sweep's training instances
    grid = StarGrid(args.grid)
    masks = [grid.interior(i) for i in ds.inst]
    points = [grid.nodes[m.ravel()] for m in masks]
    params = np.stack([i.params for i in ds.inst])
    cache = EstimateCache(args.wos_cache)
    rng = np.random.default_rng(1)  # the trainer's walk seeds (train(..., wos_rng_seed=1))
    sols = [solve_poisson(i.R, i.source, i.boundary, args.fem_radial, 8 * args.fem_radial, degree=2)
            for i in ds.inst[:args.check]]
    safe = [grid.level_set(i)[m] < -0.02 for i, m in zip(ds.inst, masks)]
    exact = [s(points[k][safe[k]]) for k, s in enumerate(sols)]
    total, overruns = np.zeros(sum(len(p) for p in points)), 0
    for epoch in range(1, args.epochs + 1):
        seed = int(rng.integers(1 << 62))
        key = cache.key(params, cfg.sigma, GRID_NODES, *points, walks=args.walks, epsilon=args.epsilon,
                        max_steps=args.max_steps, seed=seed)
        path = cache.folder / f"{key}.npz"
        if not path.exists():
            raise SystemExit(f"epoch {epoch} is not in {args.wos_cache}: run the sweep with these settings first")
        with np.load(path) as z:
            total += z["means"]
            overruns += int(z["overruns"])
        if epoch in (1, 10, args.epochs):
            targets = np.split(total / epoch, np.cumsum([len(p) for p in points])[:-1])
            err = [np.linalg.norm(targets[k][safe[k]] - u) / np.linalg.norm(u) for k, u in enumerate(exact)]
            print(f"width {args.source_width} walks {args.walks} max_steps {args.max_steps}: after {epoch} epochs "
                  f"({epoch * args.walks} walks per node) targets' relative L2 {np.mean(err):.4f} "
                  f"(instances 0-{args.check - 1}); walks stopped by the step limit "
                  f"{overruns / (total.size * args.walks * epoch):.2%}", flush=True)


if __name__ == "__main__":
    main()
