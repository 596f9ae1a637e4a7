"""accel: learned components (neural preconditioners, neural-operator surrogates, Walk-on-Spheres supervision,
adaptive samplers) for classical PDE solvers, as pluggy plugins reached through PETSc and DOLFINx.

Heavy modules are imported lazily: ``import accel`` pulls in neither torch nor petsc4py.
"""
from __future__ import annotations

from .hookspecs import hookimpl

__version__ = "0.1.0"
__all__ = ["hookimpl", "NeuralPC", "LearnedSmootherMG", "FenicsNeuralPC", "accelerate", "get_registry", "__version__"]

_LAZY = {
    # -pc_python_type accel.NeuralPC resolves through this table
    "NeuralPC": ("accel.integrations.petsc.pc", "NeuralPC"),
    "LearnedSmootherMG": ("accel.integrations.petsc.smoothed_mg", "LearnedSmootherMG"),
    "FenicsNeuralPC": ("accel.integrations.fenics.pc", "FenicsNeuralPC"),
    "accelerate": ("accel.integrations.fenics", "accelerate"),
    "get_registry": ("accel.registry", "get_registry"),
}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        value = getattr(importlib.import_module(module), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'accel' has no attribute {name!r}")
