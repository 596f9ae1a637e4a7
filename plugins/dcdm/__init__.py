"""DCDM: the deep conjugate-direction method's neural preconditioner (Kaneda et al., ICML 2023).

Components: preconditioner ``dcdm``. Shipped models: 2D/3D Poisson, 2D/3D pressure Poisson with obstacles.
Commands: ``accel train dcdm``, ``accel demo`` (the main job: shipped problems, classical and neural PCs). Kept light: torch is imported only by the training commands.
"""
from __future__ import annotations

from pathlib import Path

from accel import hookimpl
from accel.components import ComponentSpec

MODEL_DIR = Path(__file__).parent / "models"


@hookimpl
def accel_components():
    return [ComponentSpec("dcdm", "preconditioner", "accel.plugins.dcdm.preconditioner:DCDMPreconditioner",
                          "deep conjugate-direction network inside a Jacobi two-grid cycle (use with FCG)"),
            ComponentSpec("twogrid-exact", "preconditioner", "accel.plugins.dcdm.ablation:TwoGridExact",
                          "ablation: the same cycle with an exact Galerkin coarse solve in the network's place"),
            ComponentSpec("twogrid-none", "preconditioner", "accel.plugins.dcdm.ablation:TwoGridNone",
                          "ablation: the same cycle with no coarse correction (Jacobi sweeps only)")]


@hookimpl
def accel_model_dirs():
    return [MODEL_DIR]


@hookimpl
def accel_cli(commands):
    from .cli import add_train_command
    from .demo import add_demo_command

    add_train_command(commands.train)
    add_demo_command(commands.top)
