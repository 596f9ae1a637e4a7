"""Metadata stored inside every accel ONNX file (``metadata_props['accel']``, JSON) and its checks.

Keys: ``format`` (int), ``plugin``, ``component``, ``dim`` (spatial dimension), ``layout`` ("NCHW" / "NCDHW" /
other documented layouts), ``dtype`` ("float32"), ``problem`` (the training problem's name), ``grid_multiple``
(each grid extent the network takes must be a multiple of it), ``min_grid``, ``train_grid``, ``accel_version``,
``recipe`` (the command that reproduces the file), plus free-form component settings under ``settings``.
"""
from __future__ import annotations

import json
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any

from .errors import ModelError

FORMAT = 1
_KEY = "accel"


@dataclass
class ModelMeta:
    plugin: str
    component: str
    dim: int
    layout: str
    problem: str
    dtype: str = "float32"
    grid_multiple: int = 1
    min_grid: int = 1
    train_grid: tuple[int, ...] = ()
    recipe: str = ""
    accel_version: str = ""
    settings: dict[str, Any] = field(default_factory=dict)
    format: int = FORMAT

    def __post_init__(self):
        """Refuse values no exporter writes (a hand-edited or crafted file), with the field named: every check
        below relies on them (a zero grid multiple would divide by zero, a text dimension compare wrongly)."""
        def bad(name, want):
            raise ModelError(f"accel metadata field {name!r} is {getattr(self, name)!r}; expected {want}")

        def positive(v):
            return isinstance(v, int) and not isinstance(v, bool) and v >= 1

        if not positive(self.format):
            bad("format", "a positive integer")
        if self.format > FORMAT:
            raise ModelError(f"accel metadata format {self.format} is newer than this accel reads ({FORMAT}); "
                             "upgrade accel")
        for name in ("plugin", "component", "layout", "problem", "dtype", "recipe", "accel_version"):
            if not isinstance(getattr(self, name), str):
                bad(name, "a string")
        for name in ("dim", "grid_multiple", "min_grid"):
            if not positive(getattr(self, name)):
                bad(name, "a positive integer")
        self.train_grid = tuple(self.train_grid) if isinstance(self.train_grid, (list, tuple)) else self.train_grid
        if not isinstance(self.train_grid, tuple) or not all(map(positive, self.train_grid)) or \
                len(self.train_grid) not in (0, self.dim):
            bad("train_grid", f"empty or {self.dim} positive integers (one per dimension)")
        if not isinstance(self.settings, dict):
            bad("settings", "an object")

    def to_json(self) -> str:
        d = dict(self.__dict__)
        d["train_grid"] = list(self.train_grid)
        return json.dumps(d, sort_keys=True)

    @classmethod
    def from_json(cls, text: str, source: str = "model") -> "ModelMeta":
        fix = "re-export the model with its recipe"
        try:
            d = json.loads(text)
        except ValueError as exc:
            raise ModelError(f"{source}: accel metadata is not JSON ({exc}); {fix}") from exc
        if not isinstance(d, dict):
            raise ModelError(f"{source}: accel metadata is a JSON {type(d).__name__}, not an object; {fix}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ModelError(f"{source}: accel metadata has unknown fields {', '.join(unknown)}; {fix}")
        missing = sorted(f.name for f in fields(cls) if f.name not in d and f.default is MISSING
                         and f.default_factory is MISSING)
        if missing:
            raise ModelError(f"{source}: accel metadata lacks the fields {', '.join(missing)}; {fix}")
        try:
            return cls(**d)
        except ModelError as exc:
            raise ModelError(f"{source}: {exc}; {fix}") from None

    # -- checks ----------------------------------------------------------------------------------------------------
    def check_grid(self, shape: tuple[int, ...], source: str = "model") -> None:
        """Raise ModelError unless a grid of this shape (C order, no batch/channel axes) fits the network."""
        if len(shape) != self.dim:
            raise ModelError(
                f"{source} was trained for {self.dim}D problems ({self.problem}) but the problem is {len(shape)}D "
                f"(grid {'x'.join(map(str, shape))}); pick a {len(shape)}D model (see 'accel plugins')")
        bad = [n for n in shape if n % self.grid_multiple or n < self.min_grid]
        if bad:
            raise ModelError(
                f"{source} takes grid extents that are multiples of {self.grid_multiple} and at least "
                f"{self.min_grid}; got {'x'.join(map(str, shape))}. Use a grid such as "
                f"{'x'.join(str(max(self.min_grid, -(-n // self.grid_multiple) * self.grid_multiple)) for n in shape)} "
                f"or let the transfer pad the grid")

    def check_plugin(self, plugin: str, source: str = "model") -> None:
        """Raise ModelError unless the model belongs to ``plugin`` (a qualified ``PLUGIN:COMPONENT`` name counts by
        its PLUGIN part)."""
        plugin = plugin.partition(":")[0] if ":" in plugin else plugin
        if self.plugin != plugin:
            raise ModelError(f"{source} belongs to plugin {self.plugin!r}, not {plugin!r}; pass a {plugin} model")


def write(onnx_path: str | Path, meta: ModelMeta) -> None:
    """Attach ``meta`` to an ONNX file in place (weights kept inside the file)."""
    import onnx  # export-time only

    model = onnx.load(str(onnx_path), load_external_data=True)
    del model.metadata_props[:]
    prop = model.metadata_props.add()
    prop.key, prop.value = _KEY, meta.to_json()
    onnx.save_model(model, str(onnx_path), save_as_external_data=False)


def read_from_session_meta(custom: dict[str, str], source: str) -> ModelMeta:
    if _KEY not in custom:
        raise ModelError(f"{source} has no accel metadata: export it with accel (the plugin's 'export' step), "
                         "which records dimension, layout and training problem")
    return ModelMeta.from_json(custom[_KEY], source)


def check_model_file(path: str | Path, hint: str = "") -> Path:
    """``path`` as a Path when it is an existing file; else ModelError saying whether it is a directory or absent
    (``hint``: how to fix it, appended)."""
    path = Path(path)
    if path.is_dir():
        raise ModelError(f"model path {path} is a directory, not an .onnx file{'; ' + hint if hint else ''}")
    if not path.is_file():
        raise ModelError(f"model file {path} does not exist{'; ' + hint if hint else ''}")
    return path


def read(onnx_path: str | Path) -> ModelMeta:
    """Read the metadata of an ONNX file without building a session."""
    import onnxruntime as ort

    path = check_model_file(onnx_path)
    try:
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    except Exception as exc:
        raise ModelError(f"model file {path} is not a readable ONNX model ({exc}); re-create it with its recipe") from exc
    return read_from_session_meta(sess.get_modelmeta().custom_metadata_map, str(path))
