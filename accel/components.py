"""Component records and the protocols each kind of component follows.

A plugin announces components through the ``accel_components`` hook as :class:`ComponentSpec` records. The
record names a factory by import path, so listing plugins never imports their (possibly heavy) code.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

KINDS = ("preconditioner", "surrogate", "sampler", "supervisor")


@dataclass(frozen=True)
class ComponentSpec:
    """One component a plugin provides.

    name: the name users select it by (``-accel_plugin NAME``, ``sampler="NAME"``).
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

    def load(self):
        """Import and return the factory."""
        module, _, attr = self.factory.partition(":")
        obj = importlib.import_module(module)
        for part in attr.split("."):
            obj = getattr(obj, part)
        return obj


@runtime_checkable
class GridPreconditioner(Protocol):
    """A preconditioner acting on residuals laid out on a structured grid (what the PETSc PC calls).

    ``setup`` receives the grid shape (C order, slowest axis first) and the ModelSession; ``apply`` maps a residual
    array of that shape to a correction of the same shape, writing into ``out``.
    """

    def setup(self, shape: tuple[int, ...], **info: Any) -> None: ...

    def apply(self, r: np.ndarray, out: np.ndarray) -> None: ...


@runtime_checkable
class Surrogate(Protocol):
    """Maps an input field (e.g. a coefficient or forcing on a grid) to a predicted solution field."""

    def predict(self, inputs: np.ndarray) -> np.ndarray: ...


@runtime_checkable
class Sampler(Protocol):
    """Proposes collocation points for physics-informed training."""

    def sample(self, n: int) -> np.ndarray: ...


@runtime_checkable
class Supervisor(Protocol):
    """Produces (noisy, unbiased) solution estimates at query points to train an operator without solver data."""

    def estimate(self, points: np.ndarray, **problem: Any) -> np.ndarray: ...
