"""A third-party accel plugin: registers the grid preconditioner component ``scaled-jacobi``."""
from accel import hookimpl
from accel.components import ComponentSpec


class ScaledJacobi:
    """out = r / d with a fixed diagonal d (the 2D/3D Laplacian's 2*dim), run inside the neural PC's cycle."""

    cycle = {"pre": 0, "post": 0, "omega": 1.0}
    model = "(none)"

    def __init__(self, **_ignored):
        self.applies = 0

    def setup(self, shape, **info):
        self.diag = 2.0 * len(shape)

    def apply(self, r, out):
        out[...] = r / self.diag
        self.applies += 1


@hookimpl
def accel_components():
    return [ComponentSpec("scaled-jacobi", "preconditioner", "accel_scaled_jacobi:ScaledJacobi",
                          "diagonal scaling (third-party example)")]
