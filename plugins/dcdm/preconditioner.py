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
from accel.components import CycleSettings, GridProblem, PreconditionerConfig, PreconditionerInfo, PreconditionerStats
from accel.errors import ModelError, SolverConfigError
from accel.registry import get_registry
from accel.runtime import ModelSession, RuntimeSettings

from .features import input_channels, needs_couplings

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
    """Maps a residual grid r to |r| NN(r/|r|) with one ONNX Runtime call into persistent bound buffers.

    A :class:`accel.components.GridPreconditioner`: built by ``DCDMPreconditioner(config)``; ``initialize`` opens the
    session for a grid shape, ``update`` only refreshes the operator's diagonal (an input of the obstacle models).
    It reads no options of its own.
    """

    def __init__(self, config: PreconditionerConfig = PreconditionerConfig()):
        self.config = config
        self.model = Path(config.model) if config.model else None
        self.runtime = config.runtime if config.runtime is not None else RuntimeSettings()
        self.problem = config.problem
        if config.extra:
            raise SolverConfigError(f"the dcdm preconditioner takes no component options; got "
                                    f"{', '.join(sorted(config.extra))}")
        self.session: ModelSession | None = None
        self.shape: tuple[int, ...] | None = None
        # describe() runs at every level rebuild (moving obstacles: every step); reading an ONNX file costs ~0.03 s
        self._meta_by_path: dict[Path, modelmeta.ModelMeta] = {}
        self._stats = PreconditionerStats()

    @property
    def meta(self) -> modelmeta.ModelMeta:
        return self.session.meta

    @staticmethod
    def _cycle(meta) -> CycleSettings:
        cycle = dict(meta.settings.get("cycle", {}))
        return CycleSettings(pre=int(cycle.get("pre", 0)), post=int(cycle.get("post", 0)),
                             omega=float(cycle.get("omega", 0.67)),
                             interpolation=str(cycle.get("interpolation", "linear")),
                             # a network working below the grid resolution cannot represent the highest
                             # frequencies: sweeps must
                             min_sweeps=1 if meta.settings.get("fine_pool", 1) > 1 else 0)

    def describe(self, dim: int | None) -> PreconditionerInfo:
        """What the PC needs before set-up: the training grid and grid multiple (to build levels down to the grid
        the network knows) and the cycle the network was trained in. Reads the metadata only. ``dim`` None (no grid
        found): only the layout, for the PC to report the missing grid."""
        if dim is None:
            return PreconditionerInfo(layout="grid", linear=False, model=str(self.model or ""))
        self._resolve(dim)
        meta = self._read_meta()
        meta.check_plugin("dcdm", str(self.model))
        _check_dim(meta, dim, self.model)
        return PreconditionerInfo(layout="grid", linear=False, model=str(self.model), train_grid=tuple(meta.train_grid),
                                  grid_multiple=int(meta.grid_multiple), cycle=self._cycle(meta),
                                  wants_couplings=needs_couplings(meta.settings.get("inputs", ())))

    def _resolve(self, dim: int) -> None:
        if self.model is None:
            self.model = default_model(dim, self.problem)
            log.info("no model given: using shipped %s for %dD problems", self.model.name, dim)
        else:
            modelmeta.check_model_file(self.model, "pass the .onnx file or omit the model to use the shipped one "
                                                   "('accel plugins' lists them)")

    def _read_meta(self) -> modelmeta.ModelMeta:
        """The model's metadata, read once per resolved path (the open session's when there is one)."""
        key = self.model.resolve()
        if key not in self._meta_by_path:
            self._meta_by_path[key] = self.session.meta if self.session is not None else modelmeta.read(self.model)
        return self._meta_by_path[key]

    def initialize(self, problem: GridProblem) -> None:
        t0 = time.perf_counter()
        shape = tuple(problem.shape)
        self._resolve(len(shape))
        if self.session is None:
            self.session = ModelSession(self.model, self.runtime)
        m = self.session.meta
        m.check_plugin("dcdm", str(self.model))
        _check_dim(m, len(shape), self.model)
        if self.problem is not None and m.problem != self.problem:
            raise ModelError(f"{self.model} was trained on {m.problem!r}, not {self.problem!r}")
        mult = m.grid_multiple
        padded = tuple(max(m.min_grid, -(-n // mult) * mult) for n in shape)
        if padded != shape:
            log.info("grid %s padded to %s (the network takes multiples of %d)", shape, padded, mult)
        self.shape, self.padded = shape, padded
        self._crop = tuple(slice(0, n) for n in shape)
        self._inputs = m.settings.get("inputs", ["residual"])
        self._in = np.zeros((1, len(self._inputs), *padded), np.float32)
        self._set_inputs(problem)
        self._out = np.zeros((1, 1, *padded), np.float32)
        # the unpadded residual and correction inside the bound buffers, made once rather than at every apply
        self._residual_view, self._correction_view = self._in[0, 0][self._crop], self._out[0, 0][self._crop]
        self.session.bind(self._in, self._out)
        self.session.warm_up(self._in.shape)
        self._stats = PreconditionerStats(setup_time=time.perf_counter() - t0)

    def update(self, problem: GridProblem) -> None:
        """Same network and grid, new operator values: no new session, only the operator's input channels."""
        t0 = time.perf_counter()
        self._set_inputs(problem)
        self._stats = PreconditionerStats(setup_time=time.perf_counter() - t0)

    def _set_inputs(self, problem: GridProblem) -> None:
        """The channels after the residual (plugins/dcdm/features.py), from the network-level operator."""
        if len(self._inputs) == 1:
            return
        if problem.diagonal is None or (needs_couplings(self._inputs) and problem.couplings is None):
            raise ModelError(f"{self.model} takes the operator's {', '.join(self._inputs[1:])} as inputs; the caller "
                             "must pass the diagonal (and couplings) in its GridProblem")
        try:
            self._in[(0, slice(1, None), *self._crop)] = input_channels(self._inputs, problem.diagonal,
                                                                         problem.couplings)
        except ValueError as exc:
            raise ModelError(f"{self.model}: {exc}; it needs a newer accel") from exc

    def apply(self, r: np.ndarray, out: np.ndarray) -> None:
        t0 = time.perf_counter()
        scale = float(np.sqrt(np.vdot(r, r)))
        if scale == 0.0 or not np.isfinite(scale):
            out[...] = 0.0 if scale == 0.0 else np.nan
            return
        np.multiply(r, 1.0 / scale, out=self._residual_view, casting="same_kind")
        t1 = time.perf_counter()
        self.session.run_bound()
        t2 = time.perf_counter()
        np.multiply(self._correction_view, scale, out=out, casting="same_kind")
        t3 = time.perf_counter()
        s = self._stats
        s.network_time += t2 - t1
        s.copy_time += (t1 - t0) + (t3 - t2)
        s.applies += 1

    def stats(self) -> PreconditionerStats:
        return self._stats

    def destroy(self) -> None:
        self.session = None
        self.shape = None


def _check_dim(meta: modelmeta.ModelMeta, dim: int, model) -> None:
    if meta.dim != dim:
        raise ModelError(f"{model} was trained for {meta.dim}D problems ({meta.problem}) but the problem is {dim}D; "
                         f"pass a {dim}D model with -accel_model (model= in accelerate) or omit it to use the "
                         "shipped one")
