"""The optional parts of a manifest model and the `pipelines:` list, parsed and checked.

Per model: TensorRT precisions and engine options, the optional TensorRT accelerator of the
onnxruntime backend, warmup and version policy. `pipelines:` are BLS models (python backend)
that take uint8 images, normalize them and call the best deployment of a manifest model.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from dltk.manifest_yaml import (
    Context,
    bool_field,
    check_keys,
    choice_field,
    int_field,
    mapping_field,
    where,
)

PRECISIONS = ("tf32", "fp16")
ORT_TRT_PRECISIONS = ("fp32", "fp16")
WARMUP_DATA = ("zero", "random")
LAYOUTS = ("CHW", "HWC")
TENSORRT_KEYS = ("fp16_io", "workspace_mb")
ORT_TRT_KEYS = ("precision", "workspace_mb", "engine_cache_path")
WARMUP_KEYS = ("batch_size", "data", "count", "dims")
VERSION_POLICY_KEYS = ("latest", "all", "specific")
PIPELINE_KEYS = ("name", "model", "input", "layout", "mean", "std", "softmax", "instances")


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
    where: tuple[int, int] | None = field(default=None, compare=False)


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


def parse_pipeline(ctx: Context, entry: Any, index: int) -> PipelineSpec:
    if not isinstance(entry, dict):
        raise ctx.error(None, f"pipelines[{index}] must be a mapping with name and model")
    what = f"pipelines[{index}]"
    name = entry.get("name")
    if not isinstance(name, str) or not name or "/" in name or name.startswith("."):
        raise ctx.error(where(entry), f"{what}: name must be a directory name, got {name!r}")
    what = f"pipeline {name!r}"
    check_keys(ctx, entry, PIPELINE_KEYS, what)
    model = entry.get("model")
    if not isinstance(model, str) or not model:
        raise ctx.error(where(entry), f"{what}: model must name a model of `models:`")
    tensor = entry.get("input", "image")
    if not isinstance(tensor, str) or not tensor:
        raise ctx.error(where(entry, "input"), f"{what}: input must be a tensor name")
    return PipelineSpec(
        name=name,
        model=model,
        input=tensor,
        layout=choice_field(ctx, entry, "layout", what, LAYOUTS) if "layout" in entry else "CHW",
        mean=_floats(ctx, entry, "mean", what) if "mean" in entry else (0.0,),
        std=_floats(ctx, entry, "std", what) if "std" in entry else (1.0,),
        softmax=bool_field(ctx, entry, "softmax", what) if "softmax" in entry else True,
        instances=int_field(ctx, entry, "instances", what, 1) if "instances" in entry else 1,
        where=where(entry),
    )
