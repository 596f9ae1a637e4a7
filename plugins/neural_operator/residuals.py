"""PDE residuals of predicted fields (torch, differentiable) and the negative Sobolev norm used to fine-tune.

The H^-1 norm of a residual r on an n x n grid is computed by Parseval: ``|| (alpha + 4 pi^2 |k|^2)^(-1/2) r_hat ||``
with ``r_hat`` the unitary 2D FFT of r. It weights the smooth part of the residual, which is what the error of the
solution responds to, and damps the grid-scale noise a plain L2 residual would chase.
"""
from __future__ import annotations

import math

import torch


def sobolev_weight(h: int, w: int, alpha: float = 1.0, device=None) -> torch.Tensor:
    ky = torch.fft.fftfreq(h, d=1.0 / h, device=device)
    kx = torch.fft.fftfreq(w, d=1.0 / w, device=device)
    k2 = ky[:, None] ** 2 + kx[None, :] ** 2
    return (alpha + 4 * math.pi**2 * k2) ** -0.5


def h_minus1_norm(r: torch.Tensor, alpha: float = 1.0) -> torch.Tensor:
    """Per-sample H^-1 norm over the last two axes (all leading axes but the first are summed)."""
    r_hat = torch.fft.fft2(r, norm="ortho")
    weighted = r_hat * sobolev_weight(r.shape[-2], r.shape[-1], alpha, r.device)
    return weighted.abs().pow(2).flatten(1).sum(1).sqrt()


def darcy_residual(a: torch.Tensor, u: torch.Tensor, f: float = 1.0) -> torch.Tensor:
    """f + div(a grad u) with the data generator's cell-centred finite volumes (u = 0 outside), per cell.

    a, u: (B, 1, n, n) or (B, n, n). Zero for the exact discrete solution.
    """
    n = a.shape[-1]
    inv_h2 = float(n * n)
    flux = torch.zeros_like(u)
    for axis in (-2, -1):
        lo = [slice(None)] * u.dim()
        hi = [slice(None)] * u.dim()
        lo[axis], hi[axis] = slice(0, -1), slice(1, None)
        lo, hi = tuple(lo), tuple(hi)
        t = 2 * a[lo] * a[hi] / (a[lo] + a[hi]) * inv_h2
        q = t * (u[hi] - u[lo])  # flux from the hi cell into the lo cell
        flux[lo] = flux[lo] + q
        flux[hi] = flux[hi] - q
        first = [slice(None)] * u.dim()
        last = [slice(None)] * u.dim()
        first[axis], last[axis] = slice(0, 1), slice(n - 1, n)
        first, last = tuple(first), tuple(last)
        flux[first] = flux[first] - 2 * a[first] * inv_h2 * u[first]
        flux[last] = flux[last] - 2 * a[last] * inv_h2 * u[last]
    return f + flux


def vorticity_rhs(w: torch.Tensor, nu: float, forcing: torch.Tensor) -> torch.Tensor:
    """-u.grad w + nu Lap w + f for vorticity snapshots w (..., n, n) on the periodic unit square (spectral)."""
    n = w.shape[-1]
    k = torch.fft.fftfreq(n, d=1.0 / n, device=w.device)
    kr = torch.fft.rfftfreq(n, d=1.0 / n, device=w.device)
    ky, kx = k[:, None], kr[None, :]
    lap = 4 * math.pi**2 * (kx**2 + ky**2)
    w_h = torch.fft.rfft2(w)
    psi_h = w_h / torch.where(lap > 0, lap, torch.ones_like(lap)) * (lap > 0)
    two_pi_i = 2j * math.pi
    u = torch.fft.irfft2(two_pi_i * ky * psi_h, s=(n, n))
    v = torch.fft.irfft2(-two_pi_i * kx * psi_h, s=(n, n))
    wx = torch.fft.irfft2(two_pi_i * kx * w_h, s=(n, n))
    wy = torch.fft.irfft2(two_pi_i * ky * w_h, s=(n, n))
    visc = torch.fft.irfft2(-lap * w_h, s=(n, n))
    return -(u * wx + v * wy) + nu * visc + forcing


def vorticity_residual(w: torch.Tensor, dt: float, nu: float, forcing: torch.Tensor) -> torch.Tensor:
    """Residual of the vorticity equation integrated over pairs of snapshot intervals with Simpson's rule:

    R_n = w_{n+2} - w_n - dt/3 (F_n + 4 F_{n+1} + F_{n+2}),  F = rhs(w),  for snapshots w (B, T, n, n) dt apart.
    Integrating instead of differentiating in time keeps the truncation error at O(dt^5) with coarse snapshots,
    but snapshots one time unit apart are not in that asymptotic range: on solver data this residual is about
    3e-3 of the snapshot increments in the H^-1 norm (higher-order rules do no better), a floor that limits
    fine-tuning. :func:`vorticity_flow_residual` does not have it.
    """
    F = vorticity_rhs(w, nu, forcing)
    return w[:, 2:] - w[:, :-2] - dt / 3 * (F[:, :-2] + 4 * F[:, 1:-1] + F[:, 2:])


def vorticity_flow_residual(w: torch.Tensor, dt: float, nu: float, forcing: torch.Tensor,
                            substeps: int = 20) -> torch.Tensor:
    """Flow-map residual of snapshots w (B, T, n, n) dt apart: R_n = w_{n+1} - Phi_dt(w_n), T - 1 of them.

    Phi_dt integrates the vorticity equation over dt in ``substeps`` steps of the data solver's own scheme
    (pseudo-spectral, 2/3 dealiasing, Crank-Nicolson + Heun), in float64 and differentiably. It vanishes for the
    exact trajectory up to the time-step error: on solver data (64x64, dt = 1) about 1e-4 of the snapshot
    increments in the H^-1 norm with 20 substeps, against 3e-3 for Simpson's rule on the same snapshots.
    """
    from .data.navier_stokes import VorticityStepper

    stepper = VorticityStepper(w.shape[-1], nu, forcing)
    return w[:, 1:].to(torch.float64) - stepper.flow(w[:, :-1], dt, substeps)
