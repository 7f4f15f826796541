"""The optional parts of a manifest model and the `pipelines:` list, parsed and checked.

Per model: TensorRT precisions and engine options, the optional TensorRT accelerator of the
onnxruntime backend, dynamic batching, warmup and version policy. `pipelines:` are BLS models
(python backend) that take uint8 images, normalize them and call the best deployment of a
manifest model; their instances and batching are settable like a model's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from dltk.manifest.yaml_io import (
    Context,
    bool_field,
    check_keys,
    choice_field,
    int_field,
    mapping_field,
    where,
)
from dltk.names import name_problem

PRECISIONS = ("tf32", "fp16")
ORT_TRT_PRECISIONS = ("fp32", "fp16")
WARMUP_DATA = ("zero", "random")
LAYOUTS = ("CHW", "HWC")
TENSORRT_KEYS = ("fp16_io", "workspace_mb")
ORT_TRT_KEYS = ("precision", "workspace_mb", "engine_cache_path")
WARMUP_KEYS = ("batch_size", "data", "count", "dims")
VERSION_POLICY_KEYS = ("latest", "all", "specific")
PIPELINE_KEYS = (
    "name",
    "model",
    "input",
    "layout",
    "mean",
    "std",
    "softmax",
    "instances",
    "max_batch_size",
    "dynamic_batching",
)
DYNAMIC_BATCHING_KEYS = ("max_queue_delay_microseconds", "preferred_batch_size")


@dataclass(frozen=True)
class DynamicBatching:
    max_queue_delay_microseconds: int = 0
    preferred_batch_size: tuple[int, ...] = ()


@dataclass(frozen=True)
class TensorrtOptions:
    """trtexec options of the model's engines (runtime `tensorrt`)."""

    fp16_io: bool = False  # fp16 inputs/outputs for the fp16 engine (float tensors only)
    workspace_mb: int | None = None  # --memPoolSize=workspace:<N>M; None: TensorRT's default


@dataclass(frozen=True)
class OrtTensorrt:
    """The onnxruntime backend's TensorRT execution accelerator (rendered on GPU hosts only)."""

    precision: str = "fp16"
    workspace_mb: int = 1024
    engine_cache_path: str = ""  # a writable path inside the Triton container; "" = no cache


@dataclass(frozen=True)
class Warmup:
    batch_size: int = 1
    data: str = "zero"
    count: int = 1
    dims: tuple[tuple[str, tuple[int, ...]], ...] = ()  # per input, for variable dims


@dataclass(frozen=True)
class VersionPolicy:
    kind: str  # latest | all | specific
    versions: tuple[int, ...] = ()  # latest: (N,); specific: the versions


@dataclass(frozen=True)
class PipelineSpec:
    """A BLS model: uint8 image -> normalize -> best deployment of `model` -> class, probs."""

    name: str
    model: str
    input: str = "image"
    layout: str = "CHW"
    mean: tuple[float, ...] = (0.0,)
    std: tuple[float, ...] = (1.0,)
    softmax: bool = True
    instances: int = 1
    max_batch_size: int | None = None  # None: the model's batch.max
    dynamic_batching: DynamicBatching | None = None
    where: tuple[int, int] | None = field(default=None, compare=False)


def parse_dynamic_batching(
    ctx: Context, entry: Mapping[str, Any], what: str, max_batch: int, max_name: str
) -> DynamicBatching:
    """`dynamic_batching:` of a model or pipeline whose largest batch is `max_batch`
    (`max_name` says where that number is set: batch.max or max_batch_size)."""
    spec = entry["dynamic_batching"]
    if spec is None or spec == {}:
        spec = {}
    if not isinstance(spec, dict):
        raise ctx.error(
            where(entry, "dynamic_batching"),
            f"{what}: dynamic_batching must be a "
            "mapping like {max_queue_delay_microseconds: 100}",
        )
    if max_batch == 0:
        raise ctx.error(
            where(entry, "dynamic_batching"),
            f"{what}: dynamic_batching needs {max_name} > 0; remove it for a fixed-batch model",
        )
    sub = f"{what} dynamic_batching"
    check_keys(ctx, spec, DYNAMIC_BATCHING_KEYS, sub)
    delay = (
        int_field(ctx, spec, "max_queue_delay_microseconds", sub, 0)
        if "max_queue_delay_microseconds" in spec
        else 0
    )
    preferred = spec.get("preferred_batch_size", [])
    if not isinstance(preferred, list) or any(
        isinstance(p, bool) or not isinstance(p, int) or not 1 <= p <= max_batch for p in preferred
    ):
        raise ctx.error(
            where(spec, "preferred_batch_size"),
            f"{sub}: preferred_batch_size "
            f"must be a list of sizes in 1..{max_batch} ({max_name}), got {preferred!r}",
        )
    return DynamicBatching(delay, tuple(preferred))


def parse_precisions(ctx: Context, entry: Mapping[str, Any], what: str) -> tuple[str, ...]:
    value = entry["precisions"]
    if isinstance(value, str):
        value = [value]
    if (
        not isinstance(value, list)
        or not value
        or any(p not in PRECISIONS for p in value)
        or len(set(value)) != len(value)
    ):
        raise ctx.error(
            where(entry, "precisions"),
            f"{what}: precisions must be a list of distinct values of {', '.join(PRECISIONS)}, "
            f"got {value!r}",
        )
    return tuple(value)


def parse_tensorrt(ctx: Context, entry: Mapping[str, Any], what: str) -> TensorrtOptions:
    spec = mapping_field(ctx, entry, "tensorrt", what, "{fp16_io: true, workspace_mb: 2048}")
    sub = f"{what} tensorrt"
    check_keys(ctx, spec, TENSORRT_KEYS, sub)
    return TensorrtOptions(
        fp16_io=bool_field(ctx, spec, "fp16_io", sub) if "fp16_io" in spec else False,
        workspace_mb=int_field(ctx, spec, "workspace_mb", sub, 1)
        if "workspace_mb" in spec
        else None,
    )


def parse_ort_tensorrt(ctx: Context, entry: Mapping[str, Any], what: str) -> OrtTensorrt:
    spec = mapping_field(
        ctx, entry, "onnxruntime_tensorrt", what, "{precision: fp16, workspace_mb: 1024}"
    )
    sub = f"{what} onnxruntime_tensorrt"
    check_keys(ctx, spec, ORT_TRT_KEYS, sub)
    default = OrtTensorrt()
    cache = spec.get("engine_cache_path", "")
    if not isinstance(cache, str) or (cache and not cache.startswith("/")):
        raise ctx.error(
            where(spec, "engine_cache_path"),
            f"{sub}: engine_cache_path must be an absolute path inside the Triton container",
        )
    return OrtTensorrt(
        precision=(
            choice_field(ctx, spec, "precision", sub, ORT_TRT_PRECISIONS)
            if "precision" in spec
            else default.precision
        ),
        workspace_mb=(
            int_field(ctx, spec, "workspace_mb", sub, 1)
            if "workspace_mb" in spec
            else default.workspace_mb
        ),
        engine_cache_path=cache,
    )


def parse_warmup(ctx: Context, entry: Mapping[str, Any], what: str, max_batch: int) -> Warmup:
    spec = mapping_field(ctx, entry, "warmup", what, "{batch_size: 1, data: zero, count: 1}")
    sub = f"{what} warmup"
    check_keys(ctx, spec, WARMUP_KEYS, sub)
    batch = int_field(ctx, spec, "batch_size", sub, 1) if "batch_size" in spec else 1
    if batch > max(max_batch, 1):
        raise ctx.error(
            where(spec, "batch_size"),
            f"{sub}: batch_size {batch} exceeds the model's batch.max ({max_batch}); "
            + ("use 1 for a fixed-batch model" if max_batch == 0 else "lower it"),
        )
    dims_spec = (
        mapping_field(ctx, spec, "dims", sub, "{input: [3, 224, 224]}") if "dims" in spec else {}
    )
    dims = []
    for name, value in dims_spec.items():
        if (
            not isinstance(value, list)
            or not value
            or any(isinstance(d, bool) or not isinstance(d, int) or d < 1 for d in value)
        ):
            raise ctx.error(
                where(dims_spec, name),
                f"{sub}: dims of {name!r} must be a list of positive sizes, got {value!r}",
            )
        dims.append((str(name), tuple(value)))
    return Warmup(
        batch_size=batch,
        data=choice_field(ctx, spec, "data", sub, WARMUP_DATA) if "data" in spec else "zero",
        count=int_field(ctx, spec, "count", sub, 1) if "count" in spec else 1,
        dims=tuple(sorted(dims)),
    )


def parse_version_policy(ctx: Context, entry: Mapping[str, Any], what: str) -> VersionPolicy:
    example = "{latest: 1}, {all: true} or {specific: [1, 2]}"
    spec = mapping_field(ctx, entry, "version_policy", what, example)
    sub = f"{what} version_policy"
    check_keys(ctx, spec, VERSION_POLICY_KEYS, sub)
    if len(spec) != 1:
        raise ctx.error(where(entry, "version_policy"), f"{sub}: give exactly one of {example}")
    (kind,) = spec
    if kind == "latest":
        return VersionPolicy("latest", (int_field(ctx, spec, "latest", sub, 1),))
    if kind == "all":
        if spec["all"] is not True:
            raise ctx.error(where(spec, "all"), f"{sub}: write `all: true`")
        return VersionPolicy("all")
    versions = spec["specific"]
    if (
        not isinstance(versions, list)
        or not versions
        or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in versions)
    ):
        raise ctx.error(where(spec, "specific"), f"{sub}: specific must be a list of versions >= 1")
    return VersionPolicy("specific", tuple(sorted(set(versions))))


def _floats(ctx: Context, spec: Mapping[str, Any], key: str, what: str) -> tuple[float, ...]:
    value = spec[key]
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = [value]
    if (
        not isinstance(value, list)
        or not value
        or any(isinstance(v, bool) or not isinstance(v, int | float) for v in value)
    ):
        raise ctx.error(
            where(spec, key), f"{what}: {key} must be a number or a list of numbers per channel"
        )
    if key == "std" and any(v <= 0 for v in value):
        raise ctx.error(where(spec, key), f"{what}: std values must be > 0")
    return tuple(float(v) for v in value)


def _pipeline_max_batch_size(
    ctx: Context, entry: Mapping[str, Any], what: str, model: str, batch_max: int
) -> int | None:
    """The pipeline's max_batch_size: one BLS call carries a whole batch to `model`, so it
    may not exceed the model's batch.max; a fixed-batch model (batch.max 0) allows only 0."""
    if "max_batch_size" not in entry:
        return None
    value = int_field(ctx, entry, "max_batch_size", what, 0)
    if batch_max == 0 and value != 0:
        raise ctx.error(
            where(entry, "max_batch_size"),
            f"{what}: model {model!r} is a fixed-batch model (batch.max 0), so max_batch_size "
            "must be 0 or left out",
        )
    if batch_max > 0 and not 1 <= value <= batch_max:
        raise ctx.error(
            where(entry, "max_batch_size"),
            f"{what}: max_batch_size must be in 1..{batch_max} (model {model!r}'s batch.max: "
            f"the pipeline sends a whole batch to it in one call), got {value}",
        )
    return value


def parse_pipeline(
    ctx: Context, entry: Any, index: int, batch_max: Mapping[str, int]
) -> PipelineSpec:
    """One `pipelines:` entry; `batch_max`: each model of `models:` -> its batch.max."""
    if not isinstance(entry, dict):
        raise ctx.error(None, f"pipelines[{index}] must be a mapping with name and model")
    what = f"pipelines[{index}]"
    name = entry.get("name")
    problem = name_problem(name)
    if problem:
        raise ctx.error(where(entry), f"{what}: bad name: {problem}")
    what = f"pipeline {name!r}"
    check_keys(ctx, entry, PIPELINE_KEYS, what)
    model = entry.get("model")
    if not isinstance(model, str) or not model:
        raise ctx.error(where(entry), f"{what}: model must name a model of `models:`")
    if model not in batch_max:
        raise ctx.error(
            where(entry),
            f"{what}: model {model!r} is not in `models:` (models: {', '.join(batch_max)})",
        )
    tensor = entry.get("input", "image")
    if not isinstance(tensor, str) or not tensor:
        raise ctx.error(where(entry, "input"), f"{what}: input must be a tensor name")
    max_batch_size = _pipeline_max_batch_size(ctx, entry, what, model, batch_max[model])
    largest = batch_max[model] if max_batch_size is None else max_batch_size
    return PipelineSpec(
        name=name,
        model=model,
        input=tensor,
        layout=choice_field(ctx, entry, "layout", what, LAYOUTS) if "layout" in entry else "CHW",
        mean=_floats(ctx, entry, "mean", what) if "mean" in entry else (0.0,),
        std=_floats(ctx, entry, "std", what) if "std" in entry else (1.0,),
        softmax=bool_field(ctx, entry, "softmax", what) if "softmax" in entry else True,
        instances=int_field(ctx, entry, "instances", what, 1) if "instances" in entry else 1,
        max_batch_size=max_batch_size,
        dynamic_batching=(
            parse_dynamic_batching(ctx, entry, what, largest, "max_batch_size")
            if "dynamic_batching" in entry
            else None
        ),
        where=where(entry),
    )
