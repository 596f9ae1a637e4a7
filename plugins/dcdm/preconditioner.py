"""The DCDM preconditioner component: runs a shipped or user-given DCDM network through ONNX Runtime.

Solve path only: numpy + onnxruntime, no torch. Works on grids on rank 0 (the PETSc PC gathers them). Grids whose
extents are not multiples of the network's ``grid_multiple`` are zero-padded (homogeneous Dirichlet continuation).
"""
from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

from accel import modelmeta
from accel.errors import ModelError
from accel.registry import get_registry
from accel.runtime import ModelSession, RuntimeSettings

log = logging.getLogger(__name__)


def shipped_models() -> list[tuple[Path, modelmeta.ModelMeta]]:
    out = []
    for f in get_registry().model_files("dcdm"):
        try:
            out.append((f, modelmeta.read(f)))
        except ModelError as exc:  # one broken file must not hide the others
            log.warning("skipping shipped model %s: %s", f, exc)
    return out


def default_model(dim: int, problem: str | None = None) -> Path:
    """The shipped model for a ``dim``-D problem (``problem`` picks among several; default the Poisson one)."""
    models = shipped_models()
    fits = [(f, m) for f, m in models if m.dim == dim]
    if problem is not None:
        fits = [(f, m) for f, m in fits if m.problem == problem]
    else:
        fits.sort(key=lambda fm: not fm[1].problem.startswith("poisson"))
    if not fits:
        have = ", ".join(f"{f.name} ({m.dim}D {m.problem})" for f, m in models) or "none"
        want = f"{dim}D" + (f" {problem}" if problem else "")
        raise ModelError(f"no shipped DCDM model for a {want} problem (shipped: {have}); train one with "
                         f"'accel train dcdm' and pass -accel_model PATH")
    return fits[0][0]


class DCDMPreconditioner:
    """Maps a residual grid r to |r| NN(r/|r|) with one ONNX Runtime call into persistent bound buffers."""

    def __init__(self, model: str | Path | None = None, runtime: RuntimeSettings = RuntimeSettings(),
                 problem: str | None = None):
        self.model = Path(model) if model else None
        self.runtime = runtime
        self.problem = problem
        self.session: ModelSession | None = None
        self.ort_time = 0.0
        self.copy_time = 0.0
        self.applies = 0

    @property
    def meta(self) -> modelmeta.ModelMeta:
        return self.session.meta

    @staticmethod
    def _cycle(meta) -> dict:
        cycle = dict(meta.settings.get("cycle", {}))
        # a network working below the grid resolution cannot represent the highest frequencies: sweeps must
        cycle["min_sweeps"] = 1 if meta.settings.get("fine_pool", 1) > 1 else 0
        return cycle

    def describe(self, dim: int) -> dict:
        """What the PC needs before set-up: the training grid and grid multiple (to build levels down to the grid
        the network knows) and the cycle the network was trained in. Reads the metadata only."""
        self._resolve(dim)
        meta = modelmeta.read(self.model)
        meta.check_plugin("dcdm", str(self.model))
        if meta.dim != dim:
            meta.check_grid((0,) * dim, str(self.model))  # raises the dimension error
        return {"train_grid": tuple(meta.train_grid), "grid_multiple": int(meta.grid_multiple),
                "cycle": self._cycle(meta)}

    def _resolve(self, dim: int) -> None:
        if self.model is None:
            self.model = default_model(dim, self.problem)
            log.info("no model given: using shipped %s for %dD problems", self.model.name, dim)

    def setup(self, shape: tuple[int, ...], **info) -> None:
        if self.session is not None and self.shape == tuple(shape):
            self._set_diagonal(info.get("diagonal"))  # same network and grid, new operator: no new session
            return
        self._resolve(len(shape))
        self.session = ModelSession(self.model, self.runtime)
        m = self.session.meta
        m.check_plugin("dcdm", str(self.model))
        if len(shape) != m.dim:
            m.check_grid(shape, str(self.model))  # raises the dimension error
        if self.problem is not None and m.problem != self.problem:
            raise ModelError(f"{self.model} was trained on {m.problem!r}, not {self.problem!r}")
        mult = m.grid_multiple
        padded = tuple(max(m.min_grid, -(-n // mult) * mult) for n in shape)
        if padded != tuple(shape):
            log.info("grid %s padded to %s (the network takes multiples of %d)", shape, padded, mult)
        self.shape, self.padded = tuple(shape), padded
        self._crop = tuple(slice(0, n) for n in shape)
        self._inputs = m.settings.get("inputs", ["residual"])
        self._in = np.zeros((1, len(self._inputs), *padded), np.float32)
        self._set_diagonal(info.get("diagonal"))
        self._out = np.zeros((1, 1, *padded), np.float32)
        self.session.bind(self._in, self._out)
        self.session.warm_up(self._in.shape)

    def _set_diagonal(self, diagonal) -> None:
        if "diagonal" not in self._inputs:
            return
        if diagonal is None:
            raise ModelError(f"{self.model} takes the operator's diagonal as an input; the caller must pass it")
        from .features import normalized_diagonal

        self._in[(0, self._inputs.index("diagonal"), *self._crop)] = normalized_diagonal(diagonal)

    def apply(self, r: np.ndarray, out: np.ndarray) -> None:
        t0 = time.perf_counter()
        scale = float(np.sqrt(np.vdot(r, r)))
        inner = self._in[0, 0][self._crop]
        if scale == 0.0 or not np.isfinite(scale):
            out[...] = 0.0 if scale == 0.0 else np.nan
            return
        np.multiply(r, 1.0 / scale, out=inner, casting="same_kind")
        t1 = time.perf_counter()
        self.session.run_bound()
        t2 = time.perf_counter()
        np.multiply(self._out[0, 0][self._crop], scale, out=out, casting="same_kind")
        t3 = time.perf_counter()
        self.ort_time += t2 - t1
        self.copy_time += (t1 - t0) + (t3 - t2)
        self.applies += 1
