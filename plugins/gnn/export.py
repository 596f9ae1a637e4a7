"""Export a trained factor network to ONNX with accel metadata, and check ONNX Runtime against torch."""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from accel import __version__, modelmeta

log = logging.getLogger(__name__)

INPUTS = ("node", "edge", "neighbours")
LAYOUT = "padded-neighbours"
PROBLEM_KIND = "spd-scalar"  # what the shipped family is: SPD matrices of scalar diffusion-type problems


def export(net, path: Path, recipe: str, problem: str = PROBLEM_KIND, trained_on: str = "",
           check=None, force: bool = False, pattern: str = "a") -> modelmeta.ModelMeta:
    """Write ``net`` to ``path`` (dynamic node and slot axes, opset 17) with its metadata; compare ONNX Runtime with
    torch on ``check`` (a PaddedGraph, e.g. one with repeated neighbour indices) when given."""
    import torch

    from accel.files import atomic_output

    from .graph import EDGE_FEATURES, NODE_FEATURES

    path = Path(path)
    n, K = 5, 3
    example = (torch.zeros(n, len(NODE_FEATURES)), torch.zeros(n, K, len(EDGE_FEATURES)),
               torch.zeros(n, K, dtype=torch.int64))
    axes = {"node": {0: "n"}, "edge": {0: "n", 1: "slots"}, "neighbours": {0: "n", 1: "slots"},
            "factor": {0: "n", 1: "slots"}}
    with atomic_output(path, force=force) as tmp:  # an interrupted export never leaves a half-written model
        with torch.no_grad():
            torch.onnx.export(net.eval(), example, str(tmp), input_names=list(INPUTS), output_names=["factor"],
                              dynamic_axes=axes, opset_version=17, dynamo=False)
        meta = modelmeta.ModelMeta(
            # dim: the network sees only the matrix and takes any dimension; ModelMeta requires a positive value
            plugin="gnn", component="gnn", dim=1, layout=LAYOUT, problem=problem, recipe=recipe,
            accel_version=__version__,
            settings={"rings": net.rings, "hidden": net.hidden, "layers": net.layers, "network": type(net).__name__,
                      **({"width": net.width, "rank": net.rank} if hasattr(net, "width") else {}),
                      "node_features": list(NODE_FEATURES), "edge_features": list(EDGE_FEATURES),
                      "factor": "lower", "pattern": pattern, "trained_on": trained_on})
        modelmeta.write(tmp, meta)
        if check is not None:
            err = check_onnx(net, tmp, check)
            log.info("ONNX Runtime vs torch: max relative difference %.2e", err)
            if err > 1e-4:
                raise RuntimeError(f"exported model differs from torch by {err:.2e}")
    return meta


def check_onnx(net, path: Path, graph) -> float:
    """Max |ort - torch| / max |torch| of the factor values on ``graph``'s inputs."""
    import torch

    from accel.runtime import ModelSession

    feeds = graph.inputs()
    with torch.no_grad():
        ref = net(*(torch.from_numpy(feeds[k]) for k in INPUTS)).numpy()
    out = ModelSession(path, inputs=INPUTS).run_feeds(feeds)
    return float(np.abs(out - ref).max() / max(np.abs(ref).max(), 1e-30))
