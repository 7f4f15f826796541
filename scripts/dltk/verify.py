"""`dltk verify`: prove a running Triton serves a model correctly, then measure it.

Checks, in order: server live, server ready and model ready (bounded waits), model
metadata/config, one HTTP and one gRPC inference on real sample images, outputs against
onnxruntime in-process on the same ONNX file, accuracy against the samples' labels, a request
with a wrong input shape (rejected with a clear error while the server stays ready and keeps
answering), and with --perf a bounded perf_analyzer run. Prints a table of checks, writes a
JSON report with --report, exits 1 when any check fails.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import socket
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from dltk import __version__
from dltk.errors import DltkError
from dltk.perf import (
    ConcurrencyRange,
    PerfConfig,
    PerfResult,
    PerfRow,
    format_command,
    parse_concurrency_range,
    run_perf,
    timeout_for,
)

PASS, FAIL, SKIP = "PASS", "FAIL", "SKIP"
# Default tolerance for |triton - onnxruntime|. The python-onnxruntime runtime runs the same
# CPU kernels and gives a max diff of 0.0; Triton's onnxruntime backend or a different batch
# composition (dynamic batching) can change float32 summation order: ~1e-6 relative on
# logits of magnitude ~10, i.e. ~1e-5 absolute. 1e-4 leaves 10x headroom over that and is still
# far below any change that could flip a class. TF32/FP16 TensorRT engines need --atol 1e-2.
DEFAULT_ATOL = 1e-4
DEFAULT_MIN_ACCURACY = 0.9
SYNTHETIC_BATCH = 8

console = Console()


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
class Diff:
    max_abs: float
    atol: float
    argmax_agreement: float

    @property
    def ok(self) -> bool:
        return math.isfinite(self.max_abs) and self.max_abs <= self.atol


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
    report: Path | None = None
    timeout: float = 60.0
    atol: float = DEFAULT_ATOL
    min_accuracy: float = DEFAULT_MIN_ACCURACY


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


def compare(got: np.ndarray, ref: np.ndarray, atol: float) -> Diff:
    if got.shape != ref.shape:
        return Diff(max_abs=math.inf, atol=atol, argmax_agreement=0.0)
    max_abs = float(np.max(np.abs(got.astype(np.float64) - ref.astype(np.float64)), initial=0.0))
    agree = float(np.mean(got.argmax(-1) == ref.argmax(-1))) if got.ndim >= 1 and got.size else 1.0
    return Diff(max_abs=max_abs, atol=atol, argmax_agreement=agree)


def accuracy(logits: np.ndarray, labels: np.ndarray) -> float:
    if len(logits) != len(labels) or len(labels) == 0:
        raise DltkError(f"{len(logits)} outputs for {len(labels)} labels: samples are inconsistent")
    return float(np.mean(logits.reshape(len(labels), -1).argmax(-1) == labels.reshape(-1)))


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
    rows = result.rows
    ok = bool(rows) and all(r.throughput > 0 for r in rows)
    best = max(rows, key=lambda r: r.throughput) if rows else None
    detail = (
        f"{len(rows)} levels, concurrency {result.config.concurrency}, batch "
        f"{result.config.batch_size}: best {best.throughput:.0f} infer/s at concurrency "
        f"{best.concurrency} (p99 {best.p99_ms:.2f} ms), {result.elapsed_s:.1f}s"
        if best
        else "no rows"
    )
    return Check("perf_analyzer", PASS if ok else FAIL, detail, {"rows": len(rows)})


def overall_exit_code(checks: Sequence[Check]) -> int:
    return 1 if any(c.failed for c in checks) else 0


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def build_report(
    opts: VerifyOptions,
    checks: Sequence[Check],
    started_at: str,
    server: dict[str, Any],
    info: ModelInfo | None,
    perf: PerfResult | None,
) -> dict[str, Any]:
    return {
        "tool": f"dltk verify {__version__}",
        "host": platform.node(),
        "started_at": started_at,
        "finished_at": utc_now(),
        "passed": overall_exit_code(checks) == 0,
        "url": opts.url,
        "grpc_url": opts.grpc_url,
        "model": opts.model,
        "server": server,
        "model_config": info.summary() if info else None,
        "tolerance": {"atol": opts.atol, "min_accuracy": opts.min_accuracy},
        "checks": [asdict(c) for c in checks],
        "perf": None
        if perf is None
        else {
            "command": format_command(perf.command),
            "elapsed_s": round(perf.elapsed_s, 3),
            "concurrency": str(perf.config.concurrency),
            "batch_size": perf.config.batch_size,
            "protocol": perf.config.protocol,
            "rows": [asdict(r) for r in perf.rows],
        },
    }


def write_report(path: Path, report: dict[str, Any]) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(report, indent=2, default=_json_default) + "\n")
    except OSError as exc:
        raise DltkError(f"cannot write report {path}: {exc.strerror}") from None


def _json_default(value: object) -> object:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


# --- tables ---------------------------------------------------------------------------------


def checks_table(checks: Sequence[Check]) -> Table:
    table = Table(title="dltk verify", show_lines=False)
    table.add_column("check")
    table.add_column("result")
    table.add_column("detail", overflow="fold")
    colors = {PASS: "green", FAIL: "bold red", SKIP: "yellow"}
    for c in checks:
        table.add_row(c.name, f"[{colors[c.result]}]{c.result}[/]", c.detail)
    return table


def perf_table(rows: Sequence[PerfRow], title: str) -> Table:
    table = Table(title=title)
    for col in (
        "conc",
        "infer/s",
        "p50 ms",
        "p90 ms",
        "p95 ms",
        "p99 ms",
        "queue ms",
        "compute ms",
    ):
        table.add_column(col, justify="right")

    def ms(v: float | None) -> str:
        return "-" if v is None else f"{v:.2f}"

    for r in rows:
        table.add_row(
            str(r.concurrency),
            f"{r.throughput:.1f}",
            ms(r.p50_ms),
            ms(r.p90_ms),
            ms(r.p95_ms),
            ms(r.p99_ms),
            ms(r.server_queue_ms),
            ms(r.server_compute_infer_ms),
        )
    return table


# --- I/O: files -----------------------------------------------------------------------------


def load_samples(path: Path) -> Samples:
    try:
        with np.load(path) as data:
            if "inputs" not in data:
                raise DltkError(
                    f"{path} has no 'inputs' array (keys: {', '.join(data.files)}); "
                    "use the .samples.npz from `dltk export`"
                )
            inputs = np.asarray(data["inputs"])
            labels = np.asarray(data["labels"]) if "labels" in data else None
    except (OSError, ValueError) as exc:
        raise DltkError(f"cannot read samples {path}: {exc}") from None
    if len(inputs) == 0:
        raise DltkError(f"{path} holds no samples")
    return Samples(inputs=inputs, labels=labels, source=str(path))


def onnxruntime_outputs(onnx_path: Path, input_name: str, inputs: np.ndarray) -> dict:
    """Reference outputs from onnxruntime on CPU, in-process."""
    import onnxruntime as ort

    try:
        session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types
        raise DltkError(
            f"onnxruntime cannot load {onnx_path}: {str(exc).splitlines()[0]}"
        ) from None
    names = [o.name for o in session.get_outputs()]
    feed_name = session.get_inputs()[0].name if len(session.get_inputs()) == 1 else input_name
    values = session.run(names, {feed_name: inputs})
    return dict(zip(names, values, strict=True))


# --- I/O: the server ------------------------------------------------------------------------


class ServerUnreachable(DltkError):
    pass


def _connection_error(url: str, exc: BaseException) -> ServerUnreachable:
    reason = getattr(exc, "strerror", None) or str(exc).splitlines()[0]
    return ServerUnreachable(
        f"cannot connect to Triton at {url}: {reason}; is tritonserver running there "
        "(e.g. `dltk serve DIR`)?"
    )


def _is_unreachable(exc: BaseException) -> bool:
    if isinstance(exc, OSError | socket.gaierror):
        return True
    status = getattr(exc, "status", None)
    return callable(status) and "UNAVAILABLE" in str(status())


def _server_message(exc: BaseException) -> str:
    message = getattr(exc, "message", None)
    text = message() if callable(message) else str(exc)
    return " ".join(str(text).split())


class Triton:
    """Thin wrapper over tritonclient.http / tritonclient.grpc clients."""

    def __init__(self, url: str, grpc_url: str | None, timeout: float) -> None:
        import tritonclient.http as httpclient

        self.url = url
        self.grpc_url = grpc_url
        self.timeout = timeout
        self.http = httpclient.InferenceServerClient(
            url, connection_timeout=min(timeout, 10.0), network_timeout=timeout
        )
        self._grpc: Any = None

    @property
    def grpc(self) -> Any:
        if self._grpc is None and self.grpc_url:
            import tritonclient.grpc as grpcclient

            self._grpc = grpcclient.InferenceServerClient(self.grpc_url)
        return self._grpc

    def call(self, what: Callable[[], Any], url: str | None = None) -> Any:
        """Run a client call; connection failures become one ServerUnreachable line."""
        try:
            return what()
        except Exception as exc:
            if _is_unreachable(exc):
                raise _connection_error(url or self.url, exc) from None
            raise

    def infer_http(self, model: str, spec: TensorSpec, data: np.ndarray) -> dict:
        import tritonclient.http as httpclient

        inp = httpclient.InferInput(spec.name, list(data.shape), spec.datatype)
        inp.set_data_from_numpy(data, binary_data=True)
        result = self.call(lambda: self.http.infer(model, [inp]))
        return {o["name"]: result.as_numpy(o["name"]) for o in result.get_response()["outputs"]}

    def infer_grpc(self, model: str, spec: TensorSpec, data: np.ndarray) -> dict:
        import tritonclient.grpc as grpcclient

        inp = grpcclient.InferInput(spec.name, list(data.shape), spec.datatype)
        inp.set_data_from_numpy(data)
        result = self.call(
            lambda: self.grpc.infer(model, [inp], client_timeout=self.timeout), self.grpc_url
        )
        return {o.name: result.as_numpy(o.name) for o in result.get_response().outputs}

    def close(self) -> None:
        for client in (self.http, self._grpc):
            if client is not None:
                try:
                    client.close()
                except Exception:  # closing a broken connection is not worth a failure
                    pass


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.5) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def infer_all(
    infer: Callable[[str, TensorSpec, np.ndarray], dict],
    model: str,
    spec: TensorSpec,
    inputs: np.ndarray,
    size: int,
) -> dict[str, np.ndarray]:
    parts: dict[str, list[np.ndarray]] = {}
    for batch in batches(inputs, size):
        for name, value in infer(model, spec, batch).items():
            parts.setdefault(name, []).append(value)
    return {name: np.concatenate(values) for name, values in parts.items()}


def probe_bad_input(
    triton: Triton, model: str, spec: TensorSpec, good: np.ndarray, batched: bool, timeout: float
) -> BadInputProbe:
    """Send a wrong-shape request over HTTP; then check the server is ready and still answers."""
    from tritonclient.utils import InferenceServerException

    shape = wrong_shape(tuple(good.shape), spec, batched)
    bad = np.zeros(shape, dtype=good.dtype)
    try:
        triton.infer_http(model, spec, bad)
        rejected, status, message = False, "200", "the server accepted the wrong shape"
    except InferenceServerException as exc:
        rejected, status, message = True, str(exc.status()), _server_message(exc)
    ready = wait_until(
        lambda: (
            bool(triton.call(triton.http.is_server_ready))
            and bool(triton.call(lambda: triton.http.is_model_ready(model)))
        ),
        timeout,
    )
    try:
        out = triton.infer_http(model, spec, good)
        good_after = bool(out) and all(np.all(np.isfinite(v)) for v in out.values())
    except InferenceServerException:
        good_after = False
    return BadInputProbe(shape, rejected, status, message, ready, good_after)


# --- the verifier ---------------------------------------------------------------------------


class Verifier:
    def __init__(self, opts: VerifyOptions) -> None:
        self.opts = opts
        self.checks: list[Check] = []
        self.server: dict[str, Any] = {}
        self.info: ModelInfo | None = None
        self.perf: PerfResult | None = None
        self.started_at = utc_now()

    def add(self, check: Check, started: float) -> Check:
        check.duration_ms = round((time.monotonic() - started) * 1000, 1)
        self.checks.append(check)
        return check

    def report(self) -> dict[str, Any]:
        return build_report(
            self.opts, self.checks, self.started_at, self.server, self.info, self.perf
        )

    def fatal(self, check: Check, started: float) -> DltkError:
        """A failed prerequisite: record it, write the report, stop with one line."""
        self.add(check, started)
        if self.opts.report:
            write_report(self.opts.report, self.report())
        return DltkError(f"{check.name}: {check.detail}")

    def run(self) -> int:
        opts = self.opts
        triton = Triton(opts.url, opts.grpc_url, opts.timeout)
        try:
            self._server_checks(triton)
            spec, batched, samples = self._model_checks(triton)
            outputs = self._inference_checks(triton, spec, batched, samples)
            self._reference_checks(spec, samples, outputs)
            self._bad_input_check(triton, spec, batched, samples)
            if opts.perf:
                self._perf_check(spec, batched, samples)
        finally:
            triton.close()
        console.print(checks_table(self.checks))
        if self.perf is not None:
            console.print(
                perf_table(
                    self.perf.rows,
                    f"perf_analyzer {opts.model} "
                    f"({self.perf.config.protocol}, batch "
                    f"{self.perf.config.batch_size})",
                )
            )
        if opts.report:
            write_report(opts.report, self.report())
            console.print(f"report: {opts.report}")
        code = overall_exit_code(self.checks)
        failed = [c.name for c in self.checks if c.failed]
        console.print(
            "[green]all checks passed[/]"
            if code == 0
            else f"[bold red]failed:[/] {', '.join(failed)}"
        )
        return code

    def _server_checks(self, triton: Triton) -> None:
        opts = self.opts
        t = time.monotonic()
        live = bool(triton.call(triton.http.is_server_live))
        if not live:
            raise self.fatal(Check("server live", FAIL, f"{opts.url} answers but is not live"), t)
        meta = triton.call(triton.http.get_server_metadata)
        self.server = {
            "name": meta.get("name"),
            "version": meta.get("version"),
            "extensions": meta.get("extensions", []),
        }
        self.add(
            Check(
                "server live",
                PASS,
                f"{meta.get('name')} {meta.get('version')} at {opts.url}",
                {"version": meta.get("version")},
            ),
            t,
        )

        t = time.monotonic()
        with console.status(f"waiting for server ready (≤ {opts.timeout:.0f}s)"):
            ready = wait_until(lambda: bool(triton.call(triton.http.is_server_ready)), opts.timeout)
        waited = time.monotonic() - t
        if not ready:
            # Not fatal: /ready is false while any model is still loading or failed.
            self.add(Check("server ready", FAIL, f"not ready after {waited:.1f}s"), t)
        else:
            self.add(Check("server ready", PASS, f"ready after {waited:.1f}s"), t)
        if opts.grpc_url:
            t = time.monotonic()
            grpc_live = bool(triton.call(triton.grpc.is_server_live, opts.grpc_url))
            self.add(Check("grpc live", PASS if grpc_live else FAIL, f"gRPC at {opts.grpc_url}"), t)

    def _model_checks(self, triton: Triton) -> tuple[TensorSpec, bool, Samples]:
        opts = self.opts
        t = time.monotonic()
        index = triton.call(triton.http.get_model_repository_index)
        known = {str(m.get("name")): m for m in index}
        if opts.model not in known:
            have = ", ".join(sorted(known)) or "none"
            raise self.fatal(
                Check(
                    "model ready",
                    FAIL,
                    f"model {opts.model!r} is not in the server's repository (models: {have})",
                ),
                t,
            )
        with console.status(f"waiting for model {opts.model} ready (≤ {opts.timeout:.0f}s)"):
            ready = wait_until(
                lambda: bool(triton.call(lambda: triton.http.is_model_ready(opts.model))),
                opts.timeout,
            )
        if not ready:
            entry = next(
                (
                    m
                    for m in triton.call(triton.http.get_model_repository_index)
                    if m.get("name") == opts.model
                ),
                {},
            )
            reason = entry.get("reason") or "no reason given (check the server log)"
            raise self.fatal(
                Check(
                    "model ready",
                    FAIL,
                    f"model {opts.model!r} is "
                    f"{entry.get('state', 'not ready')} after {opts.timeout:.0f}s: "
                    f"{reason}",
                ),
                t,
            )
        self.add(
            Check("model ready", PASS, f"{opts.model} ready after {time.monotonic() - t:.1f}s"), t
        )

        t = time.monotonic()
        metadata = triton.call(lambda: triton.http.get_model_metadata(opts.model))
        config = triton.call(lambda: triton.http.get_model_config(opts.model))
        info = self.info = model_info(metadata, config)
        if len(info.inputs) != 1 or not info.outputs:
            raise self.fatal(
                Check(
                    "model config",
                    FAIL,
                    f"{opts.model} has {len(info.inputs)} inputs; dltk verify feeds exactly one",
                ),
                t,
            )
        spec = info.inputs[0]
        batched = info.max_batch_size > 0
        runtime = info.backend or info.platform
        self.add(
            Check(
                "model config",
                PASS,
                f"{runtime}, max_batch_size {info.max_batch_size}, "
                f"input {spec.name} {spec.datatype} {list(spec.shape)}, outputs "
                f"{', '.join(o.name for o in info.outputs)}, instances "
                f"{', '.join(info.instance_groups) or 'default'}",
            ),
            t,
        )

        t = time.monotonic()
        from tritonclient.utils import triton_to_np_dtype

        dtype = np.dtype(triton_to_np_dtype(spec.datatype))
        if opts.samples:
            samples = load_samples(opts.samples)
            samples = Samples(samples.inputs.astype(dtype), samples.labels, samples.source)
            try:
                check_sample_shape(spec, tuple(samples.inputs.shape), batched)
            except DltkError as exc:
                raise self.fatal(Check("samples", FAIL, str(exc)), t) from None
            labels = "with labels" if samples.labels is not None else "without labels"
            self.add(
                Check(
                    "samples",
                    PASS,
                    f"{len(samples.inputs)} samples "
                    f"{list(samples.inputs.shape)} {labels} from {opts.samples}",
                ),
                t,
            )
        else:
            samples = Samples(synthetic_inputs(spec, batched, dtype), None, "synthetic")
            self.add(
                Check(
                    "samples",
                    SKIP,
                    f"no --samples: {len(samples.inputs)} synthetic inputs, no accuracy check",
                ),
                t,
            )
        return spec, batched, samples

    def _inference_checks(
        self, triton: Triton, spec: TensorSpec, batched: bool, samples: Samples
    ) -> dict[str, dict[str, np.ndarray]]:
        from tritonclient.utils import InferenceServerException

        assert self.info is not None
        size = chunk_size(self.info, len(samples.inputs)) if batched else len(samples.inputs)
        results: dict[str, dict[str, np.ndarray]] = {}
        protocols: list[tuple[str, Callable[..., dict], str | None]] = [
            ("http", triton.infer_http, self.opts.url)
        ]
        if self.opts.grpc_url:
            protocols.append(("grpc", triton.infer_grpc, self.opts.grpc_url))
        inputs = samples.inputs if batched else samples.inputs[: max(size, 1)]
        for proto, infer, url in protocols:
            t = time.monotonic()
            try:
                out = infer_all(infer, self.opts.model, spec, inputs, size)
            except InferenceServerException as exc:
                self.add(Check(f"{proto} inference", FAIL, _server_message(exc)), t)
                continue
            shapes = ", ".join(f"{k} {list(v.shape)}" for k, v in out.items())
            requests = math.ceil(len(inputs) / max(size, 1))
            self.add(
                Check(
                    f"{proto} inference",
                    PASS,
                    f"{len(inputs)} samples in {requests} "
                    f"request(s) to {url} -> {shapes} in "
                    f"{(time.monotonic() - t) * 1000:.0f} ms",
                ),
                t,
            )
            results[proto] = out
        if not self.opts.grpc_url:
            self.checks.append(Check("grpc inference", SKIP, "no --grpc-url given"))
        return results

    def _reference_checks(
        self, spec: TensorSpec, samples: Samples, outputs: dict[str, dict[str, np.ndarray]]
    ) -> None:
        opts = self.opts
        t = time.monotonic()
        if not outputs:
            self.add(Check("outputs vs onnxruntime", FAIL, "no inference succeeded"), t)
            return
        n = len(next(iter(next(iter(outputs.values())).values())))
        inputs = samples.inputs[:n]
        if opts.onnx is None:
            self.add(Check("outputs vs onnxruntime", SKIP, "no --onnx given"), t)
        else:
            with console.status(f"onnxruntime on {opts.onnx}"):
                ref = onnxruntime_outputs(opts.onnx, spec.name, inputs)
            worst: Diff | None = None
            data: dict[str, Any] = {"atol": opts.atol}
            problems: list[str] = []
            for proto, out in outputs.items():
                for name, ref_value in ref.items():
                    if name not in out:
                        problems.append(f"{proto}: server returned no output {name!r}")
                        continue
                    diff = compare(out[name], ref_value, opts.atol)
                    data[f"{proto}_{name}_max_abs_diff"] = diff.max_abs
                    data[f"{proto}_{name}_argmax_agreement"] = diff.argmax_agreement
                    if worst is None or not diff.max_abs <= worst.max_abs:
                        worst = diff
            data["max_abs_diff"] = worst.max_abs if worst else None
            ok = worst is not None and worst.ok and not problems
            detail = (
                f"max |triton - onnxruntime| = {worst.max_abs:.3g} (atol {opts.atol:g}) over "
                f"{', '.join(outputs)}; argmax agreement {worst.argmax_agreement:.3f}"
                if worst
                else "nothing compared"
            )
            self.add(
                Check(
                    "outputs vs onnxruntime",
                    PASS if ok else FAIL,
                    "; ".join([detail, *problems]),
                    data,
                ),
                t,
            )

        t = time.monotonic()
        if samples.labels is None:
            self.add(Check("accuracy", SKIP, "no labels in the samples"), t)
            return
        first = self.info.outputs[0].name if self.info else None
        accs = {p: accuracy(o[first], samples.labels[:n]) for p, o in outputs.items() if first in o}
        low = {p: a for p, a in accs.items() if a < opts.min_accuracy}
        detail = ", ".join(f"{p} {a:.3f}" for p, a in accs.items())
        self.add(
            Check(
                "accuracy",
                FAIL if low or not accs else PASS,
                f"{detail} on {n} samples (min {opts.min_accuracy:g})",
                {
                    "accuracy": min(accs.values()) if accs else None,
                    "by_protocol": accs,
                    "samples": n,
                    "min_accuracy": opts.min_accuracy,
                },
            ),
            t,
        )

    def _bad_input_check(
        self, triton: Triton, spec: TensorSpec, batched: bool, samples: Samples
    ) -> None:
        t = time.monotonic()
        good = samples.inputs[:1] if batched else samples.inputs
        probe = probe_bad_input(triton, self.opts.model, spec, good, batched, self.opts.timeout)
        detail = (
            f"shape {list(probe.sent_shape)} -> {'rejected' if probe.rejected else 'ACCEPTED'} "
            f"({probe.status}: {probe.message[:160]}); ready after: {probe.ready_after}; "
            f"correct request after: {probe.good_request_after}"
        )
        self.add(
            Check("wrong shape rejected", PASS if probe.ok else FAIL, detail, asdict(probe)), t
        )

    def _perf_check(self, spec: TensorSpec, batched: bool, samples: Samples) -> None:
        from dltk.tritonbin import find_perf_analyzer

        opts = self.opts
        t = time.monotonic()
        assert self.info is not None
        if batched and opts.batch_size > self.info.max_batch_size:
            self.add(
                Check(
                    "perf_analyzer",
                    FAIL,
                    f"--batch-size {opts.batch_size} > model "
                    f"max_batch_size {self.info.max_batch_size}",
                ),
                t,
            )
            return
        cfg = PerfConfig(
            model=opts.model,
            url=opts.grpc_url if opts.perf_protocol == "grpc" and opts.grpc_url else opts.url,
            protocol=opts.perf_protocol,
            concurrency=opts.concurrency,
            batch_size=opts.batch_size if batched else 1,
            shapes=perf_shapes(spec, tuple(samples.inputs.shape), batched),
            measurement_interval_ms=opts.perf_interval_ms,
            max_trials=opts.perf_max_trials,
            stability_percentage=opts.perf_stability,
        )
        install = find_perf_analyzer()
        budget = timeout_for(cfg)
        with console.status(
            f"perf_analyzer concurrency {cfg.concurrency}, batch {cfg.batch_size} (≤ {budget:.0f}s)"
        ):
            try:
                self.perf = run_perf(install.binary, cfg, install.env(), timeout_s=budget)
            except DltkError as exc:
                self.add(Check("perf_analyzer", FAIL, str(exc)), t)
                return
        self.add(perf_check(self.perf), t)


# --- CLI ------------------------------------------------------------------------------------


def options_from_args(args: argparse.Namespace) -> VerifyOptions:
    for flag, path in (("--onnx", args.onnx), ("--samples", args.samples)):
        if path is not None and not Path(path).is_file():
            raise DltkError(f"{flag} {path}: no such file; run `dltk export` first")
    if args.timeout <= 0:
        raise DltkError("--timeout must be > 0 seconds")
    if not 0.0 <= args.min_accuracy <= 1.0:
        raise DltkError("--min-accuracy must be between 0 and 1")
    if args.batch_size < 1:
        raise DltkError("--batch-size must be >= 1")
    if args.perf_protocol == "grpc" and not args.grpc_url:
        raise DltkError("--perf-protocol grpc needs --grpc-url HOST:PORT")
    return VerifyOptions(
        url=normalize_url(args.url),
        grpc_url=normalize_url(args.grpc_url) if args.grpc_url else None,
        model=args.model,
        onnx=Path(args.onnx) if args.onnx else None,
        samples=Path(args.samples) if args.samples else None,
        perf=args.perf,
        concurrency=parse_concurrency_range(args.concurrency),
        batch_size=args.batch_size,
        perf_protocol=args.perf_protocol,
        perf_interval_ms=args.perf_interval_ms,
        perf_max_trials=args.perf_max_trials,
        perf_stability=args.perf_stability,
        report=Path(args.report) if args.report else None,
        timeout=args.timeout,
        atol=args.atol,
        min_accuracy=args.min_accuracy,
    )


def cmd_verify(args: argparse.Namespace) -> int:
    return Verifier(options_from_args(args)).run()


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "verify",
        help="check a running Triton serves a model correctly (and measure it with --perf)",
        description="Check server and model readiness, run HTTP and gRPC inference on sample "
        "images, compare with onnxruntime and the labels, check a wrong-shape request is "
        "rejected without harming the server, optionally run perf_analyzer. Exit 1 when a check "
        "fails.",
    )
    p.add_argument("--url", required=True, help="HTTP endpoint HOST:PORT, e.g. 127.0.0.1:8000")
    p.add_argument("--grpc-url", help="gRPC endpoint HOST:PORT (gRPC checks skipped without it)")
    p.add_argument("--model", required=True, help="model name on the server")
    p.add_argument("--onnx", help="ONNX file for the onnxruntime reference outputs")
    p.add_argument("--samples", help="NPZ with `inputs` (and `labels`), from dltk export")
    p.add_argument(
        "--atol",
        type=float,
        default=DEFAULT_ATOL,
        help=f"max |triton - onnxruntime| allowed (default {DEFAULT_ATOL:g}; "
        "use 1e-2 for FP16/TF32 engines)",
    )
    p.add_argument(
        "--min-accuracy",
        type=float,
        default=DEFAULT_MIN_ACCURACY,
        help=f"minimum accuracy on the samples (default {DEFAULT_MIN_ACCURACY:g})",
    )
    p.add_argument("--perf", action="store_true", help="also run perf_analyzer")
    p.add_argument(
        "--concurrency",
        default="1:4",
        help="perf concurrency START:END[:STEP] (default 1:4; at most 16 levels)",
    )
    p.add_argument("--batch-size", type=int, default=1, help="perf client batch size (default 1)")
    p.add_argument(
        "--perf-protocol",
        choices=("http", "grpc"),
        default="http",
        help="perf_analyzer protocol (grpc needs --grpc-url; default http)",
    )
    p.add_argument(
        "--perf-interval-ms",
        type=int,
        default=1000,
        help="perf measurement window in ms (default 1000)",
    )
    p.add_argument(
        "--perf-max-trials",
        type=int,
        default=5,
        help="perf windows per concurrency level at most (default 5)",
    )
    p.add_argument(
        "--perf-stability",
        type=float,
        default=50.0,
        help="perf stability threshold in %% (default 50: CPU hosts are noisy)",
    )
    p.add_argument("--report", help="write a JSON report to this file")
    p.add_argument(
        "--timeout",
        type=float,
        default=60.0,
        help="seconds to wait for readiness and per request (default 60)",
    )
    p.set_defaults(func=cmd_verify)
