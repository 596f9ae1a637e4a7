"""Benchmark problems: -Laplace(u) = f on a box with an exact solution that vanishes on the boundary.

Every exact solution is zero on the boundary (the peak's boundary value is below 1e-108), so the PINN uses a hard
boundary condition, u = d(x) * NN(x) with d = prod(1 - z_i^2) on the box mapped to [-1, 1]^d: no boundary loss and
no boundary weight to tune (with a soft boundary term the result depends mostly on that weight). The source
is the exact Laplacian, computed by autograd once per collocation set. Each problem names a *region* (a box where
the solution has its feature: the peak, the layer) so that errors there and in the background are reported apart:
the global relative L2 is dominated by the flat background.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from .domain import Box
from .errors import DomainError


@dataclass
class Problem:
    name: str
    domain: Box
    exact: Callable  # torch tensor (N, d) -> (N,)
    region: Box  # where the feature is
    residual_scale: float  # residuals are divided by it (order of max |f|), so losses read alike across problems
    description: str = ""
    options: dict = field(default_factory=dict)

    @property
    def dim(self) -> int:
        return self.domain.dim

    def source(self, x):
        """f = -Laplace(u_exact) at the points x (torch, (N, d)); returns a detached (N,) tensor."""
        x = x.detach().clone().requires_grad_(True)
        _, lap = laplacian(self.exact, x)
        return (-lap).detach()

    def exact_numpy(self, x: np.ndarray) -> np.ndarray:
        import torch

        with torch.no_grad():
            return self.exact(torch.as_tensor(x, dtype=torch.float64)).numpy()


def laplacian(fn, x, create_graph=False):
    """(u, Laplace u) of a scalar function of the rows of x by autograd (one backward pass per axis)."""
    import torch

    u = fn(x).reshape(-1)
    (g,) = torch.autograd.grad(u.sum(), x, create_graph=True)
    lap = torch.zeros_like(u)
    for i in range(x.shape[1]):
        (gi,) = torch.autograd.grad(g[:, i].sum(), x, create_graph=create_graph, retain_graph=True)
        lap = lap + gi[:, i]
    return u, lap


def peak2d(width: float = 1000.0) -> Problem:
    """u = exp(-1000 |x - (0.5, 0.5)|^2) on [-1, 1]^2 (the AAS/DAS peak problem)."""
    c = 0.5

    def exact(x):
        return (-width * ((x - c) ** 2).sum(1)).exp()

    return Problem("peak2d", Box([-1, -1], [1, 1]), exact, Box([0.4, 0.4], [0.6, 0.6]), 4.0 * width,
                   "2D Poisson, u = exp(-1000((x-0.5)^2+(y-0.5)^2)) on [-1,1]^2", {"width": width})


def peak_nd(dim: int = 5, width: float = 10.0) -> Problem:
    """u = prod(1 - x_i^2) exp(-10 |x|^2) on [-1, 1]^d (d >= 5: a smooth peak whose mass is a small volume fraction)."""
    if dim < 1:
        raise DomainError(f"dimension must be at least 1, got {dim}")

    def exact(x):
        return (1 - x**2).prod(1) * (-width * (x**2).sum(1)).exp()

    return Problem(f"peak{dim}d", Box([-1] * dim, [1] * dim), exact, Box([-0.3] * dim, [0.3] * dim),
                   2.0 * width * dim, f"{dim}D Poisson, u = prod(1-x_i^2) exp(-{width:g}|x|^2) on [-1,1]^{dim}",
                   {"dim": dim, "width": width})


def layer2d(eps: float = 0.02) -> Problem:
    """Boundary layer of width eps at x = 1: u = (s - (e^{(s-1)/eps} - e^{-1/eps})/(1 - e^{-1/eps})) (1 - y^2), s=(x+1)/2.

    This is the classic convection-diffusion layer profile; here it is the exact solution of a Poisson problem.
    """
    import math

    e1 = math.exp(-1.0 / eps)

    def exact(x):
        s = 0.5 * (x[:, 0] + 1)
        return (s - (((s - 1) / eps).exp() - e1) / (1 - e1)) * (1 - x[:, 1] ** 2)

    return Problem("layer2d", Box([-1, -1], [1, 1]), exact, Box([1 - 10 * eps, -1], [1, 1]),
                   1.0 / (4 * eps * eps), f"2D Poisson with a boundary layer of width {eps:g} (in s=(x+1)/2) at x=1",
                   {"eps": eps})


def sine2d() -> Problem:
    """u = sin(pi x) sin(pi y) on [-1, 1]^2: a smooth problem every sampler should solve (a sanity baseline)."""
    import math

    def exact(x):
        return (math.pi * x[:, 0]).sin() * (math.pi * x[:, 1]).sin()

    return Problem("sine2d", Box([-1, -1], [1, 1]), exact, Box([-1, -1], [1, 1]), 2 * math.pi**2,
                   "2D Poisson, u = sin(pi x) sin(pi y) on [-1,1]^2 (smooth)", {})


PROBLEMS = {"peak2d": peak2d, "sine2d": sine2d, "peak5d": lambda: peak_nd(5), "peak10d": lambda: peak_nd(10), "layer2d": layer2d}


def get_problem(name: str) -> Problem:
    if name not in PROBLEMS:
        raise DomainError(f"unknown problem {name!r}; valid problems: {', '.join(PROBLEMS)}")
    return PROBLEMS[name]()
