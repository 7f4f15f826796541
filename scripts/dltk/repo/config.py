"""Pure rendering of Triton `config.pbtxt` text from manifest records (Jinja2 templates).

`render_config(model, runtime, instance_kind)` renders a model's ONNX deployment (onnxruntime or
python-onnxruntime), `render_tensorrt_config(model, precision, ccs)` one of its TensorRT engines
and `render_pipeline_config(pipeline, model, targets)` a BLS pipeline. Each depends only on its
arguments, so the same manifest always gives byte-identical files (Ansible copies them
idempotently).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache

import jinja2

from dltk.engines.plan import engine_filename, engine_io_dtype
from dltk.errors import DltkError
from dltk.manifest.model import RUNTIMES, ModelSpec, trt_model_name
from dltk.manifest.options import DynamicBatching, OrtTensorrt, PipelineSpec, VersionPolicy
from dltk.onnx_graph import TensorSpec

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


# The manifest's cpu_threads as each ONNX runtime's parameter: python_models/onnxruntime_model.py
# reads intra_op_num_threads (default 1: one thread per instance, instances scale instead);
# Triton's onnxruntime backend reads intra_op_thread_count (set only when the manifest asks).
def _ort_parameters(model: ModelSpec, runtime: str) -> tuple[tuple[str, str], ...]:
    if RUNTIMES[runtime].backend == "python":
        return (("intra_op_num_threads", str(model.cpu_threads or 1)),)
    if runtime == "onnxruntime" and model.cpu_threads is not None:
        return (("intra_op_thread_count", str(model.cpu_threads)),)
    return ()


@dataclass(frozen=True)
class ConfigTensor:
    name: str
    data_type: str
    dims: tuple[int, ...]


@dataclass(frozen=True)
class WarmupInput:
    name: str
    data_type: str
    dims: tuple[int, ...]


@dataclass(frozen=True)
class WarmupContext:
    name: str
    batch_size: int
    data: str  # zero | random
    count: int
    inputs: tuple[WarmupInput, ...]


@dataclass(frozen=True)
class ConfigContext:
    """What a template sees: a model resolved for one runtime and instance kind."""

    name: str
    max_batch_size: int
    inputs: tuple[ConfigTensor, ...]
    outputs: tuple[ConfigTensor, ...]
    dynamic_batching: DynamicBatching | None
    instances: int
    instance_kind: str
    parameters: tuple[tuple[str, str], ...]
    version_policy: VersionPolicy | None = None
    warmup: WarmupContext | None = None
    accelerator: tuple[tuple[str, str], ...] = ()  # onnxruntime's TensorRT accelerator
    cc_model_filenames: tuple[tuple[str, str], ...] = ()  # tensorrt_plan


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


def _warmup(model: ModelSpec, inputs: tuple[ConfigTensor, ...]) -> WarmupContext | None:
    if model.warmup is None:
        return None
    given = dict(model.warmup.dims)
    warm = model.warmup
    return WarmupContext(
        name=f"{warm.data}_batch_{warm.batch_size}",
        batch_size=warm.batch_size,
        data=warm.data,
        count=warm.count,
        inputs=tuple(WarmupInput(t.name, t.data_type, given.get(t.name, t.dims)) for t in inputs),
    )


def _accelerator(spec: OrtTensorrt | None, instance_kind: str) -> tuple[tuple[str, str], ...]:
    """Parameters of onnxruntime's TensorRT execution accelerator (GPU instances only)."""
    if spec is None or instance_kind != "gpu":
        return ()
    params = [
        ("precision_mode", spec.precision.upper()),
        ("max_workspace_size_bytes", str(spec.workspace_mb * 1024 * 1024)),
    ]
    if spec.engine_cache_path:
        params += [
            ("trt_engine_cache_enable", "1"),
            ("trt_engine_cache_path", spec.engine_cache_path),
        ]
    return tuple(params)


def config_context(model: ModelSpec, runtime: str, instance_kind: str = "cpu") -> ConfigContext:
    if instance_kind not in INSTANCE_KINDS:
        raise DltkError(
            f"unknown instance kind {instance_kind!r}; use one of: {', '.join(INSTANCE_KINDS)}"
        )
    if not model.inputs or not model.outputs:
        raise DltkError(
            f"model {model.name!r} has no inputs/outputs; load the manifest with its ONNX files"
        )
    inputs = _tensors(model, model.inputs)
    return ConfigContext(
        name=model.name,
        max_batch_size=model.batch.max,
        inputs=inputs,
        outputs=_tensors(model, model.outputs),
        dynamic_batching=model.dynamic_batching if model.batch.max > 0 else None,
        instances=model.instances,
        instance_kind=INSTANCE_KINDS[instance_kind],
        parameters=_ort_parameters(model, runtime),
        version_policy=model.version_policy,
        warmup=_warmup(model, inputs),
        accelerator=(
            _accelerator(model.onnxruntime_tensorrt, instance_kind)
            if runtime == "onnxruntime"
            else ()
        ),
    )


def pbtxt_string(value: str) -> str:
    """`value` escaped for a double-quoted protobuf text string."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


@cache
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("dltk", "templates"),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,  # protobuf text, not HTML
    )
    env.filters["q"] = pbtxt_string
    return env


def _render(template: str, context: ConfigContext) -> str:
    text = _environment().get_template(template).render(model=context)
    return text.rstrip("\n") + "\n"


def render_config(model: ModelSpec, runtime: str, instance_kind: str = "cpu") -> str:
    """config.pbtxt text for `model` served by an ONNX `runtime` on `instance_kind` instances."""
    if runtime not in RUNTIMES or runtime == "tensorrt":
        known = ", ".join(r for r in RUNTIMES if r != "tensorrt")
        hint = (
            "; TensorRT engines render with render_tensorrt_config" if runtime == "tensorrt" else ""
        )
        raise DltkError(f"unknown runtime {runtime!r}; known runtimes: {known}{hint}")
    return _render(RUNTIMES[runtime].template, config_context(model, runtime, instance_kind))


def render_tensorrt_config(model: ModelSpec, precision: str, ccs: tuple[str, ...]) -> str:
    """config.pbtxt of `model`'s `precision` engine, one plan file per compute capability."""
    if precision not in model.precisions:
        raise DltkError(
            f"model {model.name!r} has no {precision} engine; its precisions: "
            f"{', '.join(model.precisions)}"
        )
    if not ccs:
        raise DltkError(f"model {model.name!r} {precision}: no compute capability to render")
    base = config_context(model, "tensorrt", "gpu")

    def io(tensors: tuple[ConfigTensor, ...], specs: tuple[TensorSpec, ...]) -> tuple:
        return tuple(
            ConfigTensor(t.name, triton_dtype(engine_io_dtype(model, precision, s)), t.dims)
            for t, s in zip(tensors, specs, strict=True)
        )

    inputs = io(base.inputs, model.inputs)
    context = ConfigContext(
        **{
            **base.__dict__,
            "name": trt_model_name(model.name, precision),
            "inputs": inputs,
            "outputs": io(base.outputs, model.outputs),
            "warmup": _warmup(model, inputs),
            "cc_model_filenames": tuple((cc, engine_filename(cc)) for cc in sorted(set(ccs))),
        }
    )
    return _render(RUNTIMES["tensorrt"].template, context)


@dataclass(frozen=True)
class Target:
    """A model a pipeline may call, in order of preference, and the dtype it takes."""

    model: str
    data_type: str  # TYPE_FP32 or TYPE_FP16


def pipeline_targets(
    model: ModelSpec, engines: tuple[str, ...], onnx_deployed: bool = True
) -> tuple[Target, ...]:
    """TensorRT engines first (manifest precision order), then the ONNX deployment."""
    (tensor,) = model.inputs
    targets = [
        Target(trt_model_name(model.name, p), triton_dtype(engine_io_dtype(model, p, tensor)))
        for p in model.precisions
        if p in engines
    ]
    if onnx_deployed:
        targets.append(Target(model.name, triton_dtype(tensor.dtype)))
    return tuple(targets)


def render_pipeline_config(
    pipeline: PipelineSpec, model: ModelSpec, targets: tuple[Target, ...]
) -> str:
    """config.pbtxt of the BLS model of `pipeline` (python backend, CPU instances).

    max_batch_size is the pipeline's (default: the model's batch.max); dynamic batching only
    when the pipeline asks for it (the BLS model then sends each batch in one call).
    """
    if not targets:
        raise DltkError(f"pipeline {pipeline.name!r}: model {model.name!r} is not deployed")
    (tensor,) = model.inputs
    (scores,) = model.outputs
    batched = model.batch.max > 0
    chw = tensor.dims if batched else tensor.dims[1:]
    image = (*chw[1:], chw[0]) if pipeline.layout == "HWC" else chw
    rows = () if batched else (tensor.dims[0],)
    classes = 1
    for dim in scores.dims if batched else scores.dims[1:]:
        classes *= dim
    parameters = {
        "targets": json.dumps([t.__dict__ for t in targets], separators=(",", ":")),
        "target_input": tensor.name,
        "target_output": scores.name,
        "layout": pipeline.layout,
        "mean": json.dumps(list(pipeline.mean)),
        "std": json.dumps(list(pipeline.std)),
        "softmax": "true" if pipeline.softmax else "false",
    }
    context = ConfigContext(
        name=pipeline.name,
        max_batch_size=model.batch.max
        if pipeline.max_batch_size is None
        else pipeline.max_batch_size,
        inputs=(ConfigTensor(pipeline.input, "TYPE_UINT8", (*rows, *image)),),
        outputs=(
            ConfigTensor("class", "TYPE_INT64", (*rows, 1)),
            ConfigTensor("probabilities", "TYPE_FP32", (*rows, classes)),
            ConfigTensor("served_by", "TYPE_STRING", (*rows, 1)),
        ),
        dynamic_batching=pipeline.dynamic_batching if batched else None,
        instances=pipeline.instances,
        instance_kind=INSTANCE_KINDS["cpu"],
        parameters=tuple(sorted(parameters.items())),
    )
    return _render("bls_pipeline.pbtxt.j2", context)
