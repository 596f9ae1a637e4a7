"""The two-grid cycle of the neural preconditioner on PETSc objects (mirrors plugins/dcdm/cycle.py exactly).

    z  = smooth(pre sweeps) on A z = r from z = 0;  r1 = r - A z
    c  = network(r1) * coupled             # gathered, run once on rank 0, scattered back; zero on decoupled rows
    s  = (c . r1) / (c . A c);  z += s c   # energy-optimal step: the network's scale never matters
    z  = smooth(post sweeps) continuing from z

The smoother is damped Jacobi (omega), as in training, unless a PETSc PC factory is given: then every sweep is a
Richardson step z += M^-1 (r - A z) with the PC it makes (SOR, ICC, ...). All work vectors are created once in the
constructor. With pre = post = 0 this is plain DCDM: z = s NN(r).
"""
from __future__ import annotations

import time

import numpy as np


class TwoGridCycle:
    def __init__(self, A, pre: int, post: int, omega: float, smoother=None):
        """``smoother(A)`` makes a set-up PETSc PC on ``A``, owned by this cycle; None: damped Jacobi."""
        self.A, self.pre, self.post, self.omega = A, int(pre), int(post), float(omega)
        self.smoother = self.tmp = None
        self.dinv = A.createVecLeft()
        self.res, self.c, self.Ac = (A.createVecLeft() for _ in range(3))
        self.coupled = None
        self.smooth_time = 0.0
        # set by MultilevelCycle when the correction is already energy-optimal (a K-cycle's on a Galerkin level)
        self.optimal_correction = False
        self._sor_with_guess = None
        try:
            self._read_operator(needs_positive_diagonal=smoother is None)
            if smoother is not None:  # last: nothing after it can fail and leave the PC behind
                self.smoother = smoother(A)
                self.tmp = A.createVecLeft()
                self._sor_with_guess = _sor_sweep(self.smoother)
        except Exception:
            self.destroy()
            raise

    def _read_operator(self, needs_positive_diagonal: bool) -> None:
        """The scaled inverse diagonal and the coupled rows, from the operator's current values."""
        A = self.A
        A.getDiagonal(self.dinv)
        diagonal = self.dinv.getArray(readonly=True).copy()
        # agreed across ranks: a rank that raised alone would leave the others waiting in the next collective
        if needs_positive_diagonal and A.getComm().tompi4py().allreduce(int(np.any(diagonal <= 0))):
            from accel.errors import SolverConfigError

            raise SolverConfigError("the operator has non-positive diagonal entries: the Jacobi sweeps of the neural "
                                    "preconditioner need an SPD-like operator (pass -accel_cycle_pre 0 -accel_cycle_post 0 "
                                    "for plain DCDM)")
        self.dinv.reciprocal()
        self.dinv.scale(self.omega)
        if self.coupled is not None:
            self.coupled.destroy()
        self.coupled = self._coupled_rows(diagonal)

    def refresh(self) -> bool:
        """The operator's values changed on the same non-zero pattern: re-read them. Returns False when the set of
        coupled rows changed (the transfers masked with it must then be rebuilt)."""
        before = None if self.coupled is None else self.coupled.getArray(readonly=True).copy()
        self._read_operator(needs_positive_diagonal=self.smoother is None)
        after = None if self.coupled is None else self.coupled.getArray(readonly=True)
        same = (before is None) == (after is None) and (before is None or np.array_equal(before, after))
        if self.smoother is not None:
            self.smoother.setUp()  # refactors only if its operator's values changed
        return bool(self.A.getComm().tompi4py().allreduce(int(not same)) == 0)

    def _coupled_rows(self, diag):
        """1 on rows with an off-diagonal entry, 0 on decoupled rows (solid cells, eliminated Dirichlet unknowns),
        or None when every row is coupled. One product with a random positive vector w finds them: the off-diagonal
        part of (A w)_i vanishes for a coupled row only with probability zero."""
        A, w, Aw = self.A, self.res, self.Ac
        lo, hi = w.getOwnershipRange()
        w.setArray(np.random.default_rng(lo).uniform(1.0, 2.0, hi - lo))
        A.mult(w, Aw)
        aw, dw = Aw.getArray(readonly=True), diag * w.getArray(readonly=True)
        coupled = (np.abs(aw - dw) > 1e-12 * (np.abs(aw) + np.abs(dw))).astype(float)
        if A.getComm().tompi4py().allreduce(int(coupled.size - coupled.sum())) == 0:
            return None
        mask = A.createVecLeft()
        mask.setArray(coupled)
        return mask

    def apply(self, r, z, network) -> bool:
        """z <- cycle(r); ``network(res, c)`` fills c (the network, or the next level's correction). Returns False
        when the network produced a non-finite value."""
        if self.optimal_correction and self._sor_with_guess is not None:
            return self._apply_optimal(r, z, network)
        t = time.perf_counter()
        A, res, c, Ac = self.A, self.res, self.c, self.Ac
        if self.pre:
            self._sweep(r, z, first=True)
            for _ in range(self.pre - 1):
                A.mult(z, res)
                res.aypx(-1.0, r)
                self._sweep(res, z)
            A.mult(z, res)
            res.aypx(-1.0, r)
        else:
            z.set(0.0)
            r.copy(res)
        self.smooth_time += time.perf_counter() - t
        if not network(res, c):
            return False
        t = time.perf_counter()
        if self.coupled is not None:
            c.pointwiseMult(c, self.coupled)
        A.mult(c, Ac)
        cAc = c.dot(Ac)
        s = c.dot(res) / cAc if cAc > 0 else 0.0
        z.axpy(s, c)
        if self.post:
            res.axpy(-s, Ac)
            for k in range(self.post):
                self._sweep(res, z)
                if k + 1 < self.post:
                    A.mult(z, res)
                    res.aypx(-1.0, r)
        self.smooth_time += time.perf_counter() - t
        return True

    def _apply_optimal(self, r, z, network) -> bool:
        """The cycle when the correction needs no line search (its step would be 1) and the smoother is SOR: the
        correction is added as it is and the post sweeps run as SOR from that guess (MatSOR without a residual), which
        spares the product with A, two dot products and the residual update of :meth:`apply`."""
        t = time.perf_counter()
        omega, its, lits, sweep = self._sor_with_guess
        if self.pre:
            self._sweep(r, z, first=True)
            for _ in range(self.pre - 1):
                self.A.mult(z, self.res)
                self.res.aypx(-1.0, r)
                self._sweep(self.res, z)
            self.A.mult(z, self.res)
            self.res.aypx(-1.0, r)
        self.smooth_time += time.perf_counter() - t
        if not network(self.res if self.pre else r, self.c if self.pre else z):
            return False
        t = time.perf_counter()
        if self.pre:
            z.axpy(1.0, self.c)
        if self.post:
            self.A.SOR(r, z, omega, sweep, 0.0, its * self.post, lits)
        self.smooth_time += time.perf_counter() - t
        return True

    def _sweep(self, res, z, first=False):
        """z += M^-1 res (z = M^-1 res when ``first``); may overwrite ``res`` (Jacobi does, in place)."""
        if self.smoother is None:
            if first:
                z.pointwiseMult(self.dinv, res)
            else:
                res.pointwiseMult(res, self.dinv)
                z.axpy(1.0, res)
        elif first:
            self.smoother.apply(res, z)
        else:
            self.smoother.apply(res, self.tmp)
            z.axpy(1.0, self.tmp)

    def destroy(self):
        for v in (self.dinv, self.res, self.c, self.Ac, self.tmp, self.coupled):
            if v is not None:
                v.destroy()
        if self.smoother is not None:
            self.smoother.destroy()
            self.smoother = None


def _sor_sweep(pc):
    """(omega, its, lits, sweep type) of a PETSc SOR smoother with its default sweep (local symmetric, no diagonal shift), whose
    Richardson steps from a non-zero guess ``MatSOR`` computes directly; None for any other smoother or sweep."""
    if pc.getType() != "sor":
        return None
    from petsc4py import PETSc

    opts = PETSc.Options(pc.getOptionsPrefix())
    other = ("symmetric", "backward", "forward", "local_forward", "local_backward", "diagonal_shift")
    if any(opts.hasName(f"pc_sor_{k}") for k in other):
        return None
    return (opts.getReal("pc_sor_omega", 1.0), opts.getInt("pc_sor_its", 1), opts.getInt("pc_sor_lits", 1),
            PETSc.Mat.SORType.LOCAL_SYMMETRIC_SWEEP)


def _identity_on_empty_rows(op):
    """Put 1 on the diagonal of rows that are zero (coarse unknowns made of decoupled fine unknowns only)."""
    d = op.createVecLeft()
    op.getDiagonal(d)
    arr = d.getArray()
    empty = arr == 0.0
    if op.getComm().tompi4py().allreduce(int(empty.sum())):
        arr[:] = np.where(empty, 1.0, 0.0)
        from petsc4py import PETSc

        op.setOption(PETSc.Mat.Option.NEW_NONZERO_ALLOCATION_ERR, False)
        op.setDiagonal(d, addv=PETSc.InsertMode.ADD_VALUES)
    d.destroy()


class MultilevelCycle:
    """Levels of line-searched Jacobi cycles over a grid hierarchy, the network's cycle at the coarsest level.

    Level l smooths with A_l, restricts its residual with P_l^T, corrects with P_l times the next level's cycle,
    line-searches that correction and smooths again; A_{l+1} = P_l^T A_l P_l (Galerkin). With no interpolations this
    is exactly :class:`TwoGridCycle`. Takes ownership of the interpolation matrices.

    Decoupled rows (solid cells, eliminated Dirichlet unknowns) are left out of the transfers: their rows of P_l (and
    Q_l) are zeroed, so the coarse operators aggregate only coupled unknowns, as a rediscretisation of the geometry on
    the coarse grid would, instead of adding the solid cells' identity rows to mixed coarse cells as a spurious mass
    term. Coarse unknowns left with no coupled fine unknown get an identity row.

    ``kcycle``: every coarse level's correction is two steps of flexible CG on A_{l+1} preconditioned by that
    level's cycle (Notay and Vassilevski's K-cycle) instead of one application: the A_{l+1}-optimal combination of
    two corrections. Aggregation hierarchies (piecewise-constant transfers) lose accuracy with every level of a
    V-cycle; the K-cycle keeps it, in 2D for about the cost of one more fine-level sweep, in 3D for much less
    (a level has 1/4, in 3D 1/8, of the unknowns above it and is visited twice as often).
    """

    def __init__(self, A, interpolations, pre: int, post: int, omega: float, coarsening=None, smoother=None,
                 kcycle: bool = False):
        """``smoother(op)`` returns a set-up PETSc PC for the level operator ``op`` (None: damped Jacobi)."""
        self.P = list(interpolations)
        self.coarsening = list(coarsening or [])  # if given: A_{l+1} = Q_l^T A_l Q_l with these instead of P_l
        self.ops, self.cycles, self.rc, self.ec = [], [], [], []
        self.kwork = []  # per level: the K-cycle's two corrections, their products with A_{l+1}, a residual
        self.unmasked = []  # per level: copies of P_l (and Q_l) before their decoupled rows were zeroed
        self.pre, self.post, self.omega, self.kcycle = pre, post, omega, bool(kcycle)
        try:
            self._build(A, smoother)
        except Exception:
            self.destroy()  # a smoother or an operator that fails at some level: free every level built so far
            raise

    def _build(self, A, smoother):
        pre, post, omega = self.pre, self.post, self.omega
        op = A
        for level, P in enumerate(self.P):
            cycle = TwoGridCycle(op, pre, post, omega, smoother)
            self.cycles.append(cycle)
            # the transfers before masking: a refresh whose decoupled rows moved masks them again in place
            self.unmasked.append([T.duplicate(copy=True) for T in [P] + self.coarsening[level:level + 1]])
            if cycle.coupled is not None:
                for T in [P] + self.coarsening[level:level + 1]:
                    T.diagonalScale(L=cycle.coupled)
            op = op.PtAP(self.coarsening[level] if self.coarsening else P)
            self.ops.append(op)
            if cycle.coupled is not None:
                _identity_on_empty_rows(op)
        self.cycles.append(TwoGridCycle(op, pre, post, omega, smoother))
        if self.kcycle and not self.coarsening:
            # A_{l+1} = P_l^T A_l P_l and the K-cycle's correction e is A_{l+1}-optimal, so the line search of P_l e
            # on level l would return 1: the levels above the network's skip it (zero on empty aggregates: their rows
            # of P_l are zero and the identity rows added there get no residual)
            for cycle in self.cycles[:-1]:
                cycle.optimal_correction = True
        self.rc = [P.createVecRight() for P in self.P]
        self.ec = [P.createVecRight() for P in self.P]
        if self.kcycle:
            self.kwork = [[P.createVecRight() for _ in range(5)] for P in self.P]

    def refresh(self) -> bool:
        """The fine operator's values changed on the same non-zero pattern: recompute every level's diagonal and its
        Galerkin operator in place (PETSc reuses the symbolic product). Where a level's decoupled rows moved (solid
        obstacles that move), its transfers are masked again from their unmasked copies: zeroed rows keep their
        entries as explicit zeros, so the pattern, and with it the symbolic product, stays. Always True."""
        for level, cycle in enumerate(self.cycles):
            same = cycle.refresh()
            if level == len(self.P):
                break  # the network's level: its mask applies to the correction only, read at every apply
            if not same:
                for T, T0 in zip([self.P[level]] + self.coarsening[level:level + 1], self.unmasked[level]):
                    T0.copy(T, structure=True)  # True: SAME_NONZERO_PATTERN, values only
                    if cycle.coupled is not None:
                        T.diagonalScale(L=cycle.coupled)
            T = self.coarsening[level] if self.coarsening else self.P[level]
            cycle.A.PtAP(T, result=self.ops[level])
            if cycle.coupled is not None:
                _identity_on_empty_rows(self.ops[level])
        return True

    @property
    def coarsest_operator(self):
        return self.cycles[-1].A

    @property
    def smooth_time(self) -> float:
        return sum(c.smooth_time for c in self.cycles)

    def apply(self, r, z, network) -> bool:
        return self._apply(0, r, z, network)

    def _apply(self, level, r, z, network) -> bool:
        if level == len(self.P):
            return self.cycles[level].apply(r, z, network)
        P, rc, ec = self.P[level], self.rc[level], self.ec[level]

        def correction(res, c):
            P.multTranspose(res, rc)
            solve = self._krylov if self.kcycle else self._apply
            if not solve(level + 1, rc, ec, network):
                return False
            P.mult(ec, c)
            return True

        return self.cycles[level].apply(r, z, correction)

    def _krylov(self, level, r, e, network) -> bool:
        """e <- two flexible CG steps from zero on A_level e = r, preconditioned by the level's cycle: with
        c1 = B r, c2 = B (r - a1 A c1), e is the A-optimal combination of c1 and c2 (Notay's K-cycle formulas)."""
        A = self.cycles[level].A
        c1, c2, v1, v2, rt = self.kwork[level - 1]
        if not self._apply(level, r, c1, network):
            return False
        A.mult(c1, v1)
        rho1, a1 = c1.dot(v1), c1.dot(r)
        if not rho1 > 0:  # the cycle returned nothing usable (e.g. r = 0): no correction
            e.set(0.0)
            return True
        r.copy(rt)
        rt.axpy(-a1 / rho1, v1)
        if not self._apply(level, rt, c2, network):
            return False
        A.mult(c2, v2)
        gamma, beta, a2 = c2.dot(v1), c2.dot(v2), c2.dot(rt)
        rho2 = beta - gamma * gamma / rho1
        e.set(0.0)
        if rho2 > 1e-14 * beta:  # c2 not (numerically) a multiple of c1
            e.axpy(a1 / rho1 - gamma * a2 / (rho1 * rho2), c1)
            e.axpy(a2 / rho2, c2)
        else:
            e.axpy(a1 / rho1, c1)
        return True

    def destroy(self):
        for c in self.cycles:
            c.destroy()
        for obj in (self.ops + self.P + self.coarsening + self.rc + self.ec + [v for w in self.kwork for v in w]
                    + [T for w in self.unmasked for T in w]):
            obj.destroy()
        self.cycles, self.ops, self.P, self.coarsening, self.rc, self.ec = [], [], [], [], [], []
        self.kwork, self.unmasked = [], []
