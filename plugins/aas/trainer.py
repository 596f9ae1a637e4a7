"""Physics-informed training with a pluggable collocation sampler.

The schedule is staged: ``steps`` Adam steps split into ``stages`` equal stages; stage 0 trains on uniform points,
and before each later stage the sampler sees the residual of the current network (``refresh``) and proposes the
next collocation set (``sample``). The loss is the mean squared residual divided by the problem's scale; the
boundary condition is hard (inside the network), so there is no boundary weight. A NaN/inf anywhere (PINN loss,
flow log-density) stops training with a clear message, with the last good weights restored and saved.
"""
from __future__ import annotations

import copy
import json
import logging
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .errors import DomainError, SamplerError, TrainingDiverged
from .problems import Problem, get_problem, laplacian

log = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    problem: str = "peak2d"
    sampler: str = "uniform"
    points: int = 2000  # collocation budget (per stage; RAR-D grows to it)
    steps: int = 3000
    stages: int = 10
    lr: float = 1e-3
    lr_final: float = 1e-4  # exponential decay from lr to lr_final
    width: int = 64
    depth: int = 4
    fourier: int = 0  # random Fourier input features (0: plain tanh MLP on the coordinates)
    sigma: float = 10.0  # their frequency scale
    seed: int = 0
    threads: int = 1
    # residual normalisation: r / scale (floor 0, the default), or r / (|f| + floor * scale), which weights the flat
    # background like the peak. Measured on the peak problem: floor 1e-3..1e-2 stalls at u = 0 (the few peak points
    # cannot outweigh the many background points), so the default is the plain scale.
    residual_floor: float = 0.0
    # experimental: penalise the low-order moments of the residual, (mean w r phi_k)^2 for phi = 1, z_1..z_d (w: the
    # sampler's importance weights). The far field of the residual's monopole is what makes the flat background
    # drift on the peak problem; the mean squared residual barely sees it. 0 = off.
    moment_weight: float = 0.0
    sampler_options: dict = field(default_factory=dict)
    eval_points: int = 20000  # uniform evaluation points (2D: a grid of about this many)
    log_samples: int = 2000  # sample positions kept per stage in the log
    log_every: int = 50  # steps between history rows (loss, residual statistics)
    out_dir: str | None = None
    progress: bool = False


def build_sampler(name: str, problem: Problem, seed: int = 0, **options):
    """The sampler component ``name`` from the registry (uniform, rad, rar-d, aas, or a third-party one)."""
    from accel.registry import get_registry

    return get_registry().create("sampler", name, domain=problem.domain, seed=seed, **options)


@dataclass
class TrainResult:
    model: object
    config: TrainConfig
    metrics: dict
    history: list
    samples: list  # (stage, points) pairs
    wall_s: float
    rejected: int
    checkpoint: str | None = None
    problem: Problem | None = None


class EvalSet:
    """Fixed evaluation points: a uniform set (a grid in 2D) and a uniform set inside the problem's region."""

    def __init__(self, problem: Problem, n: int, seed: int = 1234):
        rng = np.random.default_rng(seed)
        dom = problem.domain
        if dom.dim == 2:
            m = int(math.sqrt(n))
            g = [np.linspace(dom.low[i], dom.high[i], m) for i in range(2)]
            X, Y = np.meshgrid(*g, indexing="ij")
            self.grid_shape = (m, m)
            self.x = np.stack([X.ravel(), Y.ravel()], 1)
        else:
            self.grid_shape = None
            self.x = dom.uniform(n, rng)
        self.xr = problem.region.uniform(max(1000, n // 4), rng)
        self.u = problem.exact_numpy(self.x)
        self.ur = problem.exact_numpy(self.xr)
        self.outside = ~problem.region.contains(self.x)


def predict(model, x: np.ndarray, chunk: int = 20000) -> np.ndarray:
    import torch

    out = []
    with torch.no_grad():
        for i in range(0, len(x), chunk):
            out.append(model(torch.as_tensor(x[i:i + chunk], dtype=torch.float32)).double().numpy().ravel())
    return np.concatenate(out) if out else np.zeros(0)


def error_metrics(model, ev: EvalSet) -> dict:
    u, ur = predict(model, ev.x), predict(model, ev.xr)
    e, er = u - ev.u, ur - ev.ur
    return {
        "rel_l2": float(np.linalg.norm(e) / np.linalg.norm(ev.u)),
        "region_rel_l2": float(np.linalg.norm(er) / np.linalg.norm(ev.ur)),
        "background_rms": float(np.sqrt(np.mean(e[ev.outside] ** 2))) if ev.outside.any() else 0.0,
        "max_abs": float(np.max(np.abs(e))),
    }


class Trainer:
    def __init__(self, config: TrainConfig, problem: Problem | None = None, sampler=None):
        import torch

        from .model import PINN

        self.config = c = config
        torch.set_num_threads(max(1, int(c.threads)))
        self.problem = problem if problem is not None else get_problem(c.problem)
        if self.problem.domain.volume <= 0:  # Box refuses this already; a hand-built domain might not
            raise DomainError(f"problem {self.problem.name!r} has a domain of zero volume; give every axis high > low")
        if c.points < 2 or c.steps < 1 or c.stages < 1:
            raise SamplerError(f"need points >= 2, steps >= 1 and stages >= 1 (got {c.points}, {c.steps}, {c.stages})")
        torch.manual_seed(c.seed)
        self.model = PINN(self.problem.domain, c.width, c.depth, c.fourier, c.sigma)
        self.sampler = sampler if sampler is not None else build_sampler(c.sampler, self.problem, c.seed,
                                                                           **c.sampler_options)
        self.sampler.plan(c.points, c.stages)
        self.opt = torch.optim.Adam(self.model.parameters(), lr=c.lr)
        gamma = (c.lr_final / c.lr) ** (1.0 / max(1, c.steps)) if c.lr_final else 1.0
        self.sched = torch.optim.lr_scheduler.ExponentialLR(self.opt, gamma)
        self.eval = EvalSet(self.problem, c.eval_points)
        self.rejected_by_trainer = 0
        self.out = Path(c.out_dir) if c.out_dir else None
        if self.out:
            self.out.mkdir(parents=True, exist_ok=True)

    # -- residuals ---------------------------------------------------------------------------------------------------
    def _weights(self, f):
        scale = self.problem.residual_scale
        floor = self.config.residual_floor
        return 1.0 / (f.abs() + floor * scale) if floor > 0 else f.new_full(f.shape, 1.0 / scale)

    def _residual_t(self, x, f, create_graph, w=None):
        x = x.detach().requires_grad_(True)
        _, lap = laplacian(lambda z: self.model(z), x, create_graph=create_graph)
        return (lap + f) * (self._weights(f) if w is None else w)

    def residual(self, x: np.ndarray, chunk: int = 8192) -> np.ndarray:
        """Normalised residual (Laplace u + f) / (|f| + floor * scale) of the current network at the points x (numpy in, numpy out)."""
        import torch

        out = []
        for i in range(0, len(x), chunk):
            xt = torch.as_tensor(x[i:i + chunk], dtype=torch.float32)
            f = self.problem.source(xt)
            out.append(self._residual_t(xt, f, False).detach().double().numpy())
        return np.concatenate(out)

    def _checked(self, pts) -> np.ndarray:
        pts = np.asarray(pts, dtype=float)
        if pts.ndim != 2 or pts.shape[1] != self.problem.dim:
            raise SamplerError(f"sampler {self.config.sampler!r} returned points of shape {pts.shape}; expected "
                               f"(n, {self.problem.dim})")
        inside = self.problem.domain.contains(pts)
        if not inside.all():
            self.rejected_by_trainer += int((~inside).sum())
            log.warning("sampler %s proposed %d points outside the domain; dropped", self.config.sampler,
                        int((~inside).sum()))
            pts = pts[inside]
        if len(pts) == 0:
            raise SamplerError(f"sampler {self.config.sampler!r} proposed no point inside {self.problem.domain}; "
                               "fix the sampler (every point must lie in the domain)")
        return pts

    @property
    def rejected(self) -> int:
        return int(getattr(self.sampler, "rejected", 0)) + self.rejected_by_trainer

    # -- checkpoints -------------------------------------------------------------------------------------------------
    def _save_checkpoint(self, state, step) -> str | None:
        if not self.out:
            return None
        import torch

        path = self.out / "checkpoint.pt"
        torch.save({"model": state, "step": step, "config": asdict(self.config)}, path)
        return str(path)

    def _diverged(self, what: str, step: int, good_state, good_step):
        self.model.load_state_dict(good_state)
        path = self._save_checkpoint(good_state, good_step)
        where = f"saved to {path}" if path else "restored in memory (pass out_dir to save it)"
        raise TrainingDiverged(f"training stopped at step {step}: {what}. The last good weights (step {good_step}) "
                               f"were kept and {where}.", checkpoint=path, step=good_step)

    # -- the loop ----------------------------------------------------------------------------------------------------
    def run(self) -> TrainResult:
        import torch
        from accel.progress import progress_bar

        c = self.config
        t0 = time.perf_counter()
        history, samples = [], []
        per_stage = [c.steps // c.stages + (1 if s < c.steps % c.stages else 0) for s in range(c.stages)]
        good_state, good_step = copy.deepcopy(self.model.state_dict()), 0
        step = 0
        bar = progress_bar(total=c.steps, enabled=c.progress, desc=f"{self.problem.name}/{c.sampler}", unit="step")
        try:
            for stage, nsteps in enumerate(per_stage):
                try:
                    if stage > 0:
                        self.sampler.refresh(self.residual, pts)
                    pts = self._checked(self.sampler.sample(c.points))
                except TrainingDiverged as exc:
                    self._diverged(str(exc).rstrip("."), step, good_state, good_step)
                samples.append((stage, pts[: c.log_samples].copy()))
                xt = torch.as_tensor(pts, dtype=torch.float32)
                f = self.problem.source(xt)
                w = self._weights(f)
                lw = getattr(self.sampler, "loss_weights", lambda x: None)(pts)
                lw = None if lw is None else torch.as_tensor(lw, dtype=torch.float32)
                phi = torch.as_tensor(self.problem.domain.to_unit(pts), dtype=torch.float32)
                for _ in range(nsteps):
                    r = self._residual_t(xt, f, True, w)
                    loss = (r * r).mean() if lw is None else (lw * r * r).mean()
                    if c.moment_weight > 0:
                        wr = r if lw is None else lw * r
                        moments = torch.cat([wr.mean().reshape(1), (wr[:, None] * phi).mean(0)])
                        loss = loss + c.moment_weight * (moments * moments).sum()
                    if not torch.isfinite(loss):
                        self._diverged("the PINN loss became NaN/inf; lower lr", step, good_state, good_step)
                    self.opt.zero_grad()
                    loss.backward()
                    self.opt.step()
                    self.sched.step()
                    step += 1
                    bar.update(1)
                    if step % c.log_every == 0 or step == 1 or step == c.steps:
                        r2 = (r.detach() ** 2).double().numpy()
                        history.append({"step": step, "stage": stage, "loss": float(loss.detach()), "res2_mean": float(r2.mean()),
                                        "res2_max": float(r2.max()), "res2_p99": float(np.quantile(r2, 0.99)),
                                        "n_points": len(pts), "rejected": self.rejected,
                                        "lr": self.opt.param_groups[0]["lr"], "wall_s": time.perf_counter() - t0})
                        bar.set_postfix(loss=f"{float(loss.detach()):.3g}")
                m = error_metrics(self.model, self.eval)
                history.append({"step": step, "stage": stage, "wall_s": time.perf_counter() - t0, **m})
                good_state, good_step = copy.deepcopy(self.model.state_dict()), step
        finally:
            bar.close()
        wall = time.perf_counter() - t0
        metrics = dict(error_metrics(self.model, self.eval), wall_s=wall, steps=step, rejected=self.rejected,
                       final_points=len(pts))
        ckpt = self._save_checkpoint(good_state, good_step)
        result = TrainResult(self.model, c, metrics, history, samples, wall, self.rejected, ckpt, self.problem)
        if self.out:
            write_logs(result, self.out)
        return result


def write_logs(result: TrainResult, out: Path) -> None:
    """history.csv (loss, residual statistics, errors), summary.json, samples.npz (sample positions per stage)."""
    import csv

    keys = sorted({k for row in result.history for k in row})
    with open(out / "history.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=keys)
        w.writeheader()
        w.writerows(result.history)
    (out / "summary.json").write_text(json.dumps({"config": asdict(result.config), "metrics": result.metrics},
                                                 indent=2))
    np.savez_compressed(out / "samples.npz", **{f"stage{s}": p for s, p in result.samples})


def train(config: TrainConfig, **kw) -> TrainResult:
    return Trainer(config, **kw).run()
