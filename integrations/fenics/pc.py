"""The neural preconditioner for DOLFINx operators, also reachable from petsc_options alone.

``accel.accelerate`` uses this context with a transfer it built from the function space. Given only options,

    petsc_options = {"ksp_type": "fcg", "ksp_fcg_mmax": 2, "ksp_fcg_truncation_type": "standard",
                     "ksp_norm_type": "unpreconditioned", "pc_type": "python",
                     "pc_python_type": "accel.integrations.fenics.pc.FenicsNeuralPC"}

it finds the DOLFINx problem that owns the operator (a LinearProblem, or a 0.10 NonlinearProblem) at set-up,
and builds the box-mesh transfer from that problem's function space. Nothing travels through globals: the match is
the operator's own PETSc handle. A 0.5 NewtonSolver owns its matrix but not its problem: there the one live
NonlinearProblem whose space has the matrix's size is taken (with several such problems, use accel.accelerate).
"""
from __future__ import annotations

import gc
import logging
import sys
import warnings

from accel.errors import GridError
from accel.integrations.petsc.pc import NeuralPC

log = logging.getLogger(__name__)


def space_for_operator(A):
    """The function space of the live DOLFINx problem whose matrix is ``A`` (same PETSc handle), or None."""
    if "dolfinx.fem.petsc" not in sys.modules:
        return None
    fem_petsc = sys.modules["dolfinx.fem.petsc"]
    kinds = tuple(k for k in (getattr(fem_petsc, "LinearProblem", None), getattr(fem_petsc, "NonlinearProblem", None))
                  if isinstance(k, type))
    handle = A.handle
    with warnings.catch_warnings():  # isinstance() on some lazily deprecated objects (torch) warns
        warnings.simplefilter("ignore")
        candidates = [obj for obj in gc.get_objects() if isinstance(obj, kinds)]
    for obj in candidates:
        mat = getattr(obj, "_A", None) or getattr(obj, "A", None)  # 0.5: _A; 0.10: A
        u = getattr(obj, "u", None)
        if mat is not None and getattr(mat, "handle", None) == handle and hasattr(u, "function_space"):
            return u.function_space
    return _newton_space(A, kinds)


def _newton_space(A, kinds):
    """0.5-0.9 NewtonSolver: it owns the matrix but not the problem, so take the one live NonlinearProblem whose
    Jacobian's space has the matrix's size (None when there is none, or more than one)."""
    nls = sys.modules.get("dolfinx.nls.petsc")
    solver_type = getattr(nls, "NewtonSolver", None)
    if not isinstance(solver_type, type):
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        objects = gc.get_objects()
        owns = any(isinstance(o, solver_type) and getattr(getattr(o, "_A", None), "handle", None) == A.handle
                   for o in objects)
        problems = [o for o in objects if isinstance(o, kinds) and hasattr(o, "a") and not hasattr(o, "u")]
    if not owns:
        return None
    size = A.getSize()[0]
    cpp_spaces = []
    for p in problems:
        V = p.a.function_spaces[0]  # the C++ space; the Python one wraps it
        if V.dofmap.index_map.size_global * V.dofmap.index_map_bs == size:
            cpp_spaces.append(V)
    if len(cpp_spaces) != 1:
        return None
    fem = sys.modules["dolfinx.fem"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for o in gc.get_objects():
            if isinstance(o, fem.FunctionSpace) and getattr(o, "_cpp_object", None) is cpp_spaces[0]:
                return o
    return None


class FenicsNeuralPC(NeuralPC):
    """NeuralPC that maps DOLFINx DOFs to the grid itself; boundary rows use the operator's diagonal."""

    def setUp(self, pc):
        P = pc.getOperators()[1]
        if self.transfer is None:
            from .transfer import BoxGridTransfer

            V = space_for_operator(P)
            if V is None:
                raise GridError("FenicsNeuralPC found no DOLFINx LinearProblem owning this operator (nor a single "
                                "NonlinearProblem of its size behind a NewtonSolver); use "
                                "accel.accelerate(problem_or_ksp, space=V) instead (it works for every solver)")
            self.transfer = BoxGridTransfer(V)
            self._own_transfer = True
            log.info("FenicsNeuralPC: grid %s from the DOLFINx problem's function space", self.transfer.shape)
        if hasattr(self.transfer, "set_operator"):
            self.transfer.set_operator(P)
        super().setUp(pc)
