"""Training a DCDM network end to end inside its two-grid cycle (torch)."""
from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import problems, spectrum

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
    loss: str = "residual"  # "residual": the DCDM paper's |r|_2 after a line search; "energy": the A-norm error
    extra: dict = field(default_factory=dict)


def _sparse(A):
    import warnings

    import torch

    A = A.tocsr()
    warnings.filterwarnings("ignore", message="Sparse (CSR tensor support|invariant checks)")
    return torch.sparse_csr_tensor(torch.from_numpy(A.indptr.astype(np.int64)), torch.from_numpy(A.indices.astype(np.int64)),
                                   torch.from_numpy(A.data.astype(np.float32)), size=A.shape)


def train(cfg: TrainConfig, log_path: Path | None = None, progress: bool = False):
    """Train and return (network, history). Logs one JSON line per 50 steps to ``log_path``."""
    import torch

    from .cycle import CycleSettings, apply_cycle, coupled_rows, dcdm_loss, energy_loss
    from .network import build_model

    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    prob = problems.build(cfg.problem, cfg.grid)
    t0 = time.perf_counter()
    _, vecs = spectrum.cached_ritz_vectors(prob.matrix, cfg.ritz, seed=cfg.seed,
                                           key=f"{cfg.problem}-{'x'.join(map(str, cfg.grid))}")
    rhs = torch.from_numpy(spectrum.training_rhs(vecs, cfg.samples, seed=cfg.seed))
    log.info("training data: %d right-hand sides from %d Ritz vectors in %.1f s", cfg.samples, cfg.ritz,
             time.perf_counter() - t0)
    if cfg.loss not in ("residual", "energy"):
        raise ValueError(f"unknown loss {cfg.loss!r}; valid: residual, energy")
    sol = None
    if cfg.loss == "energy":
        from scipy.sparse.linalg import splu

        # the exact solutions of the training systems, once: the energy norm needs A^-1 b
        sol = torch.from_numpy(splu(prob.matrix.tocsc()).solve(rhs.numpy().T.astype(np.float64)).T.astype(np.float32))
    A = _sparse(prob.matrix)
    dinv = torch.from_numpy((1.0 / prob.matrix.diagonal()).astype(np.float32))[:, None]
    coupled = coupled_rows(prob.matrix)
    mask = None if coupled.all() else torch.from_numpy(coupled)[:, None]  # as the PC: no mask when nothing to mask
    net = build_model(cfg.network, dim=len(cfg.grid), width=cfg.width, coarse_blocks=cfg.coarse_blocks,
                      fine_pool=cfg.fine_pool, in_channels=2 if cfg.diagonal_input else 1, depth=cfg.depth)
    aux = None
    if cfg.diagonal_input:
        from .features import normalized_diagonal

        aux = torch.from_numpy(normalized_diagonal(prob.matrix.diagonal()).reshape(1, 1, *cfg.grid))
    cyc = CycleSettings(cfg.pre, cfg.post, cfg.omega)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, cfg.steps)
    gen = torch.Generator().manual_seed(cfg.seed)
    history = []
    bar = range(cfg.steps)
    if progress:
        from tqdm import tqdm

        bar = tqdm(bar, desc=f"train dcdm {cfg.problem}", unit="step")
    logf = open(log_path, "w") if log_path else None
    running = None
    try:
        for step in bar:
            idx = torch.randint(0, rhs.shape[0], (cfg.batch,), generator=gen)
            b = rhs[idx].T.contiguous()
            z = apply_cycle(net, A, dinv, b, cfg.grid, cyc, aux, mask)
            loss = dcdm_loss(A, b, z) if sol is None else energy_loss(A, b, sol[idx].T.contiguous(), z)
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
