"""DOLFINx integration: ``accelerate`` (one line to put the neural preconditioner into a DOLFINx solve;
``pick_plugin`` says which component it chooses for a function space), the DOF-to-grid transfer for P1/Q1 box
meshes, and the DOLFINx version compatibility layer.

Imported lazily by ``accel.accelerate``; importing this package does not import dolfinx or petsc4py.
"""
from __future__ import annotations

__all__ = ["accelerate", "neural_pc", "pick_plugin", "BoxGridTransfer"]


def __getattr__(name):
    if name in ("accelerate", "neural_pc", "pick_plugin"):
        from . import attach as _mod

        return getattr(_mod, name)
    if name == "BoxGridTransfer":
        from .transfer import BoxGridTransfer

        return BoxGridTransfer
    raise AttributeError(f"module 'accel.integrations.fenics' has no attribute {name!r}")
