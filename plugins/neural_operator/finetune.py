"""Spectral-Refiner fine-tuning (Cao et al., ICLR 2025): freeze everything but the last spectral layer, widen it to
more Fourier modes, and fit it to the PDE residual in the H^-1 norm. No ground truth is used: the fine-tuning
needs only the inputs (the coefficient for Darcy, the input frames for Navier-Stokes), so it can run per sample at
prediction time. The ground truth, where given, is used only to report relative L2 before and after.

For Navier-Stokes the residual's time direction is, by default, the flow map: each predicted snapshot against the
previous one advanced by the data solver's own scheme (``time_residual="flow"``, ``substeps`` steps per interval);
``"simpson"`` integrates the equation over pairs of snapshots instead, which is cheaper but has an error floor of
its own with unit-spaced snapshots (docs/benchmarks/neural_operator.md, section 2).
"""
from __future__ import annotations

import copy
import logging
import time
from dataclasses import dataclass

import torch

from accel.errors import AccelError
from .residuals import darcy_residual, h_minus1_norm, vorticity_flow_residual, vorticity_residual

log = logging.getLogger(__name__)


TIME_RESIDUALS = ("flow", "simpson")


@dataclass
class FinetuneConfig:
    modes: tuple[int, ...] | None = None  # widened modes of the last spectral layer (None: +50%, capped by grid)
    iterations: int = 50
    lr: float = 1e-3
    alpha: float = 1.0  # the Sobolev shift in (alpha + 4 pi^2 |k|^2)^(-1/2)
    nu: float = 1e-3  # Navier-Stokes viscosity
    dt: float = 1.0  # Navier-Stokes snapshot spacing
    forcing: str = "kolmogorov"
    # Navier-Stokes time discretisation of the residual: "flow" (the solver's scheme between snapshots, in
    # `substeps` steps) or "simpson" (Simpson's rule on the snapshots; cheaper, but with an error floor of its own)
    time_residual: str = "flow"
    substeps: int = 20

    def __post_init__(self):
        if self.time_residual not in TIME_RESIDUALS:
            raise AccelError(f"unknown time residual {self.time_residual!r}; valid: {', '.join(TIME_RESIDUALS)}")
        if self.substeps < 1:
            raise AccelError(f"substeps must be at least 1, got {self.substeps}")


def widen_last_layer(model: torch.nn.Module, modes: tuple[int, ...] | None, grid: tuple[int, ...]) -> torch.nn.Module:
    """A copy of ``model`` with every parameter frozen except the (widened) last spectral layer."""
    from .spectral import min_extent

    model = copy.deepcopy(model)
    last = model.spectral[-1]
    if modes is None:
        modes = tuple(int(m * 1.5) for m in last.modes)
    if model.kind == "sfno":  # time axis: out_frames plus padding
        grid = (model.out_frames + model.time_padding, *grid)
    else:
        grid = tuple(g + model.pad_cells(g) for g in grid)
    cap = [g // 2 for g in grid[:-1]] + [grid[-1] // 2]
    modes = tuple(max(o, min(m, c)) for m, c, o in zip(modes, cap, last.modes))
    need = [min_extent(m, i < len(modes) - 1) for i, m in enumerate(modes)]
    if any(g < k for g, k in zip(grid, need)):
        raise AccelError(f"widened modes {modes} do not fit the grid {grid}")
    for p in model.parameters():
        p.requires_grad_(False)
    model.spectral[-1] = last.widen(modes)
    return model


def residual_loss(model, x: torch.Tensor, family: str, cfg: FinetuneConfig) -> torch.Tensor:
    """Per-sample H^-1 norm of the PDE residual of the model's prediction for inputs ``x``."""
    pred = model(x)
    if family == "darcy":
        return h_minus1_norm(darcy_residual(x[:, 0], pred[:, 0]), cfg.alpha)
    if family == "navier_stokes":
        from .data.navier_stokes import forcing_field

        f = forcing_field(x.shape[-1], cfg.forcing)
        if cfg.time_residual == "flow":
            traj = torch.cat([x[:, -1:], pred], 1)  # the last input frame anchors the first residual
            r = vorticity_flow_residual(traj, cfg.dt, cfg.nu, f, cfg.substeps)
        else:  # simpson
            traj = torch.cat([x[:, -2:], pred], 1)
            r = vorticity_residual(traj, cfg.dt, cfg.nu, f.to(x.dtype))
        return h_minus1_norm(r, cfg.alpha).to(pred.dtype) / (r.shape[1] ** 0.5)
    raise AccelError(f"no PDE residual for family {family!r}; fine-tuning supports darcy and navier_stokes")


def finetune(model, x: torch.Tensor, family: str, cfg: FinetuneConfig, y: torch.Tensor | None = None,
             progress=None, widen: bool = True) -> tuple[torch.nn.Module, dict]:
    """Fine-tune on the batch ``x`` (one sample for per-sample fine-tuning); ``y`` only for the report.

    widen=False continues on a model already returned by this function (its last layer is the trainable one).
    """
    tuned = widen_last_layer(model, cfg.modes, tuple(x.shape[-2:])) if widen else model
    params = [p for p in tuned.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=cfg.lr)
    # cosine decay: a residual loss keeps pulling at the last digits, a constant rate makes Adam oscillate late
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, cfg.iterations))
    report = {"modes_before": list(model.spectral[-1].modes), "modes_after": list(tuned.spectral[-1].modes)}
    with torch.no_grad():
        report["residual_before"] = float(residual_loss(tuned, x, family, cfg).mean())
        if y is not None:
            report["rel_l2_before"] = _rel_l2(tuned(x), y)
    t0 = time.perf_counter()
    best = (float("inf"), None)
    tuned.train()
    for it in range(cfg.iterations):
        loss = residual_loss(tuned, x, family, cfg).mean()
        if float(loss.detach()) < best[0]:  # keep the best iterate: Adam on a residual can overshoot late
            best = (float(loss.detach()), [p.detach().clone() for p in params])
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if progress is not None:
            progress(it + 1, float(loss.detach()))
    with torch.no_grad():
        final = float(residual_loss(tuned, x, family, cfg).mean())
        if best[1] is not None and best[0] < final:
            for p, v in zip(params, best[1]):
                p.copy_(v)
    tuned.eval()
    with torch.no_grad():
        report["residual_after"] = float(residual_loss(tuned, x, family, cfg).mean())
        if y is not None:
            report["rel_l2_after"] = _rel_l2(tuned(x), y)
    report["seconds"] = time.perf_counter() - t0
    return tuned, report


def _rel_l2(p, y) -> float:
    return float(((p - y).flatten(1).norm(dim=1) / y.flatten(1).norm(dim=1)).mean())


def finetune_each(model, x: torch.Tensor, family: str, cfg: FinetuneConfig, y: torch.Tensor | None = None,
                  per_batch: bool = False):
    """Fine-tune every sample of ``x`` on its own (or, with ``per_batch``, all of them at once) and yield
    ``(index, report)`` as each finishes, so a caller can write results while the next sample runs (a 64^2
    Navier-Stokes sample takes minutes). ``report["samples"]`` is the list of sample indices it covers."""
    groups = [range(len(x))] if per_batch else [range(i, i + 1) for i in range(len(x))]
    for i, g in enumerate(groups):
        sl = slice(g.start, g.stop)
        _, report = finetune(model, x[sl], family, cfg, y=None if y is None else y[sl])
        report["samples"] = list(g)
        yield i, report


def refine_offline(model, x_train: torch.Tensor, x_test: torch.Tensor, y_test: torch.Tensor, family: str,
                   cfg: FinetuneConfig, epochs: int = 1, batch: int = 10, seed: int = 0, progress=None):
    """Refine once on training inputs (residual only, no labels) in shuffled batches for ``epochs`` passes and
    measure the held-out relative L2 before and after. Returns ``(refined_model, before, after)``;
    ``progress()`` is called after every batch."""
    from .train import evaluate

    before = evaluate(model, x_test, y_test)
    tuned = widen_last_layer(model, cfg.modes, tuple(x_train.shape[-2:]))
    g = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        perm = torch.randperm(len(x_train), generator=g)
        for s in range(0, len(x_train), batch):
            tuned, _ = finetune(tuned, x_train[perm[s:s + batch]], family, cfg, widen=False)
            if progress is not None:
                progress()
    after = evaluate(tuned, x_test, y_test)
    for p in tuned.parameters():  # a refined model is a normal model again (for saving or further training)
        p.requires_grad_(True)
    return tuned, before, after
