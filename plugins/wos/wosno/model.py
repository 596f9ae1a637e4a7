"""The operator both methods train: instance parameters + query point -> u (a conditioned MLP, torch).

A point-based operator (like a DeepONet with concatenated inputs) fits the WoS-NO setting: the supervision comes
at scattered points, and the same network must also give the autograd Laplacian the physics-informed loss needs
(hence tanh: smooth second derivatives).
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..problems import N_FOURIER, N_GAUSS, SIGMA, amplitude_scale


def param_scale(sigma: float = SIGMA) -> np.ndarray:
    """Divisors bringing every instance parameter to order one (amplitudes grow as (SIGMA / sigma)^2)."""
    return np.array([0.2, 0.1] + [10.0 * amplitude_scale(sigma), 0.45, 0.45] * N_GAUSS + [1.0] * (1 + 2 * N_FOURIER))


def input_features(params: torch.Tensor, xy: torch.Tensor, sigma: float = SIGMA) -> torch.Tensor:
    """The instance's input functions at the query point, as an FNO or GINO sees them on its grid: the source
    f(x) / 10 and the harmonic extension of the boundary Fourier series into the unit disk,
    ``b0 + sum_k Re/Im (x + i y)^k`` (a smooth polynomial, so the autograd Laplacian stays well defined)."""
    x, y = xy[:, 0], xy[:, 1]
    f = torch.zeros_like(x)
    for k in range(N_GAUSS):
        A, x0, y0 = params[:, 2 + 3 * k], params[:, 3 + 3 * k], params[:, 4 + 3 * k]
        f = f + A * torch.exp(-((x - x0) ** 2 + (y - y0) ** 2) / (2 * sigma ** 2))
    four = params[:, 2 + 3 * N_GAUSS:]
    h = four[:, 0]
    re, im = torch.ones_like(x), torch.zeros_like(x)
    for k in range(1, N_FOURIER + 1):
        re, im = re * x - im * y, re * y + im * x  # (x + i y)^k
        h = h + four[:, 2 * k - 1] * re + four[:, 2 * k] * im
    return torch.stack([f / (10.0 * amplitude_scale(sigma)), h], dim=1)


class PointOperator(nn.Module):
    def __init__(self, n_params: int, width: int = 64, depth: int = 4, features: bool = True, sigma: float = SIGMA):
        super().__init__()
        self.features, self.sigma = features, sigma
        layers, d = [], n_params + 2 + (2 if features else 0)
        for _ in range(depth):
            layers += [nn.Linear(d, width), nn.Tanh()]
            d = width
        layers.append(nn.Linear(d, 1))
        self.net = nn.Sequential(*layers)
        self.register_buffer("scale", torch.tensor(param_scale(sigma), dtype=torch.float32))

    def forward(self, params: torch.Tensor, xy: torch.Tensor) -> torch.Tensor:
        """params (n, n_params), xy (n, 2) -> u (n,)."""
        parts = [params / self.scale, xy]
        if self.features:
            parts.append(input_features(params, xy, self.sigma))
        return self.net(torch.cat(parts, dim=1)).squeeze(1)
