"""Training a DCDM network end to end inside its two-grid cycle (torch)."""
from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import features, problems, spectrum

log = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    problem: str = "poisson3d"
    grid: tuple[int, ...] = (32, 32, 32)
    network: str = "dcdm-unet"
    width: int = 8
    coarse_blocks: int = 3
    depth: int = 1
    fine_pool: int = 2
    ritz: int = 256
    samples: int = 512
    batch: int = 8
    steps: int = 2000
    lr: float = 2e-3
    pre: int = 2
    post: int = 2
    omega: float = 0.67
    seed: int = 0
    threads: int = 2
    diagonal_input: bool = False
    coefficient_input: bool = False  # the operator's log-diagonal and per-axis couplings as input channels
    loss: str = "residual"  # "residual": the DCDM paper's |r|_2 after a line search; "energy": the A-norm error
    members: int = 1        # random fields drawn for the ``random-`` problems
    unroll: int = 1         # energy loss after this many cycles of a steepest-descent iteration (see unrolled_loss)
    extra: dict = field(default_factory=dict)


def _sparse(A):
    import warnings

    import torch

    A = A.tocsr()
    with warnings.catch_warnings():  # torch's beta notice for CSR tensors, scoped to this call (no global filter)
        warnings.filterwarnings("ignore", message="Sparse (CSR tensor support|invariant checks)")
        return torch.sparse_csr_tensor(torch.from_numpy(A.indptr.astype(np.int64)),
                                       torch.from_numpy(A.indices.astype(np.int64)),
                                       torch.from_numpy(A.data.astype(np.float32)), size=A.shape)


@dataclass
class Member:
    """One operator of the training family, with its right-hand sides and the tensors the cycle needs."""

    shape: tuple[int, ...]
    A: object                # torch sparse CSR (float32)
    dinv: object             # (n, 1)
    rhs: object              # (samples, n)
    sol: object = None       # (samples, n): A^-1 rhs, for the energy loss
    mask: object = None      # (n, 1) coupled rows, None when every row is coupled (as the PC)
    aux: object = None       # (1, k, *shape) the operator's input channels (features.input_channels), or None


def check_operators(operators, dim: int | None = None) -> None:
    """Raise ValueError unless every (shape, matrix) pair is a square matrix with one row per grid point, all of one
    dimension (``dim`` if given), and has a positive diagonal (the Jacobi sweeps of the cycle divide by it)."""
    if not operators:
        raise ValueError("no training operators given")
    dims = {len(shape) for shape, _ in operators}
    if len(dims) != 1 or (dim is not None and dims != {dim}):
        raise ValueError(f"training operators must all be {dim or 'one dimension'}D grids; got grids of "
                         f"{sorted(dims)} axes")
    for i, (shape, A) in enumerate(operators):
        n = int(np.prod(shape))
        if A.shape != (n, n):
            raise ValueError(f"operator {i} is {A.shape[0]}x{A.shape[1]} but its grid {'x'.join(map(str, shape))} "
                             f"has {n} points")
        if np.any(A.diagonal() <= 0):
            raise ValueError(f"operator {i} has non-positive diagonal entries; the preconditioner's Jacobi sweeps "
                             "need an SPD-like operator")


def _member(shape, matrix, cfg: "TrainConfig", index: int, count: int, key: str) -> Member:
    import torch

    from .cycle import coupled_rows

    # every member gets --ritz of its own low modes (a share of them trained networks that handled only the
    # smoothest modes, worse in CG than no network); the right-hand sides are shared out
    ritz = cfg.ritz
    samples = cfg.samples if count == 1 else max(64, cfg.samples // count)
    _, vecs = spectrum.cached_ritz_vectors(matrix, ritz, seed=cfg.seed + index, key=f"{key}-{index}")
    rhs = spectrum.training_rhs(vecs, samples, seed=cfg.seed + index)
    sol = None
    if cfg.loss == "energy":
        from scipy.sparse.linalg import splu

        # the exact solutions of the training systems, once: the energy norm needs A^-1 b
        sol = torch.from_numpy(splu(matrix.tocsc()).solve(rhs.T.astype(np.float64)).T.astype(np.float32))
    coupled = coupled_rows(matrix)
    aux = None
    names = features.input_names(len(shape), cfg.diagonal_input, cfg.coefficient_input)
    if len(names) > 1:
        couplings = features.scipy_couplings(matrix, shape) if features.needs_couplings(names) else None
        channels = features.input_channels(names, matrix.diagonal().reshape(shape), couplings)
        aux = torch.from_numpy(channels[None])
    return Member(tuple(shape), _sparse(matrix), torch.from_numpy((1.0 / matrix.diagonal()).astype(np.float32))[:, None],
                  torch.from_numpy(rhs), sol, None if coupled.all() else torch.from_numpy(coupled)[:, None], aux)


def unrolled_loss(net, m: Member, b, x, cyc, steps: int):
    """Geometric mean per cycle of |e|_A^2 / |x|_A^2 after ``steps`` steps of steepest descent preconditioned by the
    cycle (z = cycle(r), energy-optimal step), from x0 = 0 with x = A^-1 b. One cycle's loss (:func:`energy_loss`)
    sees only the training right-hand sides; unrolled, the network also meets the residuals its own corrections leave,
    which are what a Krylov method hands it after the first iteration."""
    from .cycle import apply_cycle

    e, r = x, b
    for _ in range(steps):
        z = apply_cycle(net, m.A, m.dinv, r, m.shape, cyc, m.aux, m.mask)
        Az = m.A @ z
        a = (z * r).sum(0, keepdim=True) / (z * Az).sum(0, keepdim=True).clamp_min(1e-30)
        e, r = e - a * z, r - a * Az
    ratio = (e * r).sum(0) / (x * b).sum(0).clamp_min(1e-30)  # e.A e = e.r
    return ratio.clamp_min(1e-30).pow(1.0 / steps).mean()


def train(cfg: TrainConfig, log_path: Path | None = None, progress: bool = False, operators=None):
    """Train and return (network, history). Logs one JSON line per 50 steps to ``log_path``.

    ``operators``: the training family as (C-ordered grid shape, scipy matrix in natural order) pairs; default: the
    named problem ``cfg.problem`` on ``cfg.grid`` (``cfg.members`` random fields for the ``random-`` problems).
    Each step draws one member and a batch of its right-hand sides."""
    from accel.plugins.training import torch_scope

    if cfg.loss not in ("residual", "energy"):
        raise ValueError(f"unknown loss {cfg.loss!r}; valid: residual, energy")
    if cfg.unroll > 1 and cfg.loss != "energy":
        raise ValueError("unroll > 1 needs the energy loss")
    with torch_scope(cfg.threads, cfg.seed):
        return _train(cfg, log_path, progress, operators)


def _train(cfg: TrainConfig, log_path, progress, operators):
    import torch

    from accel.components import CycleSettings

    from .cycle import apply_cycle, dcdm_loss, energy_loss
    from .network import build_model

    key = "matrices"
    if operators is None:
        operators = [(p.shape, p.matrix) for p in problems.family(cfg.problem, cfg.grid, cfg.members, cfg.seed)]
        key = f"{cfg.problem}-{'x'.join(map(str, cfg.grid))}"
    check_operators(operators)
    t0 = time.perf_counter()
    members = [_member(shape, A, cfg, i, len(operators), key) for i, (shape, A) in enumerate(operators)]
    log.info("training data: %d operator(s), %d right-hand sides in %.1f s", len(members),
             sum(m.rhs.shape[0] for m in members), time.perf_counter() - t0)
    names = features.input_names(len(members[0].shape), cfg.diagonal_input, cfg.coefficient_input)
    net = build_model(cfg.network, dim=len(members[0].shape), width=cfg.width, coarse_blocks=cfg.coarse_blocks,
                      fine_pool=cfg.fine_pool, in_channels=len(names), depth=cfg.depth,
                      conditioning="gate" if cfg.coefficient_input else "concat")
    net.input_names = names  # what export writes into the metadata: the solve path builds the same channels
    cyc = CycleSettings(cfg.pre, cfg.post, cfg.omega)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, cfg.steps)
    gen = torch.Generator().manual_seed(cfg.seed)
    history = []
    from accel.progress import progress_bar

    bar = progress_bar(range(cfg.steps), desc=f"train dcdm {cfg.problem}", unit="step", enabled=progress)
    logf = open(log_path, "w") if log_path else None
    running = None
    try:
        for step in bar:
            # one operator: the same random stream as a single-problem run always had
            m = members[int(torch.randint(0, len(members), (1,), generator=gen))] if len(members) > 1 else members[0]
            idx = torch.randint(0, m.rhs.shape[0], (cfg.batch,), generator=gen)
            b = m.rhs[idx].T.contiguous()
            if cfg.unroll > 1:
                loss = unrolled_loss(net, m, b, m.sol[idx].T.contiguous(), cyc, cfg.unroll)
            else:
                z = apply_cycle(net, m.A, m.dinv, b, m.shape, cyc, m.aux, m.mask)
                loss = dcdm_loss(m.A, b, z) if m.sol is None else energy_loss(m.A, b, m.sol[idx].T.contiguous(), z)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            val = float(loss.detach())
            if not np.isfinite(val):
                raise FloatingPointError(f"training loss became {val} at step {step}; lower --lr")
            running = val if running is None else 0.95 * running + 0.05 * val
            if progress:
                bar.set_postfix(loss=f"{running:.3e}")
            if step % 50 == 0 or step == cfg.steps - 1:
                rec = {"step": step, "loss": val, "smoothed": running, "time_s": round(time.perf_counter() - t0, 2)}
                history.append(rec)
                if logf:
                    logf.write(json.dumps(rec) + "\n")
                    logf.flush()
    finally:
        if logf:
            logf.close()
    return net.eval(), history
