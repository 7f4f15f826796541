"""`dltk verify`'s records and pure helpers: check results, model info, shapes, comparisons."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dltk.errors import DltkError
from dltk.perf import ConcurrencyRange, PerfResult

PASS, FAIL, SKIP = "PASS", "FAIL", "SKIP"
# Default tolerance for |triton - onnxruntime| of float32 runtimes. The python-onnxruntime
# runtime runs the same CPU kernels and gives a max diff of 0.0; Triton's onnxruntime backend or
# a different batch composition (dynamic batching) can change float32 summation order: ~1e-6
# relative on logits of magnitude ~10, i.e. ~1e-5 absolute. 1e-4 leaves 10x headroom over that
# and is still far below any change that could flip a class.
DEFAULT_ATOL = 1e-4
DEFAULT_MIN_ACCURACY = 0.9
SYNTHETIC_BATCH = 8
PRECISIONS = ("fp32", "tf32", "fp16")


# --- records --------------------------------------------------------------------------------


@dataclass
class Check:
    name: str
    result: str  # PASS | FAIL | SKIP
    detail: str
    data: dict[str, Any] = field(default_factory=dict)
    duration_ms: float = 0.0

    @property
    def failed(self) -> bool:
        return self.result == FAIL


@dataclass(frozen=True)
class Tolerance:
    """|triton - reference| <= atol + rtol * |reference|, element-wise (numpy.isclose)."""

    atol: float
    rtol: float = 0.0

    def describe(self, precision: str) -> str:
        if self.rtol == 0:
            return f"atol {self.atol:g}"
        return f"{precision}: atol {self.atol:g} + rtol {self.rtol:g}*|ref|"


# Tolerances per numeric precision of the served model (settings: `dltk verify --tolerance`,
# role variable triton_verify_tolerance). Where they come from:
# - fp32: DEFAULT_ATOL above (same kernels or a different float32 summation order).
# - tf32: TF32 rounds the inputs of matrix products and convolutions to 10 mantissa bits
#   (unit roundoff 2**-11 = 4.9e-4) and accumulates in float32 (NVIDIA, "TensorFloat-32 in the
#   A100 GPU", https://blogs.nvidia.com/blog/2020/05/14/tensorfloat-32-precision-format/).
#   A dot product then errs by ~1e-3 relative; 1e-2 (atol and rtol) leaves 10x headroom.
# - fp16: the same 10-bit mantissa, but a TensorRT fp16 engine also keeps activations in fp16
#   between layers and may accumulate in fp16, so rounding compounds layer by layer (and the
#   range ends at 65504). onnxruntime checks a single float16 operator with atol 2.5e-3 and
#   rtol 1e-3 (https://github.com/microsoft/onnxruntime/pull/19792); a network of a few dozen
#   such layers needs ~20x that: 5e-2.
# Classes are checked separately (argmax agreement, pipelines' classes), so a loose fp16 bound
# does not hide a wrong answer.
DEFAULT_TOLERANCES: dict[str, Tolerance] = {
    "fp32": Tolerance(DEFAULT_ATOL, 0.0),
    "tf32": Tolerance(1e-2, 1e-2),
    "fp16": Tolerance(5e-2, 5e-2),
}


@dataclass(frozen=True)
class TensorSpec:
    name: str
    datatype: str
    shape: tuple[int, ...]  # as in metadata: batch dim (-1) included when max_batch_size > 0


@dataclass(frozen=True)
class ModelInfo:
    name: str
    platform: str
    backend: str
    max_batch_size: int
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    versions: tuple[str, ...]
    instance_groups: tuple[str, ...]
    dynamic_batching: dict[str, Any] | None
    parameters: dict[str, str] = field(default_factory=dict)
    optimization: dict[str, Any] = field(default_factory=dict)

    @property
    def batched(self) -> bool:
        return self.max_batch_size > 0

    def summary(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "platform": self.platform,
            "backend": self.backend,
            "max_batch_size": self.max_batch_size,
            "versions": list(self.versions),
            "inputs": [asdict(t) for t in self.inputs],
            "outputs": [asdict(t) for t in self.outputs],
            "instance_groups": list(self.instance_groups),
            "dynamic_batching": self.dynamic_batching,
        }


@dataclass(frozen=True)
class Samples:
    inputs: np.ndarray
    labels: np.ndarray | None
    source: str


@dataclass(frozen=True)
class Inputs:
    """What the verifier sends: one array per input name (rows = samples), in the served
    model's dtypes, and the labels of the rows when the samples have them."""

    feeds: dict[str, np.ndarray]
    labels: np.ndarray | None
    source: str
    generated: bool = False


@dataclass(frozen=True)
class Diff:
    max_abs: float
    atol: float
    argmax_agreement: float
    rtol: float = 0.0
    within: bool | None = None  # every element within atol + rtol*|ref| (None: max_abs <= atol)

    @property
    def ok(self) -> bool:
        if not math.isfinite(self.max_abs):
            return False
        return self.max_abs <= self.atol if self.within is None else self.within


@dataclass(frozen=True)
class BadInputProbe:
    """What happened to a request with a wrong input shape, and to the server after it."""

    sent_shape: tuple[int, ...]
    rejected: bool
    status: str
    message: str
    ready_after: bool
    good_request_after: bool

    @property
    def ok(self) -> bool:
        return self.rejected and self.ready_after and self.good_request_after


@dataclass(frozen=True)
class Slo:
    """Service-level gates; 0 (or None for errors) means no gate."""

    min_throughput: float = 0.0  # inferences/s
    max_p99_ms: float = 0.0
    max_errors: int | None = None

    @property
    def needs_perf(self) -> bool:
        return self.min_throughput > 0 or self.max_p99_ms > 0

    @property
    def active(self) -> bool:
        return self.needs_perf or self.max_errors is not None

    def check(self) -> None:
        if self.min_throughput < 0 or self.max_p99_ms < 0:
            raise DltkError("--slo-min-throughput and --slo-max-p99-ms must be >= 0 (0: no gate)")
        if self.max_errors is not None and self.max_errors < 0:
            raise DltkError("--slo-max-errors must be >= 0")


@dataclass
class VerifyOptions:
    url: str
    model: str
    grpc_url: str | None = None
    onnx: Path | None = None
    samples: Path | None = None
    perf: bool = False
    concurrency: ConcurrencyRange = field(default_factory=lambda: ConcurrencyRange(1, 4))
    batch_size: int = 1
    perf_protocol: str = "http"
    perf_interval_ms: int = 1000
    perf_max_trials: int = 5
    perf_stability: float = 50.0
    perf_shared_memory: bool = False
    perf_async: bool = False
    perf_threads: int | None = None
    metrics_url: str | None = None
    slo: Slo = field(default_factory=Slo)
    report: Path | None = None
    timeout: float = 60.0
    atol: float | None = None  # forces one atol (rtol 0) whatever the model's precision
    min_accuracy: float = DEFAULT_MIN_ACCURACY
    tolerances: dict[str, Tolerance] = field(default_factory=lambda: dict(DEFAULT_TOLERANCES))
    reference_dir: Path | None = None
    manifest: Path | None = None
    synthetic_batch: int | None = None  # rows of generated inputs (None: manifest opt or 8)
    # The quick check (triton_verify's re-run with nothing changed): readiness and answers only,
    # no comparison with onnxruntime (the full verification did it) and no perf sweep.
    quick: bool = False
    gpus: int = 0
    # The deployment host named in the report (Ansible's inventory_hostname); None: this machine.
    host: str | None = None
    # File with the deployment's API key (restricted APIs: repository index, statistics).
    api_key_file: Path | None = None


# --- pure helpers ---------------------------------------------------------------------------


def normalize_url(url: str) -> str:
    """'http://host:port/' -> 'host:port' (tritonclient wants host:port); port required."""
    bare = url.strip()
    for scheme in ("http://", "https://", "grpc://"):
        if bare.startswith(scheme):
            bare = bare[len(scheme) :]
    bare = bare.rstrip("/")
    host, sep, port = bare.rpartition(":")
    if not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise DltkError(f"URL {url!r} is not HOST:PORT, e.g. 127.0.0.1:8000")
    return bare


def model_info(metadata: dict[str, Any], config: dict[str, Any]) -> ModelInfo:
    """Model metadata + config (HTTP JSON forms) -> ModelInfo."""

    def specs(items: Sequence[dict[str, Any]]) -> tuple[TensorSpec, ...]:
        return tuple(
            TensorSpec(str(t["name"]), str(t["datatype"]), tuple(int(d) for d in t["shape"]))
            for t in items
        )

    groups = tuple(
        f"{g.get('count', 1)}x {g.get('kind', 'KIND_AUTO')}"
        for g in config.get("instance_group", [])
    )
    parameters = {
        str(k): str(v.get("string_value", "")) if isinstance(v, dict) else str(v)
        for k, v in (config.get("parameters") or {}).items()
    }
    return ModelInfo(
        name=str(metadata.get("name", config.get("name", ""))),
        platform=str(metadata.get("platform", "")),
        backend=str(config.get("backend", "")),
        max_batch_size=int(config.get("max_batch_size", 0)),
        inputs=specs(metadata.get("inputs", [])),
        outputs=specs(metadata.get("outputs", [])),
        versions=tuple(str(v) for v in metadata.get("versions", [])),
        instance_groups=groups,
        dynamic_batching=config.get("dynamic_batching"),
        parameters=parameters,
        optimization=dict(config.get("optimization") or {}),
    )


def chunk_size(info: ModelInfo, total: int) -> int:
    """Largest request the model accepts: max_batch_size, or the fixed batch dim (0 models)."""
    if info.max_batch_size > 0:
        return min(info.max_batch_size, total)
    first = info.inputs[0].shape[0] if info.inputs and info.inputs[0].shape else -1
    return first if first > 0 else total


def batches(array: np.ndarray, size: int) -> Iterator[np.ndarray]:
    for start in range(0, len(array), max(size, 1)):
        yield array[start : start + size]


def check_sample_shape(spec: TensorSpec, sample_shape: tuple[int, ...], batched: bool) -> None:
    """Samples [N, ...] must fit the model input (its -1 dims match anything)."""
    model_dims = spec.shape[1:] if batched else spec.shape
    got = sample_shape[1:] if batched else sample_shape
    fits = len(model_dims) == len(got) and all(
        m in (-1, g) for m, g in zip(model_dims, got, strict=True)
    )
    if not fits:
        raise DltkError(
            f"samples have shape {list(sample_shape)} but model input {spec.name!r} is "
            f"{list(spec.shape)}; pass the samples exported with this model"
        )


def synthetic_inputs(spec: TensorSpec, batched: bool, dtype: np.dtype[Any]) -> np.ndarray:
    """Deterministic random inputs (dynamic dims -> 1) when no --samples is given."""
    dims = [d if d > 0 else 1 for d in (spec.shape[1:] if batched else spec.shape)]
    shape = [SYNTHETIC_BATCH, *dims] if batched else dims
    return np.random.default_rng(0).random(shape).astype(dtype)


def compare(got: np.ndarray, ref: np.ndarray, atol: float, rtol: float = 0.0) -> Diff:
    """Element-wise |got - ref| against atol + rtol*|ref|, and argmax agreement."""
    if got.shape != ref.shape:
        return Diff(max_abs=math.inf, atol=atol, argmax_agreement=0.0, rtol=rtol, within=False)
    g, r = got.astype(np.float64), ref.astype(np.float64)
    delta = np.abs(g - r)
    max_abs = float(np.max(delta, initial=0.0))
    within = bool(np.all(delta <= atol + rtol * np.abs(r)))
    agree = float(np.mean(got.argmax(-1) == ref.argmax(-1))) if got.ndim >= 1 and got.size else 1.0
    return Diff(max_abs=max_abs, atol=atol, argmax_agreement=agree, rtol=rtol, within=within)


def accuracy(logits: np.ndarray, labels: np.ndarray) -> float:
    """Share of rows whose argmax is the label."""
    return accuracy_of_classes(logits.reshape(len(logits), -1).argmax(-1), labels)


def accuracy_of_classes(classes: np.ndarray, labels: np.ndarray) -> float:
    """Share of predicted classes (one per row) equal to the labels."""
    got = classes.reshape(-1)
    if len(got) != len(labels) or len(labels) == 0:
        raise DltkError(f"{len(got)} outputs for {len(labels)} labels: samples are inconsistent")
    return float(np.mean(got == labels.reshape(-1)))


def wrong_shape(good: tuple[int, ...], spec: TensorSpec, batched: bool) -> tuple[int, ...]:
    """A shape the server must reject: a fixed dim + 1, or an extra dim when all are dynamic."""
    model_dims = spec.shape[1:] if batched else spec.shape
    offset = 1 if batched else 0
    for i, dim in enumerate(model_dims):
        if dim > 0:
            bad = list(good)
            bad[i + offset] = dim + 1
            return tuple(bad)
    return (*good, 1)


def perf_shapes(spec: TensorSpec, sample_shape: tuple[int, ...], batched: bool) -> dict:
    """--shape values for the dynamic (-1) dims of the input, taken from the samples."""
    model_dims = spec.shape[1:] if batched else spec.shape
    got = sample_shape[1:] if batched else sample_shape
    if all(d > 0 for d in model_dims):
        return {}
    return {spec.name: tuple(int(g) for g in got)}


def perf_check(result: PerfResult) -> Check:
    """perf_analyzer measured every level asked for, each with a positive throughput.

    A sweep with fewer levels than asked fails (perf_analyzer can stop early and exit 0); the
    detail says whether the levels were measured on the first run or on the one retry with a
    longer window (perf.run_sweep).
    """
    rows = result.rows
    asked = result.config.concurrency.levels
    missing = result.missing_levels
    ok = bool(rows) and not missing and all(r.throughput > 0 for r in rows)
    best = max(rows, key=lambda r: r.throughput) if rows else None
    measured = (
        f"{len(rows)} of {len(asked)} levels, concurrency {result.config.concurrency}, batch "
        f"{result.config.batch_size}"
    )
    if missing:
        measured += f" (missing concurrency {', '.join(map(str, missing))})"
    detail = (
        f"{measured}: best {best.throughput:.0f} infer/s at concurrency "
        f"{best.concurrency} (p99 {best.p99_ms:.2f} ms), {result.elapsed_s:.1f}s"
        if best
        else f"{measured}: no rows"
    )
    window = f"{result.config.measurement_interval_ms} ms window"
    if result.retries:
        detail += f"; retried once with a {window} after the first run {result.retries[0]}"
    else:
        detail += f"; first run, {window}"
    data = {
        "rows": len(rows),
        "levels_asked": asked,
        "levels_missing": missing,
        "measurement_interval_ms": result.config.measurement_interval_ms,
        "retried": bool(result.retries),
        "retry_reasons": list(result.retries),
    }
    return Check("perf_analyzer", PASS if ok else FAIL, detail, data)


def overall_exit_code(checks: Sequence[Check]) -> int:
    return 1 if any(c.failed for c in checks) else 0
