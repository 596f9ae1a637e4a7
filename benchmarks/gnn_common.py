"""Shared by the gnn benchmarks: every row is a PETSc KSP configured from options (the gnn rows through
``-pc_type python -pc_python_type accel.NeuralPC -accel_plugin gnn``), set up and solved with the same timer.
Rows in NATIVE apply the factor through PCMAT (``accel.plugins.gnn.native``): the same KSP, then the factor
installed after PETSc's own set-up, its time added to the row's set-up."""
from __future__ import annotations

import time

from accel.integrations.petsc.pc import NeuralPC
from accel.integrations.petsc.solvers import SolveResult, Solver

UNPREC = {"ksp_type": "cg", "ksp_norm_type": "unpreconditioned"}
NEURAL = {"pc_type": "python", "pc_python_type": "accel.NeuralPC"}
SMOOTHER = {"mg_levels_pc_type": "python", "mg_levels_pc_python_type": "accel.NeuralPC"}

CONFIGS = {
    "cg+icc": {**UNPREC, "pc_type": "icc"},
    "cg+fsai": {**UNPREC, **NEURAL, "accel_plugin": "fsai"},
    "cg+gnn": {**UNPREC, **NEURAL, "accel_plugin": "gnn"},
    "cg+fsai2": {**UNPREC, **NEURAL, "accel_plugin": "fsai", "accel_gnn_pattern": "a2"},
    # the tril(A^2) factor: the shipped tril(A^2) model unless --model2 names one
    "cg+gnn2": {**UNPREC, **NEURAL, "accel_plugin": "gnn", "accel_gnn_pattern": "a2"},
    "cg+fsai2-native": {**UNPREC, "pc_type": "none"},
    "cg+gnn2-native": {**UNPREC, "pc_type": "none"},
    "cg+gnn-native": {**UNPREC, "pc_type": "none"},
    "cg+fsai-native": {**UNPREC, "pc_type": "none"},
    "gamg": {**UNPREC, "pc_type": "gamg"},  # PETSc's default smoother: Chebyshev/Jacobi
    "gamg+gnn": {**UNPREC, "pc_type": "gamg", **SMOOTHER, "mg_levels_accel_plugin": "gnn"},
    "gamg+fsai": {**UNPREC, "pc_type": "gamg", **SMOOTHER, "mg_levels_accel_plugin": "fsai"},
    # the options-only form of "network on the finest level": coarser levels (fewer rows) get classical FSAI
    "gamg+gnn-fine": {**UNPREC, "pc_type": "gamg", **SMOOTHER, "mg_levels_accel_plugin": "gnn"},
    "gamg+fsai-native": {**UNPREC, "pc_type": "gamg"},
    "gamg+gnn-native": {**UNPREC, "pc_type": "gamg"},
    "gamg+gnn-native-fine": {**UNPREC, "pc_type": "gamg"},
    "gamg+gnn-native-fine-cheb": {**UNPREC, "pc_type": "gamg"},
    "gamg+fsai-native-fine-cheb": {**UNPREC, "pc_type": "gamg"},
    "gamg+gnn2-native-fine": {**UNPREC, "pc_type": "gamg"},
    "gamg+fsai2-native-fine": {**UNPREC, "pc_type": "gamg"},
    "gamg+jacobi": {**UNPREC, "pc_type": "gamg", "mg_levels_pc_type": "jacobi"},
    # GAMG's default smoother with one Chebyshev step per level instead of two: the baseline's own cheaper cycle
    "gamg-cheb1": {**UNPREC, "pc_type": "gamg", "mg_levels_ksp_max_it": 1},
    "gamg+sor": {**UNPREC, "pc_type": "gamg", "mg_levels_pc_type": "sor"},
    "gamg+icc": {**UNPREC, "pc_type": "gamg", "mg_levels_pc_type": "icc"},
    # the recommended configuration as a user sets it: GAMG with the learned factor on its finest level
    # (one Richardson sweep, the factor applied through the Python PC), from the options alone
    "learned-mg": {**UNPREC, "pc_type": "python", "pc_python_type": "accel.LearnedSmootherMG"},
    "learned-mg+fsai": {**UNPREC, "pc_type": "python", "pc_python_type": "accel.LearnedSmootherMG",
                        "accel_fine_accel_plugin": "fsai"},
    "boomeramg": {**UNPREC, "pc_type": "hypre", "pc_hypre_type": "boomeramg"},
    # the usual BoomerAMG settings for 3D problems (its defaults are tuned for 2D)
    "boomeramg-3d": {**UNPREC, "pc_type": "hypre", "pc_hypre_type": "boomeramg",
                     "pc_hypre_boomeramg_coarsen_type": "HMIS", "pc_hypre_boomeramg_interp_type": "ext+i",
                     "pc_hypre_boomeramg_P_max": 4, "pc_hypre_boomeramg_strong_threshold": 0.5,
                     "pc_hypre_boomeramg_agg_nl": 1},
}

# row -> (class, its arguments); "model2" stands for the tril(A^2) model
NATIVE = {
    "cg+gnn-native": ("factor", {"plugin": "gnn"}),
    "cg+fsai-native": ("factor", {"plugin": "fsai"}),
    "cg+fsai2-native": ("factor", {"plugin": "fsai", "extra": {"gnn_pattern": "a2"}}),
    "cg+gnn2-native": ("factor", {"plugin": "gnn", "model": "model2", "extra": {"gnn_pattern": "a2"}}),
    "gamg+fsai-native": ("smoothers", {"plugin": "fsai"}),
    "gamg+gnn-native": ("smoothers", {"plugin": "gnn"}),
    "gamg+gnn-native-fine": ("smoothers", {"plugin": "gnn", "learned_levels": 1, "coarse": "fsai"}),
    "gamg+gnn-native-fine-cheb": ("smoothers", {"plugin": "gnn", "learned_levels": 1, "coarse": "keep"}),
    "gamg+fsai-native-fine-cheb": ("smoothers", {"plugin": "fsai", "learned_levels": 1, "coarse": "keep"}),
    # the tril(A^2) factor on the finest level, classical FSAI on tril(A) below
    "gamg+gnn2-native-fine": ("smoothers", {"plugin": "gnn", "model": "model2", "learned_levels": 1,
                                            "coarse": "fsai", "fine_extra": {"gnn_pattern": "a2"}}),
    "gamg+fsai2-native-fine": ("smoothers", {"plugin": "fsai", "learned_levels": 1, "coarse": "fsai",
                                             "fine_extra": {"gnn_pattern": "a2"}}),
}
# cheaper uses of the factor on the finest level (Chebyshev/Jacobi kept below), each with its classical FSAI twin:
# Richardson x += M (b - A x) with M = G^T G and no damping (no eigenvalue estimate: lambda_max(M A) is 1.4-1.7 for
# both factors, measured on the plate and the inclusion), 1 or 2 sweeps before and after; Chebyshev with one step
# instead of two; Richardson before the coarse correction only ("pre": the V-cycle is then not symmetric)
FINEST = {
    "rich": {"ksp_type": "richardson", "max_it": 1},
    "rich2": {"ksp_type": "richardson", "max_it": 2},
    "cheb1": {"max_it": 1},
    "rich-pre": {"ksp_type": "richardson", "max_it": 1, "pre_only": True},
}
for _plugin in ("gnn", "fsai"):
    for _variant, _spec in FINEST.items():
        _row = f"gamg+{_plugin}-native-fine-{_variant}"
        CONFIGS[_row] = {**UNPREC, "pc_type": "gamg"}
        NATIVE[_row] = ("smoothers", {"plugin": _plugin, "learned_levels": 1, "coarse": "keep", "finest": _spec})


def run(A, b, name: str, model: str | None = None, rtol: float = 1e-8, max_it: int = 20000,
        model2: str | None = None, native=None) -> SolveResult:
    """One row: set-up and solve timed apart, the true residual checked; ``pc_stats`` gets the gnn component's
    set-up breakdown (rows, graph, factor, network, assemble) for the CG+component rows. ``model2``: the tril(A^2)
    model of the ``gnn2`` rows. ``native``: the module giving NativeFactor/NativeSmoothers for the native rows
    (default: this accel's ``accel.plugins.gnn.native``; another revision's for a before/after row)."""
    if name in NATIVE:
        return _run_native(A, b, name, model, rtol, max_it, model2, native)
    opts = dict(CONFIGS[name])
    if name == "cg+gnn2":
        model = model2
    if name == "gamg+gnn-fine":  # GAMG's first coarsening cuts the rows by 4x or more
        opts["mg_levels_accel_gnn_network_min_rows"] = A.getSize()[0] // 2 + 1
    if A.getComm().getSize() > 1:  # PETSc's ICC is sequential: block Jacobi with ICC(0) blocks on several ranks
        for key in ("pc_type", "mg_levels_pc_type"):
            if opts.get(key) == "icc":
                opts[key] = "bjacobi"
                opts[key.replace("pc_type", "sub_pc_type")] = "icc"
    if model and "accel_plugin" in opts:
        opts["accel_model"] = model
    if model and name == "learned-mg":
        opts["accel_fine_accel_model"] = model
    if model and "mg_levels_accel_plugin" in opts and opts["mg_levels_accel_plugin"] == "gnn":
        opts["mg_levels_accel_model"] = model
    solver = Solver(A, opts, rtol=rtol, max_it=max_it, name=name)
    try:
        result = solver.run(b)
        pc = solver.ksp.getPC()
        if pc.getType() == "python" and isinstance(pc.getPythonContext(), NeuralPC):
            component = pc.getPythonContext().component
            result.pc_stats = dict(getattr(component, "breakdown", {}))
        return result
    finally:
        solver.destroy()


def _run_native(A, b, name, model, rtol, max_it, model2, module=None) -> SolveResult:
    if module is None:
        from accel.plugins.gnn import native as module
    NativeFactor, NativeSmoothers = module.NativeFactor, module.NativeSmoothers

    kind, kwargs = NATIVE[name]
    kwargs = dict(kwargs)
    if kwargs.get("plugin") == "gnn":
        kwargs["model"] = model2 if kwargs.get("model") == "model2" else model
    solver = Solver(A, dict(CONFIGS[name]), rtol=rtol, max_it=max_it, name=name)
    native = None
    try:
        t0 = time.perf_counter()
        if kind == "factor":
            native = NativeFactor(solver.ksp, **kwargs)
            breakdown = native.breakdown
        else:
            finest = kwargs.pop("finest", None)
            solver.ksp.setUp()  # PETSc builds the hierarchy first; the factors go on its levels
            native = NativeSmoothers(solver.ksp, **kwargs)
            if finest:
                _finest_smoother(solver.ksp, **finest)
            breakdown = native.breakdown
        installed = time.perf_counter() - t0
        result = solver.run(b)
        result.setup_s += installed
        result.pc_stats = dict(breakdown)
        return result
    finally:
        if native is not None:
            native.destroy()
        solver.destroy()


def _finest_smoother(ksp, ksp_type: str | None = None, max_it: int | None = None, pre_only: bool = False) -> None:
    """The finest level's smoother KSP changed after the factor went on it: its type (undamped Richardson needs
    no eigenvalue estimate), its steps per smoothing, and with ``pre_only`` no smoothing after the coarse correction
    (a separate up smoother that takes no step)."""
    from petsc4py import PETSc

    pc = ksp.getPC()
    finest = pc.getMGLevels() - 1
    smoother = pc.getMGSmoother(finest)
    if ksp_type:
        smoother.setType(ksp_type)
        smoother.setNormType(PETSc.KSP.NormType.NONE)
    if max_it:
        smoother.setTolerances(max_it=max_it)
    if pre_only:
        up = pc.getMGSmootherUp(finest)  # created here, without the level's operators or a nonzero guess
        up.setOperators(*smoother.getOperators())
        up.setType("richardson")
        up.getPC().setType("none")
        up.setTolerances(max_it=0)
        up.setNormType(PETSc.KSP.NormType.NONE)
        up.setInitialGuessNonzero(True)
