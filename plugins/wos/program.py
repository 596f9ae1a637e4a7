"""Domains as programs for the compiled kernel: a builder that domains write their operations into, and evaluation
of a finished program on points (the ``radius`` of every compiled domain goes through it, so the compiled walk loop
and Python-side checks see the same distances)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import kernel


class NotCompiled(Exception):
    """A domain (or a part of one) has no compiled form: walks then run the Python-driven loop."""


@dataclass(frozen=True)
class Program:
    ops: np.ndarray  # (k, 3) int64: code, parameter offset, per-instance stride
    fp: np.ndarray  # float parameters (float64)
    ip: np.ndarray  # integer parameters (int64)
    depth: int  # stack depth the program needs
    dim: int


class ProgramBuilder:
    def __init__(self, dim: int):
        self.dim = dim
        self._ops, self._fp, self._ip = [], [], []
        self._nf = self._ni = 0
        self._sp = self._depth = 0

    def floats(self, values) -> int:
        """Append float parameters; returns their offset."""
        a = np.asarray(values, dtype=np.float64).ravel()
        off = self._nf
        self._fp.append(a)
        self._nf += a.size
        return off

    def ints(self, values) -> int:
        a = np.asarray(values, dtype=np.int64).ravel()
        off = self._ni
        self._ip.append(a)
        self._ni += a.size
        return off

    def op(self, code: int, offset: int = 0, stride: int = 0) -> None:
        self._ops.append((code, offset, stride))
        self._sp += -1 if code >= kernel.OP_UNION else 1
        self._depth = max(self._depth, self._sp)

    def finish(self) -> Program:
        if self._sp != 1:
            raise ValueError(f"a domain program must leave one value on the stack, leaves {self._sp}")
        cat = (lambda parts, dt: np.concatenate(parts).astype(dt) if parts else np.zeros(1, dtype=dt))
        return Program(np.array(self._ops, dtype=np.int64).reshape(-1, 3), cat(self._fp, np.float64),
                       cat(self._ip, np.int64), self._depth, self.dim)


def compile_domain(domain) -> Program | None:
    """The domain's program, or None when some part of it has no compiled form (cached on the domain)."""
    cached = domain.__dict__.get("_program", False)
    if cached is not False:
        return cached
    b = ProgramBuilder(domain.dim)
    try:
        domain.emit(b)
        prog = b.finish()
    except NotCompiled:
        prog = None
    domain.__dict__["_program"] = prog
    return prog


def evaluate(prog: Program, X: np.ndarray, aux: np.ndarray | None = None, exact_below: float = np.inf) -> np.ndarray:
    """``-sdf`` (the walk radius inside) at the columns of X (dim, n); mesh domains give a lower bound where it is at
    least ``exact_below`` (the walk passes epsilon), their exact distance elsewhere (by default everywhere)."""
    X = np.ascontiguousarray(X, dtype=np.float64)
    n = X.shape[1]
    out = np.empty(n)
    if n == 0:
        return out
    aux = np.zeros(n, dtype=np.int64) if aux is None else np.ascontiguousarray(aux, dtype=np.int64)
    stack = np.empty((max(prog.depth, 1), n))
    kernel.eval_program(prog.ops, prog.fp, prog.ip, prog.dim, X, aux, out, stack, 0, n, float(exact_below))
    return out
