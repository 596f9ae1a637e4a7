"""Progress bars that suit both a terminal and a log file.

On a terminal: a live tqdm bar. When the stream is not a terminal (output redirected to a file, a CI log, a batch
job), the bar is redrawn at most once per ``log_interval`` seconds (default 60), so a run of hours leaves a few
hundred lines instead of one per iteration; long runs still show that they are alive. ``enabled=False`` (a
command's ``--no-progress``) silences it. Every accel command makes its bars here.
"""
from __future__ import annotations

import sys

__all__ = ["progress_bar", "LOG_INTERVAL"]

LOG_INTERVAL = 60.0  # seconds between redraws when the output is not a terminal


def _is_tty(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # closed or file-like objects without isatty
        return False


def progress_bar(iterable=None, *, total=None, desc: str | None = None, unit: str = "it", enabled: bool = True,
                 file=None, log_interval: float = LOG_INTERVAL, **kwargs):
    """A ``tqdm`` bar over ``iterable`` (or to ``update`` by hand with ``total``); see the module docstring."""
    from tqdm import tqdm

    file = file if file is not None else sys.stderr
    tty = _is_tty(file)
    cls = tqdm
    if not tty:
        kwargs.setdefault("mininterval", log_interval)
        kwargs.setdefault("maxinterval", float("inf"))  # tqdm's monitor would otherwise shorten the interval
        kwargs.setdefault("ascii", True)
        kwargs.setdefault("ncols", 100)
        cls = _log_bar_class(tqdm)
    return cls(iterable, total=total, desc=desc, unit=unit, disable=not enabled, file=file, dynamic_ncols=tty,
               **kwargs)


def _log_bar_class(tqdm):
    """tqdm whose ``set_postfix`` / ``set_description`` wait for the next timed redraw instead of forcing one (a
    loss shown every step would otherwise write a line per step)."""

    class LogBar(tqdm):
        def set_postfix(self, ordered_dict=None, refresh=False, **kwargs):
            super().set_postfix(ordered_dict, refresh=refresh, **kwargs)

        def set_description(self, desc=None, refresh=False):
            super().set_description(desc, refresh=refresh)

    return LogBar
