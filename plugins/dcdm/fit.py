"""Train a DCDM model on an operator family and write it with its metadata: the one function behind
``accel train dcdm`` and the Python entry point for users' own (grid shape, matrix) pairs.

    from accel.plugins.dcdm.fit import fit
    fit([((ny, nx), A0), ((ny, nx), A1), ...], "my.onnx", steps=2000, loss="energy")
    # variable coefficients: the operator's coefficients as inputs, trained over three cycles
    fit(pairs, "my.onnx", steps=3000, ritz=128, width=16, loss="energy", coefficient_input=True, unroll=3)

Matrices are scipy sparse in natural order (x fastest, C-ordered grid ``shape``), one row per grid point.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from accel.errors import AccelError

log = logging.getLogger(__name__)


def settings_from_args(args, grid) -> dict:
    """The TrainConfig fields of an ``accel train dcdm`` argument namespace."""
    return {"problem": args.name if args.matrices else args.problem, "grid": tuple(grid), "network": args.network,
            "width": args.width, "depth": args.depth, "coarse_blocks": args.coarse_blocks,
            "fine_pool": args.fine_pool, "ritz": args.ritz, "samples": args.samples, "batch": args.batch,
            "steps": args.steps, "lr": args.lr, "pre": args.pre, "post": args.post, "omega": args.omega,
            "seed": args.seed, "threads": args.threads, "diagonal_input": args.diagonal_input,
            "coefficient_input": args.coefficient_input, "loss": args.loss,
            "members": args.members, "unroll": args.unroll}


def fit(operators, out, *, recipe: str | None = None, force: bool = False, interpolation: str | None = None,
        log: str | None = None, progress: bool = False, **settings):
    """Train on ``operators`` ((shape, scipy matrix) pairs; None: the named ``problem`` of ``settings``) and write
    ``out`` (refused if it exists, unless ``force``). Returns (ModelMeta, training history, log path).

    ``settings`` are :class:`~accel.plugins.dcdm.train.TrainConfig` fields; ``grid`` defaults to the first
    operator's shape and ``problem`` to "custom". The recipe stored in the model is ``recipe`` or, for a Python call,
    a line naming this function and the settings. Nothing is written unless training and the ONNX check succeed."""
    from accel.files import atomic_output, refuse_existing

    from .export import export
    from .train import TrainConfig, check_operators, train

    refuse_existing(out, force=force)
    if operators is not None:
        operators = [(tuple(int(n) for n in shape), A.tocsr()) for shape, A in operators]
        try:
            check_operators(operators)
        except ValueError as exc:
            raise AccelError(str(exc)) from exc
        settings.setdefault("grid", operators[0][0])
        settings.setdefault("problem", "custom")
    cfg = TrainConfig(**settings)
    if recipe is None:
        shown = ", ".join(f"{k}={v!r}" for k, v in settings.items())
        recipe = (f"python: accel.plugins.dcdm.fit.fit({len(operators or [])} operator(s) on "
                  f"{sorted({'x'.join(map(str, s)) for s, _ in operators or []})}, {shown})")
    log_path = Path(log) if log else Path(out).with_suffix(".log.jsonl")
    net, history = train(cfg, log_path=log_path, progress=progress, operators=operators)
    mult = net.grid_multiple
    check = tuple(max(2 * mult, -(-n // mult) * mult) for n in cfg.grid)  # the grid the network runs on, padded
    checks = [check, tuple(2 * n for n in check)] if len(check) == 2 else [check]
    cycle = {"pre": cfg.pre, "post": cfg.post, "omega": cfg.omega}
    if interpolation:
        cycle["interpolation"] = interpolation
    if not np.isfinite(history[-1]["smoothed"]):
        raise AccelError("training diverged (non-finite loss); lower --lr")
    with atomic_output(out, force=force) as tmp:
        meta = export(net, tmp, cfg.problem, cfg.grid, cycle, recipe, check_grids=checks)
    return meta, history, log_path
