"""Training right-hand sides from the spectrum of the actual operator (the DCDM recipe).

Ritz vectors of the low end of the spectrum come from scipy's Lanczos (``eigsh`` in shift-invert mode); right-hand
sides are random combinations weighted 9:1 toward the lowest half, plus a white-noise part so that high
frequencies are represented too, then normalised.
"""
from __future__ import annotations

import logging

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import eigsh

log = logging.getLogger(__name__)


def ritz_vectors(A: sp.spmatrix, k: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` lowest eigenpairs of SPD ``A`` (values ascending, vectors as columns)."""
    k = min(k, A.shape[0] - 2)
    v0 = np.random.default_rng(seed).standard_normal(A.shape[0])
    vals, vecs = eigsh(A.tocsc(), k=k, sigma=-1e-3, which="LM", v0=v0)
    order = np.argsort(vals)
    log.info("Lanczos: %d Ritz values in [%.3e, %.3e]", k, vals[order[0]], vals[order[-1]])
    return vals[order], vecs[:, order]


def cached_ritz_vectors(A: sp.spmatrix, k: int, seed: int, key: str):
    """:func:`ritz_vectors`, kept in ``$ACCEL_CACHE`` (default ~/.cache/accel) because Lanczos on a 3D grid takes
    minutes on a small machine and retraining with other network settings needs the same vectors."""
    import hashlib
    import os
    from pathlib import Path

    csr = A.tocsr()
    digest = hashlib.sha1(b"".join(np.ascontiguousarray(a).tobytes() for a in (csr.indptr, csr.indices, csr.data))
                          ).hexdigest()[:12]
    folder = Path(os.environ.get("ACCEL_CACHE", Path.home() / ".cache" / "accel")) / "ritz"
    path = folder / f"{key}-k{k}-s{seed}-{digest}.npz"
    if path.is_file():
        try:
            with np.load(path) as f:
                return f["values"], f["vectors"]
        except (OSError, ValueError, KeyError):
            log.warning("ignoring unreadable Ritz cache %s", path)
    vals, vecs = ritz_vectors(A, k, seed)
    from accel.files import atomic_output

    # a cache entry, replaced freely; its own temporary name because parallel trainings may compute the same vectors
    with atomic_output(path, force=True) as tmp:
        np.savez(tmp, values=vals, vectors=vecs)
    return vals, vecs


def training_rhs(vecs: np.ndarray, count: int, noise: float = 0.3, seed: int = 0) -> np.ndarray:
    """``count`` normalised right-hand sides (rows) weighted toward the low spectrum."""
    rng = np.random.default_rng(seed)
    k = vecs.shape[1]
    weights = np.ones(k)
    weights[: k // 2] = 9.0
    coef = rng.standard_normal((count, k)) * weights
    b = coef @ vecs.T
    b /= np.linalg.norm(b, axis=1, keepdims=True)
    white = rng.standard_normal(b.shape)
    white /= np.linalg.norm(white, axis=1, keepdims=True)
    b = b + noise * white
    return (b / np.linalg.norm(b, axis=1, keepdims=True)).astype(np.float32)
