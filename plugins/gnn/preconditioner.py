"""The gnn preconditioner components: a factored sparse approximate inverse M = G^T G applied by PETSc.

``gnn``: the graph network (ONNX Runtime, once per set-up) writes G on the pattern of tril(A).
``fsai``: the same structure with the classical closed-form FSAI factor (the ablation, and the fallback).

Both follow :class:`accel.components.MatrixPreconditioner`: every rank reads its rows of A plus the rings of
neighbours the network's receptive field covers (so G does not depend on the partition), computes its rows of G,
and assembles G as a distributed AIJ. ``apply`` is two sparse products, y = G^T (G x); plain CG works because M is
symmetric positive definite (the network's diagonal goes through exp, so G is non-singular for any weights).
"""
from __future__ import annotations

import dataclasses
import functools
import logging
import time
import warnings
from pathlib import Path

import numpy as np

from accel import modelmeta
from accel.components import PreconditionerConfig, PreconditionerInfo, PreconditionerStats
from accel.errors import AccelError, ModelError, SolverConfigError

from .distributed import agree, check_square, factor_matrix, overlapped_block, set_factor_values
from .fsai import fsai_values
from .graph import (OperatorError, ParentFSAI, check_symmetric, diagonal_and_checks, factor_pattern,
                    padded_graph, pattern_rings, within_hops)

log = logging.getLogger(__name__)

OPTIONS = {"gnn_fallback": ("fsai", "jacobi"), "gnn_apply": ("explicit", "transpose"), "gnn_chunk": (100000,),
           "gnn_pattern": ("default", "a", "a2"), "gnn_network_min_rows": (1,)}


DEFAULT_PATTERN = "a"  # the pattern of the shipped model used when no model and no gnn_pattern is given
# the shipped model per factor pattern, by file name: another model of the same pattern shipped beside it (e.g. one
# trained for another role) must never become the default by sorting first
SHIPPED = {"a": "gnn-diffusion.onnx", "a2": "gnn-diffusion-a2.onnx"}


def shipped_model(pattern: str = "default") -> Path:
    """The shipped model whose factor pattern is ``pattern`` (``default``: :data:`DEFAULT_PATTERN`)."""
    from accel.registry import get_registry

    wanted = DEFAULT_PATTERN if pattern == "default" else pattern
    files = get_registry().model_files("gnn")
    chosen = next((f for f in files if f.name == SHIPPED.get(wanted)), None)
    if chosen is None or modelmeta.read(chosen).settings.get("pattern", "a") != wanted:
        raise ModelError(f"no shipped gnn model for the pattern {wanted!r} (shipped: {', '.join(map(str, files))}); "
                         "train one with 'accel train gnn --matrices ... --pattern' and pass -accel_model PATH")
    return chosen


def _read_options(config: PreconditionerConfig) -> dict[str, object]:
    """Component options from ``config.extra`` (Python) over the options database (``-{prefix}gnn_*``)."""
    unknown = sorted(set(config.extra) - set(OPTIONS))
    if unknown:
        raise SolverConfigError(f"unknown gnn option(s) {', '.join(unknown)}; valid: {', '.join(OPTIONS)}")
    from petsc4py import PETSc

    opts = PETSc.Options(config.options_prefix)
    out = {}
    for name, valid in OPTIONS.items():
        value = config.extra.get(name, opts.getString(name, str(valid[0])))
        if isinstance(valid[0], int):
            try:
                value = int(value)
            except ValueError:
                value = 0
            if value < 1:
                raise SolverConfigError(f"-{config.options_prefix}{name} must be a positive integer")
        elif value not in valid:
            raise SolverConfigError(f"-{config.options_prefix}{name} {value!r} is not one of {', '.join(valid)}")
        out[name] = value
    return out


class _FactorPreconditioner:
    """Shared life cycle: checks, overlapped rows, per-slot factor values (subclass), G, apply."""

    hops = 1  # hops of the factor's graph whose rows must be exact (the network's receptive field; FSAI: 1)
    pattern = "a"

    def __init__(self, config: PreconditionerConfig = PreconditionerConfig()):
        self.config = config
        self.options = _read_options(config)
        self.G = None
        self.Gt = None
        self._work = None
        self._pattern = None  # G's (indptr, columns) on this rank, to refill G in place when an update keeps them
        self._stats = PreconditionerStats()
        # set-up seconds: rows (with overlap), checks (diagonal, symmetry), graph (A^2 pattern, padding, FSAI),
        # factor (the network; classical FSAI has nothing left to do), assemble (G and G^T as PETSc matrices)
        self.breakdown: dict[str, float] = {}
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
        self._free_operators()

    def _free_operators(self) -> None:
        for obj in (self.G, self.Gt, self._work):
            if obj is not None:
                obj.destroy()
        self.G = self.Gt = self._work = None
        self._pattern = None

    # -- set-up -----------------------------------------------------------------------------------------------------
    def _model_name(self) -> str:
        return ""

    @property
    def rings(self) -> int:
        """Rings of A's graph around each rank's rows that make its factor rows exact."""
        return pattern_rings(self.pattern, self.hops)

    def _uses_network(self) -> bool:
        """Whether the factor comes from the network (else: classical FSAI, computed without padded lists)."""
        return False

    def _slot_values(self, graph) -> np.ndarray:
        raise NotImplementedError

    def _factor_pieces(self, block, diag, owned, times: dict) -> tuple[list, object]:
        """Per chunk of owned rows (in the order of ``owned``): (indptr, global columns, factor values); and a
        function giving, only when a fallback needs them, the values of the fallback factor ``fsai`` or ``jacobi``
        on the same entries (one array for all chunks)."""
        if not self._uses_network():  # FSAI reads one ring: no padded lists, no chunks (its memory is the factor's)
            ta = time.perf_counter()
            p = factor_pattern(block, diag, self.pattern)
            scaled = fsai_values(p, owned)
            piece = (*p.lower_rows(owned), p.lower_values(scaled, owned))
            times["graph"] += time.perf_counter() - ta
            return [piece], functools.partial(_fallback_values, p, owned, scaled)
        parent = None
        if self.pattern == "a":
            # classical FSAI once for the whole block: the chunks' rings would solve most rows more than once
            # (41% more rows at 945k 3D unknowns in 100,000-row chunks). Not for "a2": the whole block's A^2
            # pattern costs as much memory as a chunk's network
            ta = time.perf_counter()
            p = factor_pattern(block, diag, self.pattern)
            parent = ParentFSAI(p, fsai_values(p, within_hops(p, owned, self.hops - 1)), None)
            times["graph"] += time.perf_counter() - ta
        pieces, fallback = [], []
        for chunk_block, chunk_diag, which, local in chunks(block, diag, owned, self.rings, self.options["gnn_chunk"]):
            ta = time.perf_counter()
            graph = padded_graph(chunk_block, chunk_diag, self.pattern, near=which, hops=self.hops - 1,
                                 parent=None if parent is None else dataclasses.replace(parent, local=local))
            tb = time.perf_counter()
            values = self._slot_values(graph)
            tc = time.perf_counter()
            pieces.append(graph.lower_csr(values, which))
            if parent is None:  # the fallback's values from this chunk's pattern (there is no whole-block one)
                fallback.append((graph.pattern, which, graph.fsai))
            del graph, values
            times["graph"] += tb - ta + time.perf_counter() - tc
            times["factor"] += tc - tb
        if parent is not None:
            return pieces, functools.partial(_fallback_values, parent.pattern, owned, parent.values)
        return pieces, lambda kind: np.concatenate([_fallback_values(*args, kind) for args in fallback])

    def _build(self, A) -> None:
        comm = A.getComm()
        t0 = time.perf_counter()
        check_square(A)
        self._check_kind(A)
        self._check_same_options(comm)
        error = None
        try:
            block, owned = overlapped_block(A, self.rings)
            t1 = time.perf_counter()
            diag = diagonal_and_checks(block)
            check_symmetric(block, owned)
        except OperatorError as exc:
            error = exc
        if agree(comm, error is not None):
            raise error or OperatorError("the matrix was refused on another rank (see its message)")
        t2 = time.perf_counter()
        times = {"graph": 0.0, "factor": 0.0}
        pieces, fallback_values = [], None
        try:
            pieces, fallback_values = self._factor_pieces(block, diag, owned, times)
        except Exception as exc:  # e.g. the network's session failing on this rank: the others must not wait
            error = exc
        if agree(comm, error is not None):
            raise error or AccelError("the factor's set-up failed on another rank (see its message)")
        t3 = time.perf_counter()
        fallback = agree(comm, not all(np.all(np.isfinite(piece[2])) for piece in pieces))
        if fallback:
            self._warn_fallback()
        indptr, cols, vals = _concatenate(pieces)
        if fallback:
            vals = fallback_values(self.options["gnn_fallback"])
        self._assemble(A, indptr, cols, vals)
        t4 = time.perf_counter()
        self.breakdown = {"rows": t1 - t0, "checks": t2 - t1, "graph": times["graph"], "factor": times["factor"],
                          "assemble": t4 - t3}
        self._stats = PreconditionerStats(setup_time=t4 - t0)  # network_time stays 0: no network in the applies
        log.info("%s set-up: %s", type(self).__name__, ", ".join(f"{k} {v:.3f} s" for k, v in self.breakdown.items()))

    def _assemble(self, A, indptr, cols, vals) -> None:
        """G (and G^T for ``gnn_apply explicit``) as PETSc matrices; on an update with the same pattern (same rows,
        same columns) the existing matrices take the new values in place, so the objects built on them (a
        MATCOMPOSITE, a PCMAT) stay valid."""
        from petsc4py import PETSc

        same = (self.G is not None and self._pattern is not None and self.G.getSizes() == A.getSizes()
                and np.array_equal(self._pattern[0], indptr) and np.array_equal(self._pattern[1], cols))
        if agree(A.getComm(), not same):  # every rank rebuilds, or none does (the calls are collective)
            self._free_operators()
            self.G = factor_matrix(A, indptr, cols, vals)
            self._pattern = (indptr, cols)
            if self.options["gnn_apply"] == "explicit":
                self.Gt = self.G.transpose(PETSc.Mat())  # a new matrix (transpose() alone works in place)
            self._work = self.G.createVecLeft()
            return
        set_factor_values(self.G, indptr, cols, vals)
        if self.Gt is not None:
            self.G.transpose(self.Gt)  # MAT_REUSE_MATRIX: G^T's pattern is kept, its values refilled

    def _check_kind(self, A) -> None:
        pass

    def _check_same_options(self, comm) -> None:
        """Every rank must build G the same way (``gnn_apply explicit`` on one rank only would leave the others
        waiting in its transpose); the same answer on every rank, so all raise or none (collective)."""
        everyone = comm.tompi4py().allgather(self.options)
        for name in OPTIONS:
            values = [o[name] for o in everyone]
            if any(v != values[0] for v in values):
                per_rank = ", ".join(f"{v!r} on rank {r}" for r, v in enumerate(values))
                raise SolverConfigError(f"-{self.config.options_prefix}{name} differs between ranks ({per_rank}); "
                                        "give every rank the same options")

    def _warn_fallback(self) -> None:
        kind = self.options["gnn_fallback"]
        msg = (f"{self._model_name() or type(self).__name__}: non-finite factor values at set-up; falling back to "
               f"the classical {kind.upper()} factor on the same pattern")
        log.warning(msg)
        warnings.warn(msg, RuntimeWarning, stacklevel=4)
        self.fallback_used = True


def chunks(block, diag, owned, rings: int, size: int):
    """(sub-block, its diagonal, local numbers of its chunk rows in it, its rows as local numbers of ``block``, None
    when it is ``block`` itself) for
    chunks of ``size`` owned rows, each with the ``rings`` rings around it, so the network's memory stays bounded
    and every chunk computes its rows exactly as a whole evaluation would (the same argument that makes the factor
    independent of the partition)."""
    from . import kernels
    from .graph import Block, _local

    if len(owned) <= size:
        yield block, diag, owned, None
        return
    indptr, cols, _ = _local(block)
    for start in range(0, len(owned), size):
        chunk = np.ascontiguousarray(owned[start:start + size], np.int64)
        local = np.nonzero(kernels.within_hops(indptr, cols, chunk, rings))[0]
        counts = np.diff(block.indptr)[local]
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        take = np.repeat(block.indptr[local] - starts, counts) + np.arange(counts.sum())  # the rows' CSR entries
        sub = Block(block.rows[local], np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
                    block.indices[take], block.values[take])
        yield sub, diag[local], np.searchsorted(local, chunk), local


def _fallback_values(pattern, which, fsai, kind: str) -> np.ndarray:
    """The fallback factor's values on the factor rows ``which`` of ``pattern`` (order of ``lower_rows``): the
    classical FSAI factor (``fsai``: its scaled values on the pattern's entries) or Jacobi's."""
    if kind == "jacobi":
        return pattern.lower_values(pattern.self_entries(), which)
    return pattern.lower_values(fsai, which)


def _concatenate(pieces):
    """One CSR (indptr, columns, values) from the chunks' pieces."""
    indptr = [np.zeros(1, np.int64)]
    offset = 0
    for piece in pieces:
        indptr.append(piece[0][1:] + offset)
        offset += piece[0][-1]
    return (np.concatenate(indptr), np.concatenate([p[1] for p in pieces]),
            np.concatenate([p[2] for p in pieces]))


class FSAIPreconditioner(_FactorPreconditioner):
    """Classical FSAI (closed form per row), applied as y = G^T (G x). Options under ``-{prefix}accel_``:
    ``gnn_pattern a|a2`` (G on tril(A) or on tril(A^2); default: the pattern of the default shipped gnn model),
    ``gnn_apply explicit|transpose`` (a stored G^T, or MatMultTranspose with G), ``gnn_chunk N`` (unused: FSAI needs
    no chunks)."""

    hops = 1

    def __init__(self, config: PreconditionerConfig = PreconditionerConfig()):
        super().__init__(config)
        self.pattern = DEFAULT_PATTERN if self.options["gnn_pattern"] == "default" else self.options["gnn_pattern"]



class GNNPreconditioner(_FactorPreconditioner):
    """Learned FSAI: a graph network on the diagonally scaled matrix writes G on tril(A); M = G^T G.

    Options under ``-{prefix}accel_`` (or ``component_options`` from Python, same names without the prefix):

    ``model PATH``            ONNX file from ``accel train gnn`` (default: the shipped model of ``gnn_pattern``)
    ``problem KIND``          refuse a model trained for another problem kind (default: any scalar SPD model)
    ``gnn_apply explicit``    apply G^T as a stored matrix (default: about 15% faster per apply than
                              ``transpose``, MatMultTranspose with G, for G's memory once more)
    ``gnn_fallback fsai``     factor used when the network's output has NaN/Inf (``fsai`` or ``jacobi``), with a
                              warning
    ``gnn_chunk 100000``      rows per network evaluation (each with its rings of neighbours; bounds the memory,
                              about 0.8 GB per chunk in 3D; the factor does not depend on it; smaller chunks
                              evaluate more ring rows, larger ones touch more fresh memory on a first set-up)
    ``gnn_network_min_rows 1`` matrices with fewer rows get the classical FSAI factor instead of the network (as a
                              multigrid smoother: the network on the fine levels only, where it pays)
    ``gnn_pattern``           the factor's pattern, ``a`` (tril(A)) or ``a2`` (tril(A^2), the graph with
                              distance-2 edges); without ``model`` it picks the shipped model of that pattern
                              (default: ``a``); a model of another pattern is refused
    """

    def __init__(self, config: PreconditionerConfig = PreconditionerConfig()):
        super().__init__(config)
        self.model = Path(config.model) if config.model else shipped_model(self.options["gnn_pattern"])
        self.meta = modelmeta.read(self.model)
        self.meta.check_plugin("gnn", str(self.model))
        if config.problem is not None and self.meta.problem != config.problem:
            raise ModelError(f"{self.model} was trained for {self.meta.problem!r} problems, not {config.problem!r}; "
                             f"train a model on your operators with 'accel train gnn --matrices ...'")
        self._check_features()
        self.hops = int(self.meta.settings["rings"])
        self.pattern = self.meta.settings.get("pattern", "a")
        chosen = self.options["gnn_pattern"]
        if chosen not in ("default", self.pattern):
            raise SolverConfigError(f"-{config.options_prefix}gnn_pattern {chosen} differs from the pattern "
                                    f"{self.pattern!r} the model {self.model} was trained on; drop the option or pass "
                                    f"a model trained with 'accel train gnn --pattern {chosen}'")
        self.session = None

    def _check_features(self) -> None:
        """The model must read the inputs this version computes (layout, node and edge features, rings)."""
        from .export import LAYOUT
        from .graph import EDGE_FEATURES, NODE_FEATURES, PATTERNS

        s = self.meta.settings
        if s.get("pattern", "a") not in PATTERNS:
            raise ModelError(f"{self.model} writes a factor on the pattern {s.get('pattern')!r}, which this accel does "
                             f"not build (it builds {', '.join(PATTERNS)}); retrain it with 'accel train gnn "
                             "--pattern a2' (or a)")
        if (self.meta.layout != LAYOUT or s.get("node_features") != list(NODE_FEATURES)
                or s.get("edge_features") != list(EDGE_FEATURES) or not isinstance(s.get("rings"), int)):
            raise ModelError(f"{self.model} was exported for other inputs (layout {self.meta.layout!r}, node features "
                             f"{s.get('node_features')}, edge features {s.get('edge_features')}); this accel computes "
                             f"{list(NODE_FEATURES)} and {list(EDGE_FEATURES)}: retrain it with the recipe in its "
                             "metadata")

    def _model_name(self) -> str:
        return str(self.model)

    def destroy(self) -> None:
        super().destroy()
        self.session = None  # the ONNX Runtime session goes with the component

    def _check_kind(self, A) -> None:
        bs = A.getBlockSize()
        if bs > 1 and not self.meta.problem.startswith("spd-vector"):
            raise ModelError(f"{self.model} was trained for {self.meta.problem!r} (scalar) problems but the matrix "
                             f"has block size {bs} (a vector problem such as elasticity); train a model on such "
                             "operators with 'accel train gnn --matrices ...' or use GAMG for vector problems")

    def _uses_network(self) -> bool:
        return self._global_rows >= self.options["gnn_network_min_rows"]  # below: classical FSAI pays more

    def _slot_values(self, graph):
        from accel.runtime import ModelSession, RuntimeSettings

        from .export import INPUTS

        if self.session is None:
            self.session = ModelSession(self.model, self.config.runtime or RuntimeSettings(), inputs=INPUTS)
        t0 = time.perf_counter()
        out = self.session.run_feeds(graph.inputs())
        self._network_seconds += time.perf_counter() - t0
        return out

    def _build(self, A) -> None:
        self._global_rows = A.getSize()[0]
        self._network_seconds = 0.0
        super()._build(A)
        self.breakdown["network"] = self._network_seconds
