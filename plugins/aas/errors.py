"""Errors of the AAS plugin; each message names the problem and the fix."""
from accel.errors import AccelError, ConvergenceError, DomainError

__all__ = ["DomainError", "SamplerError", "TrainingDiverged"]  # DomainError: accel's one class, re-exported


class SamplerError(AccelError):
    """A sampler cannot deliver points inside the domain."""


class TrainingDiverged(ConvergenceError):
    """Training hit a NaN/inf (PINN loss or the flow's log-density); the last good checkpoint was kept."""

    def __init__(self, message, checkpoint=None, step=None):
        super().__init__(message)
        self.checkpoint = checkpoint
        self.step = step
