"""Shared by the gnn benchmarks: solving with a gnn/fsai component or a classical configuration, timed alike.

A component row runs through ``accel.NeuralPC`` (``-pc_type python -pc_python_type accel.NeuralPC -accel_plugin
NAME``) when NeuralPC takes matrix components, else through a minimal Python PC around the component.
"""
from __future__ import annotations

import time

import numpy as np

from accel.components import PreconditionerConfig
from accel.integrations.petsc.solvers import SolveResult, solve


class ComponentPC:
    """A petsc4py Python PC context around a MatrixPreconditioner (set-up on the PC's operator, apply per call)."""

    def __init__(self, component):
        self.component = component

    def setUp(self, pc):
        A, _ = pc.getOperators()
        self.component.initialize(A)

    def apply(self, pc, x, y):
        self.component.apply(x, y)

    def applyTranspose(self, pc, x, y):
        self.component.apply_transpose(x, y)


def make_component(name: str, model: str | None = None, **extra):
    from accel.plugins.gnn.preconditioner import FSAIPreconditioner, GNNPreconditioner

    cls = {"gnn": GNNPreconditioner, "fsai": FSAIPreconditioner}[name]
    return cls(PreconditionerConfig(model=model, extra=extra))


def solve_component(A, b, component, name: str, rtol: float = 1e-8, max_it: int = 10000,
                    ksp_type: str = "cg") -> SolveResult:
    """CG (unpreconditioned norm) with the component as the whole preconditioner; set-up and solve timed apart."""
    from petsc4py import PETSc

    ksp = PETSc.KSP().create(comm=A.getComm())
    x = A.createVecRight()
    try:
        ksp.setOperators(A)
        ksp.setType(ksp_type)
        ksp.setNormType(PETSc.KSP.NormType.UNPRECONDITIONED)
        ksp.setTolerances(rtol=rtol, atol=0.0, max_it=max_it)
        pc = ksp.getPC()
        pc.setType("python")
        pc.setPythonContext(ComponentPC(component))
        t0 = time.perf_counter()
        ksp.setUp()
        t1 = time.perf_counter()
        ksp.solve(b, x)
        t2 = time.perf_counter()
        r = b.duplicate()
        A.mult(x, r)
        r.aypx(-1.0, b)
        res = r.norm() / b.norm()
        r.destroy()
        reason = ksp.getConvergedReason()
        st = component.stats()
        stats = {"network_s": st.network_time, **getattr(component, "breakdown", {})}
        return SolveResult(name, ksp.getIterationNumber(), t1 - t0, t2 - t1, float(res),
                           bool(reason > 0 and np.isfinite(res)), reason, [], stats, [])
    finally:
        component.destroy()
        x.destroy()
        ksp.destroy()


GAMG_SMOOTHERS = {
    "gamg": {},  # PETSc's default: Chebyshev/Jacobi
    "gamg+sor": {"mg_levels_ksp_type": "richardson", "mg_levels_pc_type": "sor"},
    "gamg+icc": {"mg_levels_ksp_type": "richardson", "mg_levels_pc_type": "icc"},
    "gamg+jacobi": {"mg_levels_ksp_type": "chebyshev", "mg_levels_pc_type": "jacobi"},
}


def solve_classical(A, b, name: str, rtol: float = 1e-8) -> SolveResult:
    base = {"ksp_type": "cg", "ksp_norm_type": "unpreconditioned"}
    if name in GAMG_SMOOTHERS:
        opts = {**base, "pc_type": "gamg", **GAMG_SMOOTHERS[name]}
        return solve(A, b, opts, rtol=rtol, name=name, raise_unconverged=False)
    return solve(A, b, name, rtol=rtol, raise_unconverged=False)
