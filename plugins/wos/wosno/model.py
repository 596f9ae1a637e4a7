"""The operator both methods train: instance parameters + query point -> u (a conditioned MLP, torch).

A point-based operator (like a DeepONet with concatenated inputs) fits the WoS-NO setting: the supervision comes
at scattered points, and the same network must also give the autograd Laplacian the physics-informed loss needs
(hence tanh: smooth second derivatives).
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..problems import N_FOURIER, N_GAUSS


def param_scale() -> np.ndarray:
    """Divisors bringing every instance parameter to order one."""
    return np.array([0.2, 0.1] + [10.0, 0.45, 0.45] * N_GAUSS + [1.0] * (1 + 2 * N_FOURIER))


class PointOperator(nn.Module):
    def __init__(self, n_params: int, width: int = 64, depth: int = 4):
        super().__init__()
        layers, d = [], n_params + 2
        for _ in range(depth):
            layers += [nn.Linear(d, width), nn.Tanh()]
            d = width
        layers.append(nn.Linear(d, 1))
        self.net = nn.Sequential(*layers)
        self.register_buffer("scale", torch.tensor(param_scale(), dtype=torch.float32))

    def forward(self, params: torch.Tensor, xy: torch.Tensor) -> torch.Tensor:
        """params (n, n_params), xy (n, 2) -> u (n,)."""
        return self.net(torch.cat([params / self.scale, xy], dim=1)).squeeze(1)
