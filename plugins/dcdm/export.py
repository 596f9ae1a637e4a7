"""Export a trained DCDM network to ONNX with accel metadata, and check ONNX Runtime against torch."""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from accel import __version__, modelmeta

log = logging.getLogger(__name__)

LAYOUTS = {2: "NCHW", 3: "NCDHW"}


def export(net, path: Path, problem: str, train_grid, cycle: dict, recipe: str, check_grids=()) -> modelmeta.ModelMeta:
    """Write ``net`` to ``path`` (dynamic batch and grid axes) and verify it on ``check_grids``."""
    import torch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    dim = net.dim
    x = torch.randn(1, net.in_channels, *train_grid)
    axes = {0: "batch", **{2 + a: f"n{a}" for a in range(dim)}}
    tmp = path.with_suffix(".tmp.onnx")
    with torch.no_grad():
        torch.onnx.export(net, (x,), str(tmp), input_names=["residual"], output_names=["correction"],
                          dynamic_axes={"residual": axes, "correction": axes}, opset_version=17, dynamo=False)
    meta = modelmeta.ModelMeta(
        plugin="dcdm", component="dcdm", dim=dim, layout=LAYOUTS[dim], problem=problem,
        grid_multiple=net.grid_multiple, min_grid=2 * net.grid_multiple, train_grid=tuple(train_grid),
        recipe=recipe, accel_version=__version__,
        settings={"cycle": cycle, "width": net.width, "fine_pool": net.fine_pool, "depth": net.depth,
                  "network": type(net).__name__, "conditioning": getattr(net, "conditioning", "concat"),
                  "inputs": list(getattr(net, "input_names", ["residual", "diagonal"][: net.in_channels]))})
    modelmeta.write(tmp, meta)
    tmp.replace(path)  # write-then-rename: an interrupted export never leaves a half-written model behind
    for grid in check_grids:
        err = check_onnx(net, path, grid)
        log.info("ONNX Runtime vs torch on %s: max relative difference %.2e", grid, err)
        if err > 1e-4:
            raise RuntimeError(f"exported model differs from torch by {err:.2e} on grid {grid}")
    return meta


def check_onnx(net, path: Path, grid) -> float:
    """Max |ort - torch| / max |torch| on a random input of shape ``grid``."""
    import torch

    from accel.runtime import ModelSession

    x = np.random.default_rng(1).standard_normal((2, net.in_channels, *grid)).astype(np.float32)
    with torch.no_grad():
        ref = net(torch.from_numpy(x)).numpy()
    out = ModelSession(path).run(x)
    return float(np.abs(out - ref).max() / np.abs(ref).max())
