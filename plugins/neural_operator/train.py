"""Supervised training of an FNO / spatiotemporal FNO on a generated data set, then ONNX export.

Families and what the model learns:
* ``darcy``: coefficient a (B, 1, H, W) -> solution u (B, 1, H, W), model ``fno2d``;
* ``navier_stokes``: the first ``in_frames`` vorticity snapshots -> the next ``out_frames``, model ``sfno``
  (spatiotemporal, all frames at once) or ``arfno`` (a one-step FNO rolled out; trained on every window of
  consecutive snapshots, ``unroll`` steps at a time).
The last ``n_test`` samples (of the last file, when several are given) are held out and never trained on.
Loss: relative L2 per sample (per predicted snapshot for ``arfno``); for ``darcy`` optionally the relative error in
the energy norm of the problem's own discrete operator (``loss="energy"``), the norm CG minimises, for surrogates
meant as initial guesses.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from accel.errors import AccelError
from accel.files import atomic_output, refuse_existing
from accel.plugins.training import torch_scope
from .checkpoint import load_checkpoint, save_checkpoint
from .data import store
from .models import build_model

log = logging.getLogger(__name__)

FAMILY_MODELS = {"darcy": ("fno2d",), "navier_stokes": ("sfno", "arfno")}  # the first is the default
FAMILY_LOSSES = {"darcy": ("l2", "energy"), "navier_stokes": ("l2",)}


def relative_l2(pred: torch.Tensor, true: torch.Tensor) -> torch.Tensor:
    """Per-sample ||pred - true|| / ||true||, averaged over the batch (the FNO papers' metric)."""
    diff = (pred - true).flatten(1).norm(dim=1)
    return (diff / true.flatten(1).norm(dim=1).clamp(min=1e-30)).mean()


def relative_energy(pred: torch.Tensor, true: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """Darcy: per-sample ||pred - true||_A / ||true||_A, averaged, with A the data generator's finite-volume
    operator for the coefficient ``a`` (all (B, 1, H, W)); e.A e is computed as -e . darcy_residual(a, e, f=0)."""
    from .residuals import darcy_residual

    def energy(v):
        return -(v * darcy_residual(a, v, f=0.0)).flatten(1).sum(1)

    return (energy(pred - true).clamp(min=0).sqrt() / energy(true).clamp(min=1e-30).sqrt()).mean()


def load_pairs(path, in_frames: int = 10, out_frames: int = 40):
    """(inputs, targets, info) as float32 tensors for the data set(s) at ``path`` (family read from the JSON).

    ``path`` may be a list of data sets of one family made with the same parameters except ``n`` and ``seed``
    (e.g. more trajectories generated later): they are concatenated in order.
    """
    if isinstance(path, (list, tuple)):
        parts = [load_pairs(p, in_frames, out_frames) for p in path]
        info = parts[0][2]
        same = {k: v for k, v in info["params"].items() if k not in ("n", "seed", "batch")}
        for p, (_, _, other) in zip(path[1:], parts[1:]):
            theirs = {k: v for k, v in other["params"].items() if k not in ("n", "seed", "batch")}
            if other["family"] != info["family"] or theirs != same:
                raise AccelError(f"{p} was generated with {other['family']} {theirs}, not {info['family']} {same} "
                                 f"like {path[0]}; train on data sets of one family and one set of parameters")
        seeds = [o["params"].get("seed") for _, _, o in parts]
        if len(set(seeds)) < len(seeds):
            raise AccelError(f"data sets {', '.join(map(str, path))} share a seed ({seeds}): they would repeat "
                             "samples; generate the extra ones with another --seed")
        info = dict(info, params=dict(info["params"], n=sum(len(x) for x, _, _ in parts), seed=seeds))
        return torch.cat([x for x, _, _ in parts]), torch.cat([y for _, y, _ in parts]), info
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
    data: str | list
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
    model_name: str = ""  # "" : the family's default (fno2d for darcy, sfno for navier_stokes)
    unroll: int = 1  # arfno: snapshots predicted (autoregressively) per training example
    loss: str = "l2"  # "l2" or, for darcy, "energy" (see FAMILY_LOSSES)
    force: bool = False  # replace existing OUT.pt / OUT.onnx

    def outputs(self) -> tuple[Path, Path]:
        """The checkpoint and the ONNX file this run writes."""
        out = Path(self.out)
        return out.with_suffix(".pt"), out.with_suffix(".onnx")


class _PairExamples:
    """Training examples of a model that maps inputs to all targets at once (fno2d, sfno)."""

    def __init__(self, model, x, y, loss: str = "l2"):
        self.model, self.x, self.y, self.kind = model, x, y, loss

    def new_epoch(self) -> None:
        pass

    def __len__(self):
        return len(self.x)

    def loss(self, idx):
        if self.kind == "energy":
            return relative_energy(self.model(self.x[idx]), self.y[idx], self.x[idx])
        return relative_l2(self.model(self.x[idx]), self.y[idx])


class _MarkovExamples:
    """Windows of ``context`` consecutive snapshots of the training trajectories, each with the ``unroll``
    snapshots after it as the target; the loss is the relative L2 per predicted snapshot, averaged.

    With ``unroll`` > 1 the windows of an epoch start ``unroll`` snapshots apart (at an offset drawn per epoch), so
    an epoch predicts every snapshot about once whatever ``unroll`` is, and costs about the same."""

    def __init__(self, model, frames, unroll: int):
        self.model, self.frames, self.unroll = model, frames, max(1, int(unroll))
        self.n, t = frames.shape[:2]
        span = t - model.context  # snapshots that can be targets
        self.segments = span // self.unroll
        if self.segments == 0:
            raise AccelError(f"trajectories of {t} snapshots leave no window of {model.context} + {self.unroll}")
        self.slack = span - self.segments * self.unroll
        self.new_epoch()

    def new_epoch(self) -> None:
        offset = int(torch.randint(self.slack + 1, ()))
        starts = self.model.context + offset + self.unroll * torch.arange(self.segments)
        self.index = torch.cartesian_prod(torch.arange(self.n), starts)

    def __len__(self):
        return len(self.index)

    def loss(self, idx):
        traj, start = self.index[idx, 0:1], self.index[idx, 1:2]
        window = self.frames[traj, start + torch.arange(-self.model.context, 0)]
        target = self.frames[traj, start + torch.arange(self.unroll)]
        pred = self.model.rollout(window, self.unroll)
        err = (pred - target).flatten(2).norm(dim=2) / target.flatten(2).norm(dim=2).clamp(min=1e-30)
        return err.mean()


def evaluate(model, x, y, batch: int = 20) -> float:
    model.eval()
    errs = []
    with torch.no_grad():
        for s in range(0, len(x), batch):
            p = model(x[s:s + batch])
            errs.append(((p - y[s:s + batch]).flatten(1).norm(dim=1) / y[s:s + batch].flatten(1).norm(dim=1)))
    return float(torch.cat(errs).mean())


def train(cfg: TrainConfig, progress=None) -> dict:
    """Train, hold out, save ``out.pt`` and export ``out.onnx``; returns a summary (errors, times, paths).

    Existing outputs are refused before any work unless ``cfg.force``; both files appear together, only when the
    run succeeds. ``progress(epoch, mean_loss)`` is called after every epoch."""
    refuse_existing(*cfg.outputs(), force=cfg.force)
    with torch_scope(cfg.threads, cfg.seed):
        return _train(cfg, progress)


def _train(cfg: TrainConfig, progress) -> dict:
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
    name = cfg.model_name or FAMILY_MODELS[family][0]
    if name not in FAMILY_MODELS[family]:
        raise AccelError(f"model {name!r} does not fit {family} data; valid models: {', '.join(FAMILY_MODELS[family])}")
    if cfg.loss not in FAMILY_LOSSES[family]:
        raise AccelError(f"loss {cfg.loss!r} does not fit {family} data; valid losses: "
                         f"{', '.join(FAMILY_LOSSES[family])}")
    model_cfg = dict(cfg.model)
    if name in ("sfno", "arfno"):
        model_cfg.setdefault("in_frames", cfg.in_frames)
        model_cfg.setdefault("out_frames", cfg.out_frames)
    if cfg.resume:
        model, prev = load_checkpoint(cfg.resume)
        if prev.get("family") not in (None, family):
            raise AccelError(f"{cfg.resume} was trained on {prev['family']!r} data, not {family!r}")
        model.train()
    else:
        model = build_model(name, **model_cfg)
        model.fit_normaliser(xtr, ytr)
    if model.kind == "arfno":
        examples = _MarkovExamples(model, torch.cat([xtr, ytr], 1), cfg.unroll)
    else:
        examples = _PairExamples(model, xtr, ytr, cfg.loss)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps = cfg.epochs * max(1, -(-len(examples) // cfg.batch))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=steps, pct_start=0.1)
    t0 = time.perf_counter()
    history = []
    for epoch in range(cfg.epochs):
        model.train()
        examples.new_epoch()
        perm = torch.randperm(len(examples))
        total = 0.0
        for s in range(0, len(examples), cfg.batch):
            idx = perm[s:s + cfg.batch]
            loss = examples.loss(idx)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(idx)
        history.append(total / len(examples))
        if progress is not None:
            progress(epoch + 1, history[-1])
    train_time = time.perf_counter() - t0
    test_err = evaluate(model, xte, yte)
    grid = tuple(x.shape[-2:])
    summary = {"family": family, "model": model.kind, "unroll": cfg.unroll, "loss": cfg.loss, "config": model.config,
               "n_train": n_train, "n_test": cfg.n_test, "epochs": cfg.epochs, "train_loss": history[-1], "test_rel_l2": test_err,
               "train_seconds": train_time, "grid": list(grid), "train_grid": list(xtr.shape[-2:]),
               "data": str(cfg.data)}
    from .export import export_onnx

    pt, onnx_path = cfg.outputs()
    with atomic_output(pt, onnx_path, force=cfg.force) as (tmp_pt, tmp_onnx):
        save_checkpoint(model, tmp_pt, **summary, data_params=info["params"])
        export_onnx(model, tmp_onnx, problem=family, recipe=cfg.recipe,
                    settings={"train_grid": list(xtr.shape[-2:]), "test_rel_l2": test_err,
                              "data_params": info["params"]})
    summary["onnx"] = str(onnx_path)
    summary["checkpoint"] = str(pt)
    return summary
