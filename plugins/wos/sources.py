"""Poisson sources the compiled kernel evaluates itself (any other callable is evaluated from Python).

Each is an ordinary callable ``f(P) -> (n,)`` on points ``P`` of shape (n, dim), and also gives the kernel its
parameters (``kernel_source``): kind, parameter array, row offset, per-instance stride.
"""
from __future__ import annotations

import numpy as np

from . import kernel


class ConstantSource:
    """``f = value`` everywhere."""

    def __init__(self, value: float):
        self.value = float(value)

    def __call__(self, P):
        return np.full(len(P), self.value)

    def kernel_source(self):
        return kernel.SRC_CONST, np.array([self.value]), 0, 0


def gaussian_rows(amplitudes, centres, sigma: float) -> np.ndarray:
    """Kernel row of a Gaussian sum: ``[1 / (2 sigma^2), count, (A, centre) per Gaussian]``."""
    A = np.asarray(amplitudes, dtype=np.float64).reshape(-1)
    C = np.asarray(centres, dtype=np.float64).reshape(A.size, -1)
    return np.concatenate([[1 / (2 * sigma ** 2), A.size], np.column_stack([A, C]).ravel()])


class GaussianSource:
    """``f(x) = sum_i A_i exp(-|x - c_i|^2 / (2 sigma^2))``."""

    def __init__(self, amplitudes, centres, sigma: float):
        if not sigma > 0:
            raise ValueError(f"Gaussian source width must be positive, got {sigma}")
        self.A = np.asarray(amplitudes, dtype=np.float64).reshape(-1)
        self.C = np.asarray(centres, dtype=np.float64).reshape(self.A.size, -1)
        self.sigma = float(sigma)

    def __call__(self, P):
        P = np.asarray(P, dtype=np.float64)
        out = np.zeros(len(P))
        for a, c in zip(self.A, self.C):
            out += a * np.exp(-np.sum((P - c) ** 2, axis=1) / (2 * self.sigma ** 2))
        return out

    def kernel_source(self):
        return kernel.SRC_GAUSS, gaussian_rows(self.A, self.C, self.sigma), 0, 0


def kernel_source(f):
    """(kind, params, row, stride) for the kernel, or None when ``f`` must be called from Python."""
    if f is None:
        return kernel.SRC_NONE, np.zeros(1), 0, 0
    spec = getattr(f, "kernel_source", None)
    return spec() if callable(spec) else None
