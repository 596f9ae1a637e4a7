"""Component records and the protocols each kind of component follows.

A plugin announces components through the ``accel_components`` hook as :class:`ComponentSpec` records. The
record names a factory by import path, so listing plugins never imports their (possibly heavy) code.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Protocol, runtime_checkable

import numpy as np

KINDS = ("preconditioner", "surrogate", "sampler", "supervisor")


@dataclass(frozen=True)
class ComponentSpec:
    """One component a plugin provides.

    name: the name users select it by (``-accel_plugin NAME``, ``sampler="NAME"``); no ``:`` (that separates the
        qualified name ``PLUGIN:NAME``, which always selects this very component, see :mod:`accel.registry`).
    kind: one of :data:`KINDS`.
    factory: ``"module:attribute"`` of a callable building the component; imported only when used.
    summary: one line shown by ``accel plugins``.
    """

    name: str
    kind: str
    factory: str
    summary: str = ""
    plugin: str = ""  # filled in by the registry
    options: dict = field(default_factory=dict, compare=False)

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"component {self.name!r}: kind {self.kind!r} is not one of {', '.join(KINDS)}")
        if ":" not in self.factory:
            raise ValueError(f"component {self.name!r}: factory must be 'module:attribute', got {self.factory!r}")
        if not self.name or ":" in self.name:
            raise ValueError(f"component name {self.name!r} must be non-empty and free of ':' (it separates "
                             "PLUGIN:NAME)")

    @property
    def qualified_name(self) -> str:
        """``PLUGIN:NAME``: selects this component even when another plugin declares the same name."""
        return f"{self.plugin}:{self.name}"

    def load(self):
        """Import and return the factory."""
        module, _, attr = self.factory.partition(":")
        obj = importlib.import_module(module)
        for part in attr.split("."):
            obj = getattr(obj, part)
        return obj


# -- surrogates, samplers, supervisors --------------------------------------------------------------------------------
# A component of these kinds is built by ``factory(**options)`` (``Registry.create(kind, name, **options)``) and
# follows the protocol below; its users call nothing else. ``tests/test_components.py`` checks every built-in.

@runtime_checkable
class Surrogate(Protocol):
    """Maps input fields on a grid (a coefficient, forcing or past snapshots) to a predicted solution field;
    used by ``accel predict`` and as a Krylov initial guess (``integrations/petsc/guess.py``)."""

    @property
    def problem(self) -> str:
        """The family the model was trained on (e.g. ``darcy``); callers refuse a model of another family."""
        ...

    def predict(self, inputs: np.ndarray) -> np.ndarray:
        """The predicted field(s) for ``inputs`` (one sample or a batch); raises on NaN input or a grid it cannot take."""
        ...


@runtime_checkable
class Sampler(Protocol):
    """Proposes collocation points for physics-informed training, adapting to the residual between stages; the
    PINN trainer (``plugins/aas/trainer.py``) calls, in order: ``plan`` once, then per stage ``refresh`` (from the
    second stage on), ``sample`` and ``loss_weights`` on the points just sampled. Points outside the domain that a
    sampler drops are counted in an optional ``rejected`` attribute."""

    def plan(self, n: int, stages: int) -> None:
        """The budget: ``n`` collocation points in use at a time, refreshed over ``stages`` stages."""
        ...

    def refresh(self, residual: Callable[[np.ndarray], np.ndarray], points: np.ndarray) -> None:
        """Learn from the PDE residual (a callable on (n, dim) points) at the current ``points``; no-op if not adaptive."""
        ...

    def sample(self, n: int) -> np.ndarray:
        """The points to train on next, inside the domain, shape (m, dim) with m <= n (RAR-D returns its growing set)."""
        ...

    def loss_weights(self, x: np.ndarray) -> np.ndarray | None:
        """Per-point weights of the PINN loss for the points ``x`` just sampled (None: a plain mean)."""
        ...


@runtime_checkable
class Supervisor(Protocol):
    """Produces (noisy, unbiased) solution estimates at query points, to train an operator without solver data."""

    def estimate(self, points: np.ndarray, **overrides: Any) -> np.ndarray:
        """Solution estimates at ``points`` (n, dim); ``overrides`` change the problem data or the estimator's
        settings for this call only (e.g. ``boundary=``, ``walks=``)."""
        ...


# -- the preconditioner contract -------------------------------------------------------------------------------------
# Every ``preconditioner`` component is built by ``factory(config: PreconditionerConfig)`` (one fixed signature) and
# follows one of the two protocols below, announced by ``describe().layout``. The PETSc PC (``accel.NeuralPC``) uses
# nothing else: it calls ``describe`` before set-up, ``initialize`` once, ``update`` when only the operator's values
# changed (a new time step, a Newton step), ``apply`` per iteration, ``stats`` for reports and ``destroy`` at the end.
# This is Firedrake's PCBase life cycle, written as typed stubs in the manner of petsc4py's pcpython_protocol.py.

LAYOUTS = ("grid", "matrix")


@dataclass(frozen=True)
class PreconditionerConfig:
    """What every preconditioner factory receives.

    model: ONNX file chosen by the user (None: the component picks its shipped default and logs which).
    problem: the name of a shipped model's training problem, to pick among several (None: the component's default).
    runtime: ONNX Runtime settings (``accel.runtime.RuntimeSettings``: providers, threads).
    options_prefix: the PC's prefix plus ``accel_``; a component reads its own further options under it in
        ``describe``/``initialize`` (documented in its class docstring), e.g. ``-{prefix}accel_gnn_shift``.
    extra: component-specific settings given from Python (``accel.accelerate(..., component_options={...})``);
        a component refuses names it does not know, listing the valid ones.
    """

    model: str | None = None
    problem: str | None = None
    runtime: Any = None
    options_prefix: str = "accel_"
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CycleSettings:
    """The smoothing cycle a grid network was trained in (the PC runs it around the network): ``pre``/``post`` damped
    Jacobi sweeps with weight ``omega``; ``interpolation`` between grid levels (``linear`` or ``constant``);
    ``min_sweeps``: fewer sweeps than this are refused (a network working below the grid resolution needs them)."""

    pre: int = 0
    post: int = 0
    omega: float = 0.67
    interpolation: str = "linear"
    min_sweeps: int = 0


@dataclass(frozen=True)
class PreconditionerInfo:
    """What a component tells the PC before set-up, from its model's metadata alone (no session opened).

    layout: ``"grid"`` (a :class:`GridPreconditioner`: rank 0 maps residual grids, the PC gathers and scatters) or
        ``"matrix"`` (a :class:`MatrixPreconditioner`: every rank takes part, the PC hands it the PETSc operator).
    linear: True when ``apply`` is a fixed linear SPD operator between set-ups (plain CG may be used); False for a
        network applied per iteration, which is nonlinear and needs a flexible Krylov method (fcg, fgmres, gcr).
    model: the model file (or a description) for logs and ``-ksp_view``.
    train_grid, grid_multiple, cycle: grid layout only: the grid the network was trained on (the PC builds levels
        down to it), the multiple every extent is padded to, the cycle it was trained in.
    wants_couplings: grid layout only: the component reads :attr:`GridProblem.couplings` (the PC computes them only
        then: a few collective products per set-up).
    """

    layout: str
    linear: bool
    model: str = ""
    train_grid: tuple[int, ...] | None = None
    grid_multiple: int = 1
    cycle: CycleSettings = CycleSettings()
    wants_couplings: bool = False

    def __post_init__(self):
        if self.layout not in LAYOUTS:
            raise ValueError(f"preconditioner layout {self.layout!r} is not one of {', '.join(LAYOUTS)}")


@dataclass(frozen=True)
class GridProblem:
    """What a grid component receives at set-up (rank 0 only): ``shape`` of the network's grid (C order, slowest
    axis first), ``diagonal`` of the operator on that grid (an input for models that see walls and obstacles) and
    ``operator``, the PETSc matrix on that grid (distributed; ablations that factor it need one rank); ``couplings``
    (dim, *shape), given when the component's info asks for them: per axis, each point's summed coupling to the next
    grid layer (``GridLevels.network_couplings``)."""

    shape: tuple[int, ...]
    diagonal: np.ndarray | None = None
    operator: Any = None
    couplings: np.ndarray | None = None


@dataclass
class PreconditionerStats:
    """Counters a component keeps since its last set-up; times in seconds."""

    applies: int = 0
    setup_time: float = 0.0   # network run(s) and buffers at initialize/update
    network_time: float = 0.0  # inside ONNX Runtime during applies
    copy_time: float = 0.0     # casting and copying around the network during applies


@runtime_checkable
class GridPreconditioner(Protocol):
    """A network on residual grids, run on rank 0 inside the PC's smoothing cycle (nonlinear: flexible KSPs only).
    The PC gathers the residual on the network's grid to rank 0 and scatters the result back; every method below
    except ``describe`` is called on rank 0 only."""

    def describe(self, dim: int | None) -> PreconditionerInfo:
        """Metadata for a ``dim``-D problem, on every rank; raises ModelError when the model does not fit. ``dim``
        None (the PC found no grid, or asks only for the layout): the layout alone, without reading the model."""
        ...

    def initialize(self, problem: GridProblem) -> None:
        """Once per grid shape: open the session, bind buffers, warm up."""
        ...

    def update(self, problem: GridProblem) -> None:
        """The operator's values changed on the same grid: refresh what depends on them (e.g. the diagonal input)."""
        ...

    def apply(self, r: np.ndarray, out: np.ndarray) -> None:
        """Write the correction for residual grid ``r`` into ``out`` (same shape; may be the same array)."""
        ...

    def stats(self) -> PreconditionerStats:
        """Counters since set-up."""
        ...

    def destroy(self) -> None:
        """Release the session and buffers."""
        ...


@runtime_checkable
class MatrixPreconditioner(Protocol):
    """A network on the operator itself, run once per set-up on every rank; ``apply`` is then PETSc sparse algebra,
    linear and (with ``describe().linear``) symmetric positive definite, so plain CG works. Every method is
    collective: it is called on every rank of the operator's communicator."""

    def describe(self, dim: int | None) -> PreconditionerInfo:
        """Metadata (``layout="matrix"``); ``dim`` is the mesh dimension where known, else None."""
        ...

    def initialize(self, A: Any) -> None:
        """Once per operator structure: run the network on ``A`` (a petsc4py Mat) and build the operator to apply."""
        ...

    def update(self, A: Any) -> None:
        """The operator's values changed on the same non-zero pattern: run the network again, keep the structures."""
        ...

    def apply(self, x: Any, y: Any) -> None:
        """y = M x with PETSc Vecs."""
        ...

    def apply_transpose(self, x: Any, y: Any) -> None:
        """y = M^T x (M itself when symmetric)."""
        ...

    def stats(self) -> PreconditionerStats:
        """Counters since set-up."""
        ...

    def destroy(self) -> None:
        """Destroy every PETSc object the component created."""
        ...


PreconditionerFactory = Callable[[PreconditionerConfig], "GridPreconditioner | MatrixPreconditioner"]
