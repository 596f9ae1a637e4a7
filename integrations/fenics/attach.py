"""``accel.accelerate(target)``: put the neural preconditioner into an existing DOLFINx solve with one line.

    problem = LinearProblem(a, L, bcs)          # or a KSP, a NewtonSolver, a SNES / 0.10 NonlinearProblem
    accel.accelerate(problem)                   # the one added line
    uh = problem.solve()

What it does, and what it leaves alone:
* picks the preconditioner component when none is named (:func:`pick_plugin`: dcdm on box meshes with a shipped
  model, gnn everywhere else) and logs which and why;
* for a grid component (dcdm), builds the DOF-to-grid map (BoxGridTransfer) from the function space, once; a matrix
  component (gnn) needs none;
* sets the KSP's PC to the NeuralPC with that map and the given options (``model``, ``providers``, ``threads``,
  ``fallback``, ``problem``, ``cycle_pre``, ``cycle_post``, ``cycle_omega``), without touching the options database
  or the user's petsc_options dict;
* changes the KSP type only where the user left the default (PETSc's gmres; preonly+LU in DOLFINx's
  NewtonSolver): then to DCDM's FCG (mmax 2, standard truncation, unpreconditioned norm) for a nonlinear component,
  to CG for a linear one, and logs it. A KSP type the user chose that is not flexible (cg, gmres, ...) is an error
  for a nonlinear component unless ``ksp_type=`` asks accelerate to choose;
* returns the target so calls chain.
"""
from __future__ import annotations

import logging
from dataclasses import fields

from accel.errors import AccelError, GridError, ModelError, SolverConfigError

from . import compat
from .transfer import BoxGridTransfer, check_space

log = logging.getLogger(__name__)

_DEFAULT_KSP = ("gmres", "preonly")


def _neural_pc_class():
    from .pc import FenicsNeuralPC

    return FenicsNeuralPC


def _resolve(target, space):
    """(ksp, space, what) for every target kind accelerate takes."""
    from petsc4py import PETSc

    kind = type(target).__name__
    if isinstance(target, PETSc.KSP):
        return target, space, "KSP"
    if isinstance(target, PETSc.SNES) or hasattr(target, "krylov_solver"):  # SNES; NewtonSolver (0.5 .. 0.9)
        return compat.newton_ksp(target), space, kind
    solver = getattr(target, "solver", None)
    if isinstance(solver, PETSc.KSP):  # LinearProblem (every version)
        return solver, space if space is not None else compat.problem_space(target), kind
    if isinstance(solver, PETSc.SNES):  # 0.10 SNES-based NonlinearProblem
        u = getattr(target, "u", None)
        if space is None and u is not None and hasattr(u, "function_space"):
            space = u.function_space
        return solver.getKSP(), space, kind
    raise AccelError(f"accelerate() takes a LinearProblem, a KSP, a NewtonSolver, a SNES or a 0.10 NonlinearProblem; "
                     f"got {kind}")


def _as_space(space):
    if space is None:
        return None
    if hasattr(space, "function_space") and not hasattr(space, "dofmap"):  # a Function
        return space.function_space
    return space


def _check_model(plugin: str, model: str | None, dim: int):
    """Fail before any solve when the model cannot serve this problem's dimension; returns the metadata of the model
    the PC will use (None where that is not known here)."""
    from accel import modelmeta
    from accel.registry import get_registry

    if model:
        meta = modelmeta.read(model)
        meta.check_plugin(plugin, str(model))
        if meta.dim != dim:
            raise ModelError(f"{model} was trained for {meta.dim}D problems ({meta.problem}) but this DOLFINx problem "
                             f"is {dim}D; pass a {dim}D model (model=...) or omit model to use the shipped one")
        return meta
    try:
        files = list(get_registry().model_files(plugin))
    except Exception:  # plugins without shipped models: the PC reports at set-up
        return None
    metas = []
    for f in files:
        try:
            metas.append(modelmeta.read(f))
        except ModelError:
            continue
    fits = [m for m in metas if m.dim == dim]
    if metas and not fits:
        have = ", ".join(f"{m.dim}D {m.problem}" for m in metas)
        raise ModelError(f"plugin {plugin!r} ships no model for a {dim}D problem (shipped: {have}); train one with "
                         f"'accel train {plugin}' and pass model=PATH")
    fits.sort(key=lambda m: not m.problem.startswith("poisson"))  # the PC's own default: the Poisson model
    return fits[0] if fits else None


def _choose_ksp(ksp, ksp_type: str | None, linear: bool = False) -> str:
    """Apply the KSP-type policy; returns a sentence for the log. ``linear``: the component is a fixed linear SPD
    operator, so every KSP works and "auto" only replaces PETSc's default with CG."""
    from petsc4py import PETSc

    from accel.integrations.petsc.options import FLEXIBLE_KSP

    current = ksp.getType() or "gmres"
    prefix = ksp.getOptionsPrefix() or ""
    # Defaults nobody chose: PETSc's gmres (unless named in the options), and the preonly (+LU) that DOLFINx's
    # NewtonSolver writes into the options database itself (preonly runs no Krylov method at all, so a PC swap
    # needs one in any case).
    chosen_by_user = current not in _DEFAULT_KSP or (current == "gmres" and PETSc.Options(prefix).hasName("ksp_type"))
    if linear:
        if ksp_type is None or (ksp_type == "auto" and chosen_by_user):
            return f"KSP type {current} kept (the preconditioner is linear)"
        ksp_type = "cg" if ksp_type == "auto" else ksp_type
        _set_ksp_type(ksp, ksp_type)
        return f"KSP type changed from {current} to {ksp_type}, unpreconditioned norm"
    if ksp_type == "auto":
        if current in FLEXIBLE_KSP:
            return f"KSP type {current} kept (flexible)"
        if chosen_by_user:
            raise SolverConfigError(
                f"the KSP type is {current!r}, which the neural preconditioner cannot use (a network is a nonlinear "
                f"preconditioner; non-flexible methods stall). Set a flexible type yourself ({', '.join(FLEXIBLE_KSP)}) "
                f"or let accelerate choose: accelerate(..., ksp_type='fcg')")
        ksp_type = "fcg"
    elif ksp_type is None:
        if current not in FLEXIBLE_KSP:
            raise SolverConfigError(f"ksp_type=None keeps the KSP type, but {current!r} is not flexible; use one of "
                                    f"{', '.join(FLEXIBLE_KSP)}")
        return f"KSP type {current} kept"
    if ksp_type not in FLEXIBLE_KSP:
        raise SolverConfigError(f"ksp_type={ksp_type!r} is not a flexible Krylov method; use one of "
                                f"{', '.join(FLEXIBLE_KSP)}")
    _set_ksp_type(ksp, ksp_type)
    return (f"KSP type changed from {current} to {ksp_type}"
            + (" (mmax 2, standard truncation)" if ksp_type == "fcg" else "") + ", unpreconditioned norm")


def _set_ksp_type(ksp, ksp_type: str) -> None:
    """Set the type (and FCG's DCDM settings, which petsc4py 3.18 has no setters for) through the options database,
    under a private prefix: KSPSetFromOptions under the user's own prefix would re-read all of their options."""
    from petsc4py import PETSc

    opts = PETSc.Options()
    tmp = f"accel_{id(ksp)}_"
    names = {"ksp_type": ksp_type, "ksp_norm_type": "unpreconditioned"}
    if ksp_type == "fcg":
        names.update(ksp_fcg_mmax="2", ksp_fcg_truncation_type="standard")
    old = ksp.getOptionsPrefix()
    try:
        for k, v in names.items():
            opts[tmp + k] = v
        ksp.setOptionsPrefix(tmp)
        ksp.setFromOptions()
    finally:
        ksp.setOptionsPrefix(old)
        for k in names:
            opts.delValue(tmp + k)


def _pc_options(plugin, options):
    from accel.integrations.petsc.pc import NeuralPCOptions

    valid = {f.name for f in fields(NeuralPCOptions)} - {"plugin", "grid", "check_ksp"}
    unknown = sorted(set(options) - valid)
    if unknown:
        raise AccelError(f"accelerate() got unknown option(s) {', '.join(unknown)}; valid: {', '.join(sorted(valid))}")
    values = {k: v for k, v in options.items() if v is not None}
    if "threads" in values:
        values["threads"] = int(values["threads"])
    # the KSP type was checked here (the user's options database may still name the type they replaced)
    return NeuralPCOptions(plugin=plugin, check_ksp=False, **values)


def _coarsening(coarsen) -> int:
    """Grid levels between the mesh's grid and the network's (the PC's -accel_levels): "auto" (-1) lets the PC's
    grid hierarchy halve down to the model's training grid, as for a DMDA."""
    if coarsen == "auto":
        return -1
    if isinstance(coarsen, bool) or not isinstance(coarsen, int) or coarsen < 0:
        raise AccelError(f"coarsen must be 'auto' or a number of halvings >= 0, got {coarsen!r}")
    return coarsen


def _describe_component(plugin: str, pc_opts, component_options, dim):
    """The component's own description (layout, linearity), from a throwaway instance: no session is opened."""
    from accel.components import PreconditionerConfig
    from accel.registry import get_registry
    from accel.runtime import RuntimeSettings

    config = PreconditionerConfig(model=pc_opts.model or None, problem=pc_opts.problem or None,
                                  runtime=RuntimeSettings.parse(pc_opts.providers, pc_opts.threads),
                                  extra=dict(component_options or {}))
    component = get_registry().get("preconditioner", plugin).load()(config)
    try:
        return component.describe(dim)
    finally:
        component.destroy()


def _box_transfer_or_reason(space) -> tuple[BoxGridTransfer | None, str | None]:
    """(the transfer, None) when the dcdm grid path can serve ``space`` (a scalar P1/Q1 space on a box mesh with a
    shipped model for its dimension), else (None, why not). The caller owns the transfer."""
    transfer = None
    try:
        check_space(space)
        transfer = BoxGridTransfer(space)  # collective: every rank finds the same answer
        if _check_model("dcdm", None, space.mesh.topology.dim) is None:
            transfer.destroy()
            return None, f"no shipped dcdm model for {space.mesh.topology.dim}D problems"
    except (GridError, ModelError) as exc:
        if transfer is not None:
            transfer.destroy()
        return None, str(exc)
    return transfer, None


def pick_plugin(space, model: str | None = None, available=None) -> tuple[str, str]:
    """(plugin, why) for ``accelerate(problem)`` with no plugin: the model's own plugin when a model is given, dcdm
    on a box mesh with a shipped model for its dimension, gnn everywhere else. ``available``: the preconditioner
    component names (default: the registry's)."""
    plugin, why, transfer = _pick_plugin(space, model, available)
    if transfer is not None:
        transfer.destroy()
    return plugin, why


def _pick_plugin(space, model, available) -> tuple[str, str, BoxGridTransfer | None]:
    """pick_plugin, also handing back the grid transfer built while choosing dcdm (so it is not built twice)."""
    from accel import modelmeta
    from accel.registry import get_registry

    if model:
        meta = modelmeta.read(model)
        return meta.plugin, f"the model {model} belongs to it", None
    if available is None:
        available = {c.name for c in get_registry().components("preconditioner")}
    transfer, reason = _box_transfer_or_reason(space)
    if reason is None:
        return "dcdm", "a structured box mesh with a shipped dcdm model for its dimension", transfer
    if "gnn" in available:
        return "gnn", f"dcdm cannot serve this problem ({reason})", None
    raise GridError(f"accelerate() has no preconditioner for this problem: dcdm needs a structured box mesh and a "
                    f"shipped model ({reason}); the gnn plugin (a graph network on the matrix, any mesh) serves such "
                    f"problems but is not installed (see 'accel plugins'); or pass transfer= a GridTransfer for dcdm")


def accelerate(target, plugin: str | None = None, *, space=None, transfer=None, ksp_type: str | None = "auto",
               coarsen="auto", guess=None, guess_inputs=None, component_options=None, multigrid="auto", **options):
    """Make ``target``'s linear solves use the neural preconditioner; returns ``target``.

    target: ``LinearProblem``, ``petsc4py.PETSc.KSP``, ``dolfinx.nls.petsc.NewtonSolver``, ``PETSc.SNES`` or a 0.10
    ``NonlinearProblem``. ``plugin``: the preconditioner component; None picks one and logs which and why: the
    model's plugin when ``model`` is given, ``dcdm`` on a structured box mesh with a shipped model for its
    dimension, ``gnn`` everywhere else (:func:`pick_plugin`). ``space``: the function space of the unknown, needed
    for a KSP, a Newton solver or a SNES (a LinearProblem knows its own) by grid components and by the choice; a
    Function is accepted too. ``transfer``: your own GridTransfer instead (grid components on meshes that are not
    boxes). ``ksp_type``: "auto" (a nonlinear component: switch PETSc's default to FCG and refuse a non-flexible
    type you chose; a linear one such as gnn: switch the default to CG, keep any type you chose), a type to set, or
    None (never change it). ``coarsen``: grid levels between the mesh's grid and the network's, built by the PC's
    grid hierarchy ("auto": halvings down to the model's training grid; 0: the network at the mesh's resolution).
    ``component_options``: the component's own settings (``PreconditionerConfig.extra``). ``multigrid``: for a
    linear matrix component (gnn), True puts it on GAMG's finest level as one Richardson sweep
    (:class:`~accel.LearnedSmootherMG`, the fastest configuration measured), False applies it alone (one level:
    its iterations grow with the mesh); "auto" is True unless a ``guess`` is given; grid components ignore "auto"
    and refuse True. Other keywords are
    NeuralPC options: ``model``, ``problem``, ``providers``, ``threads``, ``fallback``, ``cycle_pre``,
    ``cycle_post``, ``cycle_omega``, ``smoother``. Call it after your own ``setFromOptions`` calls; it does not
    write to the PETSc options database.

    ``guess``: a surrogate (registered component name such as ``darcy``, an .onnx path, or an object with
    ``predict``) whose prediction starts every solve; ``guess_inputs``: its input on the mesh's grid (an array of
    the grid's shape, a Function in the solution's space, or a callable returning either, evaluated before each
    solve so a coefficient that changes between solves is picked up). The guess is checked (energy for CG-type
    KSPs, residual otherwise), logged, scaled and discarded with a warning when no better than zero
    (``accel.integrations.petsc.guess``); the last report is the PC's ``last_guess``.
    """
    ksp, space, what = _resolve(target, _as_space(space))
    compat.check_options_prefix(ksp.getOptionsPrefix())
    why, chosen_transfer = "asked for", None
    if plugin is None:
        if transfer is not None:
            plugin, why = "dcdm", "a grid transfer was given"
        elif space is None and not options.get("model"):
            raise AccelError(f"accelerate() needs the function space for a {what} to choose the preconditioner: pass "
                             "space=V (the space of the unknown), transfer= a GridTransfer, or plugin='gnn' (which "
                             "needs no space)")
        else:
            plugin, why, chosen_transfer = _pick_plugin(space, options.get("model"), None)
        if ksp.getComm().getRank() == 0:
            log.info("accel: chose the %s preconditioner: %s", plugin, why)
    try:
        return _attach(ksp, space, what, plugin, why, transfer, chosen_transfer, ksp_type, coarsen, guess,
                       guess_inputs, component_options, multigrid, options, target)
    except Exception:
        if chosen_transfer is not None:
            chosen_transfer.destroy()  # idempotent: also safe where _attach freed it already
        raise


def _attach(ksp, space, what, plugin, why, transfer, chosen_transfer, ksp_type, coarsen, guess, guess_inputs,
            component_options, multigrid, options, target):
    """accelerate() once the plugin is chosen; ``chosen_transfer``: the box transfer built while choosing, if any."""
    pc_opts = _pc_options(plugin, options)
    built = False
    dim = len(transfer.shape) if transfer is not None else (space.mesh.topology.dim if space is not None else None)
    info = _describe_component(plugin, pc_opts, component_options, dim)
    if _use_multigrid(multigrid, plugin, info, guess):
        how = _choose_ksp(ksp, ksp_type, linear=True)
        return _attach_multigrid(ksp, what, plugin, why, how, pc_opts, component_options, target)
    if info.layout == "matrix":
        transfer = None
        how = _choose_ksp(ksp, ksp_type, linear=info.linear)
    elif transfer is None:
        if space is None:
            raise AccelError(f"accelerate() needs the function space for a {what}: pass space=V (the space of the "
                             "unknown), or transfer= a GridTransfer")
        check_space(space)
        _check_model(plugin, pc_opts.model or None, space.mesh.topology.dim)
        transfer, built = chosen_transfer or BoxGridTransfer(space), True
        try:
            if coarsen != "auto" or "levels" not in options:
                pc_opts.levels = _coarsening(coarsen)
            how = _choose_ksp(ksp, ksp_type, linear=info.linear)
        except Exception:
            transfer.destroy()
            raise
    else:
        _check_model(plugin, pc_opts.model or None, len(transfer.shape))
        how = _choose_ksp(ksp, ksp_type, linear=info.linear)
    ctx = _neural_pc_class()()
    ctx.transfer = transfer
    ctx._own_transfer = built  # the PC's destroy() frees a transfer made here, never the caller's
    ctx.opts = pc_opts
    ctx.component_options = dict(component_options or {})
    if guess is not None:
        ctx.guess_hook = _GuessHook(guess, guess_inputs, space, threads=pc_opts.threads, providers=pc_opts.providers)
    pc = ksp.getPC()
    pc.setType("python")
    pc.setPythonContext(ctx)
    if ksp.getComm().getRank() == 0:
        where = (f"on a {'x'.join(map(str, transfer.shape))} grid "
                 f"({getattr(transfer, 'cell_type', type(transfer).__name__)})" if transfer is not None
                 else "on the matrix")
        log.info("accel: %s accelerated with the %s preconditioner (%s) %s; %s", what, plugin, why, where, how)
    return target


def _use_multigrid(multigrid, plugin: str, info, guess) -> bool:
    if multigrid not in ("auto", True, False):
        raise AccelError(f"multigrid must be 'auto', True or False, got {multigrid!r}")
    fits = info.layout == "matrix" and info.linear
    if multigrid is True:
        if not fits:
            raise AccelError(f"multigrid=True puts a linear matrix component (such as gnn) on GAMG's finest level; "
                             f"{plugin} is not one (it runs its own grid levels): drop multigrid=True")
        if guess is not None:
            raise AccelError("a guess= needs the one-level preconditioner (it runs before each solve inside it): pass "
                             "multigrid=False, or drop guess=")
    return multigrid is True or (multigrid == "auto" and fits and guess is None)


def _attach_multigrid(ksp, what, plugin, why, how, pc_opts, component_options, target):
    from accel.integrations.petsc.smoothed_mg import LearnedSmootherMG

    ctx = LearnedSmootherMG()
    ctx.fine_options = pc_opts
    ctx.component_options = dict(component_options or {})
    pc = ksp.getPC()
    pc.setType("python")
    pc.setPythonContext(ctx)
    if ksp.getComm().getRank() == 0:
        log.info("accel: %s accelerated with GAMG and the %s preconditioner on its finest level (%s); %s", what,
                 plugin, why, how)
    return target


class _GuessHook:
    """Fills x with the surrogate's prediction before each solve (the NeuralPC's preSolve calls it)."""

    def __init__(self, guess, inputs, space, threads=1, providers="CPU"):
        if inputs is None:
            raise AccelError("accelerate(..., guess=...) needs guess_inputs: the surrogate's input on the mesh's grid "
                             "(an array, a Function in the solution's space, or a callable returning one)")
        if space is None:
            raise AccelError("accelerate(..., guess=...) needs the function space (space=V) to map the prediction")
        self.guess, self.inputs, self.threads, self.providers = guess, inputs, threads, providers
        self.transfer = BoxGridTransfer(space)  # the mesh's own grid: the surrogate predicts at full resolution

    def _grid_inputs(self):
        import numpy as np

        value = self.inputs
        if callable(value) and not hasattr(value, "function_space"):  # a Function is callable too (UFL)
            value = value()
        if hasattr(value, "function_space"):  # a Function: its values on the grid (rank 0)
            grid = np.zeros(self.transfer.shape) if self.transfer.comm.rank == 0 else None
            self.transfer.to_grid(compat.petsc_vec(value), grid)
            return grid
        value = np.asarray(value, dtype=float)
        if value.shape != tuple(self.transfer.shape):
            raise AccelError(f"guess_inputs has shape {value.shape} but the mesh's grid is {tuple(self.transfer.shape)} "
                             "(C order: z, y, x); pass the input on that grid or a Function in the solution's space")
        return value

    def __call__(self, ksp, b, x):
        from accel.integrations.petsc.guess import attach_guess

        return attach_guess(ksp, self.guess, self._grid_inputs(), b, x, transfer=self.transfer,
                            threads=self.threads, providers=self.providers)

    def destroy(self):
        if self.transfer is not None:
            self.transfer.destroy()
            self.transfer = None


def neural_pc(target):
    """The NeuralPC context inside an accelerated target (for its ``stats()``), or None."""
    ksp, _, _ = _resolve(target, None)
    pc = ksp.getPC()
    return pc.getPythonContext() if pc.getType() == "python" else None
