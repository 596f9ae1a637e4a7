"""Held-out accuracy of a trained neural operator through the shipped inference path (ONNX Runtime), and the
Spectral-Refiner per-sample fine-tuning gain on the same held-out samples.

    python benchmarks/neural_operator_surrogates.py --model runs/neural_operator/darcy_logn_fno --data \
        data/neural_operator/darcy_logn_64.npz --n-test 50 --finetune 10

--model is the stem written by 'accel train fno' (STEM.onnx for inference, STEM.pt for fine-tuning, or the weights
of STEM.onnx where there is no STEM.pt, as for the shipped models: --model plugins/neural_operator/shipped/ns_arfno).
"""
from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True)
    p.add_argument("--data", required=True)
    p.add_argument("--n-test", type=int, default=50, help="held-out samples (the last ones of the file)")
    p.add_argument("--finetune", type=int, default=0, help="fine-tune this many held-out samples one by one")
    p.add_argument("--iterations", type=int, default=50)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--modes", type=int, nargs="+")
    p.add_argument("--subsample", type=int, default=1, help="evaluate on every k-th grid point (the training grid)")
    p.add_argument("--json")
    from accel.plugins.neural_operator.cli import add_time_residual_options

    add_time_residual_options(p)
    args = p.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    from accel.plugins.neural_operator.finetune import FinetuneConfig, finetune
    from accel.plugins.neural_operator.checkpoint import load_checkpoint
    from accel.plugins.neural_operator.surrogate import Surrogate
    from accel.plugins.neural_operator.train import load_pairs

    sur = Surrogate(args.model + ".onnx")
    cfg = sur.meta.settings.get("config", {})
    x, y, info = load_pairs(args.data, cfg.get("in_frames", 10), cfg.get("out_frames", 40))
    k = args.subsample
    x, y = x[-args.n_test:, ..., ::k, ::k].numpy().copy(), y[-args.n_test:, ..., ::k, ::k].numpy().copy()
    sur.predict(x[:1])
    t0 = time.perf_counter()
    pred = np.concatenate([sur.predict(x[i:i + 1]) for i in range(len(x))])
    per_sample = (time.perf_counter() - t0) / len(x)
    err = np.linalg.norm((pred - y).reshape(len(y), -1), axis=1) / np.linalg.norm(y.reshape(len(y), -1), axis=1)
    out = {"family": info["family"], "grid": list(x.shape[-2:]), "n_test": len(x), "rel_l2_mean": float(err.mean()),
           "rel_l2_median": float(np.median(err)), "onnx_ms_per_sample": per_sample * 1e3,
           "train_grid": sur.meta.settings.get("train_grid")}
    print(f"{info['family']} {x.shape[-2]}x{x.shape[-1]}: held-out relative L2 (ONNX Runtime) mean {err.mean():.4e}, "
          f"median {np.median(err):.4e} over {len(x)} samples; {per_sample * 1e3:.1f} ms per sample (1 thread)")
    if args.finetune:
        from pathlib import Path

        model, _ = load_checkpoint(args.model + (".pt" if Path(args.model + ".pt").exists() else ".onnx"))
        params = info["params"]
        fcfg = FinetuneConfig(modes=tuple(args.modes) if args.modes else None, iterations=args.iterations, lr=args.lr,
                              nu=params.get("nu", 1e-3), dt=params.get("record_dt", 1.0),
                              forcing=params.get("forcing", "kolmogorov"), time_residual=args.time_residual,
                              substeps=args.substeps)
        reps = []
        for i in range(args.finetune):
            xi, yi = torch.from_numpy(x[i:i + 1]), torch.from_numpy(y[i:i + 1])
            _, r = finetune(model, xi, info["family"], fcfg, y=yi)
            reps.append(r)
            print(f"  sample {i}: {r['rel_l2_before']:.4e} -> {r['rel_l2_after']:.4e} "
                  f"(H^-1 residual {r['residual_before']:.3e} -> {r['residual_after']:.3e}, {r['seconds']:.1f} s)",
                  flush=True)
        b = np.mean([r["rel_l2_before"] for r in reps])
        a = np.mean([r["rel_l2_after"] for r in reps])
        ratio = np.mean([r["rel_l2_before"] / r["rel_l2_after"] for r in reps])
        print(f"per-sample fine-tuning ({args.iterations} iterations, modes {reps[0]['modes_before']} -> "
              f"{reps[0]['modes_after']}): mean relative L2 {b:.4e} -> {a:.4e} ({b / a:.2f}x; mean per-sample ratio "
              f"{ratio:.2f}x)")
        out.update(finetune_before=b, finetune_after=a, finetune_samples=reps)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
