"""AAS plugin: physics-informed training with pluggable collocation samplers (uniform, RAD, RAR-D and adversarial
adaptive sampling with a normalizing flow), ONNX export and a hand-back of the PINN to PETSc as an initial guess.

This module stays light (no torch import): the registry reads the component records without loading the code.
"""
from accel import hookimpl
from accel.components import ComponentSpec

_S = "accel.plugins.aas"


@hookimpl
def accel_components():
    return [
        ComponentSpec("uniform", "sampler", f"{_S}.samplers:UniformSampler", "uniform collocation points, redrawn each stage"),
        ComponentSpec("rad", "sampler", f"{_S}.samplers:RADSampler", "residual-based adaptive distribution (DeepXDE RAD)"),
        ComponentSpec("rar-d", "sampler", f"{_S}.samplers:RARDSampler", "residual-based adaptive refinement (DeepXDE RAR-D)"),
        ComponentSpec("aas", "sampler", f"{_S}.flow_sampler:AASSampler",
                      "adversarial adaptive sampling: normalizing flow vs. PINN residual (zuko NSF)"),
    ]


@hookimpl
def accel_model_dirs():
    from pathlib import Path

    return [Path(__file__).parent / "models"]


@hookimpl
def accel_cli(commands):
    from .cli import add_train_command

    add_train_command(commands.train)
