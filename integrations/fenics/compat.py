"""DOLFINx version differences, in one place.

Tested on the installed DOLFINx 0.5.2. The 0.9/0.10 branches follow those versions' documented API and are kept
apart (each ``if`` names the version it serves):

* 0.5: ``fem.FunctionSpace(mesh, ("Lagrange", 1))``, ``u.vector``, ``LinearProblem(a, L, bcs, petsc_options=...)``
  with an automatic prefix ``dolfinx_solve_<id>``, ``dolfinx.nls.petsc.NewtonSolver`` whose KSP is ``krylov_solver``.
* 0.9: ``fem.functionspace``, ``import dolfinx.fem.petsc`` is needed explicitly, ``u.x.petsc_vec``;
  ``dolfinx.fem.petsc.NonlinearProblem`` + ``NewtonSolver`` (0.9) / SNES-based ``NonlinearProblem`` (0.10).
* 0.10: ``LinearProblem``/``NonlinearProblem`` need a non-empty ``petsc_options_prefix`` and delete their options
  from the global database after ``setFromOptions`` (so a Python PC must read options in ``setFromOptions``).
"""
from __future__ import annotations

import re

from accel.errors import SolverConfigError


def _parse(version: str) -> tuple[int, int, int]:
    nums = [int(n) for n in re.findall(r"\d+", version)[:3]]
    return tuple(nums + [0] * (3 - len(nums)))  # type: ignore[return-value]


def dolfinx_version() -> tuple[int, int, int]:
    import dolfinx

    return _parse(dolfinx.__version__)


def requires_options_prefix(version: tuple[int, int, int] | None = None) -> bool:
    """DOLFINx 0.10 made ``petsc_options_prefix`` mandatory (and non-empty) for its problem classes."""
    return (version or dolfinx_version()) >= (0, 10, 0)


def check_options_prefix(prefix: str | None, version: tuple[int, int, int] | None = None) -> None:
    """Raise SolverConfigError for an empty problem prefix on versions that require one."""
    version = version or dolfinx_version()
    if requires_options_prefix(version) and not prefix:
        raise SolverConfigError(
            f"DOLFINx {'.'.join(map(str, version))} needs a non-empty petsc_options_prefix for LinearProblem / "
            "NonlinearProblem (options are looked up and then deleted under it); pass e.g. "
            "petsc_options_prefix='heat_' when you build the problem")


def function_space(mesh, element=("Lagrange", 1)):
    """The scalar function space constructor of this version."""
    from dolfinx import fem

    if dolfinx_version() >= (0, 8, 0):  # 0.8+: lower-case factory
        return fem.functionspace(mesh, element)
    return fem.FunctionSpace(mesh, element)


def petsc_vec(u):
    """The PETSc Vec wrapping a Function's values."""
    if dolfinx_version() >= (0, 8, 0):  # 0.8+: u.vector removed
        return u.x.petsc_vec
    return u.vector


def linear_problem(a, L, bcs, petsc_options=None, petsc_options_prefix=None, u=None):
    """``dolfinx.fem.petsc.LinearProblem`` with this version's signature (prefix checked where it is required)."""
    import dolfinx.fem.petsc as fem_petsc  # 0.9+: not imported by ``import dolfinx.fem``

    kwargs = {"bcs": bcs, "petsc_options": dict(petsc_options or {})}
    if u is not None:
        kwargs["u"] = u
    if requires_options_prefix():  # 0.10
        check_options_prefix(petsc_options_prefix)
        kwargs["petsc_options_prefix"] = petsc_options_prefix
    return fem_petsc.LinearProblem(a, L, **kwargs)


def problem_ksp(problem):
    """The KSP inside a LinearProblem (``solver`` on every version)."""
    return problem.solver


def problem_space(problem):
    """The trial space of a LinearProblem (the space of its solution function)."""
    return problem.u.function_space


def newton_ksp(solver):
    """The KSP a Newton solve uses: 0.5-0.9 ``NewtonSolver.krylov_solver``; 0.10 SNES-based problem ``.solver``."""
    if hasattr(solver, "krylov_solver"):  # dolfinx.nls.petsc.NewtonSolver (0.5 .. 0.9)
        return solver.krylov_solver
    snes = getattr(solver, "solver", solver)  # 0.10 NonlinearProblem.solver is a SNES
    if hasattr(snes, "getKSP"):
        return snes.getKSP()
    raise SolverConfigError(f"cannot find the linear solver inside {type(solver).__name__}; pass a NewtonSolver, "
                            "a SNES, a 0.10 NonlinearProblem or its KSP")


def element_info(V) -> tuple[str, int, tuple[int, ...]]:
    """(family, degree, value shape) of a function space's element on this version."""
    el = V.ufl_element()
    if dolfinx_version() >= (0, 8, 0):  # basix.ufl elements: properties, family as a basix enum
        family = el.basix_element.family.name if hasattr(el, "basix_element") else str(el.family_name)
        return family, int(el.degree), tuple(V.value_shape)
    return el.family(), el.degree(), tuple(el.value_shape())  # 0.5: legacy UFL element methods
