"""ONNX export of a trained PINN, with accel metadata (input: physical points (N, d) float32; output: u (N, 1))."""
from __future__ import annotations

import logging
from pathlib import Path

log = logging.getLogger(__name__)


def export_onnx(model, path, problem, recipe: str = "", settings: dict | None = None) -> Path:
    import torch

    from accel import __version__
    from accel.modelmeta import ModelMeta, write

    from accel.files import atomic_output

    path = Path(path)
    model = model.eval()
    x = torch.zeros(8, problem.dim)
    meta = ModelMeta(plugin="aas", component="pinn", dim=problem.dim, layout="points", problem=problem.name,
                     recipe=recipe, accel_version=__version__,
                     settings=dict(settings or {}, domain_low=problem.domain.low.tolist(),
                                   domain_high=problem.domain.high.tolist(),
                                   input="physical points (N, dim) float32", output="u (N, 1)"))
    # the run folder is the caller's (accel train pinn refuses an occupied one without --force): replace the file
    # in it, but only with a complete one
    with atomic_output(path, force=True) as tmp:
        torch.onnx.export(model, (x,), str(tmp), input_names=["x"], output_names=["u"], dynamo=False,
                          dynamic_axes={"x": {0: "n"}, "u": {0: "n"}}, opset_version=17)
        write(tmp, meta)
    return path
