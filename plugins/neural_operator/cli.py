"""``accel data``, ``accel train fno``, ``accel finetune`` and ``accel predict``: the plugin's commands.

Argument parsing, validation (argparse errors before any work) and output files only; the work is in the data /
training / fine-tuning / surrogate modules, imported when a command runs. Every output is written to a temporary
file and renamed on success (``accel.files``); an existing output is refused unless ``--force``.
"""
from __future__ import annotations

import logging

from accel.cliargs import (add_force, existing_file, nonnegative_float, nonnegative_int, positive_float,
                           positive_int)

log = logging.getLogger(__name__)


def add_commands(commands) -> None:
    _add_data(commands.top)
    _add_train(commands.train)
    _add_finetune(commands.top)
    _add_predict(commands.top)


# -- accel data ------------------------------------------------------------------------------------------------------
def _add_data(top) -> None:
    p = top.add_parser("data", help="generate neural-operator training data with the project's own solvers")
    sub = p.add_subparsers(dest="family", metavar="FAMILY")
    d = sub.add_parser("darcy", help="-div(a grad u) = 1 on the unit square, random coefficient, PETSc CG+GAMG")
    d.add_argument("--n", type=positive_int, default=1000, help="number of samples")
    d.add_argument("--grid", type=_min_grid(4), default=64, help="cells per side (at least 4)")
    d.add_argument("--kind", choices=("piecewise", "lognormal"), default="piecewise", help="coefficient family")
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--out", required=True, help="output file (NAME.npz; NAME.json is written next to it)")
    add_force(d, "an existing data set made with other parameters")
    d.set_defaults(func=_cmd_data_darcy)
    # 'navier_stokes' is the family name every data set records in its regenerate command; 'ns' is the short form
    n = sub.add_parser("navier_stokes", aliases=["ns"],
                       help="2D Navier-Stokes vorticity trajectories (pseudo-spectral, periodic square); stored as "
                            "w[trajectory, time, y, x] (axis 0 of each field is y)")
    n.add_argument("--n", type=positive_int, default=200, help="number of trajectories")
    n.add_argument("--grid", type=_min_grid(4), default=64, help="output grid per side (at least 4)")
    n.add_argument("--solver-grid", type=nonnegative_int, default=0,
                   help="solver grid per side (a multiple of --grid; 0: same)")
    n.add_argument("--nu", type=positive_float, default=1e-3, help="viscosity")
    n.add_argument("--T", type=positive_float, default=50.0, help="final time")
    n.add_argument("--record-dt", type=positive_float, default=1.0, help="time between recorded snapshots")
    n.add_argument("--dt", type=positive_float, default=1e-2, help="solver time step")
    n.add_argument("--forcing", choices=("kolmogorov", "none"), default="kolmogorov",
                   help="kolmogorov: 0.1(sin 2pi(x+y) + cos 2pi(x+y)); none: decaying turbulence")
    n.add_argument("--seed", type=int, default=0)
    n.add_argument("--batch", type=positive_int, default=50, help="trajectories integrated together")
    n.add_argument("--threads", type=positive_int, default=1, help="torch threads")
    n.add_argument("--out", required=True, help="output file (NAME.npz; NAME.json is written next to it)")
    add_force(n, "an existing data set made with other parameters")
    n.set_defaults(func=_cmd_data_ns)


def _min_grid(least: int):
    def grid(text: str) -> int:
        import argparse

        value = positive_int(text)
        if value < least:
            raise argparse.ArgumentTypeError(f"must be at least {least}, got {text}")
        return value

    grid.__name__ = "grid"  # argparse names the type in its message
    return grid


def _generate(family, params, args, make, total):
    from accel.files import refuse_existing
    from accel.progress import progress_bar

    from .data import store

    out = args.out
    if store.reusable(out, family, params):
        print(f"{store.paths(out)[0]} already holds this data set (same parameters, checksum OK): reusing it")
        return 0
    # a damaged copy of this very data set (same description, bad checksum) is repaired without --force
    force = args.force or store.describes(out, family, params)
    refuse_existing(*store.paths(out), force=force)
    with progress_bar(total=total, desc=f"{family} data", unit="sample") as bar:
        arrays, extra = make(bar)
    path = store.save(out, family, params, arrays, extra, force=force)
    print(f"wrote {path} ({', '.join(f'{k} {v.shape}' for k, v in arrays.items())}) and {path.with_suffix('.json')}")
    return 0


def _cmd_data_darcy(args) -> int:
    from .data import darcy

    params = dict(n=args.n, grid=args.grid, kind=args.kind, seed=args.seed)

    def make(bar):
        return darcy.generate(args.n, args.grid, args.kind, args.seed, progress=lambda: bar.update(1)), \
            {"equation": "-div(a grad u) = 1, u = 0 on the boundary, cell-centred FV", "solver": "PETSc CG+GAMG rtol 1e-10"}

    return _generate("darcy", params, args, make, args.n)


def _cmd_data_ns(args) -> int:
    import torch

    from accel.errors import AccelError

    from .data import navier_stokes

    if args.solver_grid and args.solver_grid % args.grid:
        raise AccelError(f"--solver-grid {args.solver_grid} must be a multiple of --grid {args.grid}")
    if args.record_dt > args.T or args.dt > args.record_dt:
        raise AccelError(f"need --dt ({args.dt}) <= --record-dt ({args.record_dt}) <= --T ({args.T})")
    torch.set_num_threads(args.threads)
    params = dict(n=args.n, grid=args.grid, solver_grid=args.solver_grid or args.grid, nu=args.nu, T=args.T,
                  record_dt=args.record_dt, dt=args.dt, forcing=args.forcing, seed=args.seed, batch=args.batch)

    def make(bar):
        arrays = navier_stokes.generate(params["n"], params["grid"], params["solver_grid"], args.nu, args.T,
                                        args.record_dt, args.dt, args.forcing, args.seed, args.batch,
                                        progress=bar.update)
        times = [args.record_dt * (i + 1) for i in range(arrays["w"].shape[1])]
        return arrays, {"equation": "vorticity NS, periodic unit square", "times": times}

    return _generate("navier_stokes", params, args, make, args.n)


# -- accel train fno ------------------------------------------------------------------------------------------------
def _add_train(train) -> None:
    p = train.add_parser("fno", help="train an FNO (Darcy data) or spatiotemporal FNO (Navier-Stokes data); "
                                     "writes OUT.pt and OUT.onnx")
    p.add_argument("--data", required=True, nargs="+",
                   help="data set(s) written by 'accel data' (family read from the JSON; several sets of one family "
                        "and one set of parameters, with different seeds, are concatenated)")
    p.add_argument("--out", required=True, help="output path stem (OUT.pt checkpoint, OUT.onnx model)")
    p.add_argument("--model", choices=("fno2d", "sfno", "arfno"),
                   help="darcy: fno2d (default); navier_stokes: sfno (default, all frames at once) or arfno "
                        "(a one-step FNO rolled out)")
    add_force(p, "existing OUT.pt / OUT.onnx")
    p.add_argument("--context", type=positive_int, help="arfno: snapshots the one-step model sees (default 2)")
    p.add_argument("--unroll", type=positive_int, default=1,
                   help="arfno: snapshots predicted autoregressively per training example (1: one-step training)")
    p.add_argument("--loss", default="l2", choices=("l2", "energy"),
                   help="l2 (relative L2, default) or, for darcy, energy: the relative error in the energy norm of "
                        "the problem's own operator, the norm CG minimises (for surrogates used as initial guesses)")
    p.add_argument("--epochs", type=positive_int, default=100)
    p.add_argument("--batch", type=positive_int, default=20)
    p.add_argument("--lr", type=positive_float, default=1e-3)
    p.add_argument("--n-train", type=nonnegative_int, default=0, help="training samples (0: all but --n-test)")
    p.add_argument("--n-test", type=positive_int, default=100, help="held-out samples (the last ones in the file)")
    p.add_argument("--modes", type=positive_int, nargs="+",
                   help="kept Fourier modes per axis (2 for fno2d, 3 (t y x) for sfno)")
    p.add_argument("--width", type=positive_int, help="channels of the spectral layers")
    p.add_argument("--layers", type=positive_int, help="number of spectral layers")
    p.add_argument("--padding", type=nonnegative_int, help="fno2d: zero cells appended per axis (non-periodic problems)")
    p.add_argument("--padding-fraction", type=nonnegative_float,
                   help="fno2d: pad ceil(f * n) cells instead (same share of the domain at any resolution)")
    p.add_argument("--in-frames", type=positive_int, default=10, help="sfno: input snapshots")
    p.add_argument("--out-frames", type=positive_int, default=40, help="sfno: predicted snapshots")
    p.add_argument("--subsample", type=positive_int, default=1,
                   help="train on every k-th grid point (the held-out error is still measured at full resolution)")
    p.add_argument("--resume", type=existing_file, help="continue training this checkpoint (OUT.pt of an earlier run)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=positive_int, default=1, help="torch threads (keep 1-2 on a shared machine)")
    p.set_defaults(func=_cmd_train)


_TRAIN_OPTS = ("data", "out", "model", "context", "unroll", "loss", "epochs", "batch", "lr", "n_train", "n_test",
               "modes", "width", "layers", "padding", "padding_fraction", "in_frames", "out_frames", "subsample",
               "resume", "seed", "threads")


def _recipe(args) -> str:
    """The command that reproduces this training run (stored in the model's metadata)."""
    import shlex

    parts = ["accel", "train", "fno"]
    for name in _TRAIN_OPTS:
        value = getattr(args, name, None)
        if value is None:
            continue
        parts.append("--" + name.replace("_", "-"))
        parts += [str(v) for v in value] if isinstance(value, (list, tuple)) else [str(value)]
    return " ".join(shlex.quote(p) for p in parts)


def _cmd_train(args) -> int:
    from accel.progress import progress_bar

    from .train import TrainConfig, train

    model = {k: v for k, v in dict(width=args.width, layers=args.layers, padding=args.padding,
                                   padding_fraction=args.padding_fraction, context=args.context).items()
             if v is not None}
    if args.modes:
        model["modes"] = tuple(args.modes)
    data = args.data[0] if len(args.data) == 1 else args.data
    cfg = TrainConfig(data=data, out=args.out, epochs=args.epochs, batch=args.batch, lr=args.lr,
                      n_train=args.n_train, n_test=args.n_test, seed=args.seed, threads=args.threads, model=model,
                      in_frames=args.in_frames, out_frames=args.out_frames, recipe=_recipe(args),
                      subsample=args.subsample, resume=args.resume or "", model_name=args.model or "",
                      unroll=args.unroll, loss=args.loss, force=args.force)
    with progress_bar(total=args.epochs, desc="training", unit="epoch") as bar:
        def progress(epoch, loss):
            bar.update(1)
            bar.set_postfix(loss=f"{loss:.4f}")

        s = train(cfg, progress)
    print(f"{s['family']} {s['model']}: {s['n_train']} training samples, {s['epochs']} epochs in "
          f"{s['train_seconds']:.0f} s; held-out relative L2 {s['test_rel_l2']:.4e} ({s['n_test']} samples)")
    print(f"wrote {s['checkpoint']} and {s['onnx']}")
    return 0


# -- accel finetune -----------------------------------------------------------------------------------------------------
def _add_finetune(top) -> None:
    p = top.add_parser("finetune", help="Spectral-Refiner: widen the last spectral layer and fine-tune it on the "
                                        "PDE residual in the H^-1 norm; reports relative L2 before/after")
    p.add_argument("--checkpoint", required=True,
                   help="OUT.pt written by 'accel train fno', an exported .onnx file or a shipped model name "
                        "(darcy_fno, ns_arfno; rebuilt from the ONNX weights)")
    p.add_argument("--data", required=True, help="data set holding the samples to refine (its held-out part)")
    p.add_argument("--samples", type=positive_int, default=10,
                   help="held-out samples to refine (the last ones in the file)")
    p.add_argument("--per-batch", action="store_true", help="one fine-tuning for all samples (default: per sample)")
    p.add_argument("--modes", type=positive_int, nargs="+", help="widened modes of the last layer (default: 1.5x)")
    p.add_argument("--iterations", type=positive_int, default=50)
    p.add_argument("--lr", type=positive_float, default=1e-3)
    p.add_argument("--alpha", type=positive_float, default=1.0,
                   help="Sobolev shift alpha in (alpha + 4 pi^2 |k|^2)^(-1/2)")
    add_time_residual_options(p)
    p.add_argument("--threads", type=positive_int, default=1)
    p.add_argument("--jsonl", "--json", dest="jsonl", metavar="FILE",
                   help="append each sample's report to FILE as one JSON line when it finishes (a stopped run keeps "
                        "the finished ones), then a last line {\"summary\": ...}")
    p.add_argument("--train-first", type=nonnegative_int, default=0,
                   help="with --per-batch: fine-tune on the FIRST N samples (the training part) instead, in batches, "
                        "and report on the held-out --samples; use with --export to ship the refined model")
    p.add_argument("--batch", type=positive_int, default=10, help="with --train-first: samples per fine-tuning step")
    p.add_argument("--epochs", type=positive_int, default=1, help="with --train-first: passes over those samples")
    p.add_argument("--export", help="with --per-batch: write the refined model to EXPORT.pt and EXPORT.onnx")
    add_force(p, "an existing --jsonl report or --export files")
    p.set_defaults(func=_cmd_finetune)


def add_time_residual_options(p) -> None:
    """The Navier-Stokes residual's time discretisation (shared with benchmarks/neural_operator_surrogates.py)."""
    p.add_argument("--time-residual", default="flow", choices=("flow", "simpson"),
                   help="Navier-Stokes: 'flow' compares each predicted snapshot with the previous one advanced by the "
                        "solver's own scheme (default), 'simpson' integrates the equation between snapshots with "
                        "Simpson's rule (cheaper; an error floor of about 3e-3 with unit-spaced snapshots)")
    p.add_argument("--substeps", type=positive_int, default=20,
                   help="with --time-residual flow: solver steps per snapshot interval")


def _export_paths(export):
    from pathlib import Path

    out = Path(export)
    return out.with_suffix(".pt"), out.with_suffix(".onnx")


def _cmd_finetune(args) -> int:
    import torch

    from accel.errors import AccelError
    from accel.files import refuse_existing

    from .checkpoint import load_checkpoint
    from .finetune import FinetuneConfig
    from .train import load_pairs

    if args.export and not (args.per_batch and args.train_first):
        raise AccelError("--export needs --per-batch --train-first N (the refined model is one model for all samples)")
    refuse_existing(*([args.jsonl] if args.jsonl else []), *(_export_paths(args.export) if args.export else []),
                    force=args.force)
    torch.set_num_threads(args.threads)
    model, info = load_checkpoint(args.checkpoint)
    x, y, data_info = load_pairs(args.data, getattr(model, "in_frames", 10), getattr(model, "out_frames", 40))
    family = data_info["family"]
    if info.get("family") not in (None, family):
        raise AccelError(f"{args.checkpoint} was trained on {info['family']!r} data but {args.data} holds {family!r} "
                         "data; fine-tune a model of the same family")
    if args.samples + args.train_first > len(x):
        raise AccelError(f"{args.data} has {len(x)} samples; --samples {args.samples} held out"
                         + (f" plus --train-first {args.train_first}" if args.train_first else "")
                         + " do not fit: lower them")
    params = data_info["params"]
    cfg = FinetuneConfig(modes=tuple(args.modes) if args.modes else None, iterations=args.iterations, lr=args.lr,
                         alpha=args.alpha, nu=params.get("nu", 1e-3), dt=params.get("record_dt", 1.0),
                         forcing=params.get("forcing", "kolmogorov"), time_residual=args.time_residual,
                         substeps=args.substeps)
    if args.train_first:
        return _finetune_offline(args, model, info, x, y, family, cfg)
    return _finetune_per_sample(args, model, x[-args.samples:], y[-args.samples:], family, cfg)


def _finetune_per_sample(args, model, x, y, family, cfg) -> int:
    """Fine-tune and report each sample as it finishes (a line on the terminal, a JSON line in --jsonl)."""
    import json

    from accel.progress import progress_bar

    from .finetune import finetune_each

    reports = []
    log_file = open(args.jsonl, "w") if args.jsonl else None
    try:
        groups = 1 if args.per_batch else len(x)
        with progress_bar(total=groups, desc="fine-tuning", unit="batch" if args.per_batch else "sample") as bar:
            for i, r in finetune_each(model, x, family, cfg, y=y, per_batch=args.per_batch):
                reports.append(r)
                if log_file is not None:
                    log_file.write(json.dumps({"index": i, **r}) + "\n")
                    log_file.flush()
                bar.update(1)
                bar.write(f"{'batch' if args.per_batch else 'sample'} {i + 1}/{groups}: relative L2 "
                          f"{r['rel_l2_before']:.4e} -> {r['rel_l2_after']:.4e}, residual {r['residual_before']:.3e} "
                          f"-> {r['residual_after']:.3e} ({r['seconds']:.0f} s)")
        before = sum(r["rel_l2_before"] for r in reports) / len(reports)
        after = sum(r["rel_l2_after"] for r in reports) / len(reports)
        if log_file is not None:
            log_file.write(json.dumps({"summary": {"before": before, "after": after, "samples": len(x),
                                                   "per_batch": args.per_batch}}) + "\n")
    finally:
        if log_file is not None:
            log_file.close()
    print(f"{family}: relative L2 on {len(x)} held-out samples {before:.4e} -> {after:.4e} "
          f"({before / after:.2f}x) after {args.iterations} iterations "
          f"({'per batch' if args.per_batch else 'per sample'}, modes {reports[0]['modes_before']} -> "
          f"{reports[0]['modes_after']})")
    return 0


def _finetune_offline(args, model, info, x, y, family, cfg) -> int:
    """Refine once on training samples (residual only, no labels), evaluate on the held-out ones, optionally export."""
    from accel.files import atomic_output
    from accel.progress import progress_bar

    from .finetune import refine_offline

    xte, yte = x[-args.samples:], y[-args.samples:]
    xtr = x[:args.train_first]
    steps = args.epochs * -(-len(xtr) // args.batch)
    with progress_bar(total=steps, desc="refining", unit="batch") as bar:
        tuned, before, after = refine_offline(model, xtr, xte, yte, family, cfg, epochs=args.epochs,
                                              batch=args.batch, progress=lambda: bar.update(1))
    print(f"{family}: offline refinement on {len(xtr)} training samples ({args.epochs} epoch(s), {args.iterations} "
          f"iterations per batch of {args.batch}); held-out relative L2 on {len(xte)} samples {before:.4e} -> "
          f"{after:.4e}")
    if args.export:
        from .checkpoint import save_checkpoint
        from .export import export_onnx

        pt, onnx_path = _export_paths(args.export)
        summary = dict(info, test_rel_l2=after, refined_from=str(args.checkpoint))
        with atomic_output(pt, onnx_path, force=args.force) as (tmp_pt, tmp_onnx):
            save_checkpoint(tuned, tmp_pt, **summary)
            export_onnx(tuned, tmp_onnx, problem=family, settings={
                "train_grid": list(x.shape[-2:]), "test_rel_l2": after, "refined_from": str(args.checkpoint)},
                recipe=f"accel finetune --checkpoint {args.checkpoint} --data {args.data} --per-batch --train-first "
                       f"{args.train_first} --batch {args.batch} --epochs {args.epochs} --iterations "
                       f"{args.iterations} --lr {args.lr} --samples {args.samples} --export {args.export}")
        print(f"wrote {pt} and {onnx_path}")
    return 0


# -- accel predict --------------------------------------------------------------------------------------------------
def _add_predict(top) -> None:
    p = top.add_parser("predict", help="run a neural-operator surrogate (ONNX Runtime) on input fields")
    p.add_argument("--model", required=True, help="an .onnx file from 'accel train fno' or a shipped model name")
    p.add_argument("--input", required=True, help=".npy array, or a data set from 'accel data' (its inputs are used)")
    p.add_argument("--samples", type=nonnegative_int, default=0,
                   help="with a data set: predict its last N samples (0: all)")
    p.add_argument("--problem", help="the family you are solving (darcy, navier_stokes): refused if the model differs")
    p.add_argument("--out", required=True, help="output .npy file")
    add_force(p)
    p.add_argument("--providers", default="CPU")
    p.add_argument("--threads", type=positive_int, default=1)
    p.set_defaults(func=_cmd_predict)


def _cmd_predict(args) -> int:
    import time
    from pathlib import Path

    import numpy as np

    from accel.errors import AccelError
    from accel.files import atomic_output, refuse_existing

    from .data import store
    from .surrogate import Surrogate

    refuse_existing(args.out, force=args.force)
    sur = Surrogate(args.model, problem=args.problem, providers=args.providers, threads=args.threads)
    path = Path(args.input)
    truth = None
    if path.suffix == ".npy":
        if not path.is_file():
            raise AccelError(f"--input {path} {'is a directory' if path.is_dir() else 'does not exist'}; pass an "
                             ".npy array or a data set written by 'accel data'")
        try:
            x = np.load(path)
        except ValueError as exc:
            raise AccelError(f"--input {path} is not a plain .npy array ({exc})") from exc
    else:
        arrays, info = store.load(path)
        n = args.samples or None
        if info["family"] == "darcy":
            x, truth = arrays["a"][:, None], arrays["u"][:, None]
        else:
            cfg = sur.meta.settings.get("config", {})
            i, o = cfg.get("in_frames", 10), cfg.get("out_frames", 40)
            x, truth = arrays["w"][:, :i], arrays["w"][:, i:i + o]
        if n:
            x, truth = x[-n:], truth[-n:]
    t0 = time.perf_counter()
    y = sur.predict(x)
    seconds = time.perf_counter() - t0
    with atomic_output(args.out, force=args.force) as tmp, open(tmp, "wb") as f:
        np.save(f, y)
    msg = f"wrote {args.out} {y.shape} ({seconds * 1e3:.1f} ms)"
    if truth is not None and truth.shape == y.shape:
        err = np.linalg.norm((y - truth).reshape(len(y), -1), axis=1) / np.linalg.norm(truth.reshape(len(y), -1), axis=1)
        msg += f"; relative L2 vs the data {err.mean():.4e}"
    print(msg)
    return 0
