"""The gnn preconditioner components: a factored sparse approximate inverse M = G^T G applied by PETSc.

``gnn``: the graph network (ONNX Runtime, once per set-up) writes G on the pattern of tril(A).
``fsai``: the same structure with the classical closed-form FSAI factor (the ablation, and the fallback).

Both follow :class:`accel.components.MatrixPreconditioner`: every rank reads its rows of A plus the rings of
neighbours the network's receptive field covers (so G does not depend on the partition), computes its rows of G,
and assembles G as a distributed AIJ. ``apply`` is two sparse products, y = G^T (G x); plain CG works because M is
symmetric positive definite (the network's diagonal goes through exp, so G is non-singular for any weights).
"""
from __future__ import annotations

import logging
import time
import warnings
from pathlib import Path

import numpy as np

from accel import modelmeta
from accel.components import PreconditionerConfig, PreconditionerInfo, PreconditionerStats
from accel.errors import ModelError, SolverConfigError

from .distributed import agree, check_square, factor_matrix, overlapped_block
from .graph import OperatorError, check_symmetric, diagonal_and_checks, padded_graph

log = logging.getLogger(__name__)

OPTIONS = {"gnn_fallback": ("fsai", "jacobi"), "gnn_apply": ("transpose", "explicit")}


def shipped_model() -> Path:
    from accel.registry import get_registry

    files = get_registry().model_files("gnn")
    if not files:
        raise ModelError("no shipped gnn model found; train one with 'accel train gnn --matrices ...' and pass "
                         "-accel_model PATH")
    return files[0]


def _read_options(config: PreconditionerConfig) -> dict[str, str]:
    """Component options from ``config.extra`` (Python) over the options database (``-{prefix}gnn_*``)."""
    unknown = sorted(set(config.extra) - set(OPTIONS))
    if unknown:
        raise SolverConfigError(f"unknown gnn option(s) {', '.join(unknown)}; valid: {', '.join(OPTIONS)}")
    from petsc4py import PETSc

    opts = PETSc.Options(config.options_prefix)
    out = {}
    for name, valid in OPTIONS.items():
        value = str(config.extra.get(name, opts.getString(name, valid[0])))
        if value not in valid:
            raise SolverConfigError(f"-{config.options_prefix}{name} {value!r} is not one of {', '.join(valid)}")
        out[name] = value
    return out


class _FactorPreconditioner:
    """Shared life cycle: checks, overlapped rows, per-slot factor values (subclass), G, apply."""

    rings = 1

    def __init__(self, config: PreconditionerConfig = PreconditionerConfig()):
        self.config = config
        self.options = _read_options(config)
        self.G = None
        self.Gt = None
        self._work = None
        self._stats = PreconditionerStats()
        self.breakdown: dict[str, float] = {}  # set-up seconds: rows, graph, factor (network included), assemble
        self.fallback_used = False

    # -- the contract -----------------------------------------------------------------------------------------------
    def describe(self, dim: int | None) -> PreconditionerInfo:
        return PreconditionerInfo(layout="matrix", linear=True, model=self._model_name())

    def initialize(self, A) -> None:
        self._build(A)

    def update(self, A) -> None:
        self._build(A)

    def apply(self, x, y) -> None:
        self.G.mult(x, self._work)
        if self.Gt is not None:
            self.Gt.mult(self._work, y)
        else:
            self.G.multTranspose(self._work, y)
        self._stats.applies += 1

    def apply_transpose(self, x, y) -> None:
        self.apply(x, y)  # M is symmetric

    def stats(self) -> PreconditionerStats:
        return self._stats

    def destroy(self) -> None:
        for obj in (self.G, self.Gt, self._work):
            if obj is not None:
                obj.destroy()
        self.G = self.Gt = self._work = None

    # -- set-up -----------------------------------------------------------------------------------------------------
    def _model_name(self) -> str:
        return ""

    def _slot_values(self, graph, owned: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _build(self, A) -> None:
        comm = A.getComm()
        t0 = time.perf_counter()
        check_square(A)
        self._check_kind(A)
        error = None
        try:
            block, owned = overlapped_block(A, self.rings)
            t1 = time.perf_counter()
            diag = diagonal_and_checks(block)
            check_symmetric(block, owned)
            graph = padded_graph(block, diag)
        except OperatorError as exc:
            error = exc
        if agree(comm, error is not None):
            raise error or OperatorError("the matrix was refused on another rank (see its message)")
        t2 = time.perf_counter()
        values = self._slot_values(graph, owned)
        t3 = time.perf_counter()
        bad = not np.all(np.isfinite(values[owned]))
        if agree(comm, bad):
            values = self._fallback(graph, owned)
        indptr, cols, vals = graph.lower_csr(values, owned)
        self.destroy()
        self.G = factor_matrix(A, indptr, cols, vals)
        if self.options["gnn_apply"] == "explicit":
            from petsc4py import PETSc

            self.Gt = self.G.transpose(PETSc.Mat())  # a new matrix (transpose() alone works in place)
        self._work = self.G.createVecLeft()
        t4 = time.perf_counter()
        self.breakdown = {"rows": t1 - t0, "graph": t2 - t1, "factor": t3 - t2, "assemble": t4 - t3}
        self._stats = PreconditionerStats(setup_time=t4 - t0)  # network_time stays 0: no network in the applies
        log.info("%s set-up: %s", type(self).__name__, ", ".join(f"{k} {v:.3f} s" for k, v in self.breakdown.items()))

    def _check_kind(self, A) -> None:
        pass

    def _fallback(self, graph, owned) -> np.ndarray:
        kind = self.options["gnn_fallback"]
        msg = (f"{self._model_name() or type(self).__name__}: non-finite factor values at set-up; falling back to "
               f"the classical {kind.upper()} factor on the same pattern")
        log.warning(msg)
        warnings.warn(msg, RuntimeWarning, stacklevel=3)
        self.fallback_used = True
        if kind == "fsai":
            return graph.edge[..., 4].astype(np.float64)
        return graph.edge[..., 3].astype(np.float64)  # Jacobi: G = D^-1/2, i.e. the scaled factor is the identity


class FSAIPreconditioner(_FactorPreconditioner):
    """Classical FSAI on tril(A) (closed form per row), applied as y = G^T (G x). Options under
    ``-{prefix}accel_``: ``gnn_apply transpose|explicit`` (MatMultTranspose with G, or an explicit G^T)."""

    rings = 1

    def _slot_values(self, graph, owned):
        return graph.edge[..., 4].astype(np.float64)  # computed with the graph (FSAI is the network's input)


class GNNPreconditioner(_FactorPreconditioner):
    """Learned FSAI: a graph network on the diagonally scaled matrix writes G on tril(A); M = G^T G.

    Options under ``-{prefix}accel_`` (or ``component_options`` from Python, same names without the prefix):

    ``model PATH``            ONNX file from ``accel train gnn`` (default: the shipped model)
    ``problem KIND``          refuse a model trained for another problem kind (default: any scalar SPD model)
    ``gnn_apply transpose``   apply G^T with MatMultTranspose (default) or ``explicit``: store G^T (faster products,
                              twice the memory)
    ``gnn_fallback fsai``     factor used when the network's output has NaN/Inf (``fsai`` or ``jacobi``), with a
                              warning
    """

    def __init__(self, config: PreconditionerConfig = PreconditionerConfig()):
        super().__init__(config)
        self.model = Path(config.model) if config.model else shipped_model()
        self.meta = modelmeta.read(self.model)
        self.meta.check_plugin("gnn", str(self.model))
        if config.problem is not None and self.meta.problem != config.problem:
            raise ModelError(f"{self.model} was trained for {self.meta.problem!r} problems, not {config.problem!r}; "
                             f"train a model on your operators with 'accel train gnn --matrices ...'")
        self.rings = int(self.meta.settings["rings"])
        self.session = None

    def _model_name(self) -> str:
        return str(self.model)

    def _check_kind(self, A) -> None:
        bs = A.getBlockSize()
        if bs > 1 and not self.meta.problem.startswith("spd-vector"):
            raise ModelError(f"{self.model} was trained for {self.meta.problem!r} (scalar) problems but the matrix "
                             f"has block size {bs} (a vector problem such as elasticity); train a model on such "
                             "operators with 'accel train gnn --matrices ...' or use GAMG for vector problems")

    def _slot_values(self, graph, owned):
        from accel.runtime import ModelSession, RuntimeSettings

        from .export import INPUTS

        if self.session is None:
            self.session = ModelSession(self.model, self.config.runtime or RuntimeSettings(), inputs=INPUTS)
        t0 = time.perf_counter()
        out = self.session.run_feeds(graph.inputs())
        self._network_seconds = time.perf_counter() - t0
        return out

    def _build(self, A) -> None:
        super()._build(A)
        self.breakdown["network"] = self._network_seconds
