"""neural_operator plugin: FNO and spatiotemporal FNO surrogates (DFT-as-matmul, ONNX Runtime inference),
Spectral-Refiner Sobolev fine-tuning, data generation from the project's own solvers, and Krylov initial guesses.

This module stays light: torch and PETSc are imported only inside the commands that need them.
"""
from __future__ import annotations

from pathlib import Path

from accel import hookimpl
from accel.components import ComponentSpec


@hookimpl
def accel_components():
    return [
        ComponentSpec("fno", "surrogate", "accel.plugins.neural_operator.surrogate:Surrogate",
                      "Fourier neural operator surrogate (ONNX Runtime); Krylov initial guesses via -accel_guess"),
        ComponentSpec("darcy", "surrogate", "accel.plugins.neural_operator.surrogate:darcy_surrogate",
                      "FNO for -div(a grad u)=1 on the unit square (5-point FV grid) as an initial guess"),
        ComponentSpec("navier_stokes", "surrogate", "accel.plugins.neural_operator.surrogate:navier_stokes_surrogate",
                      "2D vorticity nu=1e-3 (Kolmogorov forcing): 10 snapshots -> the next 40 (one-step FNO rollout)"),
    ]


@hookimpl
def accel_model_dirs():
    return [Path(__file__).resolve().parent / "shipped"]


@hookimpl
def accel_cli(commands):
    from .cli import add_commands

    add_commands(commands)
