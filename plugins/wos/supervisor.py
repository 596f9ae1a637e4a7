"""The ``wos`` supervisor component: what ``get_registry().create("supervisor", "wos", ...)`` builds."""
from __future__ import annotations

from .domains import Domain
from .estimator import WalkOnSpheres, WoSSettings
from .problems import get_problem


def create(problem: str | None = None, domain: Domain | None = None, boundary=None, source=None, comm=None,
           **settings) -> WalkOnSpheres:
    """A WalkOnSpheres estimator, from a named problem (see ``accel wos --list``) or an explicit domain and data.

    settings: any WoSSettings field (epsilon, walks, max_steps, seed, dtype, block_size, on_overrun).
    """
    if problem is not None:
        p = get_problem(problem)
        domain = domain or p.domain
        boundary = boundary or p.boundary
        source = source if source is not None else p.source
    if domain is None or boundary is None:
        raise TypeError("the wos supervisor needs problem=NAME, or domain= and boundary= (and optionally source=)")
    return WalkOnSpheres(domain, boundary, source, WoSSettings(**settings), comm=comm)
