"""WoS targets kept on disk between runs (a sweep trains several models on the same walks).

An epoch's estimates depend only on the instances, the points, the walk settings and the seed of its walks; the
key is a SHA-1 of all of them, so a file is reused only for exactly the same walks. Files hold float64 means (the
same numbers a fresh walk gives), the overrun and step counts and the seconds the walks took when computed.
Clear the folder after changing the walk kernel: its results are not part of the key.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from accel.files import atomic_output

VERSION = "wosno-targets-1"


class EstimateCache:
    """Per-epoch WoS estimates in ``folder`` (created when needed). Counts ``hits``, ``misses`` and the
    ``seconds`` the served estimates took to compute (whenever that was)."""

    def __init__(self, folder):
        self.folder = Path(folder)
        self.hits = self.misses = 0
        self.seconds = 0.0

    @staticmethod
    def key(*arrays, **settings) -> str:
        h = hashlib.sha1(VERSION.encode())
        for a in arrays:
            a = np.ascontiguousarray(a)
            h.update(str((a.dtype.str, a.shape)).encode())
            h.update(a.tobytes())
        h.update(repr(sorted(settings.items())).encode())
        return h.hexdigest()

    def get_or_compute(self, key: str, compute):
        """``compute()`` -> (means, overruns, steps), or the stored result for ``key``."""
        import time

        path = self.folder / f"{key}.npz"
        if path.exists():
            with np.load(path) as z:
                self.hits += 1
                self.seconds += float(z["seconds"])
                return z["means"], int(z["overruns"]), int(z["steps"])
        t0 = time.perf_counter()
        means, overruns, steps = compute()
        seconds = time.perf_counter() - t0
        self.misses += 1
        self.seconds += seconds
        self.folder.mkdir(parents=True, exist_ok=True)
        with atomic_output(path, force=True) as tmp, open(tmp, "wb") as fh:
            np.savez(fh, means=np.asarray(means, dtype=np.float64), overruns=overruns, steps=steps, seconds=seconds)
        return means, overruns, steps
