"""DCDM networks (torch; training and export only). Built from config by registered name.

The network is fully convolutional, so one file serves every grid whose extents are multiples of
``grid_multiple``. It works below the fine resolution on purpose: on a CPU a 3D convolution at full resolution costs
far more than the iterations it saves, while the high-frequency error it would resolve is removed cheaply by the
Jacobi sweeps the PC runs around it (see integrations/petsc/cycle.py).

``dcdm-unet``: average-pool to 1/2 (the network's working resolution), a residual block, one more pooled level of
residual convolutions, upsample with a skip, a 1x1 output, then linear upsampling back to the fine grid.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

MODELS: dict[str, type[nn.Module]] = {}


def register(name: str):
    def deco(cls):
        MODELS[name] = cls
        return cls

    return deco


def build_model(name: str, **config) -> nn.Module:
    if name not in MODELS:
        raise KeyError(f"unknown DCDM network {name!r}; valid: {', '.join(sorted(MODELS))}")
    return MODELS[name](**config)


def _ops(dim: int):
    if dim == 2:
        return nn.Conv2d, F.avg_pool2d, "bilinear"
    if dim == 3:
        return nn.Conv3d, F.avg_pool3d, "trilinear"
    raise ValueError(f"dim must be 2 or 3, got {dim}")


@register("dcdm-unet")
class DCDMUNet(nn.Module):
    """Two-level convolutional network approximating A^-1 r up to scale (no biases).

    ``in_channels=2`` adds the operator's normalised diagonal as a second input: a convolution is blind to position,
    and the diagonal is what tells it where walls, obstacles and solid cells are."""

    def __init__(self, dim: int, width: int = 8, coarse_blocks: int = 3, fine_pool: int = 2, in_channels: int = 1):
        super().__init__()
        Conv, self._pool, self._mode = _ops(dim)
        self.dim, self.width, self.fine_pool, self.in_channels = dim, width, fine_pool, in_channels
        c = width
        self.lift = Conv(in_channels, c, 3, padding=1, bias=False)
        self.enc = Conv(c, c, 3, padding=1, bias=False)
        self.mid = nn.ModuleList(Conv(c, c, 3, padding=1, bias=False) for _ in range(coarse_blocks))
        self.dec = Conv(c, c, 3, padding=1, bias=False)
        self.out = Conv(c, 1, 1, bias=False)

    @property
    def grid_multiple(self) -> int:
        return 2 * self.fine_pool

    def forward(self, r: torch.Tensor) -> torch.Tensor:
        x = self._pool(r, self.fine_pool) if self.fine_pool > 1 else r
        h1 = F.relu(self.lift(x))
        h1 = F.relu(self.enc(h1)) + h1
        h2 = self._pool(h1, 2)
        for conv in self.mid:
            h2 = F.relu(conv(h2)) + h2
        u = F.interpolate(h2, scale_factor=2.0, mode="nearest") + h1
        u = F.relu(self.dec(u)) + u
        c = self.out(u)
        if self.fine_pool > 1:
            c = F.interpolate(c, scale_factor=float(self.fine_pool), mode=self._mode, align_corners=False)
        return c

