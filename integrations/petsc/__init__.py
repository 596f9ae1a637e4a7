"""PETSc integration: the neural preconditioner (NeuralPC), grid transfers, options handling."""
