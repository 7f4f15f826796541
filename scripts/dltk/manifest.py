"""Load and check `model_repo/models.yml`, the single source of truth for what is deployed.

`load_manifest(path)` returns a `Manifest` of `ModelSpec` records whose input/output tensors are
read from each model's ONNX graph. Every expected mistake is a `DltkError` of one line that
starts with `FILE:LINE:COL:` when the place in the YAML is known.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from dltk.errors import DltkError


@dataclass(frozen=True)
class Runtime:
    """How Triton serves an ONNX model: a platform or a backend, and the version-dir files."""

    name: str
    template: str
    platform: str = ""
    backend: str = ""


RUNTIMES: dict[str, Runtime] = {
    "onnxruntime": Runtime("onnxruntime", "onnxruntime.pbtxt.j2", platform="onnxruntime_onnx"),
    "python-onnxruntime": Runtime(
        "python-onnxruntime", "python_onnxruntime.pbtxt.j2", backend="python"
    ),
}

MODEL_KEYS = (
    "name",
    "onnx",
    "export",
    "samples",
    "batch",
    "runtimes",
    "dynamic_batching",
    "instances",
)
REQUIRED_MODEL_KEYS = ("name", "onnx", "batch", "runtimes")
BATCH_KEYS = ("min", "opt", "max")
DYNAMIC_BATCHING_KEYS = ("max_queue_delay_microseconds", "preferred_batch_size")


@dataclass(frozen=True)
class TensorSpec:
    """One model input or output; `dims` exclude the batch dim when the model batches."""

    name: str
    dtype: str  # ONNX element type name: FLOAT, INT64, ...
    dims: tuple[int, ...]  # -1 for a symbolic or unknown dim


@dataclass(frozen=True)
class BatchRange:
    """min/opt/max batch size; max -> Triton max_batch_size, 0 = fixed-batch model."""

    min: int
    opt: int
    max: int


@dataclass(frozen=True)
class DynamicBatching:
    max_queue_delay_microseconds: int = 0
    preferred_batch_size: tuple[int, ...] = ()


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
    inputs: tuple[TensorSpec, ...] = field(default=())
    outputs: tuple[TensorSpec, ...] = field(default=())


@dataclass(frozen=True)
class Manifest:
    path: Path
    models: tuple[ModelSpec, ...]

    def model(self, name: str) -> ModelSpec:
        for model in self.models:
            if model.name == name:
                return model
        known = ", ".join(m.name for m in self.models)
        raise DltkError(f"{self.path}: no model named {name!r}; the manifest has: {known}")


# --- YAML with positions -------------------------------------------------------------------


class _MarkedDict(dict):  # type: ignore[type-arg]
    """A YAML mapping that remembers where it and each of its keys start (1-based)."""

    where: tuple[int, int] = (0, 0)
    key_where: dict[Any, tuple[int, int]]


class _Loader(yaml.SafeLoader):
    pass


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> _MarkedDict:
    loader.flatten_mapping(node)
    result = _MarkedDict()
    result.where = (node.start_mark.line + 1, node.start_mark.column + 1)
    result.key_where = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        where = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
        if key in result:
            raise _YamlKeyError(where, f"duplicate key {key!r}")
        result[key] = loader.construct_object(value_node, deep=True)
        result.key_where[key] = where
    return result


class _YamlKeyError(Exception):
    def __init__(self, where: tuple[int, int], message: str) -> None:
        super().__init__(message)
        self.where = where


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


class _Context:
    """Builds `FILE:LINE:COL: model 'x': message` errors."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def error(self, where: tuple[int, int] | None, message: str) -> DltkError:
        loc = f"{self.path}:{where[0]}:{where[1]}" if where and where[0] else str(self.path)
        return DltkError(f"{loc}: {message}")


def _where(mapping: Mapping[str, Any], key: str | None = None) -> tuple[int, int] | None:
    if not isinstance(mapping, _MarkedDict):
        return None
    if key is not None and key in mapping.key_where:
        return mapping.key_where[key]
    return mapping.where


def _check_keys(
    ctx: _Context, mapping: Mapping[str, Any], known: tuple[str, ...], what: str
) -> None:
    for key in mapping:
        if key not in known:
            raise ctx.error(
                _where(mapping, key),
                f"{what}: unknown key {key!r}; known keys: {', '.join(known)}",
            )


def _int(ctx: _Context, mapping: Mapping[str, Any], key: str, what: str, minimum: int) -> int:
    value = mapping[key]
    if isinstance(value, bool) or not isinstance(value, int):
        raise ctx.error(_where(mapping, key), f"{what}: {key} must be an integer, got {value!r}")
    if value < minimum:
        raise ctx.error(_where(mapping, key), f"{what}: {key} must be >= {minimum}, got {value}")
    return value


# --- parsing ---------------------------------------------------------------------------------


def parse_manifest(text: str, path: Path) -> Manifest:
    """Parse and check the manifest's structure and values (pure: reads no ONNX file)."""
    ctx = _Context(path)
    try:
        data = yaml.load(text, Loader=_Loader)  # a SafeLoader subclass
    except _YamlKeyError as exc:
        raise ctx.error(exc.where, str(exc)) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = (mark.line + 1, mark.column + 1) if mark else None
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ctx.error(where, f"not valid YAML: {problem}") from None
    if not isinstance(data, dict) or "models" not in data:
        raise ctx.error(None, "expected a mapping with a `models:` list (see docs/contract.md)")
    _check_keys(ctx, data, ("models",), "manifest")
    entries = data["models"]
    if not isinstance(entries, list) or not entries:
        raise ctx.error(_where(data, "models"), "`models:` must be a non-empty list")
    models: list[ModelSpec] = []
    seen: dict[str, tuple[int, int] | None] = {}
    for index, entry in enumerate(entries):
        model = _parse_model(ctx, entry, index, path.parent)
        if model.name in seen:
            first = seen[model.name]
            line = f" (first at line {first[0]})" if first else ""
            raise ctx.error(
                _where(entry, "name"),
                f"duplicate model name {model.name!r}{line}; names must be unique",
            )
        seen[model.name] = _where(entry, "name")
        models.append(model)
    return Manifest(path=path, models=tuple(models))


def _parse_model(ctx: _Context, entry: Any, index: int, base: Path) -> ModelSpec:
    if not isinstance(entry, dict):
        raise ctx.error(None, f"models[{index}] must be a mapping with name, onnx, batch, runtimes")
    what = f"models[{index}]"
    name = entry.get("name")
    if name is not None:
        if not isinstance(name, str) or not name or "/" in name or name.startswith("."):
            raise ctx.error(
                _where(entry, "name"), f"{what}: name must be a directory name, got {name!r}"
            )
        what = f"model {name!r}"
    _check_keys(ctx, entry, MODEL_KEYS, what)
    for key in REQUIRED_MODEL_KEYS:
        if key not in entry:
            raise ctx.error(_where(entry), f"{what}: missing required key {key!r}")
    assert isinstance(name, str)

    onnx = _path(ctx, entry, "onnx", what, base)
    samples = _path(ctx, entry, "samples", what, base) if "samples" in entry else None
    export = entry.get("export")
    if export is not None and (not isinstance(export, str) or not export):
        raise ctx.error(_where(entry, "export"), f"{what}: export must be an exporter name")

    batch = _parse_batch(ctx, entry, what)
    runtimes = _parse_runtimes(ctx, entry, what)
    dynamic = None
    if "dynamic_batching" in entry:
        dynamic = _parse_dynamic_batching(ctx, entry, what, batch)
    instances = _int(ctx, entry, "instances", what, 1) if "instances" in entry else 1
    return ModelSpec(
        name=name,
        onnx=onnx,
        batch=batch,
        runtimes=runtimes,
        export=export,
        samples=samples,
        dynamic_batching=dynamic,
        instances=instances,
    )


def _path(ctx: _Context, entry: Mapping[str, Any], key: str, what: str, base: Path) -> Path:
    value = entry[key]
    if not isinstance(value, str) or not value:
        raise ctx.error(
            _where(entry, key), f"{what}: {key} must be a path relative to the manifest"
        )
    return Path(value) if Path(value).is_absolute() else base / value


def _parse_batch(ctx: _Context, entry: Mapping[str, Any], what: str) -> BatchRange:
    batch = entry["batch"]
    if not isinstance(batch, dict) or "max" not in batch:
        raise ctx.error(
            _where(entry, "batch"),
            f"{what}: batch must be a mapping like "
            "{min: 1, opt: 16, max: 64} (max: 0 for a fixed-batch model)",
        )
    _check_keys(ctx, batch, BATCH_KEYS, f"{what} batch")
    top = _int(ctx, batch, "max", f"{what} batch", 0)
    if top == 0:
        extra = [k for k in ("min", "opt") if k in batch]
        if extra:
            raise ctx.error(
                _where(batch, extra[0]),
                f"{what} batch: max is 0 (fixed-batch "
                f"model), so {extra[0]} does not apply; remove it",
            )
        return BatchRange(0, 0, 0)
    low = _int(ctx, batch, "min", f"{what} batch", 1) if "min" in batch else 1
    opt = _int(ctx, batch, "opt", f"{what} batch", 1) if "opt" in batch else top
    if not low <= opt <= top:
        raise ctx.error(
            _where(batch),
            f"{what} batch: need min <= opt <= max, got min={low} opt={opt} max={top}",
        )
    return BatchRange(low, opt, top)


def _parse_runtimes(ctx: _Context, entry: Mapping[str, Any], what: str) -> tuple[str, ...]:
    runtimes = entry["runtimes"]
    if isinstance(runtimes, str):
        runtimes = [runtimes]
    if not isinstance(runtimes, list) or not runtimes:
        raise ctx.error(
            _where(entry, "runtimes"),
            f"{what}: runtimes must be a non-empty list of: {', '.join(RUNTIMES)}",
        )
    for runtime in runtimes:
        if runtime not in RUNTIMES:
            raise ctx.error(
                _where(entry, "runtimes"),
                f"{what}: unknown runtime {runtime!r}; known runtimes: {', '.join(RUNTIMES)}",
            )
    if len(set(runtimes)) != len(runtimes):
        raise ctx.error(_where(entry, "runtimes"), f"{what}: runtimes lists one twice")
    return tuple(runtimes)


def _parse_dynamic_batching(
    ctx: _Context, entry: Mapping[str, Any], what: str, batch: BatchRange
) -> DynamicBatching:
    spec = entry["dynamic_batching"]
    if spec is None or spec == {}:
        spec = {}
    if not isinstance(spec, dict):
        raise ctx.error(
            _where(entry, "dynamic_batching"),
            f"{what}: dynamic_batching must be a "
            "mapping like {max_queue_delay_microseconds: 100}",
        )
    if batch.max == 0:
        raise ctx.error(
            _where(entry, "dynamic_batching"),
            f"{what}: dynamic_batching needs batch.max > 0; remove it for a fixed-batch model",
        )
    sub = f"{what} dynamic_batching"
    _check_keys(ctx, spec, DYNAMIC_BATCHING_KEYS, sub)
    delay = (
        _int(ctx, spec, "max_queue_delay_microseconds", sub, 0)
        if "max_queue_delay_microseconds" in spec
        else 0
    )
    preferred = spec.get("preferred_batch_size", [])
    if not isinstance(preferred, list) or any(
        isinstance(p, bool) or not isinstance(p, int) or not 1 <= p <= batch.max for p in preferred
    ):
        raise ctx.error(
            _where(spec, "preferred_batch_size"),
            f"{sub}: preferred_batch_size "
            f"must be a list of sizes in 1..{batch.max} (batch.max), got {preferred!r}",
        )
    return DynamicBatching(delay, tuple(preferred))


# --- ONNX ------------------------------------------------------------------------------------


def read_onnx_tensors(path: Path) -> tuple[tuple[TensorSpec, ...], tuple[TensorSpec, ...]]:
    """The graph's inputs (minus initializers) and outputs with their full dims (-1 = symbolic)."""
    import onnx  # lazy: importing onnx costs ~0.3 s

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # onnx raises DecodeError, OSError, ...
        raise DltkError(f"{path}: not a readable ONNX model ({exc}); re-export it") from None
    graph = model.graph
    initializers = {init.name for init in graph.initializer}

    def spec(value: Any) -> TensorSpec:
        tensor = value.type.tensor_type
        dtype = onnx.TensorProto.DataType.Name(tensor.elem_type)
        dims = tuple(
            d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else -1
            for d in tensor.shape.dim
        )
        return TensorSpec(value.name, dtype, dims)

    inputs = tuple(spec(v) for v in graph.input if v.name not in initializers)
    outputs = tuple(spec(v) for v in graph.output)
    return inputs, outputs


def with_tensors(model: ModelSpec, where: str = "") -> ModelSpec:
    """`model` with inputs/outputs from its ONNX graph, batch dim removed when it batches."""
    prefix = f"{where}: " if where else ""
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
    return ModelSpec(**{**model.__dict__, "inputs": inputs, "outputs": outputs})


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
    return Manifest(path=manifest.path, models=models)
