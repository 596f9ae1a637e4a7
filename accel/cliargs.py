"""Argument types and flags shared by every ``accel`` command, so bad input ends as an argparse error (usage line,
the option's name, exit status 2) before any work starts, never as a traceback.

Use them as argparse ``type=``: ``p.add_argument("--steps", type=positive_int)``. ``add_force`` adds the ``--force``
flag that :mod:`accel.files` names in its refusals.
"""
from __future__ import annotations

import argparse
import math
from pathlib import Path

__all__ = ["positive_int", "nonnegative_int", "positive_float", "nonnegative_float", "existing_file", "int_list",
           "add_force"]


def _number(text: str, kind):
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not {'an integer' if kind is int else 'a number'}") from None
    if kind is float and not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def _at_least(kind, zero_allowed: bool, what: str):
    """An argparse type: a finite ``kind`` above zero (or at least zero)."""

    def check(text: str):
        value = _number(text, kind)
        if value < 0 or (value == 0 and not zero_allowed):
            raise argparse.ArgumentTypeError(f"must be {what}, got {text}")
        return value

    return check


positive_int = _at_least(int, False, "a positive integer")
positive_int.__doc__ = "An integer >= 1."
nonnegative_int = _at_least(int, True, "zero or a positive integer")
nonnegative_int.__doc__ = "An integer >= 0."
positive_float = _at_least(float, False, "a positive number")
positive_float.__doc__ = "A finite number > 0."
nonnegative_float = _at_least(float, True, "zero or a positive number")
nonnegative_float.__doc__ = "A finite number >= 0."


def existing_file(text: str) -> str:
    """A path to an existing regular file (a folder is named as such)."""
    path = Path(text)
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a directory, not a file")
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"{text} does not exist")
    return text


def int_list(text: str) -> tuple[int, ...]:
    """Comma-separated positive integers, e.g. a grid '64,64'."""
    try:
        values = tuple(int(s) for s in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of integers, e.g. 64,64") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"every entry must be a positive integer, got {text}")
    return values


def add_force(parser: argparse.ArgumentParser, what: str = "the output") -> None:
    """Add ``--force``: overwrite existing outputs (refused otherwise, see :mod:`accel.files`)."""
    parser.add_argument("--force", action="store_true", help=f"overwrite {what} if it exists")
