"""Export a trained neural operator to ONNX (plain MatMul spectral layers, any resolution) with accel metadata."""
from __future__ import annotations

import logging
import warnings
from pathlib import Path

import torch

from accel import modelmeta
from accel.errors import ModelError

log = logging.getLogger(__name__)

PLUGIN = "neural_operator"


def export_onnx(model: torch.nn.Module, path, problem: str, sample_grid: int = 32, recipe: str = "",
                settings: dict | None = None) -> Path:
    """Write ``model`` to ``path`` as one self-contained ONNX file with batch and grid axes dynamic.

    The metadata records the training ``problem`` (family), the spatial dimension, the layout, the smallest grid
    the kept modes allow (``min_grid``) and the model's config, so a mismatch is caught when the file is loaded.
    """
    from accel import __version__

    path = Path(path)
    model = model.eval()
    n_in = model.config.get("in_channels", model.config.get("in_frames"))
    grid = max(sample_grid, model.min_grid())
    x = torch.randn(2, n_in, grid, grid)
    batch, h, w = torch.export.Dim("batch", min=1), torch.export.Dim("h", min=2), torch.export.Dim("w", min=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (x,), str(path), dynamo=True, external_data=False, input_names=["x"],
                          output_names=["y"], dynamic_shapes={"x": {0: batch, 2: h, 3: w}}, verbose=False)
    ops = _op_types(path)
    if {"DFT", "STFT"} & ops:
        raise ModelError(f"{path}: the export contains an ONNX DFT op; the spectral layers must be matmul-only")
    layout = "NCHW" if model.kind == "fno2d" else "NTHW"
    meta = modelmeta.ModelMeta(
        plugin=PLUGIN, component=model.kind, dim=model.dim, layout=layout, problem=problem, grid_multiple=1,
        min_grid=model.min_grid(), train_grid=tuple(settings.get("train_grid", ())) if settings else (),
        recipe=recipe, accel_version=__version__,
        settings={"model": model.kind, "config": {k: list(v) if isinstance(v, tuple) else v
                                                  for k, v in model.config.items()}, **(settings or {})})
    modelmeta.write(path, meta)
    log.info("exported %s (%s, %d bytes)", path, model.kind, path.stat().st_size)
    return path


def _op_types(path) -> set[str]:
    import onnx

    m = onnx.load(str(path))
    ops = {n.op_type for n in m.graph.node}
    for f in m.functions:
        ops |= {n.op_type for n in f.node}
    return ops
