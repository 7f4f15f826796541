"""Pure rendering of Triton `config.pbtxt` text from a manifest model (Jinja2 templates).

`render_config(model, runtime, instance_kind)` depends only on its arguments, so the same
manifest always gives byte-identical files (Ansible copies them idempotently).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import jinja2

from dltk.errors import DltkError
from dltk.manifest import RUNTIMES, DynamicBatching, ModelSpec, TensorSpec

INSTANCE_KINDS = {"cpu": "KIND_CPU", "gpu": "KIND_GPU"}

# ONNX TensorProto element type name -> Triton DataType name.
ONNX_TO_TRITON = {
    "BOOL": "TYPE_BOOL",
    "UINT8": "TYPE_UINT8",
    "UINT16": "TYPE_UINT16",
    "UINT32": "TYPE_UINT32",
    "UINT64": "TYPE_UINT64",
    "INT8": "TYPE_INT8",
    "INT16": "TYPE_INT16",
    "INT32": "TYPE_INT32",
    "INT64": "TYPE_INT64",
    "FLOAT16": "TYPE_FP16",
    "FLOAT": "TYPE_FP32",
    "DOUBLE": "TYPE_FP64",
    "STRING": "TYPE_STRING",
    "BFLOAT16": "TYPE_BF16",
}

# Parameters of the python-onnxruntime model (read by python_models/onnxruntime_model.py).
PYTHON_ORT_PARAMETERS = (("intra_op_num_threads", "1"),)


@dataclass(frozen=True)
class ConfigTensor:
    name: str
    data_type: str
    dims: tuple[int, ...]


@dataclass(frozen=True)
class ConfigContext:
    """What a template sees: a manifest model resolved for one runtime and instance kind."""

    name: str
    max_batch_size: int
    inputs: tuple[ConfigTensor, ...]
    outputs: tuple[ConfigTensor, ...]
    dynamic_batching: DynamicBatching | None
    instances: int
    instance_kind: str
    parameters: tuple[tuple[str, str], ...]


def triton_dtype(onnx_dtype: str) -> str:
    """Triton's TYPE_* name for an ONNX element type name (FLOAT -> TYPE_FP32)."""
    try:
        return ONNX_TO_TRITON[onnx_dtype]
    except KeyError:
        raise DltkError(
            f"ONNX type {onnx_dtype} has no Triton equivalent; supported: "
            f"{', '.join(ONNX_TO_TRITON)}"
        ) from None


def _tensors(model: ModelSpec, tensors: tuple[TensorSpec, ...]) -> tuple[ConfigTensor, ...]:
    result = []
    for t in tensors:
        try:
            dtype = triton_dtype(t.dtype)
        except DltkError as exc:
            raise DltkError(f"model {model.name!r} tensor {t.name!r}: {exc}") from None
        result.append(ConfigTensor(t.name, dtype, t.dims))
    return tuple(result)


def config_context(model: ModelSpec, runtime: str, instance_kind: str = "cpu") -> ConfigContext:
    if instance_kind not in INSTANCE_KINDS:
        raise DltkError(
            f"unknown instance kind {instance_kind!r}; use one of: {', '.join(INSTANCE_KINDS)}"
        )
    if not model.inputs or not model.outputs:
        raise DltkError(
            f"model {model.name!r} has no inputs/outputs; load the manifest with its ONNX files"
        )
    return ConfigContext(
        name=model.name,
        max_batch_size=model.batch.max,
        inputs=_tensors(model, model.inputs),
        outputs=_tensors(model, model.outputs),
        dynamic_batching=model.dynamic_batching if model.batch.max > 0 else None,
        instances=model.instances,
        instance_kind=INSTANCE_KINDS[instance_kind],
        parameters=PYTHON_ORT_PARAMETERS if RUNTIMES[runtime].backend == "python" else (),
    )


@cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("dltk", "templates"),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,  # protobuf text, not HTML
    )


def render_config(model: ModelSpec, runtime: str, instance_kind: str = "cpu") -> str:
    """config.pbtxt text for `model` served by `runtime` on `instance_kind` instances."""
    if runtime not in RUNTIMES:
        raise DltkError(f"unknown runtime {runtime!r}; known runtimes: {', '.join(RUNTIMES)}")
    context = config_context(model, runtime, instance_kind)
    text = _environment().get_template(RUNTIMES[runtime].template).render(model=context)
    return text.rstrip("\n") + "\n"
