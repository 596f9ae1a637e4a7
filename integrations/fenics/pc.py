"""The neural preconditioner for DOLFINx operators, also reachable from petsc_options alone.

``accel.accelerate`` uses this context with a transfer it built from the function space. Given only options,

    petsc_options = {"ksp_type": "fcg", "ksp_fcg_mmax": 2, "ksp_fcg_truncation_type": "standard",
                     "ksp_norm_type": "unpreconditioned", "pc_type": "python",
                     "pc_python_type": "accel.integrations.fenics.pc.FenicsNeuralPC"}

it finds the DOLFINx solve that is running it at set-up and builds the box-mesh transfer from its function space:
the Python frames that called into PETSc are those of ``LinearProblem.solve`` / 0.10 ``NonlinearProblem.solve``
(whose ``self`` owns the operator) or ``NewtonSolver.solve(u)`` (which owns the operator and receives the unknown
``u``). The match is the operator's own PETSc handle; nothing travels through globals and no process-wide object
scan is made.
"""
from __future__ import annotations

import logging
import sys

from accel.errors import GridError
from accel.integrations.petsc.pc import NeuralPC, _reported

log = logging.getLogger(__name__)

_MAX_FRAMES = 64  # the DOLFINx solve is a few frames above the PC; deeper means it is not on the stack


def space_for_operator(A, frame=None):
    """The function space of the DOLFINx solve on the call stack whose matrix is ``A`` (same PETSc handle), or
    None when no such solve called into PETSc (e.g. a KSP solved directly, or a call from C)."""
    fem_petsc = sys.modules.get("dolfinx.fem.petsc")
    if fem_petsc is None:
        return None
    problems = tuple(k for k in (getattr(fem_petsc, "LinearProblem", None), getattr(fem_petsc, "NonlinearProblem", None))
                     if isinstance(k, type))
    newton = getattr(sys.modules.get("dolfinx.nls.petsc"), "NewtonSolver", None)
    handle = A.handle
    frame = frame or sys._getframe(1)
    for _ in range(_MAX_FRAMES):
        if frame is None:
            return None
        owner = frame.f_locals.get("self")
        if owner is not None and _matrix_handle(owner) == handle:
            if problems and isinstance(owner, problems):  # LinearProblem (every version), 0.10 NonlinearProblem
                u = getattr(owner, "u", None)
                if hasattr(u, "function_space"):
                    return u.function_space
            if isinstance(newton, type) and isinstance(owner, newton):  # 0.5-0.9: NewtonSolver.solve(u)
                u = frame.f_locals.get("u")
                if hasattr(u, "function_space"):
                    return u.function_space
        frame = frame.f_back
    return None


def _matrix_handle(owner):
    mat = getattr(owner, "_A", None) or getattr(owner, "A", None)  # 0.5: _A; 0.10: A
    return getattr(mat, "handle", None)


class FenicsNeuralPC(NeuralPC):
    """NeuralPC that maps DOLFINx DOFs to the grid itself (grid components only; matrix components need no grid);
    boundary rows use the operator's diagonal."""

    @_reported
    def setUp(self, pc):
        if self.transfer is not None and hasattr(self.transfer, "set_operator"):
            self.transfer.set_operator(pc.getOperators()[1])
        super().setUp(pc)

    def _grid(self, pc, A):
        if self.transfer is None and self.component.describe(None).layout == "grid":
            error = self._box_transfer(A)
            if error is not None:
                return None, None, error
        return super()._grid(pc, A)

    def _box_transfer(self, A) -> GridError | None:
        """Build the transfer from the space of the DOLFINx solve running this PC; the error (not raised) if none."""
        from .transfer import BoxGridTransfer

        V = space_for_operator(A)
        if V is None:
            return GridError("FenicsNeuralPC found no DOLFINx LinearProblem owning this operator (nor a "
                             "NewtonSolver/NonlinearProblem solving with it) on the call stack; use "
                             "accel.accelerate(problem_or_ksp, space=V) instead (it works for every solver)")
        message = None
        try:
            self.transfer = BoxGridTransfer(V)
        except GridError as exc:
            message = str(exc)  # a new error below: the caught one's traceback would keep this frame alive
        if message is not None:
            return GridError(message)
        self._own_transfer = True
        self.transfer.set_operator(A)
        log.info("FenicsNeuralPC: grid %s from the DOLFINx problem's function space", self.transfer.shape)
        return None
