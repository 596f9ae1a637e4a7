"""The PINN: an MLP inside the hard-boundary-condition ansatz u(x) = d(x) * NN(z), z = x mapped to [-1, 1]^d
(or the bare MLP, hard_bc=False, when the boundary condition is a loss term)."""
from __future__ import annotations

import torch
from torch import nn

from .domain import Box


class PINN(nn.Module):
    """tanh MLP; ``forward`` takes physical points (N, d) and returns u (N, 1), zero on the box boundary when hard_bc.

    The ansatz sits inside the module so the exported ONNX graph is the whole solution, boundary condition included.
    """

    def __init__(self, domain: Box, width: int = 64, depth: int = 4, fourier: int = 0, sigma: float = 10.0,
                 hard_bc: bool = True):
        super().__init__()
        d = domain.dim
        layers, last = [], d
        # Random Fourier features [sin(zB), cos(zB)], B ~ N(0, sigma^2): a tanh MLP trained by Adam moves each weight
        # by about lr per step, so in a few thousand steps it cannot grow the first-layer weights (~50) that a peak
        # of width 0.02 needs; the features provide those scales from the start.
        if fourier > 0:
            self.register_buffer("B", torch.randn(d, fourier) * sigma)
            last = 2 * fourier
        else:
            self.B = None
        for _ in range(depth):
            layers += [nn.Linear(last, width), nn.Tanh()]
            last = width
        layers.append(nn.Linear(last, 1))
        self.net = nn.Sequential(*layers)
        self.register_buffer("center", torch.as_tensor(domain.center, dtype=torch.float32))
        self.register_buffer("half_width", torch.as_tensor(domain.half_width, dtype=torch.float32))
        self.width, self.depth, self.fourier, self.sigma, self.hard_bc = width, depth, fourier, sigma, hard_bc

    def forward(self, x):
        z = (x - self.center) / self.half_width
        if self.B is not None:
            zb = z @ self.B
            out = self.net(torch.cat([torch.sin(zb), torch.cos(zb)], dim=1))
        else:
            out = self.net(z)
        if not self.hard_bc:
            return out
        return (1 - z * z).prod(dim=1, keepdim=True) * out  # vanishes on every face of the box
