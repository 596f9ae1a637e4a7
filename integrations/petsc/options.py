"""Reading an accel component's settings from the PETSc options database under its own prefix."""
from __future__ import annotations

from dataclasses import fields

FLEXIBLE_KSP = ("fcg", "pipefcg", "fgmres", "gcr", "pipegcr", "fbcgsr", "pgmres")


def read_options(cls, prefix: str | None):
    """Fill the dataclass ``cls`` from ``-{prefix}{field}``; unset options keep their defaults."""
    from petsc4py import PETSc

    opts = PETSc.Options(prefix or "")
    values = {}
    for f in fields(cls):
        name = f.name
        if not opts.hasName(name):
            continue
        if f.type in (bool, "bool"):
            values[name] = opts.getBool(name)
        elif f.type in (int, "int"):
            values[name] = opts.getInt(name)
        elif f.type in (float, "float"):
            values[name] = opts.getReal(name)
        else:
            values[name] = opts.getString(name)
    return cls(**values)


def ksp_type_from_options(prefix: str | None) -> str | None:
    from petsc4py import PETSc

    opts = PETSc.Options(prefix or "")
    return opts.getString("ksp_type") if opts.hasName("ksp_type") else None
