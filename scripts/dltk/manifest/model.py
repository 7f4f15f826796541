"""The manifest's records (`Manifest`, `ModelSpec`, `BatchRange`) and the runtimes a model can be
served by. Data only: loading and checking is manifest/load.py (which re-exports these names).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from dltk.errors import DltkError
from dltk.manifest.options import (
    DynamicBatching,
    OrtTensorrt,
    PipelineSpec,
    TensorrtOptions,
    VersionPolicy,
    Warmup,
)
from dltk.onnx_graph import TensorSpec


@dataclass(frozen=True)
class Runtime:
    """How Triton serves a model: a platform or a backend, and the version-dir files."""

    name: str
    template: str
    platform: str = ""
    backend: str = ""


RUNTIMES: dict[str, Runtime] = {
    "onnxruntime": Runtime("onnxruntime", "onnxruntime.pbtxt.j2", platform="onnxruntime_onnx"),
    "python-onnxruntime": Runtime(
        "python-onnxruntime", "python_onnxruntime.pbtxt.j2", backend="python"
    ),
    "tensorrt": Runtime("tensorrt", "tensorrt_plan.pbtxt.j2", platform="tensorrt_plan"),
}
# Runtimes that serve the ONNX file itself; one of them is the model's deployment under its
# own name. `tensorrt` adds engines next to it (`<name>_trt_<precision>`) where they exist.
ONNX_RUNTIMES = ("onnxruntime", "python-onnxruntime")


def trt_model_name(model: str, precision: str) -> str:
    """The Triton model name of `model`'s TensorRT engine in `precision`."""
    return f"{model}_trt_{precision}"


@dataclass(frozen=True)
class BatchRange:
    """min/opt/max batch size; max -> Triton max_batch_size, 0 = fixed-batch model."""

    min: int
    opt: int
    max: int


@dataclass(frozen=True)
class ModelSpec:
    name: str
    onnx: Path
    batch: BatchRange
    runtimes: tuple[str, ...]
    export: str | None = None
    samples: Path | None = None
    dynamic_batching: DynamicBatching | None = None
    instances: int = 1
    cpu_threads: int | None = None  # onnxruntime intra-op threads per instance (None: default)
    inputs: tuple[TensorSpec, ...] = field(default=())
    outputs: tuple[TensorSpec, ...] = field(default=())
    precisions: tuple[str, ...] = ("tf32",)
    tensorrt: TensorrtOptions = field(default_factory=TensorrtOptions)
    onnxruntime_tensorrt: OrtTensorrt | None = None
    warmup: Warmup | None = None
    version_policy: VersionPolicy | None = None


@dataclass(frozen=True)
class Manifest:
    path: Path
    models: tuple[ModelSpec, ...]
    pipelines: tuple[PipelineSpec, ...] = ()

    def model(self, name: str) -> ModelSpec:
        for model in self.models:
            if model.name == name:
                return model
        known = ", ".join(m.name for m in self.models)
        raise DltkError(f"{self.path}: no model named {name!r}; the manifest has: {known}")
