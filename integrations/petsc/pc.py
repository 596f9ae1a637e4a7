"""The neural preconditioner as a PETSc Python PC, selectable from the options database alone.

    -ksp_type fcg -ksp_fcg_mmax 2 -ksp_fcg_truncation_type standard -ksp_norm_type unpreconditioned
    -pc_type python -pc_python_type accel.NeuralPC

The life cycle follows Firedrake's PCBase: ``setUp`` only dispatches, to ``initialize`` the first time (component,
grid levels, transfer, session) and to ``update`` when only the operator's values changed (same matrix object,
same non-zero state), which refreshes what depends on the values and keeps everything else.
"""
from __future__ import annotations

import dataclasses
import functools
import logging
import sys
import time
import traceback
import warnings
from dataclasses import dataclass

import numpy as np

from accel.components import GridProblem, PreconditionerConfig, PreconditionerInfo
from accel.errors import AccelError, GridError, SolverConfigError
from accel.runtime import RuntimeSettings

from .dm import attached_dm, nonzero_state
from .hierarchy import plan_levels
from .levels import GridLevels, check_level_options, smoother_factory
from .options import FLEXIBLE_KSP, ksp_type_from_options, read_options
from .transfer import GridTransfer, dmda_grid_shape, parse_grid_option

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
    cycle_type: str = "v"
    smoother: str = "jacobi"
    levels: int = -1
    interpolation: str = ""
    coarse_operator: str = "aggregation"
    check_ksp: bool = True


def _reported(method):
    """A Python exception in a PETSc callback reaches a Python caller intact (petsc4py re-raises it there, with its
    traceback), but a C caller sees only 'error code -1' and petsc4py prints nothing of it. So the traceback is
    logged here only when no Python frame called into PETSc: once either way, never twice. (DOLFINx's C++ Newton
    solver, called from Python, chains the Python exception to its own error, so it shows the traceback too.)"""

    @functools.wraps(method)
    def wrapper(self, pc, *args):
        try:
            return method(self, pc, *args)
        except Exception:
            if sys._getframe().f_back is None:  # called from C: nobody else will show the traceback
                log.error("accel NeuralPC.%s failed:\n%s", method.__name__, traceback.format_exc())
            # The finished frames below keep ``pc`` and the exception in their locals (a reference cycle): PETSc
            # objects would then outlive their KSP until some later garbage collection, on some ranks only, and be
            # destroyed inside PetscFinalize after Python is gone. Their line numbers stay in the traceback.
            traceback.clear_frames(sys.exc_info()[2].tb_next)
            raise

    return wrapper


class NeuralPC:
    """A learned preconditioner (a registered ``preconditioner`` component, DCDM by default) as a PETSc PC.

    Options, all under the PC's prefix (``-{prefix}accel_...``), read in ``setFromOptions``. Options set from
    Python before (``accel.accelerate``, or ``ctx.opts``) are the defaults: the database overrides only the names it
    gives. Every rank must give the same values (checked: a difference is an error on every rank).

    ``-accel_plugin NAME``       preconditioner component (default ``dcdm``; ``accel plugins`` lists them)
    ``-accel_model PATH``        ONNX model; default: the component's shipped model for the problem (logged)
    ``-accel_problem NAME``      pick the shipped model trained on NAME (e.g. ``obstacles2d``)
    ``-accel_providers LIST``    ONNX Runtime providers in order, e.g. ``CUDA,CPU`` (default ``CPU``); CUDA that cannot
                                 load is an error
    ``-accel_threads N``         ONNX Runtime threads per network process (default 1)
    ``-accel_fallback PCTYPE``   PC used for the rest of the solve if the network returns NaN/Inf, with a warning
                                 (default ``jacobi``; ``none`` makes that an error); checked at set-up; the next
                                 solve starts with the network again
    ``-accel_check_ksp BOOL``    refuse non-flexible KSP types for a nonlinear (network-per-iteration) component, at
                                 set-up from the options database and at every solve from the KSP (default true)

    Grid components (``describe().layout == "grid"``, e.g. dcdm) only:

    ``-accel_grid NX,NY[,NZ]``   grid of a plain matrix in natural order (x fastest); not needed with a DMDA (where it
                                 must agree with it) or a transfer set by ``accel.accelerate``
    ``-accel_cycle_pre N``, ``-accel_cycle_post N``, ``-accel_cycle_omega W``
                                 sweeps around the network and their weight (default: as trained, from the model's
                                 metadata; 0 and 0 give plain DCDM)
    ``-accel_cycle_type T``      ``v`` (default): one cycle per level; ``k``: every level below the fine one runs
                                 two flexible CG steps preconditioned by its own cycle (a K-cycle: fewer iterations
                                 on deep aggregation hierarchies, e.g. 2D obstacles at 512^2, for more work per apply)
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

    A grid network is nonlinear: use a flexible Krylov method (fcg, pipefcg, fgmres, gcr). Under MPI the residual is
    gathered to rank 0, the network runs once there, and the result is scattered back, so iteration counts do not
    depend on the number of ranks. Set ``transfer`` (a GridTransfer) before set-up to map other orderings.

    Matrix components (``layout == "matrix"``, e.g. gnn) run on every rank at set-up and apply a fixed linear
    operator; with ``describe().linear`` any KSP works, plain CG included. They also serve as multigrid smoothers,
    one context per level with the level's prefix: ``-pc_type gamg -mg_levels_pc_type python
    -mg_levels_pc_python_type accel.NeuralPC -mg_levels_accel_plugin NAME``. Their own options are read under
    ``-{prefix}accel_`` (see the component's docstring).
    """

    def __init__(self):
        self.opts: NeuralPCOptions | None = None  # set from Python before setFromOptions: the defaults
        self.transfer: GridTransfer | None = None  # a preset transfer (set from Python); None: built from the grid
        self.component_options: dict = {}  # PreconditionerConfig.extra, set from Python
        self.guess_hook = None           # set from Python: (ksp, b, x) -> GuessReport, run before every solve
        self.last_guess = None
        self._own_transfer = False       # destroy() frees the preset transfer
        self.component = None
        self.info: PreconditionerInfo | None = None
        self.grid_levels: GridLevels | None = None
        self.fallback_pc = None
        self.using_fallback = False
        self.applies = 0
        self.apply_time = 0.0
        self.transfer_time = 0.0
        self.setup_time = 0.0
        self.setups = {"initialize": 0, "update": 0}
        self._component_key = None
        self._component_shape = None
        self._built_for = None   # (options, preset transfer, DM) the parts were built for
        self._operator = None    # the matrix the parts were built on, kept alive so its handle stays unique
        self._structure = None   # (handle, non-zero state, sizes) of that matrix
        self._grid_in = self._grid_out = None
        self._mpi = None

    @property
    def component_kwargs(self) -> dict:
        """Former name of :attr:`component_options`."""
        return self.component_options

    @property
    def levels(self) -> int:
        """Grid levels above the network's (0 for matrix components)."""
        return len(self.grid_levels.shapes) - 1 if self.grid_levels is not None else 0

    @property
    def interpolation(self) -> str:
        return self.grid_levels.interpolation if self.grid_levels is not None else ""

    @property
    def cycle(self):
        return self.grid_levels.cycle if self.grid_levels is not None else None

    # -- PETSc callbacks -------------------------------------------------------------------------------------------
    @_reported
    def setFromOptions(self, pc):
        self.opts = self._read_options(pc)

    @_reported
    def setUp(self, pc):
        t0 = time.perf_counter()
        if self.opts is None:
            self.opts = self._read_options(pc)
        A = pc.getOperators()[1]
        self._mpi = A.getComm().tompi4py()
        structure = _structure(A)
        same = structure is not None and structure == self._structure and self._built_for == self._config_key(pc)
        same = self._mpi.allreduce(int(not same)) == 0  # one rank initializing alone would wait in its collectives
        if same and self._update(pc, A):
            kind = "update"
        else:
            self._initialize(pc, A)
            kind = "initialize"
        self._built_for, self._operator, self._structure = self._config_key(pc), A, structure
        self.using_fallback = False
        self.setup_time = time.perf_counter() - t0
        self.setups[kind] += 1
        if self._mpi.rank == 0:
            if kind == "initialize":
                self._log_ready()
            else:
                log.info("neural PC updated for new operator values (%.3f s)", self.setup_time)

    @_reported
    def preSolve(self, pc, ksp, b, x):
        """Every solve: refuse a non-flexible KSP however it was set, and start again with the network."""
        if not self.info.linear and self.opts.check_ksp:
            types = self._mpi.allgather(ksp.getType())  # the same answer on every rank, so all raise or none
            if len(set(types)) > 1:
                per_rank = ", ".join(f"{t!r} on rank {r}" for r, t in enumerate(types))
                raise SolverConfigError(f"the KSP type differs between ranks ({per_rank}); give every rank the same "
                                        "-ksp_type")
            if types[0] not in FLEXIBLE_KSP:
                raise _not_flexible(types[0])
        if self.using_fallback:
            self.fallback_pc.destroy()
            self.fallback_pc = None
            self.using_fallback = False
        if self.guess_hook is not None:
            # KSPSolve has already zeroed x for a zero initial guess; the hook fills x and sets the flag, or zeroes
            # x and clears it when the guess is no better than zero
            self.last_guess = self.guess_hook(ksp, b, x)

    @_reported
    def apply(self, pc, x, y):
        t0 = time.perf_counter()
        if self.info.layout == "matrix":
            self.component.apply(x, y)
        elif self.using_fallback:
            self.fallback_pc.apply(x, y)
            return
        elif not self.grid_levels.apply(x, y, self._network):
            self._switch_to_fallback(pc)
            self.fallback_pc.apply(x, y)
        self.applies += 1
        self.apply_time += time.perf_counter() - t0

    @_reported
    def applyTranspose(self, pc, x, y):
        if self.info.layout == "matrix":
            self.component.apply_transpose(x, y)
            return
        # The cycle is not symmetric in general; its transpose is approximated by the cycle itself, which is what
        # flexible methods that call it (none of the recommended ones do) can use.
        self.apply(pc, x, y)

    def view(self, pc, viewer):
        o = self.opts or NeuralPCOptions()
        model = self.info.model if self.info is not None else "(not set up)"
        viewer.printfASCII(f"  accel NeuralPC: plugin {o.plugin}, model {model}\n")
        if self.grid_levels is not None:
            shapes = " -> ".join("x".join(map(str, s)) for s in self.grid_levels.shapes)
            viewer.printfASCII(f"  grids {shapes}, transfer {type(self.grid_levels.transfer).__name__}\n")
            c = self.grid_levels.cycle
            viewer.printfASCII(f"  {o.smoother} sweeps pre {c.pre} post {c.post} omega {c.omega}, "
                               f"{'K' if c.kcycle else 'V'}-cycle\n")
        viewer.printfASCII(f"  set-ups: {self.setups['initialize']} initialize, {self.setups['update']} update\n")
        if self.applies:
            viewer.printfASCII(f"  {self.applies} applies, {1e3 * self.apply_time / self.applies:.2f} ms each\n")
        if self.using_fallback:
            viewer.printfASCII(f"  using fallback PC {o.fallback} after a non-finite network output\n")

    def reset(self, pc):
        self._destroy_solver_parts()

    def destroy(self, pc):
        self._destroy_solver_parts()
        if self.component is not None:
            self.component.destroy()
            self.component = None
        release = getattr(self.guess_hook, "destroy", None)  # the hook is a plain callable or a _GuessHook
        if release is not None:
            release()
        self.guess_hook = None
        if self._own_transfer and self.transfer is not None:
            self.transfer.destroy()
            self.transfer = None

    # -- set-up ------------------------------------------------------------------------------------------------------
    def _config_key(self, pc) -> tuple:
        """What the built parts depend on besides the operator: options, the preset transfer, the attached DM."""
        return (self.opts, id(self.transfer), _handle(attached_dm(pc)))

    def _read_options(self, pc) -> NeuralPCOptions:
        """The options database over the options set in code, agreed across ranks (collective)."""
        prefix = (pc.getOptionsPrefix() or "") + "accel_"
        opts, error = None, None
        try:
            opts = read_options(NeuralPCOptions, prefix, self.opts)
        except AccelError as exc:
            error = exc
        mpi = pc.getComm().tompi4py()
        _raise_agreed(mpi, error)
        _raise_agreed(mpi, _differing_options(mpi, opts, prefix))
        return opts

    def _initialize(self, pc, A):
        """Everything, from the options: component, description, checks, then the grid levels or the matrix set-up."""
        self._destroy_solver_parts()
        o, mpi = self.opts, self._mpi
        prefix = pc.getOptionsPrefix() or ""
        shape = dmda = None
        with _agree(mpi, "reading the configuration"):
            self._create_component(o, prefix)
            shape, dmda, grid_error = self._grid(pc, A)
            self.info = info = self.component.describe(len(shape) if shape is not None else None)
            if info.layout == "grid" and grid_error is not None:
                raise grid_error
            self._check_configuration(o, info, prefix)
        if info.layout == "matrix":
            with _agree(mpi, "setting up the preconditioner on the operator"):
                self.component.initialize(A)
            return
        preset = self.transfer is not None
        # a preset transfer that knows its grid's natural rows (a DOLFINx box mesh) carries levels like a DMDA
        rows = self.transfer.natural_rows() if preset else None
        one_grid = preset and rows is None
        with _agree(mpi, "building the grid levels"):
            shapes = plan_levels(shape, info.train_grid, info.grid_multiple, 0 if one_grid else o.levels)
            if one_grid and o.levels > 0:
                log.info("the preset transfer %s maps to one grid only: the network runs at its grid",
                         type(self.transfer).__name__)
            pre, post, omega = self._cycle_settings(o, info)
            self.grid_levels = GridLevels(
                A, shapes, interpolation_kind=o.interpolation or info.cycle.interpolation,
                coarse_operator=o.coarse_operator, pre=pre, post=post, omega=omega,
                smoother=smoother_factory(o.smoother, prefix + "accel_smooth_"), dmda=dmda,
                transfer=self.transfer if len(shapes) == 1 else None, fine_rows=rows, kcycle=o.cycle_type == "k")
        self._set_up_network()

    def _update(self, pc, A) -> bool:
        """Only the operator's values changed: refresh what depends on them. False when the parts must be rebuilt."""
        if self.info.layout == "matrix":
            with _agree(self._mpi, "updating the preconditioner for new operator values"):
                self.component.update(A)
            return True
        with _agree(self._mpi, "refreshing the grid levels"):
            if not self.grid_levels.refresh():
                return False  # decoupled rows moved: the masked transfers no longer fit
        self._set_up_network()
        return True

    def _set_up_network(self):
        """Initialize the grid component on its grid (once per grid shape) or update it with the new operator."""
        levels, mpi = self.grid_levels, self._mpi
        diagonal = levels.network_diagonal()  # collective; an input for models that see walls and obstacles
        # collective too; inputs of models that see the coefficients
        couplings = levels.network_couplings() if self.info.wants_couplings else None
        with _agree(mpi, "setting up the network"):
            if mpi.rank == 0:
                problem = GridProblem(levels.network_shape, diagonal, levels.network_operator, couplings)
                if self._component_shape == levels.network_shape:
                    self.component.update(problem)
                else:
                    self.component.initialize(problem)
                    self._component_shape = levels.network_shape
                view = levels.transfer.grid_view()
                # The component reads its whole input before writing, so input and output may share the view.
                self._grid_in = view if view is not None else np.zeros(levels.network_shape)
                self._grid_out = view if view is not None else np.zeros(levels.network_shape)

    def _create_component(self, o: NeuralPCOptions, prefix: str):
        """The component (kept while the options that build it stay the same: a new operator reuses its session)."""
        from accel.registry import get_registry

        config = PreconditionerConfig(model=o.model or None, problem=o.problem or None,
                                      runtime=RuntimeSettings.parse(o.providers, o.threads),
                                      options_prefix=prefix + "accel_", extra=dict(self.component_options))
        key = (o.plugin, config.model, config.problem, config.runtime, repr(sorted(config.extra.items())), prefix)
        if self.component is not None and key == self._component_key:
            return
        if self.component is not None:
            self.component.destroy()
            self.component = None
        self._component_shape = None
        self.component = get_registry().get("preconditioner", o.plugin).load()(config)
        self._component_key = key

    def _check_configuration(self, o: NeuralPCOptions, info: PreconditionerInfo, prefix: str):
        """Every check that needs no collective call, so a failure can be agreed before anything is built."""
        if o.check_ksp and not info.linear:
            ksp_type = ksp_type_from_options(prefix)
            if ksp_type is not None and ksp_type not in FLEXIBLE_KSP:
                raise _not_flexible(ksp_type)
        if o.fallback != "none":
            _check_pc_type(o.fallback)
        if info.layout == "grid":
            check_level_options(o.interpolation or info.cycle.interpolation, o.coarse_operator, o.smoother,
                                o.cycle_type)
            pre, post, _ = self._cycle_settings(o, info)
            if pre + post < info.cycle.min_sweeps:
                raise SolverConfigError(
                    f"the model works below the grid resolution and needs at least {info.cycle.min_sweeps} Jacobi sweep(s) "
                    f"around it (got -accel_cycle_pre {pre} -accel_cycle_post {post}); keep the defaults from its "
                    "metadata")

    @staticmethod
    def _cycle_settings(o: NeuralPCOptions, info: PreconditionerInfo) -> tuple[int, int, float]:
        c = info.cycle
        return (o.cycle_pre if o.cycle_pre >= 0 else c.pre, o.cycle_post if o.cycle_post >= 0 else c.post,
                o.cycle_omega if o.cycle_omega > 0 else c.omega)

    def _grid(self, pc, A):
        """(C-ordered grid shape, DMDA or None, None) from the preset transfer, the attached DMDA or -accel_grid; or
        (None, None, GridError) when there is none (returned, not raised: a matrix component needs no grid, and a
        caught exception's traceback would keep ``pc`` alive past its KSP)."""
        if self.transfer is not None:
            return tuple(self.transfer.shape), None, None
        dm = attached_dm(pc)
        given = parse_grid_option(self.opts.grid) if self.opts.grid else None
        if dm is not None and dm.getType() == "da":
            shape = dmda_grid_shape(dm)
            if given is not None and given != shape:
                return None, None, GridError(
                    f"-accel_grid {self.opts.grid} contradicts the attached DMDA's grid "
                    f"{','.join(map(str, reversed(shape)))} (x first); drop -accel_grid, the DMDA gives the grid")
            return shape, dm, None
        if given is not None:
            if int(np.prod(given)) != A.getSize()[0]:
                return None, None, GridError(
                    f"the operator has {A.getSize()[0]} rows but the grid {'x'.join(map(str, given))} has "
                    f"{int(np.prod(given))} points; fix -accel_grid (NX,NY[,NZ] with x first)")
            return given, None, None
        return None, None, GridError(
            "the neural preconditioner cannot find the problem's grid: attach a DMDA to the KSP (KSPSetDM), pass "
            "-accel_grid NX,NY[,NZ] for a matrix in natural order, or use accel.accelerate() for a DOLFINx problem")

    def _log_ready(self):
        o = self.opts
        if self.grid_levels is None:
            log.info("neural PC ready: plugin %s (matrix layout), model %s, %s (%.3f s)", o.plugin, self.info.model,
                     "linear: any KSP" if self.info.linear else "nonlinear", self.setup_time)
            return
        c = self.grid_levels.cycle
        log.info("neural PC ready: plugin %s, model %s, grid %s, %d level(s) above the network's grid %s, "
                 "cycle pre=%d post=%d, %s smoother, omega=%.2f (%.3f s)", o.plugin, self.info.model,
                 self.grid_levels.shapes[0], self.levels, self.grid_levels.network_shape, c.pre, c.post, o.smoother,
                 c.omega, self.setup_time)

    # -- the network inside the cycle ---------------------------------------------------------------------------------
    def _network(self, res, c) -> bool:
        t0 = time.perf_counter()
        transfer = self.grid_levels.transfer
        transfer.to_grid(res, self._grid_in)
        ok, error = True, None
        t1 = time.perf_counter()
        if self._grid_in is not None:
            try:
                self.component.apply(self._grid_in, self._grid_out)
                ok = bool(np.isfinite(self._grid_out.sum()))  # NaN/Inf anywhere make the sum non-finite
            except Exception as exc:  # the other ranks wait in the bcast: they must learn of it, not hang
                ok, error = f"{type(exc).__name__}: {exc}", exc
        t2 = time.perf_counter()
        ok = self._mpi.bcast(ok, root=0)  # every rank takes the same branch below
        if isinstance(ok, str):
            raise error or AccelError(f"the neural preconditioner failed on rank 0 while applying the network: {ok}")
        if ok:
            transfer.from_grid(self._grid_out, c, res)
        self.transfer_time += (t1 - t0) + (time.perf_counter() - t2)
        return ok

    def _switch_to_fallback(self, pc):
        from petsc4py import PETSc

        kind = self.opts.fallback  # the same on every rank (agreed when read), as is the bcast flag that led here
        if kind == "none":
            raise AccelError("the network returned NaN/Inf and -accel_fallback is none; retrain or check the input, "
                             "or set -accel_fallback jacobi")
        message = f"accel NeuralPC: the network returned NaN/Inf; using the {kind!r} PC for the rest of this solve"
        log.warning(message)
        warnings.warn(message, RuntimeWarning, stacklevel=2)
        A, P = pc.getOperators()
        fb = PETSc.PC().create(comm=pc.getComm())
        fb.setType(kind)  # checked at set-up
        fb.setOperators(A, P)
        fb.setUp()
        self.fallback_pc = fb
        self.using_fallback = True

    def _destroy_solver_parts(self):
        if self.grid_levels is not None:
            self.grid_levels.destroy()
            self.grid_levels = None
        if self.fallback_pc is not None:
            self.fallback_pc.destroy()
            self.fallback_pc = None
        self.using_fallback = False
        self._built_for = self._operator = self._structure = None
        self._grid_in = self._grid_out = None

    # -- statistics --------------------------------------------------------------------------------------------------
    def stats(self) -> dict:
        """Times in seconds, summed over applies since set-up (rank 0 holds the network figures of grid components)."""
        comp = self.component.stats() if self.component is not None else None
        return {
            "applies": self.applies,
            "levels": self.levels,
            "interpolation": self.interpolation,
            "setup": self.setup_time,
            "apply": self.apply_time,
            "network": comp.network_time if comp else 0.0,
            "copies": comp.copy_time if comp else 0.0,
            "network_setup": comp.setup_time if comp else 0.0,
            "gather_scatter": self.transfer_time,
            "smoothing": self.grid_levels.smooth_time if self.grid_levels is not None else 0.0,
        }


# -- agreement across ranks ------------------------------------------------------------------------------------------
def _raise_agreed(mpi, error: Exception | None) -> None:
    """Collective: raise on every rank if any rank has an error (each its own; the others the first one's message,
    naming its rank), so no rank is left waiting in a collective call that a failed one never makes."""
    messages = mpi.allgather(None if error is None else str(error))
    if error is not None:
        raise error
    for rank, message in enumerate(messages):
        if message is not None:
            raise AccelError(f"the neural preconditioner failed on rank {rank}: {message}")


class _agree:
    """Run a block on the ranks that have work in it, then make every rank raise if any rank failed (see
    :func:`_raise_agreed`)."""

    def __init__(self, mpi, what: str):
        self.mpi, self.what = mpi, what

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc is not None and not isinstance(exc, Exception):
            return False  # KeyboardInterrupt and the like: no agreement
        messages = self.mpi.allgather(None if exc is None else f"{type(exc).__name__}: {exc}")
        if exc is not None:
            return False  # re-raise the original exception on the rank that failed
        for rank, message in enumerate(messages):
            if message is not None:
                raise AccelError(f"the neural preconditioner failed on rank {rank} while {self.what}: {message}")
        return False


def _differing_options(mpi, opts: NeuralPCOptions, prefix: str) -> SolverConfigError | None:
    """An error naming the first option whose value differs between ranks, or None (collective)."""
    everyone = mpi.allgather(opts)
    for f in dataclasses.fields(NeuralPCOptions):
        values = [getattr(o, f.name) for o in everyone]
        if any(v != values[0] for v in values):
            per_rank = ", ".join(f"{v!r} on rank {r}" for r, v in enumerate(values))
            return SolverConfigError(f"-{prefix}{f.name} differs between ranks ({per_rank}); give every rank the "
                                     "same options")
    return None


def _structure(A) -> tuple | None:
    """What identifies an operator's non-zero structure: the object, its non-zero state and its sizes (None where
    PETSc does not tell the state: every set-up then initializes)."""
    state = nonzero_state(A)
    return None if state is None else (A.handle, state, A.getSizes())


def _handle(obj) -> int | None:
    return None if obj is None else obj.handle


def _check_pc_type(kind: str) -> None:
    """Raise SolverConfigError unless PETSc can make a PC of type ``kind`` (the NaN/Inf fallback)."""
    from petsc4py import PETSc

    pc = PETSc.PC().create(comm=PETSc.COMM_SELF)
    try:
        pc.setType(kind)
    except PETSc.Error:
        valid = sorted(v for k, v in vars(PETSc.PC.Type).items() if not k.startswith("_") and isinstance(v, str))
        raise SolverConfigError(f"-accel_fallback {kind!r} is not a PETSc PC type; valid: none, "
                                f"{', '.join(valid)}") from None
    finally:
        pc.destroy()


def _not_flexible(ksp_type: str) -> SolverConfigError:
    return SolverConfigError(
        f"KSP type {ksp_type!r} cannot use the neural preconditioner: a network is a nonlinear preconditioner and "
        f"non-flexible Krylov methods stall with it. Use one of {', '.join(FLEXIBLE_KSP)} (DCDM: -ksp_type fcg "
        f"-ksp_fcg_mmax 2 -ksp_fcg_truncation_type standard -ksp_norm_type unpreconditioned)")
