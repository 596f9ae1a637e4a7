"""Declares a sampler ``twin``, like ``accel_shadow.first``."""
from accel import hookimpl
from accel.components import ComponentSpec


@hookimpl
def accel_components():
    return [ComponentSpec("twin", "sampler", "accel_shadow:Identity", "second twin")]
