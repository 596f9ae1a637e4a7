"""2D incompressible Navier-Stokes in vorticity form on the periodic unit square, pseudo-spectral, batched (torch).

    dw/dt + u . grad w = nu Lap w + f,   u = (d psi/dy, -d psi/dx),   -Lap psi = w

Time stepping: Crank-Nicolson for the viscous term, Heun (explicit RK2) for advection and forcing; the nonlinear
term is dealiased with the 2/3 rule. Forcing "kolmogorov" is the FNO benchmark's 0.1 (sin 2 pi (x+y) + cos 2 pi (x+y));
"none" gives decaying turbulence. Initial vorticity: the benchmark's Gaussian random field
N(0, 7^(3/2) (-Lap + 49 I)^(-2.5)). Snapshots are recorded every ``record_dt`` time units (t = record_dt, ...,
T); the solver may run on a finer grid (``solver_grid``, a multiple of ``grid``) and is subsampled onto ``grid``.

Layout: ``w[trajectory, time, iy, ix]``, cell (or grid point) ``(ix, iy)`` at ``(x, y) = (ix, iy) / grid``: axis 0
of each field is **y**, axis 1 is x (C order, the row index is y, like an image and like numpy's ``meshgrid(...,
indexing="xy")``). The original FNO benchmark files (``NavierStokes_V1e-3_N5000_T50.mat``, ``u`` of shape
``(N, 64, 64, T)``) index ``u[n, ix, iy, t]``: each field is the transpose of ours and time is last. Feed them as
``np.moveaxis(u, -1, 1).swapaxes(-1, -2)``; fed as is (transposed fields) the shipped ``ns_arfno`` gives a mean
relative L2 error of 0.73 on the 40-step rollout instead of 0.0095 (4 trajectories of our data at 64x64; a reflection
x <-> y changes the sign of the vorticity, so a transposed field is not a solution of the same problem).
"""
from __future__ import annotations

import math

import numpy as np
import torch

FORCINGS = ("kolmogorov", "none")


def wavenumbers(n: int):
    k = torch.fft.fftfreq(n, d=1.0 / n, dtype=torch.float64)
    kr = torch.fft.rfftfreq(n, d=1.0 / n, dtype=torch.float64)
    ky, kx = torch.meshgrid(k, kr, indexing="ij")  # axis 0 = y, axis 1 = x
    return kx, ky


def initial_vorticity(gen: torch.Generator, batch: int, n: int, alpha: float = 2.5, tau: float = 7.0) -> torch.Tensor:
    """The FNO benchmark's initial condition (GaussianRF(2, n, alpha=2.5, tau=7)), zero mean."""
    k = torch.fft.fftfreq(n, d=1.0 / n, dtype=torch.float64)
    ky, kx = torch.meshgrid(k, k, indexing="ij")
    sigma = tau ** (0.5 * (2 * alpha - 2))
    sqrt_eig = n * n * math.sqrt(2.0) * sigma * (4 * math.pi**2 * (kx**2 + ky**2) + tau**2) ** (-alpha / 2)
    sqrt_eig[0, 0] = 0.0
    xi = torch.randn(batch, n, n, 2, generator=gen, dtype=torch.float64)
    coeff = sqrt_eig * torch.complex(xi[..., 0], xi[..., 1])
    return torch.fft.ifft2(coeff).real


def forcing_field(n: int, forcing: str) -> torch.Tensor:
    if forcing not in FORCINGS:
        raise ValueError(f"unknown forcing {forcing!r}; valid: {', '.join(FORCINGS)}")
    if forcing == "none":
        return torch.zeros(n, n, dtype=torch.float64)
    t = (torch.arange(n, dtype=torch.float64)) / n
    y, x = torch.meshgrid(t, t, indexing="ij")
    return 0.1 * (torch.sin(2 * math.pi * (x + y)) + torch.cos(2 * math.pi * (x + y)))


class VorticityStepper:
    """The solver's time stepping on an n x n periodic grid, on spectral states ``w_h = rfft2(w)`` (differentiable).

    Crank-Nicolson for the viscous term, Heun for advection and forcing, the nonlinear term dealiased with the 2/3
    rule. ``simulate`` generates the data with it, and the flow-map residual of fine-tuning
    (``residuals.vorticity_flow_residual``) measures predictions against it, so the two are consistent to the
    time-step error.
    """

    def __init__(self, n: int, nu: float, forcing: torch.Tensor, dtype=torch.float64):
        kx, ky = wavenumbers(n)
        self.n, self.nu = n, nu
        self.kx, self.ky = kx.to(dtype), ky.to(dtype)
        self.lap = 4 * math.pi**2 * (self.kx**2 + self.ky**2)
        self.inv_lap = torch.where(self.lap > 0, 1.0 / self.lap.clamp(min=1e-30), torch.zeros_like(self.lap))
        kmax = n // 3  # 2/3 rule: drop |k| > n/3 in either direction
        self.dealias = ((kx.abs() <= kmax) & (ky.abs() <= kmax)).to(dtype)
        self.f_h = torch.fft.rfft2(forcing.to(dtype))

    def rhs(self, w_h: torch.Tensor) -> torch.Tensor:
        """-u.grad w + f in spectral space (the viscous term is handled implicitly by ``advance``)."""
        n, two_pi_i = self.n, 2j * math.pi
        psi_h = w_h * self.inv_lap
        u = torch.fft.irfft2(two_pi_i * self.ky * psi_h, s=(n, n))
        v = torch.fft.irfft2(-two_pi_i * self.kx * psi_h, s=(n, n))
        wx = torch.fft.irfft2(two_pi_i * self.kx * w_h, s=(n, n))
        wy = torch.fft.irfft2(two_pi_i * self.ky * w_h, s=(n, n))
        return -self.dealias * torch.fft.rfft2(u * wx + v * wy) + self.f_h

    def advance(self, w_h: torch.Tensor, dt: float, steps: int) -> torch.Tensor:
        """``steps`` time steps of size ``dt`` from the spectral state ``w_h``."""
        visc = 0.5 * dt * self.nu * self.lap
        lhs = 1.0 / (1.0 + visc)
        for _ in range(steps):
            n0 = self.rhs(w_h)
            w1 = (w_h * (1 - visc) + dt * n0) * lhs
            w_h = (w_h * (1 - visc) + 0.5 * dt * (n0 + self.rhs(w1))) * lhs
        return w_h

    def flow(self, w: torch.Tensor, duration: float, steps: int) -> torch.Tensor:
        """The vorticity fields ``w`` (..., n, n) advanced by ``duration`` in ``steps`` equal steps."""
        w_h = self.advance(torch.fft.rfft2(w.to(self.lap.dtype)), duration / steps, steps)
        return torch.fft.irfft2(w_h, s=(self.n, self.n))


def simulate(w0: torch.Tensor, nu: float, T: float, record_dt: float = 1.0, dt: float = 1e-3,
             forcing: str = "kolmogorov", progress=None) -> torch.Tensor:
    """Integrate a batch of initial vorticities (B, n, n); returns (B, round(T/record_dt), n, n) snapshots."""
    n = w0.shape[-1]
    stepper = VorticityStepper(n, nu, forcing_field(n, forcing))
    steps_per_record = max(1, round(record_dt / dt))
    dt = record_dt / steps_per_record
    records = round(T / record_dt)
    w_h = torch.fft.rfft2(w0.to(torch.float64))
    out = torch.empty(w0.shape[0], records, n, n, dtype=torch.float32)
    for r in range(records):
        w_h = stepper.advance(w_h, dt, steps_per_record)
        out[:, r] = torch.fft.irfft2(w_h, s=(n, n)).to(torch.float32)
        if progress is not None:
            progress(r + 1, records)
    if not torch.isfinite(out).all():
        raise FloatingPointError(f"the Navier-Stokes solve blew up (dt={dt} too large for n={n}, nu={nu}); "
                                 "use a smaller --dt")
    return out


def generate(n_samples: int, grid: int = 64, solver_grid: int | None = None, nu: float = 1e-3, T: float = 50.0,
             record_dt: float = 1.0, dt: float = 1e-3, forcing: str = "kolmogorov", seed: int = 0,
             batch: int = 50, progress=None) -> dict[str, np.ndarray]:
    """``n_samples`` trajectories, vorticity ``w`` of shape (n_samples, T/record_dt, grid, grid) at t = record_dt..T."""
    solver_grid = solver_grid or grid
    if solver_grid % grid:
        raise ValueError(f"solver grid {solver_grid} must be a multiple of the output grid {grid}")
    stride = solver_grid // grid
    gen = torch.Generator().manual_seed(seed)
    chunks = []
    for start in range(0, n_samples, batch):
        b = min(batch, n_samples - start)
        w0 = initial_vorticity(gen, b, solver_grid)
        w = simulate(w0, nu, T, record_dt, dt, forcing,
                     progress=(lambda r, total, b=b: progress(b / total)) if progress else None)
        chunks.append(w[..., ::stride, ::stride].numpy())
    return {"w": np.concatenate(chunks)}
