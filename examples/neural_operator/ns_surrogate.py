"""The shipped Navier-Stokes surrogate against the project's pseudo-spectral solver on fresh trajectories.

    python examples/neural_operator/ns_surrogate.py [--samples 3] [--seed 2027] [--plot ns.png]

Vorticity form on the periodic unit square, nu = 1e-3, forcing 0.1(sin 2pi(x+y) + cos 2pi(x+y)), initial vorticity
from the FNO benchmark's Gaussian random field. The surrogate (component ``navier_stokes``: a one-step FNO rolled
out in one ONNX Runtime call) takes the snapshots at t = 1..10 and predicts t = 11..50; the solver integrates the
whole trajectory at dt = 1e-2. Prints the relative L2 error by time and the cost of both.
"""
from __future__ import annotations

import argparse
import sys
import time

import numpy as np


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--samples", type=int, default=3, help="fresh trajectories")
    p.add_argument("--grid", type=int, default=64)
    p.add_argument("--seed", type=int, default=2027, help="initial conditions (the training data used seeds 0, 1)")
    p.add_argument("--model", default="navier_stokes", help="surrogate component name or an .onnx file")
    p.add_argument("--plot", help="write truth / prediction / error at t = 50 of the first trajectory here")
    args = p.parse_args(argv)

    import torch

    from accel.plugins.neural_operator.data import navier_stokes
    from accel.plugins.neural_operator.surrogate import Surrogate
    from accel.registry import get_registry

    torch.set_num_threads(1)
    if args.model.endswith(".onnx"):
        sur = Surrogate(args.model, problem="navier_stokes")
    else:
        sur = get_registry().create("surrogate", args.model)
    t0 = time.perf_counter()
    w = navier_stokes.generate(args.samples, grid=args.grid, nu=1e-3, T=50.0, dt=1e-2, seed=args.seed,
                               batch=args.samples)["w"]
    solver_s = time.perf_counter() - t0
    sur.predict(w[:1, :10])  # warm-up
    t0 = time.perf_counter()
    pred = sur.predict(w[:, :10])
    surrogate_s = time.perf_counter() - t0
    truth = w[:, 10:]
    n = len(w)
    err = np.linalg.norm((pred - truth).reshape(n, -1), axis=1) / np.linalg.norm(truth.reshape(n, -1), axis=1)
    per_t = np.linalg.norm((pred - truth).reshape(n, 40, -1), axis=2) / np.linalg.norm(truth.reshape(n, 40, -1), axis=2)
    print(f"{n} fresh trajectories at {args.grid}x{args.grid}: solver {solver_s:.2f} s (t = 0..50, dt 1e-2), "
          f"surrogate {surrogate_s * 1e3:.0f} ms (t = 11..50 from t = 1..10, ONNX Runtime, 1 thread)")
    print("relative L2 by time: " + ", ".join(f"t={t + 11}: {per_t[:, t].mean():.2e}" for t in (0, 9, 19, 29, 39)))
    print(f"mean relative L2 over t = 11..50: {err.mean():.4e} (max {err.max():.4e})")
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(1, 3, figsize=(11, 3.4))
        for ax, field, title in zip(axes, (truth[0, -1], pred[0, -1], pred[0, -1] - truth[0, -1]),
                                    ("solver, t = 50", "surrogate, t = 50", "surrogate - solver")):
            im = ax.imshow(field, origin="lower", cmap="RdBu_r")
            ax.set_title(title)
            ax.set_xticks([])
            ax.set_yticks([])
            fig.colorbar(im, ax=ax, shrink=0.8)
        fig.tight_layout()
        fig.savefig(args.plot, dpi=100)
        print(f"wrote {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
