"""Every hook an accel plugin can implement. Implement them with ``@accel.hookimpl``."""
from __future__ import annotations

import pluggy

hookspec = pluggy.HookspecMarker("accel")
hookimpl = pluggy.HookimplMarker("accel")


@hookspec
def accel_components():
    """Return the ComponentSpec records (preconditioners, surrogates, samplers, supervisors) this plugin provides."""


@hookspec
def accel_model_dirs():
    """Return folders holding this plugin's shipped ONNX models (read lazily by the registry)."""


@hookspec
def accel_cli(commands):
    """Add subcommands to ``accel``: ``commands.top`` and ``commands.train`` are argparse subparser groups."""
