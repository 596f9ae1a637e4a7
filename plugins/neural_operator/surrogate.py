"""A trained neural operator run by ONNX Runtime: the inference side of the plugin (no torch import).

``Surrogate(model, problem=...)`` loads an exported file (a path, or the name of a shipped model) and checks its
metadata against what the caller says it is solving; ``predict`` checks the input (dimension, grid size, NaN)
before running it.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from accel.errors import GridError, ModelError
from accel.runtime import ModelSession, RuntimeSettings

log = logging.getLogger(__name__)

PLUGIN = "neural_operator"
SHIPPED = Path(__file__).resolve().parent / "shipped"


def resolve_model(model: str | Path) -> Path:
    """A path to an .onnx file, or the name of a shipped model (``darcy_fno`` -> shipped/darcy_fno.onnx)."""
    path = Path(model)
    if path.suffix == ".onnx" or path.exists():
        return path
    from accel.registry import get_registry

    files = {f.stem: f for f in get_registry().model_files(PLUGIN)}
    files.update({f.stem: f for f in SHIPPED.glob("*.onnx")})
    if str(model) in files:
        return files[str(model)]
    raise ModelError(f"no neural-operator model named {model!r}; pass a path to an .onnx file "
                     f"or one of the shipped models: {', '.join(sorted(files)) or '(none)'}")


class Surrogate:
    """Maps input fields on a grid to predicted fields with an exported FNO / spatiotemporal FNO.

    problem: the family the caller is solving (e.g. "darcy", "navier_stokes"); a model trained on another family
    is refused. Input layouts: (H, W) or (B, C, H, W) for an FNO; (T_in, H, W) or (B, T_in, H, W) for a
    spatiotemporal FNO or a rolled-out one-step FNO (both return the next T_out snapshots).
    """

    def __init__(self, model: str | Path = "darcy_fno", problem: str | None = None, providers: str = "CPU",
                 threads: int = 1):
        self.path = resolve_model(model)
        self.session = ModelSession(self.path, RuntimeSettings.parse(providers=providers, threads=threads))
        self.meta = self.session.meta
        self.meta.check_plugin(PLUGIN, str(self.path))
        if problem is not None and self.meta.problem != problem:
            raise ModelError(f"{self.path} was trained on the {self.meta.problem!r} family, not {problem!r}; "
                             f"train one for {problem!r} with 'accel train fno --data <{problem} data>' or pass "
                             f"problem={self.meta.problem!r}")
        cfg = self.meta.settings.get("config", {})
        self.channels = int(cfg.get("in_channels", cfg.get("in_frames", 1)))

    @property
    def problem(self) -> str:
        return self.meta.problem

    def _as_batch(self, x: np.ndarray) -> tuple[np.ndarray, int]:
        """The input as (batch, channels, *grid) and how many leading axes were added (removed again on output)."""
        x = np.asarray(x)
        added = 0
        if x.ndim == self.meta.dim and self.channels == 1 and self.meta.layout == "NCHW":
            x, added = x[None, None], 2
        elif x.ndim == self.meta.dim + 1:
            x, added = x[None], 1
        expected = 2 + self.meta.dim
        if x.ndim != expected:
            raise ModelError(f"{self.path} takes {self.meta.dim}D fields ({self.meta.layout}, {self.channels} "
                             f"input channel(s)); got an array of shape {x.shape}. Pass (batch, {self.channels}, H, W) "
                             f"or a single sample, or use a model trained for this dimension")
        if x.shape[1] != self.channels:
            raise ModelError(f"{self.path} takes {self.channels} input channel(s)/frames; got {x.shape[1]} "
                             f"(input shape {x.shape})")
        return x, added

    def predict(self, inputs: np.ndarray) -> np.ndarray:
        x, added = self._as_batch(inputs)
        grid = tuple(x.shape[2:])
        if min(grid) < self.meta.min_grid:
            raise GridError(f"grid {'x'.join(map(str, grid))} is below the {self.meta.min_grid} points per axis the "
                            f"model's kept Fourier modes need; use a grid of at least "
                            f"{self.meta.min_grid}x{self.meta.min_grid} or a model with fewer modes")
        self.meta.check_grid(grid, str(self.path))
        if not np.all(np.isfinite(x)):
            bad = int(np.size(x) - np.count_nonzero(np.isfinite(x)))
            raise ValueError(f"input to {self.path.name} has {bad} NaN/inf value(s); fix the input field "
                             "(e.g. a coefficient sampled outside its range) before predicting")
        y = self.session.run(x.astype(np.float32, copy=False))
        if added == 2 and y.shape[1] == 1:
            return y[0, 0]
        return y[0] if added else y


def darcy_surrogate(model: str | Path = "darcy_fno", **kwargs) -> Surrogate:
    """The shipped Darcy FNO (lognormal coefficient, -div(a grad u) = 1, trained at 64x64) as a Surrogate."""
    return Surrogate(model, problem="darcy", **kwargs)


def navier_stokes_surrogate(model: str | Path = "ns_arfno", **kwargs) -> Surrogate:
    """The shipped Navier-Stokes surrogate (vorticity, nu = 1e-3, Kolmogorov forcing, periodic unit square):
    10 snapshots one time unit apart (B, 10, H, W) -> the next 40, from a one-step FNO rolled out (any grid)."""
    return Surrogate(model, problem="navier_stokes", **kwargs)
