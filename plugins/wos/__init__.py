"""Walk-on-Spheres: a mesh-free Monte Carlo solver for Laplace/Poisson problems and WoS-supervised operators.

Kept light on purpose (the registry imports it at start-up): numba kernels, DOLFINx and torch load on use.
Public API: accel.plugins.wos.estimator (WalkOnSpheres, WoSSettings), .domains, .mesh_domain, .problems.
"""
from accel import hookimpl
from accel.components import ComponentSpec


@hookimpl
def accel_components():
    return [ComponentSpec("wos", "supervisor", "accel.plugins.wos.supervisor:create",
                          "Walk-on-Spheres estimates of Laplace/Poisson solutions at points (2D/3D, MPI)")]


@hookimpl
def accel_cli(commands):
    from .cli import add_commands

    add_commands(commands)
