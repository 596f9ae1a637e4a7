"""gnn: a graph network on the system matrix writes a sparse SPD preconditioner PETSc applies (any mesh).

Components: preconditioner ``gnn`` (learned factored sparse approximate inverse, M = G^T G with G on tril(A)) and
``fsai`` (the classical closed-form factor on the same pattern: the ablation). Commands: ``accel train gnn``.
Kept light: torch is imported only by the training command, DOLFINx only by the problem families.
"""
from __future__ import annotations

from pathlib import Path

from accel import hookimpl
from accel.components import ComponentSpec

MODEL_DIR = Path(__file__).parent / "models"


@hookimpl
def accel_components():
    return [ComponentSpec("gnn", "preconditioner", "accel.plugins.gnn.preconditioner:GNNPreconditioner",
                          "graph network on the matrix: learned sparse approximate inverse G^T G (plain CG works)"),
            ComponentSpec("fsai", "preconditioner", "accel.plugins.gnn.preconditioner:FSAIPreconditioner",
                          "ablation: classical FSAI factor on tril(A), applied as G^T G")]


@hookimpl
def accel_model_dirs():
    return [MODEL_DIR]


@hookimpl
def accel_cli(commands):
    from .cli import add_train_command

    add_train_command(commands.train)
