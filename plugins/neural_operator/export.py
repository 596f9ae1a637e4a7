"""Export a trained neural operator to ONNX (plain MatMul spectral layers, any resolution) with accel metadata."""
from __future__ import annotations

import copy
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
    The file appears complete or not at all (written to a temporary file, renamed at the end); an existing ``path``
    is replaced: commands refuse existing outputs before they train (``accel.files.refuse_existing``).
    """
    from accel import __version__
    from accel.files import atomic_output

    path = Path(path)
    model = model.eval()
    layout = "NCHW" if model.kind == "fno2d" else "NTHW"
    meta = modelmeta.ModelMeta(
        plugin=PLUGIN, component=model.kind, dim=model.dim, layout=layout, problem=problem, grid_multiple=1,
        min_grid=model.min_grid(), train_grid=tuple(settings.get("train_grid", ())) if settings else (),
        recipe=recipe, accel_version=__version__,
        settings={"model": model.kind, "config": {k: list(v) if isinstance(v, tuple) else v
                                                  for k, v in model.config.items()}, **(settings or {})})
    with atomic_output(path, force=True) as tmp:
        if model.kind == "arfno":
            # Tracing the rollout would unroll out_frames copies of the step network (minutes to export, a graph
            # out_frames times larger); an ONNX Loop around the one exported step keeps one copy.
            _export_graph(model.step, tmp, sample_grid)
            _wrap_in_rollout_loop(tmp, model.in_frames, model.out_frames, model.context)
        else:
            _export_graph(model, tmp, sample_grid)
        if {"DFT", "STFT"} & _op_types(tmp):
            raise ModelError(f"{path}: the export contains an ONNX DFT op; the spectral layers must be matmul-only")
        modelmeta.write(tmp, meta)
    log.info("exported %s (%s, %d bytes)", path, model.kind, path.stat().st_size)
    return path


def _export_graph(model: torch.nn.Module, path: Path, sample_grid: int) -> None:
    n_in = model.config.get("in_channels", model.config.get("in_frames"))
    grid = max(sample_grid, model.min_grid())
    x = torch.randn(2, n_in, grid, grid)
    batch, h, w = torch.export.Dim("batch", min=1), torch.export.Dim("h", min=2), torch.export.Dim("w", min=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (x,), str(path), dynamo=True, external_data=False, input_names=["x"],
                          output_names=["y"], dynamic_shapes={"x": {0: batch, 2: h, 3: w}}, verbose=False)


def _wrap_in_rollout_loop(path: Path, in_frames: int, out_frames: int, context: int) -> None:
    """Rewrite the exported one-step graph at ``path`` (x: (B, context, H, W) -> y: the increment (B, 1, H, W))
    into x: (B, in_frames, H, W) -> y: (B, out_frames, H, W): an ONNX Loop that adds the increment to the last
    frame and shifts the window, ``out_frames`` times. The step's weights stay initializers of the outer graph,
    which the loop body reads from the enclosing scope."""
    import onnx
    from onnx import TensorProto, helper

    step = onnx.load(str(path))
    g = step.graph
    (x_in,), (y_out,) = g.input, g.output
    body_nodes = []
    for node in g.node:
        node = copy.deepcopy(node)
        node.input[:] = ["ar_win" if i == x_in.name else i for i in node.input]
        node.output[:] = ["ar_inc" if o == y_out.name else o for o in node.output]
        body_nodes.append(node)

    def const(name, values, dtype=TensorProto.INT64):
        return helper.make_node("Constant", [], [name], value=helper.make_tensor(name, dtype, [len(values)], values))

    body_nodes += [
        const("ar_c0", [context - 1]), const("ar_c1", [context]), const("ar_one", [1]), const("ar_axis1", [1]),
        helper.make_node("Slice", ["ar_win", "ar_c0", "ar_c1", "ar_axis1"], ["ar_last"]),
        helper.make_node("Add", ["ar_last", "ar_inc"], ["ar_next"]),
        helper.make_node("Slice", ["ar_win", "ar_one", "ar_c1", "ar_axis1"], ["ar_keep"]),
        helper.make_node("Concat", ["ar_keep", "ar_next"], ["ar_win_out"], axis=1),
        helper.make_node("Identity", ["ar_cond_in"], ["ar_cond_out"]),
        helper.make_node("Identity", ["ar_next"], ["ar_frame"]),
    ]
    frames = ["batch", context, "h", "w"]
    body = helper.make_graph(
        body_nodes, "rollout_step",
        [helper.make_tensor_value_info("ar_iter", TensorProto.INT64, []),
         helper.make_tensor_value_info("ar_cond_in", TensorProto.BOOL, []),
         helper.make_tensor_value_info("ar_win", TensorProto.FLOAT, frames)],
        [helper.make_tensor_value_info("ar_cond_out", TensorProto.BOOL, []),
         helper.make_tensor_value_info("ar_win_out", TensorProto.FLOAT, frames),
         helper.make_tensor_value_info("ar_frame", TensorProto.FLOAT, ["batch", 1, "h", "w"])])
    outer = [
        const("ar_start", [in_frames - context]), const("ar_stop", [in_frames]), const("ar_axis", [1]),
        helper.make_node("Slice", ["x", "ar_start", "ar_stop", "ar_axis"], ["ar_win0"]),
        helper.make_node("Constant", [], ["ar_trips"], value=helper.make_tensor("ar_trips", TensorProto.INT64, [],
                                                                                  [out_frames])),
        helper.make_node("Constant", [], ["ar_true"], value=helper.make_tensor("ar_true", TensorProto.BOOL, [],
                                                                                 [True])),
        helper.make_node("Loop", ["ar_trips", "ar_true", "ar_win0"], ["ar_win_final", "ar_frames"], body=body),
        const("ar_squeeze", [2]),
        helper.make_node("Squeeze", ["ar_frames", "ar_squeeze"], ["ar_tbhw"]),
        helper.make_node("Transpose", ["ar_tbhw"], ["y"], perm=[1, 0, 2, 3]),
    ]
    graph = helper.make_graph(
        outer, "arfno_rollout",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", in_frames, "h", "w"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", out_frames, "h", "w"])],
        initializer=list(g.initializer))
    model = helper.make_model(graph, opset_imports=list(step.opset_import), functions=list(step.functions),
                              ir_version=step.ir_version)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def _op_types(path) -> set[str]:
    import onnx

    def walk(nodes) -> set[str]:
        found = set()
        for n in nodes:
            found.add(n.op_type)
            for a in n.attribute:  # subgraphs (the rollout Loop body)
                if a.type == onnx.AttributeProto.GRAPH:
                    found |= walk(a.g.node)
        return found

    m = onnx.load(str(path))
    ops = walk(m.graph.node)
    for f in m.functions:
        ops |= walk(f.node)
    return ops
