"""Checkpoints of the neural operators: ``.pt`` files written by training (weights plus the config that rebuilds
the model), loaded with ``torch.load(weights_only=True)`` so a crafted file cannot run code, and models rebuilt
from an exported ONNX file's weights (fine-tuning a shipped model that comes without its ``.pt``).

A checkpoint holds only tensors and plain values: ``{"name": str, "config": dict, "state_dict": {name: tensor},
"info": dict}`` (``info``: the training summary, numbers, strings and lists).
"""
from __future__ import annotations

from pathlib import Path

import torch

from accel.errors import AccelError, ModelError
from .models import build_model


def save_checkpoint(model: torch.nn.Module, path, /, **info) -> None:
    """Save weights with the name and config needed to rebuild the model, plus free-form ``info`` (plain values)."""
    torch.save({"name": model.kind, "config": model.config, "state_dict": model.state_dict(), "info": info}, path)


def load_checkpoint(path) -> tuple[torch.nn.Module, dict]:
    """The model and its training info from a ``.pt`` checkpoint, an exported ``.onnx`` file or the name of a shipped
    model (the last two rebuilt from the ONNX weights, see :func:`import_onnx`)."""
    path = Path(path)
    if path.is_dir():
        raise AccelError(f"checkpoint {path} is a directory; pass the OUT.pt file written by 'accel train fno', an "
                         ".onnx file or a shipped model name")
    if path.suffix == ".onnx" or (path.suffix != ".pt" and not path.exists()):  # an exported file or a shipped name
        from .surrogate import resolve_model

        return import_onnx(resolve_model(path))
    if not path.is_file():
        raise AccelError(f"checkpoint {path} does not exist; create it with 'accel train fno ...'")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # weights_only refuses anything but tensors and plain containers: no code runs
        raise AccelError(f"checkpoint {path} is not a plain accel checkpoint (tensors and plain values only; "
                         f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}); re-create it with "
                         "'accel train fno ...'") from exc
    try:
        model = build_model(ckpt["name"], **ckpt["config"])
        model.load_state_dict(ckpt["state_dict"])
    except AccelError:
        raise
    except Exception as exc:
        raise AccelError(f"checkpoint {path} is unreadable ({type(exc).__name__}: {exc}); re-create it with "
                         "'accel train fno ...'") from exc
    return model.eval(), ckpt.get("info", {})


def import_onnx(path) -> tuple[torch.nn.Module, dict]:
    """Rebuild the torch model of an accel ONNX file from its metadata and weights, for fine-tuning a model that
    was shipped or handed on without its ``.pt`` checkpoint. Returns ``(model, info)`` like ``load_checkpoint``.

    The exported graph keeps every parameter and buffer as an initializer under its state-dict name (for the
    rolled-out one-step FNO, the step network's names), except buffers the exporter folded away because they held
    their neutral value (a zero normaliser mean); those keep their defaults, and the rebuilt model is checked
    against the ONNX file on a random input before it is returned.
    """
    import numpy as np
    import onnx
    from onnx import numpy_helper

    from .surrogate import Surrogate

    sur = Surrogate(path)  # reads and checks the metadata; runs the graph for the check below
    meta, settings = sur.meta, sur.meta.settings
    if "model" not in settings or "config" not in settings:
        raise ModelError(f"{path} does not record its model config (exported by an older accel); fine-tune from the "
                         f".pt checkpoint or re-create the model with its recipe: {meta.recipe or '(none recorded)'}")
    model = build_model(settings["model"], **settings["config"])
    target = model.step if model.kind == "arfno" else model  # the exported graph is the step network
    weights = {t.name: numpy_helper.to_array(t) for t in onnx.load(str(path)).graph.initializer}
    state = target.state_dict()
    missing = [k for k in state if k not in weights]
    if any(k in dict(target.named_parameters()) for k in missing):
        raise ModelError(f"{path} lacks the weights {', '.join(missing)}; fine-tune from the .pt checkpoint written "
                         "by 'accel train fno'")
    target.load_state_dict({k: torch.from_numpy(np.array(weights[k], copy=True)).reshape(v.shape).to(v.dtype)
                            if k in weights else v for k, v in state.items()})
    model.eval()
    # the rebuilt model must reproduce the graph (a folded buffer that was not neutral would show here)
    grid = max(meta.min_grid, 16)
    x = np.random.default_rng(0).standard_normal((1, sur.channels, grid, grid)).astype(np.float32)
    ref = sur.predict(x)
    with torch.no_grad():
        out = model(torch.from_numpy(x)).numpy()
    err = float(np.abs(out - ref).max() / max(np.abs(ref).max(), 1e-30))
    if not err <= 1e-4:
        raise ModelError(f"the model rebuilt from {path} differs from the ONNX graph by {err:.2e} (relative); its "
                         "weights cannot be recovered from the file: fine-tune from the .pt checkpoint written by "
                         "'accel train fno'")
    info = {k: v for k, v in settings.items() if k not in ("model", "config")}
    info.update(family=meta.problem, source=str(path))
    return model, info
