"""The neural preconditioner as a PETSc Python PC, selectable from the options database alone.

    -ksp_type fcg -ksp_fcg_mmax 2 -ksp_fcg_truncation_type standard -ksp_norm_type unpreconditioned
    -pc_type python -pc_python_type accel.NeuralPC
"""
from __future__ import annotations

import logging
import time
import traceback
import warnings
from dataclasses import dataclass

import numpy as np

from accel.errors import AccelError, GridError, SolverConfigError
from accel.registry import get_registry
from accel.runtime import RuntimeSettings

from .cycle import MultilevelCycle
from .hierarchy import auto_levels, coarse, interpolation, petsc_interpolation
from .dm import attached_dm
from .options import FLEXIBLE_KSP, ksp_type_from_options, read_options
from .transfer import GridTransfer, NaturalGridTransfer, dmda_grid_shape, parse_grid_option

log = logging.getLogger(__name__)


@dataclass
class NeuralPCOptions:
    plugin: str = "dcdm"
    model: str = ""
    problem: str = ""
    providers: str = "CPU"
    threads: int = 1
    fallback: str = "jacobi"
    grid: str = ""
    cycle_pre: int = -1
    cycle_post: int = -1
    cycle_omega: float = -1.0
    smoother: str = "jacobi"
    levels: int = -1
    interpolation: str = ""
    coarse_operator: str = "aggregation"
    check_ksp: bool = True


def _logged(method):
    """PETSc called from C shows only 'error code -1': log the Python traceback before re-raising."""

    def wrapper(self, pc, *args):
        try:
            return method(self, pc, *args)
        except Exception:
            log.error("accel NeuralPC.%s failed:\n%s", method.__name__, traceback.format_exc())
            raise

    wrapper.__name__ = method.__name__
    wrapper.__doc__ = method.__doc__
    return wrapper


class NeuralPC:
    """A learned preconditioner (a registered ``preconditioner`` component, DCDM by default) as a PETSc PC.

    Options, all under the PC's prefix (``-{prefix}accel_...``), read in ``setFromOptions``:

    ``-accel_plugin NAME``       preconditioner component (default ``dcdm``; ``accel plugins`` lists them)
    ``-accel_model PATH``        ONNX model; default: the shipped model for the problem's dimension (logged)
    ``-accel_problem NAME``      pick the shipped model trained on NAME (e.g. ``obstacles2d``)
    ``-accel_providers LIST``    ONNX Runtime providers in order, e.g. ``CUDA,CPU`` (default ``CPU``); CUDA that cannot
                                 load is an error
    ``-accel_threads N``         ONNX Runtime threads on rank 0 (default 1)
    ``-accel_fallback PCTYPE``   PC used for the rest of the solve if the network returns NaN/Inf, with a warning
                                 (default ``jacobi``; ``none`` makes that an error); the next solve starts with the
                                 network again
    ``-accel_grid NX,NY[,NZ]``   grid of a plain matrix in natural order (x fastest); not needed with a DMDA or a
                                 transfer set by ``accel.accelerate``
    ``-accel_cycle_pre N``, ``-accel_cycle_post N``, ``-accel_cycle_omega W``
                                 Jacobi sweeps around the network and their weight (default: as trained, from the
                                 model's metadata; 0 and 0 give plain DCDM)
    ``-accel_smoother NAME``     the sweeps around the network: ``jacobi`` (default: damped Jacobi with the cycle's
                                 omega, as trained; iteration counts independent of the number of ranks) or a PETSc PC
                                 type from ``sor``, ``icc``, ``ilu``, ``bjacobi``, ``asm`` applied as Richardson sweeps
                                 and configured under ``-{prefix}accel_smooth_`` (e.g. ``-accel_smooth_pc_sor_omega``).
                                 ``sor`` (symmetric, processor-local under MPI) smooths much more per sweep than Jacobi
                                 for about the cost of one more matrix product; its counts depend on the partition
    ``-accel_levels N``          grid levels above the network's (default -1: as many halvings as bring the grid
                                 down to the model's training grid; 0 runs the network's cycle on the fine grid)
    ``-accel_interpolation K``   grid transfer between levels: ``linear`` or ``constant`` (default: the model's
                                 recommendation from its metadata, else ``linear``; the obstacles model asks for
                                 ``constant``, which with the decoupled solid cells left out of the transfers keeps its
                                 iterations flat across grids)
    ``-accel_coarse_operator K`` coarse operators: ``aggregation`` (default: Q^T A Q with piecewise-constant Q, which
                                 keeps the fine stencil's shape, the operator the network was trained on, and is cheap
                                 to form) or ``galerkin`` (P^T A P with the interpolation itself)
    ``-accel_check_ksp BOOL``    refuse non-flexible KSP types, at set-up from the options database and at every
                                 solve from the KSP itself (default true)

    The network is nonlinear: use a flexible Krylov method (fcg, pipefcg, fgmres, gcr). Under MPI the residual is
    gathered to rank 0, the network runs once there, and the result is scattered back, so iteration counts do not
    depend on the number of ranks. Set ``transfer`` (a GridTransfer) before set-up to map other orderings.
    """

    def __init__(self):
        self.opts: NeuralPCOptions | None = None
        self.transfer: GridTransfer | None = None
        self.component_kwargs: dict = {}  # extra arguments for the component's factory (set from Python)
        self.guess_hook = None           # set from Python: (ksp, b, x) -> GuessReport, run before every solve
        self.last_guess = None
        self._own_transfer = False       # destroy() frees the transfer
        self._natural_transfer = False   # built by set-up from a DMDA or -accel_grid (rebuilt at every set-up)
        self.component = None
        self._component_key = None
        self.cycle: MultilevelCycle | None = None
        self.levels = 0
        self.interpolation = ""
        self.fallback_pc = None
        self.using_fallback = False
        self.applies = 0
        self.apply_time = 0.0
        self.transfer_time = 0.0
        self.setup_time = 0.0
        self._grid_in = self._grid_out = None

    # -- PETSc callbacks -------------------------------------------------------------------------------------------
    @_logged
    def setFromOptions(self, pc):
        self.opts = read_options_prefixed(pc)

    @_logged
    def setUp(self, pc):
        t0 = time.perf_counter()
        if self.opts is None:
            self.opts = read_options_prefixed(pc)
        o = self.opts
        if o.check_ksp:
            ksp_type = ksp_type_from_options(pc.getOptionsPrefix())
            if ksp_type is not None and ksp_type not in FLEXIBLE_KSP:
                raise _not_flexible(ksp_type)
        A, _ = pc.getOperators()
        self._destroy_solver_parts()
        comm = A.getComm()
        mpi = self._mpi = comm.tompi4py()
        # Only rank 0 holds the network; every rank must agree on success before any collective call.
        info = None
        with _agree(mpi, "creating the preconditioner component"):
            if comm.getRank() == 0:
                settings = RuntimeSettings.parse(o.providers, o.threads)
                kwargs = {"model": o.model or None, "runtime": settings, **self.component_kwargs}
                if o.problem:
                    kwargs["problem"] = o.problem
                key = (o.plugin, o.model, o.problem, o.providers, o.threads, repr(sorted(self.component_kwargs)))
                if self.component is None or key != self._component_key:
                    self.component = get_registry().create("preconditioner", o.plugin, **kwargs)
                    self._component_key = key
                # else: a new operator for the same model (a Newton step, a new time step's matrix): keep the
                # component, whose set-up below then only refreshes what depends on the operator
        preset = self.transfer is not None and not self._natural_transfer
        shape, dmda = (self.transfer.shape, None) if preset else self._grid(pc, A)
        with _agree(mpi, "reading the model"):
            if comm.getRank() == 0:
                describe = getattr(self.component, "describe", None)
                info = describe(len(shape)) if describe else {"cycle": getattr(self.component, "cycle", {})}
        info = mpi.bcast(info, root=0)
        levels = o.levels
        if levels < 0:
            levels = auto_levels(shape, info.get("train_grid"), info.get("grid_multiple", 1))
        if levels and preset:
            log.info("the preset transfer %s maps to one grid only: the network runs at the fine level",
                     type(self.transfer).__name__)
            levels = 0
        interp_kind = o.interpolation or (info.get("cycle") or {}).get("interpolation", "linear")
        if interp_kind not in ("linear", "constant"):
            raise SolverConfigError(f"-accel_interpolation {interp_kind!r}: valid are linear, constant")
        if o.coarse_operator not in ("galerkin", "aggregation"):
            raise SolverConfigError(f"-accel_coarse_operator {o.coarse_operator!r}: valid are galerkin, aggregation")
        interps, coarsening, net_shape, template = [], [], shape, A.createVecLeft()
        try:
            for level in range(levels):
                rows = None
                if level == 0 and dmda is not None:
                    r0, r1 = template.getOwnershipRange()
                    rows = dmda.getAO().petsc2app(np.arange(r0, r1, dtype=PETSc_int()))
                interps.append(petsc_interpolation(interpolation(net_shape, interp_kind), template, rows))
                if o.coarse_operator == "aggregation" and interp_kind != "constant":
                    coarsening.append(petsc_interpolation(interpolation(net_shape, "constant"), template, rows))
                net_shape = coarse(net_shape)
                template.destroy()
                template = interps[-1].createVecRight()
            if not preset:
                if self.transfer is not None:
                    self.transfer.destroy()
                self.transfer = NaturalGridTransfer(template, net_shape, dmda=dmda if levels == 0 else None)
                self._own_transfer = self._natural_transfer = True
        finally:
            template.destroy()
        cycle = info.get("cycle", {}) or {}
        pre = o.cycle_pre if o.cycle_pre >= 0 else int(cycle.get("pre", 0))
        post = o.cycle_post if o.cycle_post >= 0 else int(cycle.get("post", 0))
        omega = o.cycle_omega if o.cycle_omega > 0 else float(cycle.get("omega", 0.67))
        if pre + post < cycle.get("min_sweeps", 0):
            for P in interps + coarsening:
                P.destroy()
            raise SolverConfigError(
                f"the model works below the grid resolution and needs at least {cycle['min_sweeps']} Jacobi sweep(s) "
                f"around it (got -accel_cycle_pre {pre} -accel_cycle_post {post}); keep the defaults from its metadata")
        smoother = _smoother_factory(o.smoother, (pc.getOptionsPrefix() or "") + "accel_smooth_")
        self.cycle = MultilevelCycle(A, interps, pre, post, omega, coarsening, smoother)
        # The operator's diagonal on the network's grid: an input for models that need to see walls and obstacles.
        net_op = self.cycle.coarsest_operator
        diag_vec = net_op.createVecLeft()
        net_op.getDiagonal(diag_vec)
        diag = np.zeros(net_shape) if comm.getRank() == 0 else None
        self.transfer.to_grid(diag_vec, diag)
        diag_vec.destroy()
        with _agree(mpi, "setting up the network"):
            if comm.getRank() == 0:
                self.component.setup(net_shape, diagonal=np.array(diag), operator=net_op)
                view = self.transfer.grid_view()
                # The component reads its whole input before writing, so input and output may share the view.
                self._grid_in = view if view is not None else np.zeros(net_shape)
                self._grid_out = view if view is not None else np.zeros(net_shape)
        self.levels = levels
        self.interpolation = interp_kind if levels else ""
        self.using_fallback = False
        self.setup_time = time.perf_counter() - t0
        if comm.getRank() == 0:
            log.info("neural PC ready: plugin %s, model %s, grid %s, %d level(s) above the network's grid %s, "
                     "cycle pre=%d post=%d, %s smoother, omega=%.2f (%.3f s)", o.plugin,
                     getattr(self.component, "model", "?"), shape, levels, net_shape, pre, post, o.smoother, omega,
                     self.setup_time)

    @_logged
    def preSolve(self, pc, ksp, b, x):
        """Every solve: refuse a non-flexible KSP however it was set, and start again with the network."""
        if self.opts.check_ksp and ksp.getType() not in FLEXIBLE_KSP:
            raise _not_flexible(ksp.getType())
        if self.using_fallback:
            self.fallback_pc.destroy()
            self.fallback_pc = None
            self.using_fallback = False
        if self.guess_hook is not None:
            # KSPSolve has already zeroed x for a zero initial guess; the hook fills x and sets the flag, or zeroes
            # x and clears it when the guess is no better than zero
            self.last_guess = self.guess_hook(ksp, b, x)

    @_logged
    def apply(self, pc, x, y):
        t0 = time.perf_counter()
        if self.using_fallback:
            self.fallback_pc.apply(x, y)
            return
        if not self.cycle.apply(x, y, self._network):
            self._switch_to_fallback(pc)
            self.fallback_pc.apply(x, y)
        self.applies += 1
        self.apply_time += time.perf_counter() - t0

    @_logged
    def applyTranspose(self, pc, x, y):
        # The cycle is not symmetric in general; its transpose is approximated by the cycle itself, which is what
        # flexible methods that call it (none of the recommended ones do) can use.
        self.apply(pc, x, y)

    def view(self, pc, viewer):
        o = self.opts or NeuralPCOptions()
        viewer.printfASCII(f"  accel NeuralPC: plugin {o.plugin}, model {getattr(self.component, 'model', '(rank 0)')}\n")
        if self.transfer is not None:
            viewer.printfASCII(f"  grid {'x'.join(map(str, self.transfer.shape))}, transfer {type(self.transfer).__name__}\n")
        if self.cycle is not None:
            viewer.printfASCII(f"  {o.smoother} sweeps pre {self.cycle.pre} post {self.cycle.post} omega {self.cycle.omega}\n")
        if self.applies:
            viewer.printfASCII(f"  {self.applies} applies, {1e3 * self.apply_time / self.applies:.2f} ms each\n")
        if self.using_fallback:
            viewer.printfASCII(f"  using fallback PC {o.fallback} after a non-finite network output\n")

    def reset(self, pc):
        self._destroy_solver_parts()

    def destroy(self, pc):
        self._destroy_solver_parts()
        release = getattr(self.guess_hook, "destroy", None)
        if release is not None:
            release()
        self.guess_hook = None
        if self._own_transfer and self.transfer is not None:
            self.transfer.destroy()
            self.transfer = None

    # -- internals -------------------------------------------------------------------------------------------------
    def _grid(self, pc, A):
        """(C-ordered grid shape, DMDA or None) of a problem in natural or DMDA order."""
        dm = attached_dm(pc)
        if dm is not None and dm.getType() == "da":
            return dmda_grid_shape(dm), dm
        if self.opts.grid:
            shape = parse_grid_option(self.opts.grid)
            if int(np.prod(shape)) != A.getSize()[0]:
                raise GridError(f"the operator has {A.getSize()[0]} rows but the grid {'x'.join(map(str, shape))} has "
                                f"{int(np.prod(shape))} points; fix -accel_grid (NX,NY[,NZ] with x first)")
            return shape, None
        raise GridError("the neural preconditioner cannot find the problem's grid: attach a DMDA to the KSP "
                        "(KSPSetDM), pass -accel_grid NX,NY[,NZ] for a matrix in natural order, or use "
                        "accel.accelerate() for a DOLFINx problem")

    def _network(self, res, c) -> bool:
        t0 = time.perf_counter()
        self.transfer.to_grid(res, self._grid_in)
        ok = True
        t1 = time.perf_counter()
        if self._grid_in is not None:
            self.component.apply(self._grid_in, self._grid_out)
            ok = bool(np.isfinite(self._grid_out.sum()))  # NaN/Inf anywhere make the sum non-finite; no temporary
        t2 = time.perf_counter()
        ok = self._mpi.bcast(ok, root=0)
        if ok:
            self.transfer.from_grid(self._grid_out, c, res)
        self.transfer_time += (t1 - t0) + (time.perf_counter() - t2)
        return ok

    def _switch_to_fallback(self, pc):
        from petsc4py import PETSc

        kind = self.opts.fallback
        if kind == "none":
            raise AccelError("the network returned NaN/Inf and -accel_fallback is none; retrain or check the input, "
                             "or set -accel_fallback jacobi")
        message = f"accel NeuralPC: the network returned NaN/Inf; using the {kind!r} PC for the rest of this solve"
        log.warning(message)
        warnings.warn(message, RuntimeWarning, stacklevel=2)
        A, P = pc.getOperators()
        fb = PETSc.PC().create(comm=pc.getComm())
        try:
            fb.setType(kind)
        except PETSc.Error as exc:
            fb.destroy()
            raise AccelError(f"-accel_fallback {kind!r} is not a PETSc PC type") from exc
        fb.setOperators(A, P)
        fb.setUp()
        self.fallback_pc = fb
        self.using_fallback = True

    def _destroy_solver_parts(self):
        if self.cycle is not None:
            self.cycle.destroy()
            self.cycle = None
        if self.fallback_pc is not None:
            self.fallback_pc.destroy()
            self.fallback_pc = None
        self.using_fallback = False

    # -- statistics --------------------------------------------------------------------------------------------------
    def stats(self) -> dict:
        """Times in seconds, summed over applies since set-up (rank 0 holds the network figures)."""
        comp = self.component
        return {
            "applies": self.applies,
            "levels": self.levels,
            "interpolation": self.interpolation,
            "setup": self.setup_time,
            "apply": self.apply_time,
            "network": getattr(comp, "ort_time", 0.0),
            "copies": getattr(comp, "copy_time", 0.0),
            "gather_scatter": self.transfer_time,
            "smoothing": self.cycle.smooth_time if self.cycle else 0.0,
        }


class _agree:
    """Run a block on the ranks that have work in it, then make every rank raise if any rank failed, so no rank is
    left waiting in a collective call that the failed one never makes."""

    def __init__(self, mpi, what: str):
        self.mpi, self.what = mpi, what

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        failed = self.mpi.allgather(None if exc is None else f"{type(exc).__name__}: {exc}")
        if exc is not None:
            return False  # re-raise the original exception on the rank that failed
        bad = [f for f in failed if f is not None]
        if bad:
            raise AccelError(f"neural preconditioner set-up failed on another rank while {self.what}: {bad[0]}")
        return False


def _not_flexible(ksp_type: str) -> SolverConfigError:
    return SolverConfigError(
        f"KSP type {ksp_type!r} cannot use the neural preconditioner: a network is a nonlinear preconditioner and "
        f"non-flexible Krylov methods stall with it. Use one of {', '.join(FLEXIBLE_KSP)} (DCDM: -ksp_type fcg "
        f"-ksp_fcg_mmax 2 -ksp_fcg_truncation_type standard -ksp_norm_type unpreconditioned)")


SMOOTHERS = ("jacobi", "sor", "icc", "ilu", "bjacobi", "asm")


def _smoother_factory(name: str, prefix: str):
    """None for the built-in damped Jacobi, else a function making a set-up PETSc PC of type ``name`` on an
    operator, configured from the options database under ``prefix`` (one per grid level)."""
    if name not in SMOOTHERS:
        raise SolverConfigError(f"-accel_smoother {name!r} is not supported; valid: {', '.join(SMOOTHERS)}")
    if name == "jacobi":
        return None

    def make(op):
        from petsc4py import PETSc

        sm = PETSc.PC().create(comm=op.getComm())
        try:
            sm.setOptionsPrefix(prefix)
            sm.setType(name)
            sm.setOperators(op, op)
            sm.setFromOptions()
            sm.setUp()
        except PETSc.Error as exc:
            sm.destroy()
            raise SolverConfigError(f"-accel_smoother {name}: PETSc could not set it up on a "
                                    f"{op.getType()} operator ({exc}); under MPI use sor, bjacobi or asm") from exc
        return sm

    return make


def PETSc_int():
    from petsc4py import PETSc

    return PETSc.IntType


def read_options_prefixed(pc) -> NeuralPCOptions:
    return read_options(NeuralPCOptions, (pc.getOptionsPrefix() or "") + "accel_")
