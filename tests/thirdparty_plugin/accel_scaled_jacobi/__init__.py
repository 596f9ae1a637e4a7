"""A third-party accel plugin: two preconditioner components written against accel's component contract.

* ``scaled-jacobi`` (grid layout): out = r / (2 dim) on the residual grid, run inside the neural PC's cycle.
* ``jacobi-matrix`` (matrix layout): y = omega D^-1 x with the operator's diagonal D, linear and SPD, so plain CG
  works; its option ``-{prefix}accel_jacobi_omega`` (or ``extra={"jacobi_omega": W}``) scales it.
"""
from accel import hookimpl
from accel.components import (ComponentSpec, CycleSettings, PreconditionerConfig, PreconditionerInfo,
                              PreconditionerStats)
from accel.errors import SolverConfigError


class ScaledJacobi:
    """A GridPreconditioner: out = r / d with the 2D/3D Laplacian's diagonal d = 2 dim."""

    def __init__(self, config: PreconditionerConfig):
        self._stats = PreconditionerStats()

    def describe(self, dim):
        return PreconditionerInfo(layout="grid", linear=False, model="(none)", cycle=CycleSettings(omega=1.0))

    def initialize(self, problem):
        self.diag = 2.0 * len(problem.shape)

    def update(self, problem):
        pass

    def apply(self, r, out):
        out[...] = r / self.diag
        self._stats.applies += 1

    def stats(self):
        return self._stats

    def destroy(self):
        pass


class MatrixJacobi:
    """A MatrixPreconditioner: y = omega D^-1 x, with D read from the operator at every set-up (every rank)."""

    def __init__(self, config: PreconditionerConfig):
        from petsc4py import PETSc

        unknown = sorted(set(config.extra) - {"jacobi_omega"})
        if unknown:
            raise SolverConfigError(f"unknown jacobi-matrix option(s) {', '.join(unknown)}; valid: jacobi_omega")
        opts = PETSc.Options(config.options_prefix)
        self.omega = float(config.extra.get("jacobi_omega", opts.getReal("jacobi_omega", 1.0)))
        self.dinv = None
        self._stats = PreconditionerStats()

    def describe(self, dim):
        return PreconditionerInfo(layout="matrix", linear=True, model="(diagonal)")

    def initialize(self, A):
        self.destroy()
        self.dinv = A.createVecLeft()
        self.update(A)

    def update(self, A):
        A.getDiagonal(self.dinv)
        self.dinv.reciprocal()
        self.dinv.scale(self.omega)
        self._stats = PreconditionerStats()

    def apply(self, x, y):
        y.pointwiseMult(self.dinv, x)
        self._stats.applies += 1

    def apply_transpose(self, x, y):
        self.apply(x, y)

    def stats(self):
        return self._stats

    def destroy(self):
        if self.dinv is not None:
            self.dinv.destroy()
            self.dinv = None


@hookimpl
def accel_components():
    return [ComponentSpec("scaled-jacobi", "preconditioner", "accel_scaled_jacobi:ScaledJacobi",
                          "diagonal scaling on residual grids (third-party example)"),
            ComponentSpec("jacobi-matrix", "preconditioner", "accel_scaled_jacobi:MatrixJacobi",
                          "omega D^-1 on the operator, a linear matrix-layout example (third-party)")]
