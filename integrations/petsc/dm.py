"""What petsc4py 3.18 does not expose safely, asked from PETSc's C library through ctypes: the DM attached to a PC
and a matrix's non-zero state.

petsc4py 3.18's ``PC.getDM()`` dereferences a NULL DM when none is attached (a segfault), so we ask PETSc's C
``PCGetDM`` first; ``MatGetNonzeroState`` (which grows whenever the non-zero pattern changes) has no binding at all.
Both come from the libpetsc already loaded into this process.
"""
from __future__ import annotations

import ctypes
import functools


@functools.lru_cache(maxsize=None)
def _petsc_function(name: str, *argtypes):
    try:
        with open("/proc/self/maps") as maps:
            paths = {line.split()[-1] for line in maps if "libpetsc" in line and ".so" in line}
    except OSError:  # not Linux
        return None
    for path in sorted(paths):
        lib = ctypes.CDLL(path)
        if hasattr(lib, name):
            fn = getattr(lib, name)
            fn.argtypes = list(argtypes)
            fn.restype = ctypes.c_int
            return fn
    return None


def attached_dm(pc):
    """The DM attached to ``pc``, or None."""
    fn = _petsc_function("PCGetDM", ctypes.c_void_p, ctypes.POINTER(ctypes.c_void_p))
    if fn is None:  # a PETSc we cannot introspect: only newer petsc4py is safe to ask directly
        try:
            return pc.getDM()
        except Exception:
            return None
    out = ctypes.c_void_p()
    if fn(ctypes.c_void_p(pc.handle), ctypes.byref(out)) != 0 or not out.value:
        return None
    return pc.getDM()


def nonzero_state(A) -> int | None:
    """PETSc's non-zero state of matrix ``A`` (it changes exactly when the non-zero pattern does), or None where it
    cannot be read."""
    fn = _petsc_function("MatGetNonzeroState", ctypes.c_void_p, ctypes.POINTER(ctypes.c_int64))
    if fn is None:
        return None
    out = ctypes.c_int64()
    if fn(ctypes.c_void_p(A.handle), ctypes.byref(out)) != 0:
        return None
    return int(out.value)
