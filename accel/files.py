"""Output files that are either complete or absent, and never replace a user's file unasked.

Every command that writes files goes through :func:`atomic_output`: the work writes to a temporary path in the
destination's folder (same file system, so the final rename is atomic), the temporary is renamed over the
destination only when the block succeeds and removed when it fails. An existing destination is refused unless
``force`` is set, with a message naming ``--force``. Call :func:`refuse_existing` when arguments are read, so a
command stops before hours of work rather than at the end::

    refuse_existing(out, force=args.force)            # at argument time
    ...train...
    with atomic_output(out, force=args.force) as tmp:  # at write time
        write(tmp)

Several files that belong together (``NAME.npz`` + ``NAME.json``, ``OUT.pt`` + ``OUT.onnx``): pass them all; they
are renamed together after the block (each rename is atomic; a failure in the block leaves none of them).
A folder can be a destination too (the temporary is then a folder; with ``force`` the old folder is replaced).
"""
from __future__ import annotations

import os
import shutil
import uuid
from contextlib import contextmanager
from pathlib import Path

from .errors import AccelError

__all__ = ["OutputExistsError", "refuse_existing", "atomic_output", "temporary_name"]


class OutputExistsError(AccelError):
    """An output would replace an existing file or folder and ``--force`` was not given."""


def refuse_existing(*paths, force: bool = False, flag: str = "--force") -> None:
    """Raise :class:`OutputExistsError` naming ``flag`` when any of ``paths`` exists and ``force`` is False."""
    if force:
        return
    existing = [str(p) for p in map(Path, paths) if p.exists() or p.is_symlink()]
    if existing:
        what = existing[0] if len(existing) == 1 else ", ".join(existing)
        raise OutputExistsError(f"{what} already exist{'s' if len(existing) == 1 else ''}; pass {flag} to overwrite "
                                "it or choose another output path")


def temporary_name(path) -> Path:
    """A fresh hidden name next to ``path`` that keeps its suffix (``.x.onnx`` -> ``.x.<id>.partial.onnx``), so
    writers that add or check a suffix (numpy, torch, onnx) accept it."""
    path = Path(path)
    return path.with_name(f".{path.stem}.{os.getpid()}-{uuid.uuid4().hex[:8]}.partial{path.suffix}")


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


@contextmanager
def atomic_output(*paths, force: bool = False, flag: str = "--force", folder: bool = False):
    """Yield temporary path(s) for ``paths`` (one path: a Path; several: a tuple); rename them over ``paths`` when
    the block succeeds, remove them when it raises. Existing destinations are refused unless ``force``.

    ``folder=True`` creates the temporaries as empty folders (for commands whose output is a folder).
    Parent folders of the destinations are created. The block writes to the temporaries only.
    """
    if not paths:
        raise TypeError("atomic_output needs at least one destination path")
    dests = [Path(p) for p in paths]
    for d in dests:  # never replace a folder by a file or a file by a folder, --force or not
        if d.exists() and d.is_dir() != folder:
            raise OutputExistsError(f"{d} is {'a file' if folder else 'a directory'}; give a "
                                    f"{'folder' if folder else 'file'} path for this output")
    refuse_existing(*dests, force=force, flag=flag)
    temps = [temporary_name(d) for d in dests]
    for d, t in zip(dests, temps):
        d.parent.mkdir(parents=True, exist_ok=True)
        if folder:
            t.mkdir()
    try:
        yield temps[0] if len(temps) == 1 else tuple(temps)
        missing = [str(d) for d, t in zip(dests, temps) if not (t.exists() or t.is_symlink())]
        if missing:
            raise AccelError(f"internal error: nothing was written for {', '.join(missing)}")
        for d, t in zip(dests, temps):
            if folder and d.is_dir() and not d.is_symlink():  # os.replace cannot replace a folder (force checked)
                shutil.rmtree(d)
            os.replace(t, d)
    finally:
        for t in temps:
            _remove(t)
