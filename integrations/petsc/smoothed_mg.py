"""PETSc's algebraic multigrid with a learned smoother on its finest level, from the options database alone.

    -ksp_type cg -pc_type python -pc_python_type accel.LearnedSmootherMG

The learned smoother goes on the finest level only, where it pays: the levels below keep GAMG's cheap
Chebyshev/Jacobi. Written as options, that configuration needs the finest level's index
(``-mg_levels_L_pc_type python``, L = levels - 1), which GAMG knows only after its set-up; this PC sets GAMG up
first and then puts the learned component on the level it made finest, so no level index is ever written.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from accel.errors import SolverConfigError

from .options import read_options
from .pc import NeuralPC, NeuralPCOptions, _raise_agreed

log = logging.getLogger(__name__)

MULTIGRID_TYPES = ("gamg", "mg", "ml", "hmg")
UNDAMPED_UP_TO = 1.8   # lambda_max(M A) up to which the Richardson sweep stays undamped
TARGET = 1.7           # above it, the sweep is scaled to bring lambda_max here
ESTIMATE_STEPS = 10    # CG steps of the estimate (Lanczos: lambda_max from below, to about 1 % here)


def finest_gamg_level(A) -> int:
    """The index of GAMG's finest level on A with the options database's settings (a set-up on a throwaway KSP):
    the L of ``-mg_levels_L_...`` for those who write the learned level by hand."""
    from petsc4py import PETSc

    ksp = PETSc.KSP().create(comm=A.getComm())
    try:
        ksp.setOperators(A)
        ksp.setType("cg")
        ksp.getPC().setType("gamg")
        ksp.setFromOptions()  # GAMG takes some of its defaults there: its level count differs without it
        ksp.setUp()
        return ksp.getPC().getMGLevels() - 1
    finally:
        ksp.destroy()


def _lambda_max(smoother) -> float:
    """lambda_max(M A) of a set-up smoother (A its operator, M its PC), from the Lanczos coefficients of a few CG
    steps; the right-hand side is a fixed function of the global row index, so the estimate does not depend on the
    partition."""
    import numpy as np
    from petsc4py import PETSc

    A, P = smoother.getOperators()
    est = PETSc.KSP().create(comm=smoother.getComm())
    b, x = A.createVecs()
    try:
        est.setType("cg")
        est.setOperators(A, P)
        est.setPC(smoother.getPC())  # shared, as PETSc's Chebyshev shares it with its estimator
        est.setComputeEigenvalues(True)
        est.setNormType(PETSc.KSP.NormType.NONE)
        est.setTolerances(rtol=0.0, atol=0.0, max_it=ESTIMATE_STEPS)
        est.setConvergenceTest(lambda *args: PETSc.KSP.ConvergedReason.ITERATING)
        r0, r1 = b.getOwnershipRange()
        b.setArray(np.modf(np.arange(r0, r1) * 0.6180339887498949)[0] - 0.5)
        x.set(0.0)
        est.solve(b, x)
        return float(est.computeExtremeSingularValues()[0])
    finally:
        est.destroy()
        b.destroy()
        x.destroy()


@dataclass(frozen=True)
class LearnedSmootherMGOptions:
    """The PC's own settings, read under ``-{prefix}accel_mg_`` (the rest belongs to the inner multigrid)."""

    pc_type: str = "gamg"
    learned_levels: int = 1


class LearnedSmootherMG:
    """A multigrid PC (GAMG by default) whose finest level(s) are smoothed by a linear matrix component (``gnn`` by
    default: M = G^T G from the graph network) in Richardson sweeps, undamped unless lambda_max(M A) is near 2 (see
    ``_damp``); the coarser levels keep the multigrid's own smoother. Symmetric (the same sweeps before and after the
    coarse correction), so plain CG works.

    Options, under the PC's prefix P:

    ``-P accel_mg_pc_type T``        the inner multigrid: ``gamg`` (default), ``mg``, ``ml`` or ``hmg``; every option of it
                                     under ``-P accel_mg_`` (``-accel_mg_pc_gamg_threshold 0.02``,
                                     ``-accel_mg_mg_levels_ksp_type chebyshev`` for the levels below)
    ``-P accel_mg_learned_levels N`` how many of the finest levels get the learned smoother (default 1)
    ``-P accel_fine_...``            each learned level's smoother KSP, a :class:`~accel.NeuralPC` with the component:
                                     ``-accel_fine_ksp_max_it 2`` (sweeps, default 1), ``-accel_fine_accel_plugin fsai``
                                     (the classical factor in the same slot), ``-accel_fine_accel_model PATH``,
                                     ``-accel_fine_accel_gnn_chunk N`` (the component's own options)

    From Python (``accel.accelerate`` does this): ``fine_options`` (a NeuralPCOptions) and ``component_options``
    are the learned levels' defaults, set before the first set-up.

    Set-up (``setUp`` only dispatches): the inner multigrid is set up on the operator, then every learned level's
    smoother gets its Richardson KSP and NeuralPC. When only the operator's values change, the multigrid redoes its
    own set-up and each NeuralPC updates its component on the new level matrix (a multigrid that rebuilds its levels
    gets new smoothers, which are then made learned again).
    """

    def __init__(self):
        self.mg = None              # the inner multigrid PC
        self.settings = None
        self.fine_options: NeuralPCOptions | None = None  # set from Python: each learned level's NeuralPC defaults
        self.component_options: dict = {}                 # set from Python: the component's own settings
        self._installed = {}        # level -> the NeuralPC context of its smoother
        self.scales = {}            # level -> (lambda_max(M A) estimated, Richardson scale set)
        self.setup_time = 0.0
        self.setups = {"initialize": 0, "update": 0}

    # -- PETSc callbacks -------------------------------------------------------------------------------------------
    def setFromOptions(self, pc):
        self.settings = self._read_settings(pc)

    def setUp(self, pc):
        t0 = time.perf_counter()
        if self.settings is None:
            self.settings = self._read_settings(pc)
        A, P = pc.getOperators()
        kind = "update" if self.mg is not None else "initialize"
        if self.mg is None:
            self._initialize(pc, A, P)
        else:
            self.mg.setOperators(A, P)
        self.mg.setUp()
        self._make_learned(pc)
        self.setup_time = time.perf_counter() - t0
        self.setups[kind] += 1

    def apply(self, pc, x, y):
        self.mg.apply(x, y)

    def applyTranspose(self, pc, x, y):
        self.mg.applyTranspose(x, y)

    def view(self, pc, viewer):
        s = self.settings or LearnedSmootherMGOptions()
        learned = ", ".join(str(level) for level in sorted(self._installed)) or "none yet"
        viewer.printfASCII(f"  accel LearnedSmootherMG: inner {s.pc_type}, learned smoother on level(s) {learned}; "
                           f"set-ups: {self.setups['initialize']} initialize, {self.setups['update']} update\n")
        for level, (lam, scale) in sorted(self.scales.items()):
            viewer.printfASCII(f"  level {level}: lambda_max(M A) estimated {lam:.3f}, Richardson scale {scale:.3f}\n")
        if self.mg is not None:
            self.mg.view(viewer)

    def reset(self, pc):
        self._destroy()

    def destroy(self, pc):
        self._destroy()

    def stats(self) -> dict:
        """Set-up seconds (the inner multigrid's and the learned smoothers' together)."""
        return {"setup": self.setup_time, "learned_levels": sorted(self._installed)}

    # -- set-up ------------------------------------------------------------------------------------------------------
    def _read_settings(self, pc) -> LearnedSmootherMGOptions:
        prefix = (pc.getOptionsPrefix() or "") + "accel_mg_"
        settings, error = None, None
        try:
            settings = read_options(LearnedSmootherMGOptions, prefix)
            if settings.pc_type not in MULTIGRID_TYPES:
                raise SolverConfigError(f"-{prefix}pc_type {settings.pc_type!r} is not a multigrid PC; use one of "
                                        f"{', '.join(MULTIGRID_TYPES)}")
            if settings.learned_levels < 1:
                raise SolverConfigError(f"-{prefix}learned_levels {settings.learned_levels} must be at least 1")
        except SolverConfigError as exc:
            error = exc
        _raise_agreed(pc.getComm().tompi4py(), error)  # the database may differ between ranks
        return settings

    def _initialize(self, pc, A, P):
        from petsc4py import PETSc

        mg = PETSc.PC().create(comm=pc.getComm())
        mg.setOptionsPrefix((pc.getOptionsPrefix() or "") + "accel_mg_")
        mg.setOperators(A, P)
        mg.setType(self.settings.pc_type)
        mg.setFromOptions()
        self.mg = mg

    def _make_learned(self, pc):
        """Give the finest levels their learned smoothers (again, where the multigrid made new smoother KSPs)."""
        levels = self.mg.getMGLevels()
        if levels < 2:
            log.info("the multigrid made one level only (a direct coarse solve): no smoother to make learned")
            return
        prefix = (pc.getOptionsPrefix() or "") + "accel_fine_"
        learned = {}
        for level in range(levels - 1, max(levels - 1 - self.settings.learned_levels, 0), -1):
            smoother = self.mg.getMGSmoother(level)
            smoother_pc = smoother.getPC()
            kept = self._installed.get(level)
            if kept is not None and smoother_pc.getType() == "python" and smoother_pc.getPythonContext() is kept:
                learned[level] = kept  # PCMG gave it the new level matrix and the NeuralPC updated itself
                continue
            smoother.setOptionsPrefix(prefix)
            smoother.setType("richardson")
            smoother.setTolerances(max_it=1)
            smoother_pc.setType("python")
            context = NeuralPC()
            context.opts = self.fine_options or NeuralPCOptions(plugin="gnn")  # defaults the database may override
            context.component_options = dict(self.component_options)
            smoother_pc.setPythonContext(context)
            smoother.setFromOptions()
            smoother.setUp()
            learned[level] = context
        for level in learned:  # the factors are new or updated: so is the spectrum of M A
            self._damp(level, self.mg.getMGSmoother(level), prefix)
        self._installed = learned
        log.info("learned smoother on level(s) %s of %d", ", ".join(map(str, sorted(self._installed))), levels)

    def _damp(self, level: int, smoother, prefix: str) -> None:
        """Undamped Richardson smooths only while lambda_max(M A) stays well below 2 (1.65-1.68 on the families the
        shipped models were trained on); on other matrices the learned factor can come close to 2 (1.92 on a DOLFINx
        unit-square mesh with explicit zeros: 24 iterations instead of GAMG's 14). So lambda_max is estimated (a few
        CG steps with M, as PETSc's Chebyshev does) and the sweep damped to ``TARGET / lambda_max`` above
        ``UNDAMPED_UP_TO``; a scale the user gave (``-accel_fine_ksp_richardson_scale``) is kept as given."""
        from petsc4py import PETSc

        options = PETSc.Options(prefix)
        if options.hasName("ksp_richardson_scale"):
            return
        lam = _lambda_max(smoother)
        scale = 1.0 if lam <= UNDAMPED_UP_TO else TARGET / lam
        self.scales[level] = (lam, scale)
        options["ksp_richardson_scale"] = scale  # petsc4py 3.18 has no KSPRichardsonSetScale; removed below
        try:
            smoother.setFromOptions()
        finally:
            options.delValue("ksp_richardson_scale")

    def _destroy(self):
        if self.mg is not None:
            self.mg.destroy()
            self.mg = None
        self._installed, self.scales = {}, {}

