"""ONNX Runtime sessions built from named settings.

Settings: ``providers`` (names "CUDA", "CPU", "TensorRT" or full ORT names, in preference order), ``threads``
(intra-op threads per MPI rank; ORT's default of all cores oversubscribes under MPI), ``spinning`` (off by default:
spinning threads steal the core from PETSc between applies), ``optimization`` ("all", "extended", "basic",
"disable"). Sessions are warmed up at set-up because the first run can be orders of magnitude slower.
Asking for CUDA where ONNX Runtime cannot load it is an error, never a silent CPU fallback.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import AccelError, ModelError
from .modelmeta import ModelMeta, check_model_file, read_from_session_meta

log = logging.getLogger(__name__)

PROVIDER_NAMES = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
}
_OPT_LEVELS = ("disable", "basic", "extended", "all")


@dataclass(frozen=True)
class RuntimeSettings:
    providers: tuple[str, ...] = ("CPU",)
    threads: int = 1
    spinning: bool = False
    optimization: str = "all"

    def __post_init__(self):
        if self.threads < 1:
            raise AccelError(f"threads must be at least 1, got {self.threads}")
        if self.optimization not in _OPT_LEVELS:
            raise AccelError(f"unknown graph optimisation {self.optimization!r}; valid: {', '.join(_OPT_LEVELS)}")
        for p in self.providers:
            resolve_provider(p)

    @classmethod
    def parse(cls, providers: str = "CPU", threads: int = 1, spinning: bool = False, optimization: str = "all"):
        names = tuple(p.strip() for p in providers.split(",") if p.strip()) or ("CPU",)
        return cls(names, int(threads), bool(spinning), optimization)


def resolve_provider(name: str) -> str:
    full = PROVIDER_NAMES.get(name.lower(), name)
    if full not in PROVIDER_NAMES.values():
        raise AccelError(f"unknown ONNX Runtime provider {name!r}; valid: {', '.join(k.upper() for k in PROVIDER_NAMES)}")
    return full


class ModelSession:
    """One ONNX Runtime session with its accel metadata, reusable input/output buffers and a zero-copy run."""

    def __init__(self, path: str | Path, settings: RuntimeSettings = RuntimeSettings(),
                 inputs: tuple[str, ...] | None = None):
        """``inputs``: the input names of a model with several inputs (graph networks), checked against the file;
        run it with :meth:`run_feeds`. None: the model must have one input (``run``, ``bind``/``run_bound``)."""
        import onnxruntime as ort

        self.path = Path(path)
        self.settings = settings
        check_model_file(self.path, "pass an existing .onnx file or omit the model option to use a shipped one "
                                    "('accel plugins' lists them)")
        so = ort.SessionOptions()
        so.intra_op_num_threads = settings.threads
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.add_session_config_entry("session.intra_op.allow_spinning", "1" if settings.spinning else "0")
        so.add_session_config_entry("session.inter_op.allow_spinning", "1" if settings.spinning else "0")
        so.graph_optimization_level = {
            "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
            "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
            "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
            "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
        }[settings.optimization]
        so.log_severity_level = 3
        wanted = [resolve_provider(p) for p in settings.providers]
        available = ort.get_available_providers()
        missing = [p for p in wanted if p not in available]
        if missing and wanted != ["CPUExecutionProvider"]:
            if "CUDAExecutionProvider" in missing:
                raise AccelError(
                    "the CUDA provider was requested but this onnxruntime build has no CUDA support "
                    f"(available: {', '.join(available)}); install onnxruntime-gpu matching your CUDA, or use providers CPU")
            raise AccelError(f"providers {missing} are not available (available: {', '.join(available)})")
        try:
            self.session = ort.InferenceSession(str(self.path), so, providers=wanted)
        except Exception as exc:
            raise ModelError(f"model file {self.path} could not be loaded by ONNX Runtime ({exc}); "
                             "re-create it with its recipe") from exc
        got = self.session.get_providers()
        if "CUDAExecutionProvider" in wanted and "CUDAExecutionProvider" not in got:
            raise AccelError(f"the CUDA provider was requested but failed to load (session providers: {got}); "
                             "check the CUDA/cuDNN libraries onnxruntime-gpu needs, or use providers CPU")
        self.meta: ModelMeta = read_from_session_meta(self.session.get_modelmeta().custom_metadata_map, str(self.path))
        wanted_inputs = inputs
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        if wanted_inputs is not None:
            names = tuple(i.name for i in inputs)
            if set(names) != set(wanted_inputs) or len(outputs) != 1:
                raise ModelError(f"{self.path}: the model takes inputs {', '.join(names)} and gives {len(outputs)} "
                                 f"output(s); this component needs inputs {', '.join(wanted_inputs)} and one output "
                                 "(pass a model made for it)")
        elif len(inputs) != 1 or len(outputs) != 1:
            raise ModelError(f"{self.path}: accel models take one input and give one output "
                             f"(this one has {len(inputs)} and {len(outputs)})")
        self.input_name, self.output_name = inputs[0].name, outputs[0].name
        if inputs[0].type != "tensor(float)" and self.meta.dtype == "float32":
            raise ModelError(f"{self.path}: input type {inputs[0].type} does not match the metadata dtype float32")
        self._device = "cuda" if got[0] == "CUDAExecutionProvider" else "cpu"
        self._binding = None
        self._bound_shape = None

    @property
    def providers(self) -> list[str]:
        return self.session.get_providers()

    def run(self, x: np.ndarray) -> np.ndarray:
        """Run on one input array (batch and channel axes included); returns a new array."""
        return self.session.run([self.output_name], {self.input_name: np.ascontiguousarray(x, np.float32)})[0]

    def run_feeds(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        """Run a model with several named inputs (arrays passed as they are: their dtypes must match the model's)."""
        return self.session.run([self.output_name], feeds)[0]

    def bind(self, x: np.ndarray, y: np.ndarray) -> None:
        """Bind persistent float32 input/output buffers so :meth:`run_bound` copies nothing on the CPU."""
        if x.dtype != np.float32 or y.dtype != np.float32 or not (x.flags.c_contiguous and y.flags.c_contiguous):
            raise AccelError("bound buffers must be C-contiguous float32 arrays")
        b = self.session.io_binding()
        if self._device == "cpu":
            b.bind_input(self.input_name, "cpu", 0, np.float32, list(x.shape), x.ctypes.data)
            b.bind_output(self.output_name, "cpu", 0, np.float32, list(y.shape), y.ctypes.data)
        else:  # device buffers: ORT copies host<->device once per call
            b.bind_cpu_input(self.input_name, x)
            b.bind_output(self.output_name, "cpu")
        self._binding, self._bound = b, (x, y)

    def run_bound(self) -> None:
        self.session.run_with_iobinding(self._binding)
        if self._device != "cpu":
            self._bound[1][...] = self._binding.copy_outputs_to_cpu()[0]

    def warm_up(self, shape: tuple[int, ...], runs: int = 2) -> None:
        x = np.zeros(shape, np.float32)
        x.flat[:: max(1, x.size // 7)] = 1.0
        for _ in range(runs):
            self.run(x)
