"""The factor applied by PETSc itself: M = G^T G as a PETSc matrix behind PCMAT, no Python call per application.

``accel.NeuralPC`` is a Python PC: every application (every CG iteration, every smoothing step inside multigrid)
goes through a Python callback. Once the factor is computed there is nothing left for Python to do, so here the
component's G and G^T become one matrix M and the KSP (or each multigrid level's smoother) gets ``PCMAT`` with M as
its preconditioning matrix:

* ``composite``: a multiplicative MATCOMPOSITE [G, G^T] (y = G^T (G x), two sparse products, no fill);
* ``product``: the explicit product G^T G (one sparse product with a denser matrix).

petsc4py 3.18 has no binding for MatCompositeAddMat/MatCompositeSetType, so those two are called through ctypes on
the PETSc library petsc4py itself loaded.

    from accel.plugins.gnn.native import NativeFactor, NativeSmoothers
    ksp.setUp()                                    # GAMG builds its hierarchy
    smoothers = NativeSmoothers(ksp, "gnn", learned_levels=1)   # network on the finest level, FSAI below
    ksp.solve(b, x)
    smoothers.destroy()
"""
from __future__ import annotations

import ctypes
import functools
import logging
import time

from accel.components import PreconditionerConfig
from accel.errors import SolverConfigError

log = logging.getLogger(__name__)

APPLIES = ("composite", "product")
_MAT_COMPOSITE_MULTIPLICATIVE = 1


@functools.lru_cache(maxsize=1)
def _petsc_library():
    """The PETSc shared library petsc4py runs on: the one already mapped into this process."""
    from petsc4py import PETSc  # noqa: F401 - loads the library

    with open("/proc/self/maps") as maps:
        paths = sorted({line.split()[-1] for line in maps if "/libpetsc" in line and ".so" in line})
    for path in paths:
        lib = ctypes.CDLL(path)
        if hasattr(lib, "MatCompositeAddMat"):
            return lib
    raise SolverConfigError(f"cannot find PETSc's MatCompositeAddMat in the loaded libraries ({paths}); use "
                            "native apply 'product' or the Python apply (-pc_type python -pc_python_type "
                            "accel.NeuralPC)")


def _check(code: int, call: str) -> None:
    if code != 0:
        raise RuntimeError(f"{call} failed with PETSc error code {code}")


def factor_operator(G, Gt, apply: str = "composite"):
    """A new PETSc Mat applying G^T (G x) (``composite``) or holding the product G^T G (``product``)."""
    from petsc4py import PETSc

    if apply == "product":
        return G.transposeMatMult(G)
    if apply != "composite":
        raise SolverConfigError(f"native apply {apply!r} is not one of {', '.join(APPLIES)}")
    lib = _petsc_library()
    M = PETSc.Mat().create(comm=G.getComm())
    M.setSizes(G.getSizes())
    M.setType("composite")
    for part in (G, Gt):  # multiplicative: the first matrix added is applied first
        _check(lib.MatCompositeAddMat(ctypes.c_void_p(M.handle), ctypes.c_void_p(part.handle)), "MatCompositeAddMat")
    _check(lib.MatCompositeSetType(ctypes.c_void_p(M.handle), ctypes.c_int(_MAT_COMPOSITE_MULTIPLICATIVE)),
           "MatCompositeSetType")
    M.assemble()
    return M


def build_component(plugin: str, A, model: str | None = None, prefix: str = "accel_", extra: dict | None = None):
    """A gnn or fsai component set up on A (explicit G^T: the composite needs it as a matrix)."""
    from .preconditioner import FSAIPreconditioner, GNNPreconditioner

    options = {"gnn_apply": "explicit", **(extra or {})}
    if plugin == "gnn":
        component = GNNPreconditioner(PreconditionerConfig(model=model, options_prefix=prefix, extra=options))
    elif plugin == "fsai":
        component = FSAIPreconditioner(PreconditionerConfig(options_prefix=prefix, extra=options))
    else:
        raise SolverConfigError(f"native apply: plugin {plugin!r} is not one of gnn, fsai")
    component.initialize(A)
    return component


class NativeFactor:
    """CG (or any KSP) preconditioned by M = G^T G through PCMAT: ``NativeFactor(ksp, "gnn")`` after
    ``ksp.setOperators(A)``; sets the KSP's preconditioning matrix to M and its PC type to ``mat``."""

    def __init__(self, ksp, plugin: str = "gnn", model: str | None = None, apply: str = "composite",
                 extra: dict | None = None):
        t0 = time.perf_counter()
        A = ksp.getOperators()[0]
        self.component = build_component(plugin, A, model, extra=extra)
        self.M = factor_operator(self.component.G, self.component.Gt, apply)
        ksp.setOperators(A, self.M)
        ksp.getPC().setType("mat")
        self.breakdown = dict(self.component.breakdown)
        self.setup_s = time.perf_counter() - t0

    def destroy(self) -> None:
        if self.M is not None:
            self.M.destroy()
            self.component.destroy()
            self.M = None


class NativeSmoothers:
    """Replace the smoothers' PCs of a set-up PCMG/GAMG hierarchy by PCMAT with each level's M = G^T G.

    ``learned_levels``: how many of the finest levels get the network's factor (``plugin="gnn"``); the levels
    below get the classical FSAI factor (``coarse="fsai"``) or keep the smoother they have (``coarse="keep"``,
    e.g. GAMG's Chebyshev/Jacobi). None: every level but the coarse solve gets ``plugin``. The smoothers' KSPs
    (Chebyshev by default) are kept; their eigenvalue estimates are redone for the new operator.
    ``extra``: component options on every level; ``fine_extra``: more on the ``learned_levels`` finest levels
    (e.g. ``{"gnn_pattern": "a2"}`` for classical FSAI on tril(A^2) there).
    ``breakdown``: set-up seconds per level (``level{l}``) and in all (``total``)."""

    def __init__(self, ksp, plugin: str = "gnn", learned_levels: int | None = None, coarse: str = "fsai",
                 model: str | None = None, apply: str = "composite", extra: dict | None = None,
                 fine_extra: dict | None = None):
        if coarse not in ("fsai", "keep"):
            raise SolverConfigError(f"coarse {coarse!r} is not one of fsai, keep")
        pc = ksp.getPC()
        if pc.getType() not in ("mg", "gamg"):
            raise SolverConfigError(f"NativeSmoothers needs a set-up PCMG or PCGAMG, not {pc.getType()!r}")
        self.components, self.mats = [], []
        self.breakdown: dict[str, float] = {}
        t_all = time.perf_counter()
        levels = pc.getMGLevels()
        for level in range(levels - 1, 0, -1):  # finest first; level 0 is the coarse solve
            from_top = levels - 1 - level
            fine = learned_levels is None or from_top < learned_levels
            kind = plugin if fine else coarse
            if kind == "keep":
                continue
            t0 = time.perf_counter()
            smoother = pc.getMGSmoother(level)
            A_level = smoother.getOperators()[0]
            options = {**(extra or {}), **(fine_extra or {})} if fine else extra
            component = build_component(kind, A_level, model if kind == "gnn" and fine else None, extra=options)
            M = factor_operator(component.G, component.Gt, apply)
            smoother.setOperators(A_level, M)
            smoother.getPC().setType("mat")
            self.components.append(component)
            self.mats.append(M)
            self.breakdown[f"level{level}_{kind}"] = time.perf_counter() - t0
        self.breakdown["total"] = time.perf_counter() - t_all
        log.info("native smoothers: %s", ", ".join(f"{k} {v:.3f} s" for k, v in self.breakdown.items()))

    def destroy(self) -> None:
        for M in self.mats:
            M.destroy()
        for component in self.components:
            component.destroy()
        self.mats, self.components = [], []
