"""A surrogate's prediction as the initial guess of any PETSc KSP.

    from accel.integrations.petsc.guess import attach_guess
    report = attach_guess(ksp, "darcy_fno", inputs=a, b=b, x=x)   # fills x, sets InitialGuessNonzero
    ksp.solve(b, x)

The guess is checked before the solve: its residual ``||b - A x0|| / ||b||`` is logged (logger
``accel.integrations.petsc.guess``) and returned; a guess whose residual is not below the zero guess's (``||b||``)
is discarded with a warning (x is zeroed and the KSP goes back to a zero initial guess), so a surrogate can never
make a solve start worse than cold.

Why the caller passes ``b`` and ``x``: petsc4py 3.18 has no pre-solve hook on a KSP, so the guess is placed in x
right before the caller's ``ksp.solve(b, x)``. PETSc measures rtol against ``||b||`` whenever the initial guess is
nonzero (KSPConvergedDefault), so cold and warm solves stop at the same absolute residual.

From the options database (``-[prefix]accel_guess MODEL`` where MODEL is an .onnx path, a shipped model name or a
registered surrogate component such as ``darcy``, ``-[prefix]accel_guess_threads N``,
``-[prefix]accel_guess_providers CPU``, ``-[prefix]accel_guess_problem FAMILY``): :func:`guess_from_options` reads them
for the KSP's prefix and does the same as attach_guess, or nothing when ``-accel_guess`` is unset. The options
choose the surrogate, but the surrogate's input (e.g. the coefficient field of a parametric family) is known only
to the application, so one line of Python (``guess_from_options(ksp, inputs, b, x)``) is still needed: an unmodified
C program cannot get a surrogate guess from options alone.

Layout: the prediction on the grid is copied into x in C order (the PETSc global ordering of a structured grid
numbered row by row, as a DMDA-free assembly like the Darcy generator does), each rank taking its owned range; pass
``transfer`` (a GridTransfer) for any other ordering. Under MPI the surrogate runs on rank 0 only.
"""
from __future__ import annotations

import functools
import logging
import time
import warnings
from dataclasses import dataclass

from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)


class GuessWarning(UserWarning):
    """A surrogate guess was discarded because its residual is not better than the zero guess."""


@dataclass
class GuessReport:
    residual: float  # ||b - A x0|| / ||b|| of the surrogate guess
    used: bool  # False when the guess was discarded
    predict_seconds: float  # surrogate inference (rank 0)
    check_seconds: float  # filling x and the residual check
    energy: float = 0.0  # 1/2 x0.A x0 - b.x0 (negative: better than the zero guess in the A-norm)
    scale: float = 1.0  # factor applied to the prediction (energy-optimal for symmetric operators)


# KSPs for symmetric positive definite operators: the guess is judged (and scaled) by its energy, which is the
# quantity these methods minimise; any other KSP judges it by its residual norm.
ENERGY_KSP = ("cg", "pipecg", "pipecgrr", "groppcg", "fcg", "pipefcg", "nash", "stcg", "gltr", "cr", "pipecr")


def _surrogate(guess, threads: int = 1, providers: str = "CPU", problem: str | None = None):
    if isinstance(guess, (str, Path)):
        return _named_surrogate(str(guess), threads, providers, problem)
    return guess


@functools.lru_cache(maxsize=8)
def _named_surrogate(guess: str, threads: int, providers: str, problem: str | None):
    """Surrogates chosen by name are built once per process (an ONNX session costs 0.1-0.5 s to build); a model
    file rewritten while the process runs is not reloaded."""
    from accel.plugins.neural_operator.surrogate import Surrogate

    if not guess.endswith(".onnx"):  # a registered surrogate component, e.g. "darcy"
        from accel.registry import get_registry

        reg = get_registry()
        if any(c.name == guess for c in reg.components("surrogate")):
            sur = reg.create("surrogate", guess, providers=providers, threads=threads)
            if problem is not None and getattr(sur, "problem", problem) != problem:
                from accel.errors import ModelError

                raise ModelError(f"surrogate {guess!r} was trained on {sur.problem!r}, not {problem!r}")
            return sur
    return Surrogate(guess, problem=problem, providers=providers, threads=threads)


def _predict(sur, inputs) -> np.ndarray:
    if callable(getattr(sur, "predict", None)):
        return np.asarray(sur.predict(inputs))
    return np.asarray(sur(inputs))


def attach_guess(ksp, guess, inputs, b, x, *, transfer=None, threads: int = 1, providers: str = "CPU",
                 problem: str | None = None, criterion: str = "auto", max_residual: float = 1.0) -> GuessReport:
    """Fill ``x`` with the surrogate's prediction for ``inputs`` and make ``ksp`` start from it.

    guess: a Surrogate, an object with ``predict(inputs)``, a callable ``inputs -> field``, or a model path /
    shipped model name. criterion: "energy" (SPD operators; the default for CG-type KSPs) scales the guess by the
    energy-optimal factor b.x0 / x0.A x0 and discards it unless its energy is below the zero guess's;
    "residual" (the default for other KSPs) discards a guess whose relative residual is >= ``max_residual``
    (1.0: the zero guess). The residual is logged and returned either way.
    """
    comm = ksp.getComm().tompi4py()
    rank = comm.Get_rank()
    t0 = time.perf_counter()
    field = None
    error = None
    if rank == 0:
        try:
            field = _predict(_surrogate(guess, threads, providers, problem), inputs)
        except Exception as exc:  # re-raised on every rank so no rank hangs in the collective calls below
            error = exc
    if comm.Get_size() > 1:
        failed = comm.bcast(error is not None, root=0)
        if failed:
            if error is not None:
                raise error
            raise RuntimeError("the surrogate guess failed on rank 0 (see its error)")
    elif error is not None:
        raise error
    t1 = time.perf_counter()
    if transfer is not None:
        # rows off the grid (eliminated Dirichlet unknowns) take b_i / A_ii: the boundary value itself
        transfer.from_grid(None if field is None else np.ascontiguousarray(field, np.float64).reshape(transfer.shape),
                           x, b)
    else:
        _fill_natural(x, field, comm)
    A = ksp.getOperators()[0]
    if criterion == "auto":
        criterion = "energy" if ksp.getType() in ENERGY_KSP else "residual"
    if criterion not in ("energy", "residual"):
        raise ValueError(f"unknown guess criterion {criterion!r}; valid: auto, energy, residual")
    Ax = b.duplicate()
    A.mult(x, Ax)
    bx, xAx = b.dot(x), x.dot(Ax)
    scale = 1.0
    if criterion == "energy" and xAx > 0 and bx > 0:
        # the energy-optimal multiple of the guess (one line search, free: A x0 is already known)
        scale = bx / xAx
        x.scale(scale)
        Ax.scale(scale)
    r = Ax  # r = b - A x0, reusing the A x0 buffer
    r.aypx(-1.0, b)
    bnorm = b.norm()
    residual = r.norm() / bnorm if bnorm > 0 else float(r.norm())
    # energy of the guess relative to the zero guess: J(x0) = x0.(A x0)/2 - b.x0 = -x0.(b + r0)/2 (J(0) = 0),
    # and J(x0) < 0 exactly when x0 is closer to the solution than 0 in the A-norm (what CG minimises)
    energy = -0.5 * (x.dot(b) + x.dot(r))
    r.destroy()
    finite = bool(np.isfinite(residual) and np.isfinite(energy))
    better = energy < 0 if criterion == "energy" else residual < max_residual
    used = finite and better
    if used:
        ksp.setInitialGuessNonzero(True)
        log.info("surrogate initial guess: relative residual %.3e, energy %.3e (scaled by %.4f; inference %.1f ms)",
                 residual, energy, scale, (t1 - t0) * 1e3)
    else:
        x.zeroEntries()
        ksp.setInitialGuessNonzero(False)
        why = (f"its energy 1/2 x0.A x0 - b.x0 = {energy:.3e} is not below the zero guess's 0" if criterion == "energy"
               else f"its relative residual ||b - A x0||/||b|| = {residual:.3e} is not below {max_residual:g} "
                    "(the zero guess has 1)")
        msg = (f"surrogate initial guess discarded: {why}; solving from zero. The surrogate was probably trained on "
               "another problem or parameter range")
        log.warning("%s", msg)
        warnings.warn(msg, GuessWarning, stacklevel=2)
    return GuessReport(float(residual), used, t1 - t0, time.perf_counter() - t1, float(energy), float(scale))


def _fill_natural(x, field, comm) -> None:
    """Copy a C-ordered grid (on rank 0) into x, each rank taking its owned range of the global numbering."""
    n = x.getSize()
    if comm.Get_rank() == 0:
        flat = np.asarray(field, np.float64).ravel()
        size = flat.size
    else:
        flat, size = None, None
    size = comm.bcast(size, root=0)
    if size != n:
        raise ValueError(f"the surrogate predicted {size} values but the solution vector has {n}; pass inputs on the "
                         "solver's grid, or a GridTransfer (transfer=...) for another layout")
    if comm.Get_size() == 1:
        x.setArray(flat)
        return
    ranges = comm.gather(x.getOwnershipRange(), root=0)
    chunks = [flat[a:b] for a, b in ranges] if flat is not None else None
    x.setArray(comm.scatter(chunks, root=0))


def guess_from_options(ksp, inputs, b, x, *, transfer=None) -> GuessReport | None:
    """:func:`attach_guess` configured by ``-[prefix]accel_guess*`` options; None (x untouched) when unset."""
    from petsc4py import PETSc

    opts = PETSc.Options(ksp.getOptionsPrefix() or "")
    if not opts.hasName("accel_guess"):
        return None
    model = opts.getString("accel_guess")
    if model in ("", "none", "0", "false"):
        return None
    return attach_guess(ksp, model, inputs, b, x, transfer=transfer, threads=opts.getInt("accel_guess_threads", 1),
                        providers=opts.getString("accel_guess_providers", "CPU"),
                        problem=opts.getString("accel_guess_problem", "") or None)
