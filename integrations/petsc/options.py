"""Reading an accel component's settings from the PETSc options database under its own prefix.

Settings given in code (e.g. by ``accel.accelerate``) are the defaults; the options database overrides only the
names it gives, so ``setFromOptions`` never resets what code set.
"""
from __future__ import annotations

import dataclasses

from accel.errors import SolverConfigError

# Flexible Krylov methods: they stay correct when the preconditioner changes from one iteration to the next, as a
# network applied per iteration does. pgmres is not one of them in practice: on the 64x64 Poisson problem with the
# shipped model it took 548 iterations against fgmres' 11 and stopped with a true residual of 1e-7 for rtol 1e-8
# (its pipelined recurrence assumes a fixed preconditioner).
FLEXIBLE_KSP = ("fcg", "pipefcg", "fgmres", "gcr", "pipegcr", "fbcgsr")

_TRUE = ("", "1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


def read_options(cls, prefix: str | None, base=None):
    """``base`` (default ``cls()``) with every field of the dataclass ``cls`` that the options database gives as
    ``-{prefix}{field}`` replaced by its value. A value that does not parse is a SolverConfigError naming it."""
    from petsc4py import PETSc

    opts = PETSc.Options(prefix or "")
    values = {}
    for f in dataclasses.fields(cls):
        if not opts.hasName(f.name):
            continue
        raw = opts.getString(f.name)
        values[f.name] = _parse(f"-{prefix or ''}{f.name}", f.type, "" if raw is None else raw)
    return dataclasses.replace(base if base is not None else cls(), **values)


def _parse(option: str, kind, raw: str):
    kind = getattr(kind, "__name__", kind)
    text = raw.strip()
    if kind == "bool":
        if text.lower() in _TRUE:
            return True
        if text.lower() in _FALSE:
            return False
        raise SolverConfigError(f"{option} {raw!r} is not a boolean; give true or false")
    try:
        if kind == "int":
            return int(text)
        if kind == "float":
            return float(text)
    except ValueError:
        raise SolverConfigError(f"{option} {raw!r} is not {'an integer' if kind == 'int' else 'a number'}") from None
    return raw


def ksp_type_from_options(prefix: str | None) -> str | None:
    from petsc4py import PETSc

    opts = PETSc.Options(prefix or "")
    return opts.getString("ksp_type") if opts.hasName("ksp_type") else None
