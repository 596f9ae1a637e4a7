"""Finding the DM attached to a PC without crashing.

petsc4py 3.18's ``PC.getDM()`` dereferences a NULL DM when none is attached (a segfault), so we ask PETSc's C
``PCGetDM`` first through ctypes, from the libpetsc already loaded into this process.
"""
from __future__ import annotations

import ctypes
import functools


@functools.lru_cache(maxsize=1)
def _pcgetdm():
    with open("/proc/self/maps") as maps:
        paths = {line.split()[-1] for line in maps if "libpetsc" in line and ".so" in line}
    for path in sorted(paths):
        lib = ctypes.CDLL(path)
        if hasattr(lib, "PCGetDM"):
            fn = lib.PCGetDM
            fn.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_void_p)]
            fn.restype = ctypes.c_int
            return fn
    return None


def attached_dm(pc):
    """The DM attached to ``pc``, or None."""
    fn = _pcgetdm()
    if fn is None:  # not Linux, or a PETSc we cannot introspect: only newer petsc4py is safe to ask directly
        try:
            return pc.getDM()
        except Exception:
            return None
    out = ctypes.c_void_p()
    if fn(ctypes.c_void_p(pc.handle), ctypes.byref(out)) != 0 or not out.value:
        return None
    return pc.getDM()
