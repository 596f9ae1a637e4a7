"""Training the factor network on a family of SPD matrices (torch; never imported on the solve path).

Python entry point: :func:`train` takes an iterable of matrices (scipy sparse or serial petsc4py Mats). Every step
takes one matrix, draws probe vectors and lowers one of the losses (all on the diagonally scaled matrix S and the
scaled factor L, M = L^T L):

* ``inverse``: ||M S w - w||^2 / ||w||^2, the stochastic Frobenius norm of I - M S;
* ``split``:   ||L S L^T w - w||^2 / ||w||^2, FSAI's own target (L S L^T close to I);
* ``energy``:  the S-norm of the error after one preconditioned step with the best step length (CG's own first
  step from the error w: d = M S w, e = w - alpha d), relative to w's; scale-free like CG itself;
* ``twogrid``: the S-norm of the error after a two-grid cycle with M as the smoother (one Richardson sweep before
  and after an exact coarse correction on the interpolation of PETSc GAMG's finest level, its defaults), relative
  to w's: the factor trained for its job in ``accel.LearnedSmootherMG``, damping what the coarse space cannot.
  With ``cycles`` the probes first go through that many cycles (no gradient), so the loss sees the slowest modes.

Probes are half white noise and half smoothed noise (a few damped Jacobi sweeps on S), so the smooth modes that a
one-level operator handles worst are seen as often as rough ones.
"""
from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .graph import Block, padded_graph

log = logging.getLogger(__name__)

LOSSES = ("inverse", "split", "energy", "twogrid")


@dataclass
class TrainConfig:
    hidden: int = 32
    layers: int = 3
    steps: int = 1000
    lr: float = 3e-3
    loss: str = "energy"
    probes: int = 16
    smoothing: int = 4
    seed: int = 0
    threads: int = 1
    pattern: str = "a"  # the factor's pattern: tril(A) or tril(A^2) (graph.PATTERNS)
    network: str = "gated"  # the architecture (network.NETWORKS)
    width: int = 8  # gated: channels per message
    rank: int = 4  # gated: bilinear terms of the output
    cycles: int = 0  # twogrid: cycles applied to the probes before the loss (0: the probes as drawn)


def as_scipy(A):
    """A scipy CSR matrix from a scipy matrix or a serial petsc4py Mat."""
    import scipy.sparse as sp

    if sp.issparse(A):
        return sp.csr_matrix(A)
    if hasattr(A, "getValuesCSR"):
        if A.getComm().getSize() > 1:
            raise ValueError("training reads whole matrices: pass serial matrices (or PETSc binary files)")
        indptr, indices, values = A.getValuesCSR()
        return sp.csr_matrix((values, indices, indptr), shape=A.getSize())
    raise TypeError(f"cannot train on a {type(A).__name__}: pass scipy sparse matrices or petsc4py Mats")


def gamg_interpolation(A):
    """The interpolation P (scipy CSR) from PETSc GAMG's first coarse level to its finest, on the scipy matrix A:
    GAMG with its defaults on one process, set up as ``accel.LearnedSmootherMG`` sets up its inner multigrid."""
    import scipy.sparse as sp
    from petsc4py import PETSc

    A = sp.csr_matrix(A)
    mat = PETSc.Mat().createAIJ(A.shape, csr=(A.indptr.astype(PETSc.IntType), A.indices.astype(PETSc.IntType),
                                              A.data.astype(PETSc.ScalarType)), comm=PETSc.COMM_SELF)
    pc = PETSc.PC().create(comm=PETSc.COMM_SELF)
    try:
        pc.setOptionsPrefix("accel_train_gamg_")  # GAMG's defaults, whatever the global options database holds
        pc.setOperators(mat)
        pc.setType("gamg")
        pc.setFromOptions()
        pc.setUp()
        levels = pc.getMGLevels()
        if levels < 2:
            from accel.errors import AccelError

            raise AccelError(f"GAMG made one level on a {A.shape[0]}-row training matrix (too small, or rows without "
                             "couplings): no coarse space for the two-grid loss; train on larger matrices or use "
                             "another --loss")
        P = pc.getMGInterpolation(levels - 1)
        try:
            indptr, indices, values = P.getValuesCSR()
            return sp.csr_matrix((values, indices, indptr), shape=P.getSize())
        finally:
            P.destroy()
    finally:
        pc.destroy()
        mat.destroy()


class _Coarse:
    """The coarse space of the two-grid loss in the scaled variables: P_s = D^1/2 P (float64, sparse) and the
    Cholesky factor of S's Galerkin matrix P_s^T S P_s = P^T A P (dense: a few hundred rows for training matrices)."""

    def __init__(self, A, diagonal):
        import torch

        P = gamg_interpolation(A)
        Ps = P.multiply(np.sqrt(diagonal)[:, None]).tocsr()
        coarse = (P.T @ A @ P).toarray()
        self.factor = torch.linalg.cholesky(torch.from_numpy(0.5 * (coarse + coarse.T)))
        self.P = _torch_sparse(Ps, torch.float64)
        self.Pt = _torch_sparse(Ps.T.tocsr(), torch.float64)

    def correct(self, S, e):
        """e - P_s (P_s^T S P_s)^-1 P_s^T S e: the exact coarse correction of the error e."""
        import torch

        c = torch.cholesky_solve(self.Pt @ (S @ e).double(), self.factor)
        return e - (self.P @ c).to(e.dtype)


def _torch_sparse(M, dtype):
    import torch

    M = M.tocoo()
    idx = torch.from_numpy(np.vstack([M.row, M.col]).astype(np.int64))
    return torch.sparse_coo_tensor(idx, torch.from_numpy(M.data).to(dtype), M.shape, check_invariants=False).coalesce()


class _Sample:
    """One training matrix as torch tensors: the network's inputs, the scaled matrix and (for the two-grid loss)
    its coarse space."""

    def __init__(self, A, pattern: str = "a", coarse: bool = False):
        import torch

        S = as_scipy(A)
        g = padded_graph(Block.from_scipy(S), pattern=pattern)
        self.n = S.shape[0]
        self.inputs = tuple(torch.from_numpy(a) for a in (g.node, g.edge, g.neighbours))
        self.neighbours = self.inputs[2]
        d = np.sqrt(g.diagonal)
        self.S = _torch_sparse(S.multiply(1.0 / d[:, None]).multiply(1.0 / d[None, :]), torch.float32)
        self.coarse = _Coarse(S, g.diagonal) if coarse else None


def factor_mul(L, neighbours, x):
    """(L x) for the padded factor L [n, K] and x [n, B]."""
    return (L[..., None] * x[neighbours]).sum(dim=1)


def factor_mul_t(L, neighbours, y):
    """(L^T y): a scatter-add over the padded slots (torch only; the ONNX graph never needs it)."""
    import torch

    contrib = (L[..., None] * y[:, None, :]).reshape(-1, y.shape[1])
    return torch.zeros_like(y).index_add_(0, neighbours.reshape(-1), contrib)


def probes(sample: _Sample, count: int, smoothing: int, generator):
    import torch

    w = torch.randn(sample.n, count, generator=generator)
    half = count // 2
    smooth = w[:, half:]
    for _ in range(smoothing):
        smooth = smooth - 0.67 * (sample.S @ smooth)
    w = torch.cat([w[:, :half], smooth], dim=1)
    return w / w.norm(dim=0, keepdim=True)


def loss_value(kind: str, L, sample: _Sample, w, cycles: int = 0):
    nb = sample.neighbours
    if kind == "inverse":
        z = factor_mul_t(L, nb, factor_mul(L, nb, sample.S @ w))
        return ((z - w) ** 2).sum(dim=0).mean()
    if kind == "split":
        z = factor_mul(L, nb, sample.S @ factor_mul_t(L, nb, w))
        return ((z - w) ** 2).sum(dim=0).mean()
    if kind == "energy":
        Sw = sample.S @ w
        d = factor_mul_t(L, nb, factor_mul(L, nb, Sw))
        Sd = sample.S @ d
        alpha = (d * Sw).sum(dim=0) / (d * Sd).sum(dim=0)
        e = w - alpha * d
        return ((e * (sample.S @ e)).sum(dim=0) / (w * Sw).sum(dim=0)).mean()
    if kind == "twogrid":
        def sweep(e):  # one Richardson sweep x += M (b - S x) on the error: e - M S e
            return e - factor_mul_t(L, nb, factor_mul(L, nb, sample.S @ e))

        def cycle(e):
            return sweep(sample.coarse.correct(sample.S, sweep(e)))

        if cycles:  # the probes after a few cycles (no gradient): the slowest modes, which CG's rate depends on
            import torch

            with torch.no_grad():
                for _ in range(cycles):
                    w = cycle(w)
                    w = w / w.norm(dim=0, keepdim=True)
        e = cycle(w)
        return ((e * (sample.S @ e)).sum(dim=0) / (w * (sample.S @ w)).sum(dim=0)).mean()
    raise ValueError(f"unknown loss {kind!r}; valid: {', '.join(LOSSES)}")


def train(matrices, config: TrainConfig = TrainConfig(), log_path: Path | None = None, progress: bool = False):
    """Train a factor network (``config.network``) on ``matrices`` (an iterable of SPD matrices); returns
    (net, history)."""
    from accel.plugins.training import torch_scope

    if config.loss not in LOSSES:
        raise ValueError(f"unknown loss {config.loss!r}; valid: {', '.join(LOSSES)}")
    with torch_scope(config.threads, config.seed):
        return _train(matrices, config, log_path, progress)


def _train(matrices, config: TrainConfig, log_path, progress):
    import torch

    from .network import build_network

    samples = [_Sample(A, config.pattern, coarse=config.loss == "twogrid") for A in matrices]
    if not samples:
        raise ValueError("no training matrices given")
    net = build_network(config.network, config.hidden, config.layers, config.width, config.rank)
    opt = torch.optim.Adam(net.parameters(), lr=config.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, config.steps, eta_min=config.lr / 20)
    gen = torch.Generator().manual_seed(config.seed)
    order = np.random.default_rng(config.seed)
    history, smoothed = [], None
    from accel.progress import progress_bar

    bar = progress_bar(range(config.steps), desc="train gnn", unit="step", enabled=progress)
    log_file = open(log_path, "w") if log_path else None
    t0 = time.perf_counter()
    try:
        for step in bar:
            sample = samples[order.integers(len(samples))]
            w = probes(sample, config.probes, config.smoothing, gen)
            L = net(*sample.inputs)
            loss = loss_value(config.loss, L, sample, w, config.cycles)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
            opt.step()
            sched.step()
            value = loss.item()
            smoothed = value if smoothed is None else 0.95 * smoothed + 0.05 * value
            if step % 10 == 0 or step == config.steps - 1:
                record = {"step": step, "loss": value, "smoothed": smoothed, "seconds": time.perf_counter() - t0}
                history.append(record)
                if log_file:
                    log_file.write(json.dumps(record) + "\n")
                    log_file.flush()
                bar.set_postfix(loss=f"{smoothed:.3e}", refresh=False)
    finally:
        if log_file:
            log_file.close()
    net.eval()
    log.info("trained %s in %.1f s: %s", asdict(config), time.perf_counter() - t0, history[-1])
    return net, history
