"""The error a grid operator makes even with exact node values: DOLFINx P2 solutions of held-out instances sampled
at the FNO grid's nodes and interpolated bilinearly to the held-out points (the way the fno operator predicts).

    nice -n 19 python benchmarks/wos_no_grid_floor.py --source-width 0.02 --fem-radial 128 --grids 48,96 --check 3

Only held-out points whose four surrounding nodes lie at least 2 % inside the curve are used (the reference mesh
is not evaluated outside the domain), so this is the interior part of the floor.
"""
from __future__ import annotations

import argparse

import numpy as np

from accel.plugins.wos.fem_reference import solve_poisson
from accel.plugins.wos.wosno.operators import StarGrid
from accel.plugins.wos.wosno.train import Config, Dataset


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--source-width", type=float, default=0.2)
    ap.add_argument("--fem-radial", type=int, default=32)
    ap.add_argument("--grids", default="48")
    ap.add_argument("--check", type=int, default=3, help="held-out instances")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    cfg = Config(test_instances=8, interior=128, boundary=64, sigma=args.source_width, seed=args.seed)
    test = Dataset(cfg, cfg.test_instances, np.random.default_rng(cfg.seed + 1000))  # the held-out instances
    rng = np.random.default_rng(cfg.seed + 2000)  # the held-out points, as train.references draws them
    for k, inst in enumerate(test.inst[:args.check]):
        X = inst.interior_points(cfg.test_points, rng, margin=0.02)
        sol = solve_poisson(inst.R, inst.source, inst.boundary, args.fem_radial, 8 * args.fem_radial, degree=2)
        u = sol(X)
        for n in (int(v) for v in args.grids.split(",")):
            grid = StarGrid(n)
            safe = grid.level_set(inst) < -0.02
            # bilinear weights of each point in its cell of cell-centre nodes
            fx, fy = (X[:, 0] + grid.L) / grid.h - 0.5, (X[:, 1] + grid.L) / grid.h - 0.5
            i0, j0 = np.floor(fy).astype(int), np.floor(fx).astype(int)
            ty, tx = fy - i0, fx - j0
            ok = safe[i0, j0] & safe[i0 + 1, j0] & safe[i0, j0 + 1] & safe[i0 + 1, j0 + 1]
            nodes = np.zeros((n, n))
            nodes[safe] = sol(grid.nodes[safe.ravel()])
            interp = ((1 - ty) * (1 - tx) * nodes[i0, j0] + (1 - ty) * tx * nodes[i0, j0 + 1]
                      + ty * (1 - tx) * nodes[i0 + 1, j0] + ty * tx * nodes[i0 + 1, j0 + 1])
            err = np.linalg.norm((interp - u)[ok]) / np.linalg.norm(u[ok])
            print(f"width {args.source_width} held-out instance {k} grid {n}: exact node values interpolated to "
                  f"{ok.sum()} of {len(X)} held-out points: relative L2 {err:.4f}", flush=True)


if __name__ == "__main__":
    main()
