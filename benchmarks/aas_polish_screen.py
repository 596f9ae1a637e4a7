"""Screen L-BFGS polish settings on one Adam-trained network: train it once (cached with the AAS flow's state),
then apply the trainer's polish with the given settings and print the errors before and after.

    nice -n 19 .venv/bin/python benchmarks/aas_polish_screen.py --sampler aas --seed 0 --cache /tmp/aas_screen \
        --lbfgs-points 4000 --lbfgs-rounds 4 --lbfgs-steps 1000 --weak-weight 0.1
"""
from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--problem", default="peak2d")
    p.add_argument("--sampler", default="aas")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--points", type=int, default=1000)
    p.add_argument("--steps", type=int, default=5000)
    p.add_argument("--cache", default="/tmp/aas_screen", help="folder of the cached Adam networks")
    p.add_argument("--lbfgs-points", type=int, default=4000)
    p.add_argument("--lbfgs-rounds", type=int, default=4)
    p.add_argument("--lbfgs-steps", type=int, default=1000)
    p.add_argument("--lbfgs-uniform", type=float, default=0.5)
    p.add_argument("--weak-weight", type=float, default=0.0)
    p.add_argument("--weak-modes", type=int, default=16)
    p.add_argument("--weak-form", default="values", choices=["values", "residual"])
    args = p.parse_args(argv)
    import torch

    from accel.plugins.aas.trainer import TrainConfig, Trainer, error_metrics

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    torch.set_num_threads(1)
    base = dict(problem=args.problem, sampler=args.sampler, points=args.points, steps=args.steps, seed=args.seed,
                eval_points=40000)
    ck = Path(args.cache) / f"{args.problem}_{args.sampler}_s{args.seed}_{args.points}x{args.steps}.pt"
    if not ck.exists():
        tr = Trainer(TrainConfig(**base))
        tr.run()
        state = {"model": tr.model.state_dict()}
        if getattr(tr.sampler, "flow", None) is not None:
            state["flow"] = tr.sampler.flow.state_dict()
        ck.parent.mkdir(parents=True, exist_ok=True)
        torch.save(state, ck)
    tr = Trainer(TrainConfig(**base, lbfgs_steps=args.lbfgs_steps, lbfgs_points=args.lbfgs_points,
                             lbfgs_rounds=args.lbfgs_rounds, lbfgs_uniform=args.lbfgs_uniform,
                             weak_weight=args.weak_weight, weak_modes=args.weak_modes,
                             weak_form=args.weak_form))
    state = torch.load(ck, weights_only=False)
    tr.model.load_state_dict(state["model"])
    if "flow" in state:
        tr.sampler._build()
        tr.sampler.flow.load_state_dict(state["flow"])
        tr.sampler.trained = True
    show = lambda m: ", ".join(f"{k} {m[k]:.3g}" for k in ("rel_l2", "peak_rel_l2", "background_rel_l2"))  # noqa
    print("after Adam:", show(error_metrics(tr.model, tr.eval)), flush=True)
    t0 = time.perf_counter()
    evals = tr._polish(0, None, 0)
    print(f"after L-BFGS ({evals} evaluations, {time.perf_counter() - t0:.0f} s):",
          show(error_metrics(tr.model, tr.eval)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
