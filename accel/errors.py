"""Exceptions raised by accel. Each message names the problem and the fix."""


class AccelError(Exception):
    """Base class of every accel error."""


class UnknownComponentError(AccelError, KeyError):
    """A component (plugin, sampler, ...) was asked for by a name nobody registered."""

    def __str__(self):  # KeyError would repr() the message
        return str(self.args[0])


class AmbiguousComponentError(UnknownComponentError):
    """A plain component name is declared by several third-party plugins; the message lists the qualified names."""


class ModelError(AccelError):
    """A model file is missing, corrupt or does not fit the problem."""


class GridError(AccelError):
    """The problem's grid cannot be found or the network cannot take it."""


class DomainError(AccelError, ValueError):
    """A domain (geometry) is malformed: wrong sign convention, empty interior or zero volume, bad parameters."""


class SolverConfigError(AccelError):
    """The solver is configured in a way the component cannot work with."""


class ConvergenceError(AccelError):
    """A solve did not converge (never returned silently)."""
