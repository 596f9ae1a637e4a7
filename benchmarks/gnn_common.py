"""Shared by the gnn benchmarks: every row is a PETSc KSP configured from options (the gnn rows through
``-pc_type python -pc_python_type accel.NeuralPC -accel_plugin gnn``), set up and solved with the same timer."""
from __future__ import annotations

from accel.integrations.petsc.solvers import SolveResult, Solver

UNPREC = {"ksp_type": "cg", "ksp_norm_type": "unpreconditioned"}
NEURAL = {"pc_type": "python", "pc_python_type": "accel.NeuralPC"}
SMOOTHER = {"mg_levels_pc_type": "python", "mg_levels_pc_python_type": "accel.NeuralPC"}

CONFIGS = {
    "cg+icc": {**UNPREC, "pc_type": "icc"},
    "cg+fsai": {**UNPREC, **NEURAL, "accel_plugin": "fsai"},
    "cg+gnn": {**UNPREC, **NEURAL, "accel_plugin": "gnn"},
    "gamg": {**UNPREC, "pc_type": "gamg"},  # PETSc's default smoother: Chebyshev/Jacobi
    "gamg+gnn": {**UNPREC, "pc_type": "gamg", **SMOOTHER, "mg_levels_accel_plugin": "gnn"},
    "gamg+fsai": {**UNPREC, "pc_type": "gamg", **SMOOTHER, "mg_levels_accel_plugin": "fsai"},
    "gamg+jacobi": {**UNPREC, "pc_type": "gamg", "mg_levels_pc_type": "jacobi"},
    "gamg+sor": {**UNPREC, "pc_type": "gamg", "mg_levels_pc_type": "sor"},
    "gamg+icc": {**UNPREC, "pc_type": "gamg", "mg_levels_pc_type": "icc"},
    "boomeramg": {**UNPREC, "pc_type": "hypre", "pc_hypre_type": "boomeramg"},
    # the usual BoomerAMG settings for 3D problems (its defaults are tuned for 2D)
    "boomeramg-3d": {**UNPREC, "pc_type": "hypre", "pc_hypre_type": "boomeramg",
                     "pc_hypre_boomeramg_coarsen_type": "HMIS", "pc_hypre_boomeramg_interp_type": "ext+i",
                     "pc_hypre_boomeramg_P_max": 4, "pc_hypre_boomeramg_strong_threshold": 0.5,
                     "pc_hypre_boomeramg_agg_nl": 1},
}


def run(A, b, name: str, model: str | None = None, rtol: float = 1e-8, max_it: int = 20000) -> SolveResult:
    """One row: set-up and solve timed apart, the true residual checked; ``pc_stats`` gets the gnn component's
    set-up breakdown (rows, graph, factor, network, assemble) for the CG+component rows."""
    opts = dict(CONFIGS[name])
    if A.getComm().getSize() > 1:  # PETSc's ICC is sequential: block Jacobi with ICC(0) blocks on several ranks
        for key in ("pc_type", "mg_levels_pc_type"):
            if opts.get(key) == "icc":
                opts[key] = "bjacobi"
                opts[key.replace("pc_type", "sub_pc_type")] = "icc"
    if model and "accel_plugin" in opts:
        opts["accel_model"] = model
    if model and "mg_levels_accel_plugin" in opts and opts["mg_levels_accel_plugin"] == "gnn":
        opts["mg_levels_accel_model"] = model
    solver = Solver(A, opts, rtol=rtol, max_it=max_it, name=name)
    try:
        result = solver.run(b)
        pc = solver.ksp.getPC()
        if pc.getType() == "python":
            component = pc.getPythonContext().component
            result.pc_stats = dict(getattr(component, "breakdown", {}))
        return result
    finally:
        solver.destroy()
