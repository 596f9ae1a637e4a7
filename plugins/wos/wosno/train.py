"""WoS-NO versus physics-informed training of the same operator on the star-shaped Poisson family.

- ``wos``: regression on Walk-on-Spheres targets at fixed interior points per instance, re-estimated every epoch
  (``walks`` fresh walks per point) and averaged across epochs, plus the exact boundary data at boundary points.
- ``pinn``: the same network, same instances and optimiser, loss = mean (Laplace u + f)^2 + w mean (u - g)^2
  (autograd Laplacian), for the same number of steps; ``pinn-time``: for the same wall time as ``wos``
  (its WoS estimation included). By default (``pinn_points="redraw"``) its collocation and boundary points are
  drawn afresh every step, so over a run it sees the whole domain (a narrow source included), not 256 fixed points.
- ``normalize`` (default on): every instance's loss terms are divided by that instance's scale, so instances with
  large sources or boundary data do not dominate the batch: PINN residual by mean f^2, data term by mean t^2 (the
  instance's WoS targets: the loss is then its relative L2 error squared), boundary terms by mean g^2.
Both are scored by the relative L2 error against DOLFINx P2 solutions of held-out instances.

The operator is chosen by its registered name (``operator``: ``mlp`` or ``fno``, see ``operators``); it says
where the WoS targets are wanted and how each loss is formed, and this loop is the same for all of them.
"""
from __future__ import annotations

import json
import logging
import time
import warnings
from dataclasses import asdict, dataclass

import numpy as np

from ..problems import N_PARAMS, SIGMA, StarPoisson

log = logging.getLogger(__name__)


@dataclass
class Config:
    instances: int = 64
    test_instances: int = 8
    steps: int = 2000
    batch: int = 8
    interior: int = 256
    boundary: int = 128
    walks: int = 10
    epsilon: float = 1e-3
    max_steps: int = 25
    width: int = 64
    depth: int = 4
    lr: float = 2e-3
    boundary_weight: float = 10.0
    seed: int = 0
    threads: int = 1
    test_points: int = 1024
    fem_n_r: int = 32
    fem_n_t: int = 256
    features: bool = True
    sigma: float = SIGMA  # source width; narrower sources keep their mass (amplitudes x (0.2 / sigma)^2)
    pinn_points: str = "redraw"  # or "fixed": the same interior/boundary points every epoch
    normalize: bool = True  # per-instance loss normalisation (module docstring)
    wos_boundary_weight: float = 1.0  # boundary-loss weight of the WoS regression (boundary_weight is PINN's)
    operator: str = "mlp"  # a registered name in operators.OPERATORS
    grid: int = 48  # fno: nodes per axis of the grid over the family's bounding box
    fno_modes: int = 12
    fno_width: int = 32
    fno_layers: int = 4
    fno_padding: int = 8
    wos_cache: str | None = None  # folder keeping WoS targets between runs (cache.EstimateCache)


class Dataset:
    """Instances, their fixed interior/boundary points (the point operator's) and per-instance loss scales."""

    def __init__(self, cfg: Config, n: int, rng: np.random.Generator):
        self.inst = [StarPoisson.sample(rng, cfg.sigma) for _ in range(n)]
        self.params = np.stack([i.params for i in self.inst]).astype(np.float32)
        self.xi = [i.interior_points(cfg.interior, rng) for i in self.inst]
        self.xb = [i.boundary_points(cfg.boundary, rng) for i in self.inst]
        self.gb = [i.boundary(p) for i, p in zip(self.inst, self.xb)]
        self.fi = [i.source(p) for i, p in zip(self.inst, self.xi)]
        # per-instance loss scales, from larger samples than the training points (stable for narrow sources)
        self.fscale = np.array([np.mean(i.source(i.interior_points(4096, rng)) ** 2) + 1e-8 for i in self.inst])
        self.gscale = np.array([np.mean(i.boundary(i.boundary_points(1024, rng)) ** 2) + 1e-8 for i in self.inst])


def train(cfg: Config, method: str, train_ds: Dataset, max_seconds: float | None = None, progress: bool = True,
          wos_rng_seed: int = 1):
    """Train one operator (``cfg.operator``) with ``method`` ('wos' or 'pinn'). Returns (operator, stats); the
    operator's ``model`` is the torch module, its ``predict(instance, points)`` the prediction."""
    from accel.plugins.training import torch_scope

    with torch_scope(cfg.threads, cfg.seed):
        return _train(cfg, method, train_ds, max_seconds, progress, wos_rng_seed)


def _train(cfg: Config, method: str, train_ds: Dataset, max_seconds, progress, wos_rng_seed):
    import torch

    from accel.progress import progress_bar

    from .cache import EstimateCache
    from .family import StarFamily
    from .operators import build_operator

    op = build_operator(cfg.operator, cfg, train_ds)
    opt = torch.optim.Adam(op.model.parameters(), lr=cfg.lr)
    total = cfg.steps if max_seconds is None else 10 ** 9
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.steps)
    n = len(train_ds.inst)
    rng = np.random.default_rng(cfg.seed + 17)
    wos_rng = np.random.default_rng(wos_rng_seed)
    family = StarFamily(train_ds.inst) if method == "wos" else None
    cache = EstimateCache(cfg.wos_cache) if cfg.wos_cache and method == "wos" else None
    points = op.supervision_points() if method == "wos" else None
    stats = {"method": method, "operator": cfg.operator, "wos_steps": 0, "wos_overruns": 0, "wos_walks": 0,
             "wos_seconds": 0.0}
    targets = [np.zeros(len(p)) for p in points] if method == "wos" else None  # running means, fresh every run
    rounds = 0
    t0 = time.perf_counter()
    bar = progress_bar(total=cfg.steps if max_seconds is None else None, desc=f"{cfg.operator} {method}",
                       enabled=progress, unit="step", leave=False)
    step, order = 0, np.array([], dtype=int)
    while step < total:
        if max_seconds is not None and time.perf_counter() - t0 >= max_seconds:
            break
        if order.size == 0:  # a new epoch
            order = rng.permutation(n)
            if method == "wos":
                tw = time.perf_counter()
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    est, over, steps = family.estimate(points, cfg.walks, cfg.epsilon, cfg.max_steps, wos_rng,
                                                       cache=cache)
                rounds += 1
                for i in range(n):  # running mean across epochs
                    targets[i] += (est[i] - targets[i]) / rounds
                stats["wos_steps"] += steps
                stats["wos_overruns"] += over
                stats["wos_walks"] += sum(len(p) for p in points) * cfg.walks
                stats["wos_seconds"] += time.perf_counter() - tw
        ids, order = order[:cfg.batch], order[cfg.batch:]
        loss = op.wos_loss(ids, targets, rng) if method == "wos" else op.pinn_loss(ids, rng)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if max_seconds is not None:  # anneal over the time budget, as the step-limited runs do over their steps
            frac = min((time.perf_counter() - t0) / max_seconds, 1.0)
            for group in opt.param_groups:
                group["lr"] = cfg.lr * 0.5 * (1 + np.cos(np.pi * frac))
        elif step < cfg.steps:
            sched.step()
        step += 1
        bar.update(1)
        if step % 50 == 0:
            bar.set_postfix(loss=f"{loss.item():.3g}")
    bar.close()
    stats["steps"] = step
    stats["seconds"] = time.perf_counter() - t0
    stats["final_loss"] = float(loss.item())
    if cache is not None:  # wall times above exclude walks read from the cache; this is what they cost
        stats.update(wos_cache_hits=cache.hits, wos_cache_misses=cache.misses, wos_seconds_computed=cache.seconds)
    return op, stats


def references(cfg: Config, test_ds: Dataset, rng: np.random.Generator, progress: bool = True):
    """DOLFINx P2 solutions of the held-out instances at ``test_points`` interior points each."""
    from accel.progress import progress_bar

    from ..fem_reference import solve_poisson

    out = []
    for inst in progress_bar(test_ds.inst, desc="DOLFINx P2 references", unit="instance", enabled=progress):
        # 2 % inside the curve: clear of the gap between the curve and the mesh's straight boundary edges
        X = inst.interior_points(cfg.test_points, rng, margin=0.02)
        sol = solve_poisson(inst.R, inst.source, inst.boundary, cfg.fem_n_r, cfg.fem_n_t, degree=2)
        out.append((X, sol(X)))
    return out


def relative_l2(op, test_ds: Dataset, refs) -> np.ndarray:
    """Relative L2 error of the trained operator ``op`` (from ``train``) on each held-out instance."""
    errs = []
    for inst, (X, u) in zip(test_ds.inst, refs):
        errs.append(np.linalg.norm(op.predict(inst, X) - u) / np.linalg.norm(u))
    return np.array(errs)


METHODS = ("wos", "pinn", "pinn-time")


def check_methods(methods) -> None:
    """Raise ValueError unless ``methods`` are known and 'pinn-time' comes after 'wos' (it copies its wall time)."""
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        raise ValueError(f"unknown method(s) {', '.join(map(repr, unknown)) or '(none given)'}: use "
                         f"{', '.join(METHODS)}")
    if "pinn-time" in methods and ("wos" not in methods or methods.index("wos") > methods.index("pinn-time")):
        raise ValueError("method 'pinn-time' needs 'wos' first in --methods (it copies its wall time)")


def run(cfg: Config, methods=METHODS, progress: bool = True) -> dict:
    """Train with each method and score on held-out instances. Returns the results table as a dict."""
    check_methods(methods)
    rng = np.random.default_rng(cfg.seed)
    train_ds = Dataset(cfg, cfg.instances, rng)
    test_ds = Dataset(cfg, cfg.test_instances, np.random.default_rng(cfg.seed + 1000))
    tr = time.perf_counter()
    refs = references(cfg, test_ds, np.random.default_rng(cfg.seed + 2000), progress=progress)
    ref_seconds = time.perf_counter() - tr
    rows = {}
    wos_seconds = None
    for m in methods:
        if m == "wos":
            op, st = train(cfg, "wos", train_ds, progress=progress)
            wos_seconds = st["seconds"]
        elif m == "pinn":
            op, st = train(cfg, "pinn", train_ds, progress=progress)
        elif m == "pinn-time":
            if wos_seconds is None:
                raise ValueError("method 'pinn-time' needs 'wos' first in --methods (it copies its wall time)")
            op, st = train(cfg, "pinn", train_ds, max_seconds=wos_seconds, progress=progress)
            st["method"] = "pinn-time"
        else:
            raise ValueError(f"unknown method {m!r}: use wos, pinn, pinn-time")
        err = relative_l2(op, test_ds, refs)
        st["rel_l2_mean"], st["rel_l2_std"] = float(err.mean()), float(err.std())
        st["rel_l2"] = err.tolist()
        rows[m] = st
        log.info("%s: rel L2 %.4f after %d steps in %.1f s", m, err.mean(), st["steps"], st["seconds"])
    return {"config": asdict(cfg), "reference_seconds": ref_seconds, "results": rows}


def format_table(res: dict) -> str:
    lines = [f"# operator: {res['config']['operator']}",
             f"{'method':<10} {'steps':>7} {'wall s':>8} {'WoS s':>7} {'rel L2 (mean +- std)':>22}"]
    for m, st in res["results"].items():
        lines.append(f"{m:<10} {st['steps']:>7d} {st['seconds']:>8.1f} {st['wos_seconds']:>7.1f} "
                     f"{st['rel_l2_mean']:>12.4f} +- {st['rel_l2_std']:.4f}")
    r = res["results"]
    if "wos" in r:
        for m in ("pinn", "pinn-time"):
            if m in r:
                lines.append(f"# {m} / wos relative L2 ratio: {r[m]['rel_l2_mean'] / r['wos']['rel_l2_mean']:.2f}x")
        w = r["wos"]
        if w["wos_walks"]:
            lines.append(f"# WoS: {w['wos_walks']} walks, {w['wos_steps']} steps, "
                         f"{w['wos_overruns'] / w['wos_walks']:.2%} stopped by max_steps")
    return "\n".join(lines)


def run_from_args(args) -> int:
    cfg = Config(instances=args.instances, test_instances=args.test_instances, steps=args.steps, batch=args.batch,
                 interior=args.interior, boundary=args.boundary, walks=args.walks, epsilon=args.epsilon,
                 max_steps=args.max_steps, width=args.width, depth=args.depth, lr=args.lr,
                 boundary_weight=args.boundary_weight, seed=args.seed, threads=args.threads,
                 features=not args.no_features, sigma=args.source_width, fem_n_r=args.fem_radial,
                 fem_n_t=8 * args.fem_radial, pinn_points=args.pinn_points, normalize=not args.no_normalize,
                 wos_boundary_weight=args.wos_boundary_weight, operator=args.operator, grid=args.grid,
                 fno_modes=args.fno_modes, fno_width=args.fno_width, fno_layers=args.fno_layers,
                 wos_cache=args.wos_cache)
    from accel.files import atomic_output

    methods = tuple(m.strip() for m in args.methods.split(",") if m.strip())
    res = run(cfg, methods, progress=not args.no_progress)
    print(format_table(res))
    if args.out:
        with atomic_output(args.out, force=args.force) as tmp:
            tmp.write_text(json.dumps(res, indent=1))
    return 0
