"""Extra network inputs derived from the operator (numpy; shared by training and the solve path)."""
from __future__ import annotations

import numpy as np


def normalized_diagonal(diag: np.ndarray) -> np.ndarray:
    """The operator's diagonal over its median: 1 in the bulk at any resolution or scaling (Galerkin coarse
    operators included), below 1 next to Neumann walls and in solid cells."""
    d = np.asarray(diag, dtype=np.float64)
    med = float(np.median(d))
    return (d / med if med > 0 else d).astype(np.float32)
