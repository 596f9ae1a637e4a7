"""Supervised training of an FNO / spatiotemporal FNO on a generated data set, then ONNX export.

Families and what the model learns:
* ``darcy``: coefficient a (B, 1, H, W) -> solution u (B, 1, H, W), model ``fno2d``;
* ``navier_stokes``: the first ``in_frames`` vorticity snapshots -> the next ``out_frames``, model ``sfno``.
The last ``n_test`` samples of the file are held out and never trained on. Loss: relative L2 per sample.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from accel.errors import AccelError
from .data import store
from .models import build_model, save_checkpoint

log = logging.getLogger(__name__)

FAMILY_MODEL = {"darcy": "fno2d", "navier_stokes": "sfno"}


def relative_l2(pred: torch.Tensor, true: torch.Tensor) -> torch.Tensor:
    """Per-sample ||pred - true|| / ||true||, averaged over the batch (the FNO papers' metric)."""
    diff = (pred - true).flatten(1).norm(dim=1)
    return (diff / true.flatten(1).norm(dim=1).clamp(min=1e-30)).mean()


def load_pairs(path, in_frames: int = 10, out_frames: int = 40):
    """(inputs, targets, info) as float32 tensors for the data set at ``path`` (family read from its JSON)."""
    npz, js = store.paths(path)
    arrays, info = store.load(path)
    family = info["family"]
    if family == "darcy":
        return torch.from_numpy(arrays["a"][:, None]), torch.from_numpy(arrays["u"][:, None]), info
    if family == "navier_stokes":
        w = arrays["w"]
        if w.shape[1] < in_frames + out_frames:
            raise AccelError(f"{npz} has {w.shape[1]} snapshots per trajectory; {in_frames} input + {out_frames} "
                             f"output frames need {in_frames + out_frames} (regenerate with a larger --T)")
        w = torch.from_numpy(w)
        return w[:, :in_frames].contiguous(), w[:, in_frames:in_frames + out_frames].contiguous(), info
    raise AccelError(f"{npz}: unknown family {family!r}")


@dataclass
class TrainConfig:
    data: str
    out: str
    epochs: int = 100
    batch: int = 20
    lr: float = 1e-3
    weight_decay: float = 1e-4
    n_train: int = 0  # 0: all but n_test
    n_test: int = 100
    seed: int = 0
    threads: int = 1
    model: dict = field(default_factory=dict)  # model config overrides
    in_frames: int = 10
    out_frames: int = 40
    recipe: str = ""
    subsample: int = 1  # train on every k-th grid point (cheaper); held-out error is measured at full resolution
    resume: str = ""  # continue from this checkpoint (its model config and normalisation are kept)


def evaluate(model, x, y, batch: int = 20) -> float:
    model.eval()
    errs = []
    with torch.no_grad():
        for s in range(0, len(x), batch):
            p = model(x[s:s + batch])
            errs.append(((p - y[s:s + batch]).flatten(1).norm(dim=1) / y[s:s + batch].flatten(1).norm(dim=1)))
    return float(torch.cat(errs).mean())


def train(cfg: TrainConfig, progress=None) -> dict:
    """Train, hold out, save ``out.pt`` and export ``out.onnx``; returns a summary (errors, times, paths)."""
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    x, y, info = load_pairs(cfg.data, cfg.in_frames, cfg.out_frames)
    family = info["family"]
    n = len(x)
    if cfg.n_test >= n:
        raise AccelError(f"{cfg.data} has {n} samples; --n-test {cfg.n_test} leaves nothing to train on")
    n_train = cfg.n_train or n - cfg.n_test
    n_train = min(n_train, n - cfg.n_test)
    k = max(1, cfg.subsample)
    xtr, ytr = x[:n_train, ..., ::k, ::k].contiguous(), y[:n_train, ..., ::k, ::k].contiguous()
    xte, yte = x[n - cfg.n_test:], y[n - cfg.n_test:]
    name = FAMILY_MODEL[family]
    model_cfg = dict(cfg.model)
    if name == "sfno":
        model_cfg.setdefault("in_frames", cfg.in_frames)
        model_cfg.setdefault("out_frames", cfg.out_frames)
    if cfg.resume:
        from .models import load_checkpoint

        model, prev = load_checkpoint(cfg.resume)
        if prev.get("family") not in (None, family):
            raise AccelError(f"{cfg.resume} was trained on {prev['family']!r} data, not {family!r}")
        model.train()
    else:
        model = build_model(name, **model_cfg)
        model.norm.fit(xtr, ytr)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps = cfg.epochs * max(1, -(-n_train // cfg.batch))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=steps, pct_start=0.1)
    t0 = time.perf_counter()
    history = []
    for epoch in range(cfg.epochs):
        model.train()
        perm = torch.randperm(n_train)
        total = 0.0
        for s in range(0, n_train, cfg.batch):
            idx = perm[s:s + cfg.batch]
            loss = relative_l2(model(xtr[idx]), ytr[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(idx)
        history.append(total / n_train)
        if progress is not None:
            progress(epoch + 1, history[-1])
    train_time = time.perf_counter() - t0
    test_err = evaluate(model, xte, yte)
    out = Path(cfg.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    grid = tuple(x.shape[-2:])
    summary = {"family": family, "model": name, "config": model.config, "n_train": n_train, "n_test": cfg.n_test,
               "epochs": cfg.epochs, "train_loss": history[-1], "test_rel_l2": test_err,
               "train_seconds": train_time, "grid": list(grid), "train_grid": list(xtr.shape[-2:]),
               "data": str(cfg.data)}
    save_checkpoint(model, out.with_suffix(".pt"), **summary, data_params=info["params"])
    from .export import export_onnx

    onnx_path = export_onnx(model, out.with_suffix(".onnx"), problem=family, recipe=cfg.recipe,
                            settings={"train_grid": list(xtr.shape[-2:]), "test_rel_l2": test_err,
                                      "data_params": info["params"]})
    summary["onnx"] = str(onnx_path)
    summary["checkpoint"] = str(out.with_suffix(".pt"))
    return summary
