"""What every plugin's training function shares: torch settings that hold for one training run only.

Training functions are library code a caller may run among other work in the same process (a test, a notebook, a
benchmark), so they must not leave torch's thread count or global random stream changed behind them; the command
line entry points set process-wide values themselves. torch is imported on entry, never when this module loads.
"""
from __future__ import annotations

from contextlib import contextmanager


@contextmanager
def torch_scope(threads: int, seed: int | None = None):
    """Run the block with ``threads`` intra-op threads and, if ``seed`` is given, torch's global CPU random stream
    seeded with it; both are restored on exit. Yields the torch module."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        # fork_rng restores the global stream (CPU only: training here never touches a GPU generator)
        with torch.random.fork_rng(devices=[]):
            if seed is not None:
                torch.manual_seed(seed)
            yield torch
    finally:
        torch.set_num_threads(previous)
