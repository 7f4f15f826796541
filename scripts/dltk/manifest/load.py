"""Load and check `model_repo/models.yml`, the single source of truth for what is deployed.

`load_manifest(path)` returns a `Manifest` of `ModelSpec` records whose input/output tensors are
read from each model's ONNX graph, and of `PipelineSpec` records (BLS models) checked against
the model they call. Every expected mistake is a `DltkError` of one line that starts with
`FILE:LINE:COL:` when the place in the YAML is known.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from dltk.errors import DltkError
from dltk.manifest.checks import check_pipeline, check_warmup
from dltk.manifest.model import (
    ONNX_RUNTIMES,
    RUNTIMES,
    BatchRange,
    Manifest,
    ModelSpec,
    trt_model_name,
)
from dltk.manifest.options import (
    PipelineSpec,
    TensorrtOptions,
    parse_dynamic_batching,
    parse_ort_tensorrt,
    parse_pipeline,
    parse_precisions,
    parse_tensorrt,
    parse_version_policy,
    parse_warmup,
)
from dltk.manifest.yaml_io import Context, check_keys, int_field, load_yaml, where
from dltk.names import name_problem
from dltk.onnx_graph import TensorSpec, read_onnx_tensors

MODEL_KEYS = (
    "name",
    "onnx",
    "export",
    "samples",
    "batch",
    "runtimes",
    "precisions",
    "tensorrt",
    "onnxruntime_tensorrt",
    "dynamic_batching",
    "instances",
    "cpu_threads",
    "warmup",
    "version_policy",
)
REQUIRED_MODEL_KEYS = ("name", "onnx", "batch", "runtimes")
BATCH_KEYS = ("min", "opt", "max")


# --- parsing ---------------------------------------------------------------------------------


def parse_manifest(text: str, path: Path) -> Manifest:
    """Parse and check the manifest's structure and values (pure: reads no ONNX file)."""
    ctx = Context(path)
    data = load_yaml(text, ctx)
    if not isinstance(data, dict) or "models" not in data:
        raise ctx.error(None, "expected a mapping with a `models:` list (see docs/contract.md)")
    check_keys(ctx, data, ("models", "pipelines"), "manifest")
    entries = data["models"]
    if not isinstance(entries, list) or not entries:
        raise ctx.error(where(data, "models"), "`models:` must be a non-empty list")
    models: list[ModelSpec] = []
    seen: dict[str, tuple[int, int] | None] = {}
    for index, entry in enumerate(entries):
        model = _parse_model(ctx, entry, index, path.parent)
        if model.name in seen:
            first = seen[model.name]
            line = f" (first at line {first[0]})" if first else ""
            raise ctx.error(
                where(entry, "name"),
                f"duplicate model name {model.name!r}{line}; names must be unique",
            )
        seen[model.name] = where(entry, "name")
        models.append(model)
    pipelines = _parse_pipelines(ctx, data, models)
    return Manifest(path=path, models=tuple(models), pipelines=pipelines)


def _parse_pipelines(
    ctx: Context, data: Mapping[str, Any], models: list[ModelSpec]
) -> tuple[PipelineSpec, ...]:
    entries = data.get("pipelines") or []
    if not isinstance(entries, list):
        raise ctx.error(where(data, "pipelines"), "`pipelines:` must be a list")
    taken = {m.name for m in models} | {
        trt_model_name(m.name, p) for m in models if "tensorrt" in m.runtimes for p in m.precisions
    }
    batch_max = {m.name: m.batch.max for m in models}
    pipelines = []
    for index, entry in enumerate(entries):
        pipeline = parse_pipeline(ctx, entry, index, batch_max)
        if pipeline.name in taken:
            raise ctx.error(
                pipeline.where,
                f"pipeline {pipeline.name!r}: the name is already used by a model or "
                "another pipeline; pick another",
            )
        taken.add(pipeline.name)
        pipelines.append(pipeline)
    return tuple(pipelines)


def _parse_model(ctx: Context, entry: Any, index: int, base: Path) -> ModelSpec:
    if not isinstance(entry, dict):
        raise ctx.error(None, f"models[{index}] must be a mapping with name, onnx, batch, runtimes")
    what = f"models[{index}]"
    name = entry.get("name")
    if name is not None:
        problem = name_problem(name)
        if problem:
            raise ctx.error(where(entry, "name"), f"{what}: bad name: {problem}")
        what = f"model {name!r}"
    check_keys(ctx, entry, MODEL_KEYS, what)
    for key in REQUIRED_MODEL_KEYS:
        if key not in entry:
            raise ctx.error(where(entry), f"{what}: missing required key {key!r}")
    assert isinstance(name, str)

    onnx = _path(ctx, entry, "onnx", what, base)
    samples = _path(ctx, entry, "samples", what, base) if "samples" in entry else None
    export = entry.get("export")
    if export is not None and (not isinstance(export, str) or not export):
        raise ctx.error(where(entry, "export"), f"{what}: export must be an exporter name")

    batch = _parse_batch(ctx, entry, what)
    runtimes = _parse_runtimes(ctx, entry, what)
    for key in ("precisions", "tensorrt"):
        if key in entry and "tensorrt" not in runtimes:
            raise ctx.error(
                where(entry, key),
                f"{what}: {key} applies to TensorRT engines; add tensorrt to runtimes or "
                f"remove {key}",
            )
    dynamic = None
    if "dynamic_batching" in entry:
        dynamic = parse_dynamic_batching(ctx, entry, what, batch.max, "batch.max")
    return ModelSpec(
        name=name,
        onnx=onnx,
        batch=batch,
        runtimes=runtimes,
        export=export,
        samples=samples,
        dynamic_batching=dynamic,
        instances=int_field(ctx, entry, "instances", what, 1) if "instances" in entry else 1,
        cpu_threads=int_field(ctx, entry, "cpu_threads", what, 1)
        if "cpu_threads" in entry
        else None,
        precisions=parse_precisions(ctx, entry, what) if "precisions" in entry else ("tf32",),
        tensorrt=parse_tensorrt(ctx, entry, what) if "tensorrt" in entry else TensorrtOptions(),
        onnxruntime_tensorrt=(
            parse_ort_tensorrt(ctx, entry, what) if "onnxruntime_tensorrt" in entry else None
        ),
        warmup=parse_warmup(ctx, entry, what, batch.max) if "warmup" in entry else None,
        version_policy=(
            parse_version_policy(ctx, entry, what) if "version_policy" in entry else None
        ),
    )


def _path(ctx: Context, entry: Mapping[str, Any], key: str, what: str, base: Path) -> Path:
    value = entry[key]
    if not isinstance(value, str) or not value:
        raise ctx.error(where(entry, key), f"{what}: {key} must be a path relative to the manifest")
    return Path(value) if Path(value).is_absolute() else base / value


def _parse_batch(ctx: Context, entry: Mapping[str, Any], what: str) -> BatchRange:
    batch = entry["batch"]
    if not isinstance(batch, dict) or "max" not in batch:
        raise ctx.error(
            where(entry, "batch"),
            f"{what}: batch must be a mapping like "
            "{min: 1, opt: 16, max: 64} (max: 0 for a fixed-batch model)",
        )
    check_keys(ctx, batch, BATCH_KEYS, f"{what} batch")
    top = int_field(ctx, batch, "max", f"{what} batch", 0)
    if top == 0:
        extra = [k for k in ("min", "opt") if k in batch]
        if extra:
            raise ctx.error(
                where(batch, extra[0]),
                f"{what} batch: max is 0 (fixed-batch "
                f"model), so {extra[0]} does not apply; remove it",
            )
        return BatchRange(0, 0, 0)
    low = int_field(ctx, batch, "min", f"{what} batch", 1) if "min" in batch else 1
    opt = int_field(ctx, batch, "opt", f"{what} batch", 1) if "opt" in batch else top
    if not low <= opt <= top:
        raise ctx.error(
            where(batch),
            f"{what} batch: need min <= opt <= max, got min={low} opt={opt} max={top}",
        )
    return BatchRange(low, opt, top)


def _parse_runtimes(ctx: Context, entry: Mapping[str, Any], what: str) -> tuple[str, ...]:
    runtimes = entry["runtimes"]
    if isinstance(runtimes, str):
        runtimes = [runtimes]
    if not isinstance(runtimes, list) or not runtimes:
        raise ctx.error(
            where(entry, "runtimes"),
            f"{what}: runtimes must be a non-empty list of: {', '.join(RUNTIMES)}",
        )
    for runtime in runtimes:
        if runtime not in RUNTIMES:
            raise ctx.error(
                where(entry, "runtimes"),
                f"{what}: unknown runtime {runtime!r}; known runtimes: {', '.join(RUNTIMES)}",
            )
    if len(set(runtimes)) != len(runtimes):
        raise ctx.error(where(entry, "runtimes"), f"{what}: runtimes lists one twice")
    if not any(r in ONNX_RUNTIMES for r in runtimes):
        raise ctx.error(
            where(entry, "runtimes"),
            f"{what}: runtimes needs one of {', '.join(ONNX_RUNTIMES)} to serve the ONNX file "
            "where no TensorRT engine exists (hosts without a GPU)",
        )
    return tuple(runtimes)


# --- ONNX ------------------------------------------------------------------------------------


def with_tensors(model: ModelSpec, where_: str = "") -> ModelSpec:
    """`model` with inputs/outputs from its ONNX graph, batch dim removed when it batches."""
    prefix = f"{where_}: " if where_ else ""
    if not model.onnx.is_file():
        hint = (
            f"run `dltk export --model {model.export}`"
            if model.export
            else "fix the `onnx:` path in the manifest"
        )
        raise DltkError(
            f"{prefix}model {model.name!r}: ONNX file {model.onnx} does not exist; {hint}"
        )
    inputs, outputs = read_onnx_tensors(model.onnx)
    if model.batch.max > 0:
        for tensor in inputs + outputs:
            if not tensor.dims or tensor.dims[0] != -1:
                first = tensor.dims[0] if tensor.dims else "none (a scalar)"
                raise DltkError(
                    f"{prefix}model {model.name!r}: batch.max is {model.batch.max} but tensor "
                    f"{tensor.name!r} has first dim {first}; export it with a dynamic batch "
                    "axis or use max batch size 0 (batch: {max: 0})"
                )
        inputs = tuple(TensorSpec(t.name, t.dtype, t.dims[1:]) for t in inputs)
        outputs = tuple(TensorSpec(t.name, t.dtype, t.dims[1:]) for t in outputs)
    model = replace(model, inputs=inputs, outputs=outputs)
    check_warmup(model, prefix)
    return model


def load_manifest(path: Path, *, read_onnx: bool = True) -> Manifest:
    """Read `path`; with `read_onnx`, also check each ONNX file and infer its tensors."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DltkError(
            f"manifest {path} does not exist; pass --manifest model_repo/models.yml"
        ) from None
    except OSError as exc:
        raise DltkError(f"cannot read manifest {path}: {exc.strerror}") from None
    manifest = parse_manifest(text, path)
    if not read_onnx:
        return manifest
    models = tuple(with_tensors(m, str(path)) for m in manifest.models)
    manifest = replace(manifest, models=models)
    for pipeline in manifest.pipelines:
        check_pipeline(pipeline, manifest.model(pipeline.model), str(path))
    return manifest
