"""On-disk format of generated data sets.

A data set is two files side by side:

* ``NAME.npz``: the arrays (float32), e.g. ``a`` and ``u`` for Darcy (``(n, H, W)`` each) or ``w`` for Navier-Stokes
  (``(n, T, H, W)``, vorticity at the recorded times);
* ``NAME.json``: ``{"family", "params" (every generating argument), "arrays" ({name: shape}), "sha256" (of the npz),
  "command" (the ``accel data`` line that regenerates it), "created"}``.

A run with the same family and parameters reuses an intact file; a file that is missing, truncated or does not
match its checksum is reported with the command that regenerates it.
"""
from __future__ import annotations

import hashlib
import json
import logging
import time
from pathlib import Path

import numpy as np

from accel.errors import AccelError
from accel.files import atomic_output

log = logging.getLogger(__name__)


class DataError(AccelError):
    """A data file is missing, corrupt or of the wrong family."""


def paths(out) -> tuple[Path, Path]:
    out = Path(out)
    base = out.with_suffix("") if out.suffix in (".npz", ".json") else out
    return base.with_suffix(".npz"), base.with_suffix(".json")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def command_for(family: str, params: dict, out) -> str:
    args = " ".join(f"--{k.replace('_', '-')} {v}" for k, v in params.items())
    return f"accel data {family} {args} --out {paths(out)[0]}"


def describes(out, family: str, params: dict) -> bool:
    """True when ``out``'s description names this family and exactly these parameters (whatever its arrays hold):
    regenerating then repairs the same data set rather than replacing another one."""
    js = paths(out)[1]
    try:
        info = json.loads(js.read_text())
    except (OSError, ValueError):
        return False
    return (isinstance(info, dict) and info.get("family") == family
            and info.get("params") == json.loads(json.dumps(params)))


def reusable(out, family: str, params: dict) -> bool:
    """True when ``out`` holds an intact data set generated with exactly these parameters."""
    npz, js = paths(out)
    if not (npz.is_file() and describes(out, family, params)):
        return False
    if json.loads(js.read_text()).get("sha256") != _sha256(npz):
        log.warning("%s does not match its checksum: regenerating", npz)
        return False
    return True


def save(out, family: str, params: dict, arrays: dict[str, np.ndarray], extra: dict | None = None,
         force: bool = False) -> Path:
    """Write the data set (both files appear together, complete, or neither does); an existing one is refused
    unless ``force``."""
    npz, js = paths(out)
    with atomic_output(npz, js, force=force) as (tmp_npz, tmp_js):
        with open(tmp_npz, "wb") as f:
            np.savez(f, **{k: np.asarray(v) for k, v in arrays.items()})
        info = {"family": family, "params": params, "arrays": {k: list(np.shape(v)) for k, v in arrays.items()},
                "sha256": _sha256(tmp_npz), "command": command_for(family, params, out),
                "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **(extra or {})}
        tmp_js.write_text(json.dumps(info, indent=1))
    return npz


def load(path, family: str | None = None) -> tuple[dict[str, np.ndarray], dict]:
    """Arrays and metadata of a data set; a clear DataError (with the regenerating command) when it is unusable."""
    npz, js = paths(path)
    info = {}
    if js.is_file():
        try:
            info = json.loads(js.read_text())
        except ValueError:
            info = {}
    how = info.get("command") or f"'accel data {family or '<family>'} ... --out {npz}'"
    if not npz.is_file():
        raise DataError(f"data file {npz} does not exist; generate it with: {how}")
    if not info:
        raise DataError(f"data file {npz} has no readable description {js.name}; regenerate it with: {how}")
    if info.get("sha256") != _sha256(npz):
        raise DataError(f"data file {npz} is corrupt (checksum mismatch, e.g. an interrupted copy); "
                        f"delete it and regenerate with: {how}")
    if family is not None and info.get("family") != family:
        raise DataError(f"data file {npz} holds {info.get('family')!r} data, not {family!r}; "
                        f"generate {family} data with 'accel data {family} ...'")
    try:
        with np.load(npz) as f:
            arrays = {k: f[k] for k in f.files}
    except Exception as exc:
        raise DataError(f"data file {npz} is unreadable ({exc}); delete it and regenerate with: {how}") from exc
    return arrays, info
