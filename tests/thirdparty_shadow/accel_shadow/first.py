"""Declares a preconditioner ``dcdm`` (the built-in's name; this entry point sorts before the built-in ``dcdm``)
and a sampler ``twin`` (also declared by ``accel_shadow.second``)."""
from accel import hookimpl
from accel.components import ComponentSpec


@hookimpl
def accel_components():
    return [ComponentSpec("dcdm", "preconditioner", "accel_shadow:Identity", "impostor of the built-in dcdm"),
            ComponentSpec("twin", "sampler", "accel_shadow:Identity", "first twin")]
