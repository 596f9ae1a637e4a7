"""DCDM networks (torch; training and export only). Built from config by registered name.

The network is fully convolutional, so one file serves every grid whose extents are multiples of
``grid_multiple``. It works below the fine resolution on purpose: on a CPU a 3D convolution at full resolution costs
far more than the iterations it saves, while the high-frequency error it would resolve is removed cheaply by the
Jacobi sweeps the PC runs around it (see integrations/petsc/cycle.py).

``dcdm-unet``: average-pool to 1/2 (the network's working resolution), a residual block, one more pooled level of
residual convolutions, upsample with a skip, a 1x1 output, then linear upsampling back to the fine grid.

Input channel 0 is the residual; further channels describe the operator (plugins/dcdm/features.py). They enter in
one of two ways (``conditioning``): ``concat``, stacked with the residual before the first convolution (the shipped
obstacle models); or ``gate``, through a separate coefficient path whose outputs multiply the residual path's features
at every block. A bias-free ReLU network stays positively homogeneous in the residual only in the second form
(NN(a r) = a NN(r)): concatenated O(1) coefficient channels swamp a unit-norm residual (entries ~1/sqrt(n)), and the
map the network must learn, r -> A(k)^-1 r, is linear in r but multiplicative in the coefficients.
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
    """U-net approximating A^-1 r up to scale (no biases), at 1/``fine_pool`` of the grid resolution.

    ``depth`` pooled levels below the working resolution, each with its own convolutions, then ``coarse_blocks``
    residual convolutions at the bottom: the receptive field must span the domain for problems whose slowest modes
    are global (Neumann walls with a single Dirichlet face). ``in_channels=2`` adds the operator's normalised
    diagonal as a second input: a convolution is blind to position, and the diagonal is what tells it where walls,
    obstacles and solid cells are."""

    def __init__(self, dim: int, width: int = 8, coarse_blocks: int = 3, fine_pool: int = 2, in_channels: int = 1,
                 depth: int = 1, conditioning: str = "concat"):
        super().__init__()
        if conditioning not in ("concat", "gate"):
            raise ValueError(f"conditioning must be concat or gate, got {conditioning!r}")
        Conv, self._pool, self._mode = _ops(dim)
        self.dim, self.width, self.fine_pool, self.in_channels, self.depth = dim, width, fine_pool, in_channels, depth
        self.conditioning = conditioning if in_channels > 1 else "concat"
        gated = self.conditioning == "gate"
        c = width
        # creation order fixes the initial weights for a seed: lift, encoders, bottom, decoders, output
        self.lift = Conv(1 if gated else in_channels, c, 3, padding=1, bias=False)
        self.enc = nn.ModuleList(Conv(c, c, 3, padding=1, bias=False) for _ in range(depth))
        self.mid = nn.ModuleList(Conv(c, c, 3, padding=1, bias=False) for _ in range(coarse_blocks))
        self.dec = nn.ModuleList(Conv(c, c, 3, padding=1, bias=False) for _ in range(depth))
        self.out = Conv(c, 1, 1, bias=False)
        if gated:
            # the coefficient path: features of the operator at the working resolution, pooled with the residual
            # path, and one 1x1 gate per block (zero-initialised: every gate starts at 1, the plain network)
            self.coef = nn.ModuleList([Conv(in_channels - 1, c, 3, padding=1), Conv(c, c, 3, padding=1)])
            self.gates = nn.ModuleList(Conv(c, c, 1) for _ in range(1 + 2 * depth + coarse_blocks))
            for g in self.gates:
                nn.init.zeros_(g.weight)
                nn.init.zeros_(g.bias)

    @property
    def grid_multiple(self) -> int:
        return self.fine_pool * 2**self.depth

    def forward(self, r: torch.Tensor) -> torch.Tensor:
        h = self._pool(r, self.fine_pool) if self.fine_pool > 1 else r
        if self.conditioning == "gate":
            return self._gated(h)
        h = F.relu(self.lift(h))
        skips = []
        for conv in self.enc:
            h = F.relu(conv(h)) + h
            skips.append(h)
            h = self._pool(h, 2)
        for conv in self.mid:
            h = F.relu(conv(h)) + h
        for conv, skip in zip(reversed(self.dec), reversed(skips)):
            h = F.interpolate(h, scale_factor=2.0, mode="nearest") + skip
            h = F.relu(conv(h)) + h
        return self._upsample(self.out(h))

    def _gated(self, x: torch.Tensor) -> torch.Tensor:
        """The residual path of :meth:`forward`, each block's output scaled by 2 sigmoid(gate(coefficient features))."""
        e = F.relu(self.coef[0](x[:, 1:]))
        e = F.relu(self.coef[1](e)) + e
        gates = iter(self.gates)

        def gate(h, e):
            return h * (2.0 * torch.sigmoid(next(gates)(e)))

        h = gate(F.relu(self.lift(x[:, :1])), e)
        skips = []
        for conv in self.enc:
            h = gate(F.relu(conv(h)), e) + h
            skips.append((h, e))
            h, e = self._pool(h, 2), self._pool(e, 2)
        for conv in self.mid:
            h = gate(F.relu(conv(h)), e) + h
        for conv, (skip, e) in zip(reversed(self.dec), reversed(skips)):
            h = F.interpolate(h, scale_factor=2.0, mode="nearest") + skip
            h = gate(F.relu(conv(h)), e) + h
        return self._upsample(self.out(h))

    def _upsample(self, c: torch.Tensor) -> torch.Tensor:
        if self.fine_pool > 1:
            c = F.interpolate(c, scale_factor=float(self.fine_pool), mode=self._mode, align_corners=False)
        return c
