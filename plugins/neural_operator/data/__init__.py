"""Training data made by the project's own solvers (never downloaded): a parametric Darcy family solved with PETSc,
and 2D incompressible Navier-Stokes trajectories from a pseudo-spectral solver. See ``store`` for the on-disk format."""
