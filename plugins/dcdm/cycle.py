"""The two-grid cycle the DCDM preconditioner runs, in torch for end-to-end training.

The PETSc version (integrations/petsc/cycle.py) computes the same thing with PETSc matrices; both must agree, and
a test checks that they do. One application with residual r:

    z  = Jacobi(omega, pre sweeps) on A z = r, from z = 0
    r1 = r - A z
    c  = NN(r1 / |r1|) * coupled            # the network: coarse, smooth part of the error; zero on decoupled rows
    s  = (c . r1) / (c . A c)               # energy-optimal step: makes the cycle scale-free and resolution-robust
    z += s c ; then Jacobi(omega, post sweeps)
"""
from __future__ import annotations

import torch

from accel.components import CycleSettings


def coupled_rows(A) -> "np.ndarray":
    """1.0 for rows of the scipy matrix ``A`` with an off-diagonal entry, 0.0 for decoupled rows (solid cells,
    eliminated Dirichlet unknowns): a smooth coarse correction must not touch those, the smoother solves them."""
    import numpy as np

    off = abs(A.tocsr()).sum(axis=1).A1 - abs(A.diagonal())
    return (off > 0).astype(np.float32)


def apply_cycle(net, A: torch.Tensor, dinv: torch.Tensor, r: torch.Tensor, shape, cfg: CycleSettings,
                aux: torch.Tensor | None = None, mask: torch.Tensor | None = None) -> torch.Tensor:
    """r: (n, B) float tensor of residual columns; returns z (n, B). ``aux`` (1, k, *shape): extra input channels;
    ``mask`` (n, 1): :func:`coupled_rows`."""
    z = torch.zeros_like(r)
    res = r
    for k in range(cfg.pre):
        z = z + cfg.omega * dinv * res
        res = r - A @ z
    scale = res.norm(dim=0, keepdim=True).clamp_min(1e-30)
    x = (res / scale).T.reshape(r.shape[1], 1, *shape)
    if aux is not None:
        x = torch.cat([x, aux.expand(r.shape[1], *aux.shape[1:]).to(x.dtype)], dim=1)
    c = _padded_net(net, x, shape).reshape(r.shape[1], -1).T
    if mask is not None:
        c = c * mask
    Ac = A @ c
    s = (c * res).sum(0, keepdim=True) / (c * Ac).sum(0, keepdim=True).clamp_min(1e-30)
    z = z + s * c
    res = res - s * Ac
    for k in range(cfg.post):
        z = z + cfg.omega * dinv * res
        if k + 1 < cfg.post:
            res = r - A @ z
    return z


def _padded_net(net, x: torch.Tensor, shape) -> torch.Tensor:
    """The network on a grid it may not take as is: zero-padded at the high end of every axis to its grid multiple
    and cropped back, exactly as the ONNX component does on the solve path."""
    mult = getattr(net, "grid_multiple", 1)
    padded = [max(2 * mult, -(-n // mult) * mult) for n in shape]
    if list(shape) == padded:
        return net(x)
    pad = []
    for n, p in zip(reversed(shape), reversed(padded)):
        pad += [0, p - n]
    y = torch.nn.functional.pad(x, pad)
    return net(y)[(slice(None), slice(None), *(slice(0, n) for n in shape))]


def dcdm_loss(A: torch.Tensor, b: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """Mean over columns of |b - A q (q.b)/(q.A q)|^2 / |b|^2: the residual after one optimal line search."""
    Aq = A @ q
    alpha = (q * b).sum(0) / (q * Aq).sum(0).clamp_min(1e-30)
    res = b - Aq * alpha
    return ((res * res).sum(0) / (b * b).sum(0)).mean()



def energy_loss(A: torch.Tensor, b: torch.Tensor, x: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """Mean over columns of |x - a q|_A^2 / |x|_A^2 with x = A^-1 b and the energy-optimal a = (q.b)/(q.A q):
    1 - (q.b)^2 / ((q.A q)(x.b)). Scale-free like :func:`dcdm_loss`, but it weighs errors as CG does; on operators
    with a tiny lowest eigenvalue (Neumann walls) the residual 2-norm even ranks an exact coarse solve below none."""
    Aq = A @ q
    qb = (q * b).sum(0)
    qAq = (q * Aq).sum(0).clamp_min(1e-30)
    xb = (x * b).sum(0).clamp_min(1e-30)
    return (1.0 - qb * qb / (qAq * xb)).mean()
