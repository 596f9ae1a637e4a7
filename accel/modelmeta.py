"""Metadata stored inside every accel ONNX file (``metadata_props['accel']``, JSON) and its checks.

Keys: ``format`` (int), ``plugin``, ``component``, ``dim`` (spatial dimension), ``layout`` ("NCHW" / "NCDHW" /
other documented layouts), ``dtype`` ("float32"), ``problem`` (the training problem's name), ``grid_multiple``
(each grid extent the network takes must be a multiple of it), ``min_grid``, ``train_grid``, ``accel_version``,
``recipe`` (the command that reproduces the file), plus free-form component settings under ``settings``.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
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

    def to_json(self) -> str:
        d = dict(self.__dict__)
        d["train_grid"] = list(self.train_grid)
        return json.dumps(d, sort_keys=True)

    @classmethod
    def from_json(cls, text: str, source: str = "model") -> "ModelMeta":
        try:
            d = json.loads(text)
            d["train_grid"] = tuple(d.get("train_grid", ()))
            return cls(**d)
        except (ValueError, TypeError) as exc:
            raise ModelError(f"{source}: accel metadata is unreadable ({exc}); re-export the model with its recipe") from exc

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


def read(onnx_path: str | Path) -> ModelMeta:
    """Read the metadata of an ONNX file without building a session."""
    import onnxruntime as ort

    path = Path(onnx_path)
    if not path.is_file():
        raise ModelError(f"model file {path} does not exist")
    try:
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    except Exception as exc:
        raise ModelError(f"model file {path} is not a readable ONNX model ({exc}); re-create it with its recipe") from exc
    return read_from_session_meta(sess.get_modelmeta().custom_metadata_map, str(path))
