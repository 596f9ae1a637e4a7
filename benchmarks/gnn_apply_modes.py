"""Cost of one gnn apply, y = G^T (G x): MatMultTranspose with G (default) against an explicit G^T (-accel_gnn_apply
explicit), on one matrix, one process, both in the same run.

    flock /tmp/accel-bench.lock .venv/bin/python benchmarks/gnn_apply_modes.py --family plate --h 0.005
"""
from __future__ import annotations

import argparse
import time


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--family", choices=("plate", "inclusion"), default="plate")
    p.add_argument("--h", type=float, default=0.005)
    p.add_argument("--applies", type=int, default=200)
    args = p.parse_args(argv)
    from accel.components import PreconditionerConfig
    from accel.plugins.gnn.preconditioner import GNNPreconditioner
    from accel.plugins.gnn.problems import diffusion

    prob = diffusion(args.family, args.h, contrast=1e4, seed=101)
    x, y = prob.A.createVecs()
    x.setRandom()
    print(f"{args.family} h={args.h}: {prob.A.getSize()[0]} unknowns")
    for mode in ("transpose", "explicit", "transpose", "explicit"):
        c = GNNPreconditioner(PreconditionerConfig(extra={"gnn_apply": mode}))
        c.initialize(prob.A)
        t0 = time.perf_counter()
        for _ in range(args.applies):
            c.apply(x, y)
        per = (time.perf_counter() - t0) / args.applies
        t0 = time.perf_counter()
        for _ in range(args.applies):
            prob.A.mult(x, y)
        matmult = (time.perf_counter() - t0) / args.applies
        print(f"{mode:>9}: {per * 1e3:.3f} ms per apply ({per / matmult:.2f} MatMults with A)")
        c.destroy()
    x.destroy()
    y.destroy()
    prob.destroy()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
