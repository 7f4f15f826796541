"""perf_analyzer: command line, CSV parsing (pure) and a thin runner with a timeout.

perf_analyzer measures in windows of --measurement-interval ms and repeats a window at most
--max-trials times per concurrency level until throughput and latency are stable within
--stability-percentage. A run therefore lasts at most about
levels x max_trials x interval, which `PerfConfig.time_budget_s` computes; the runner kills it
after that budget plus a margin. Concurrency levels and trials are capped, so every run is
bounded in time and in count.

perf_analyzer can end a concurrency sweep early and still exit 0 (seen on the sandbox: 1 of 4
levels measured when a later level was unstable; PyTriton treats exit 0 with "Failed to obtain
stable measurement" as a failure for the same reason). `run_sweep` therefore compares the levels
in the CSV with the levels it asked for and, when some are missing or perf_analyzer failed for
want of a stable window, runs it once more with a longer measurement window, as Triton's
model-analyzer does (it relaunches perf_analyzer with a larger --measurement-interval on
"Failed to obtain stable measurement" / "Please use a larger time window", up to
perf_analyzer_max_auto_adjusts times:
https://github.com/triton-inference-server/model_analyzer/blob/main/docs/config.md and
model_analyzer/perf_analyzer/perf_analyzer.py). One retry keeps the sweep's time bounded; what is
still missing after it is reported by the caller as a failure, never passed.
"""

from __future__ import annotations

import csv
import io
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from dltk.api_key import redact_command
from dltk.errors import DltkError
from dltk.proc import Runner, run_bounded

PROTOCOLS = ("http", "grpc")
MAX_CONCURRENCY = 64
MAX_LEVELS = 16
MAX_TRIALS = 20
MAX_INTERVAL_MS = 60_000
US_PER_MS = 1000.0

# perf_analyzer CSV column -> PerfRow field; latency columns are in microseconds.
LATENCY_COLUMNS = {
    "p50 latency": "p50_ms",
    "p90 latency": "p90_ms",
    "p95 latency": "p95_ms",
    "p99 latency": "p99_ms",
    "Avg latency": "avg_ms",
    "Client Send": "client_send_ms",
    "Network+Server Send/Recv": "network_server_ms",
    "Server Queue": "server_queue_ms",
    "Server Compute Input": "server_compute_input_ms",
    "Server Compute Infer": "server_compute_infer_ms",
    "Server Compute Output": "server_compute_output_ms",
    "Client Recv": "client_recv_ms",
}
REQUIRED_COLUMNS = (
    "Concurrency",
    "Inferences/Second",
    "p50 latency",
    "p90 latency",
    "p95 latency",
    "p99 latency",
)


@dataclass(frozen=True)
class ConcurrencyRange:
    start: int
    end: int
    step: int = 1

    @property
    def levels(self) -> list[int]:
        return list(range(self.start, self.end + 1, self.step))

    def __str__(self) -> str:
        return f"{self.start}:{self.end}:{self.step}"


def parse_concurrency_range(text: str, what: str = "concurrency range") -> ConcurrencyRange:
    """'N', 'START:END' or 'START:END:STEP', bounded to MAX_CONCURRENCY and MAX_LEVELS levels.

    As perf_analyzer's --concurrency-range: 'N' alone is one level, N outstanding requests
    ('4' is 4:4:1, not 1:4). `what` names the setting in the error."""
    parts = text.split(":")
    try:
        numbers = [int(p) for p in parts]
    except ValueError:
        numbers = []
    if not 1 <= len(numbers) <= 3:
        raise DltkError(f"{what} {text!r} is not START[:END[:STEP]], e.g. 1:4")
    start, end, step = (numbers * 2)[:2] + [numbers[2] if len(numbers) == 3 else 1]
    if not (1 <= start <= end <= MAX_CONCURRENCY and step >= 1):
        raise DltkError(
            f"{what} {text!r} must satisfy 1 <= START <= END <= {MAX_CONCURRENCY} and STEP >= 1"
        )
    rng = ConcurrencyRange(start, end, step)
    if len(rng.levels) > MAX_LEVELS:
        raise DltkError(
            f"{what} {text!r} has {len(rng.levels)} levels; at most {MAX_LEVELS} (raise STEP)"
        )
    return rng


def parse_shape(text: str, what: str = "shape") -> tuple[str, tuple[int, ...]]:
    """'name:1,28,28' -> ('name', (1, 28, 28)) for perf_analyzer's --shape.

    `what` names the option in the error (e.g. "--input").
    """
    name, sep, dims = text.rpartition(":")
    try:
        values = tuple(int(d) for d in dims.split(","))
    except ValueError:
        values = ()
    if not sep or not name or not values or min(values) < 1:
        raise DltkError(
            f"{what} {text!r} is not NAME:D1,D2,... with positive dims, e.g. input:1,28,28"
        )
    return name, values


@dataclass(frozen=True)
class PerfConfig:
    model: str
    url: str
    protocol: str = "http"
    concurrency: ConcurrencyRange = field(default_factory=lambda: ConcurrencyRange(1, 1))
    batch_size: int = 1
    shapes: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    measurement_interval_ms: int = 1000
    max_trials: int = 5
    stability_percentage: float = 10.0
    shared_memory: bool = False
    # Asynchronous client (fewer threads for the same concurrency) and its thread cap.
    async_mode: bool = False
    max_threads: int | None = None
    # Request headers (-H NAME:VALUE), e.g. the deployment's API key; redacted in results.
    headers: tuple[tuple[str, str], ...] = ()

    def check(self) -> None:
        if self.protocol not in PROTOCOLS:
            raise DltkError(f"protocol {self.protocol!r} is not one of {', '.join(PROTOCOLS)}")
        if self.batch_size < 1:
            raise DltkError(f"batch size {self.batch_size} must be >= 1")
        if not 100 <= self.measurement_interval_ms <= MAX_INTERVAL_MS:
            raise DltkError(
                f"measurement interval {self.measurement_interval_ms} ms must be "
                f"between 100 and {MAX_INTERVAL_MS}"
            )
        if not 3 <= self.max_trials <= MAX_TRIALS:
            # perf_analyzer needs 3 windows to judge stability.
            raise DltkError(f"max trials {self.max_trials} must be between 3 and {MAX_TRIALS}")
        if self.stability_percentage <= 0:
            raise DltkError("stability percentage must be > 0")
        if self.max_threads is not None and not 1 <= self.max_threads <= MAX_CONCURRENCY:
            raise DltkError(
                f"client threads {self.max_threads} must be between 1 and {MAX_CONCURRENCY}"
            )

    @property
    def time_budget_s(self) -> float:
        """Upper bound of the measuring time: levels x trials x interval."""
        levels = len(self.concurrency.levels)
        return levels * self.max_trials * self.measurement_interval_ms / 1000.0


def build_command(binary: Path | str, cfg: PerfConfig, csv_path: Path) -> list[str]:
    """perf_analyzer's argv for `cfg`, writing its CSV report to `csv_path` (pure)."""
    cfg.check()
    cmd = [
        str(binary),
        "-m",
        cfg.model,
        "-u",
        cfg.url,
        "-i",
        cfg.protocol,
        "-b",
        str(cfg.batch_size),
        "--concurrency-range",
        str(cfg.concurrency),
        "--measurement-mode",
        "time_windows",
        "-p",
        str(cfg.measurement_interval_ms),
        "--max-trials",
        str(cfg.max_trials),
        "-s",
        f"{cfg.stability_percentage:g}",
        "-f",
        str(csv_path),
        "--verbose-csv",
    ]
    for name, dims in sorted(cfg.shapes.items()):
        cmd += ["--shape", f"{name}:{','.join(str(d) for d in dims)}"]
    if cfg.shared_memory:
        cmd += ["--shared-memory", "system"]
    if cfg.async_mode:
        cmd.append("--async")
    if cfg.max_threads is not None:
        cmd += ["--max-threads", str(cfg.max_threads)]
    for name, value in cfg.headers:
        cmd += ["-H", f"{name}:{value}"]
    return cmd


@dataclass(frozen=True)
class PerfRow:
    """One concurrency level of a perf_analyzer CSV; latencies converted to milliseconds."""

    concurrency: int
    throughput: float  # inferences (samples) per second
    p50_ms: float
    p90_ms: float
    p95_ms: float
    p99_ms: float
    avg_ms: float | None = None
    client_send_ms: float | None = None
    network_server_ms: float | None = None
    server_queue_ms: float | None = None
    server_compute_input_ms: float | None = None
    server_compute_infer_ms: float | None = None
    server_compute_output_ms: float | None = None
    client_recv_ms: float | None = None


def _number(row: Mapping[str, str], column: str, line: int) -> float:
    try:
        return float(row[column])
    except (TypeError, ValueError):
        raise DltkError(
            f"perf CSV line {line}: column {column!r} is not a number: {row.get(column)!r}"
        ) from None


def parse_csv(text: str) -> list[PerfRow]:
    """Rows of perf_analyzer's -f CSV (with or without --verbose-csv), by concurrency.

    perf_analyzer writes the rows sorted by throughput, not by concurrency.
    """
    lines = text.strip().splitlines()
    if "" in (ln.strip() for ln in lines):  # other sections follow after a blank line
        lines = lines[: [ln.strip() for ln in lines].index("")]
    if not lines:
        raise DltkError("perf CSV is empty: perf_analyzer measured nothing")
    reader = csv.DictReader(io.StringIO("\n".join(lines)))
    header = [h.strip() for h in (reader.fieldnames or [])]
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise DltkError(
            f"perf CSV lacks columns {', '.join(missing)}; is it a concurrency run "
            "of perf_analyzer -f?"
        )
    rows: list[PerfRow] = []
    for line, raw in enumerate(reader, start=2):
        record = {(k or "").strip(): (v or "").strip() for k, v in raw.items()}
        latencies = {
            name: _number(record, column, line) / US_PER_MS
            for column, name in LATENCY_COLUMNS.items()
            if column in REQUIRED_COLUMNS or record.get(column, "") != ""
        }
        rows.append(
            PerfRow(
                concurrency=int(_number(record, "Concurrency", line)),
                throughput=_number(record, "Inferences/Second", line),
                **latencies,
            )
        )
    if not rows:
        raise DltkError("perf CSV has a header but no rows: perf_analyzer measured nothing")
    return sorted(rows, key=lambda r: r.concurrency)


@dataclass(frozen=True)
class PerfResult:
    config: PerfConfig
    command: list[str]
    rows: list[PerfRow]
    elapsed_s: float
    csv: str = ""  # perf_analyzer's CSV as written
    # Earlier attempts of the same sweep, one line each (empty: measured on the first run).
    retries: tuple[str, ...] = ()

    @property
    def missing_levels(self) -> list[int]:
        return missing_levels(self.config.concurrency, self.rows)


def missing_levels(asked: ConcurrencyRange, rows: Sequence[PerfRow]) -> list[int]:
    """The concurrency levels asked for that have no row (pure)."""
    measured = {r.concurrency for r in rows}
    return [level for level in asked.levels if level not in measured]


# perf_analyzer's messages when a window was too short to measure a level.
UNSTABLE_MARKERS = ("Failed to obtain stable measurement", "Please use a larger time window")
RETRY_INTERVAL_FACTOR = 3


def longer_window(cfg: PerfConfig) -> PerfConfig | None:
    """`cfg` with a longer measurement window for the one retry; None when already at the cap."""
    interval = min(MAX_INTERVAL_MS, cfg.measurement_interval_ms * RETRY_INTERVAL_FACTOR)
    if interval <= cfg.measurement_interval_ms:
        return None
    return replace(cfg, measurement_interval_ms=interval)


def run_sweep(
    binary: Path,
    cfg: PerfConfig,
    env: Mapping[str, str],
    runner: Runner = subprocess.run,
) -> PerfResult:
    """Run a sweep; retry it once with a longer window when levels are missing or unstable.

    The result's `retries` says why the first attempt was not kept; its `missing_levels` is
    what even the retry did not measure (the caller fails on it). An unrelated perf_analyzer
    failure (server down, bad model) is raised at once, without a retry.
    """
    try:
        first = run_perf(binary, cfg, env, timeout_for(cfg), runner)
        missing = first.missing_levels
        if not missing:
            return first
        reason = (
            f"measured {len(first.rows)} of {len(cfg.concurrency.levels)} levels "
            f"(missing concurrency {', '.join(map(str, missing))}) "
            f"with a {cfg.measurement_interval_ms} ms window"
        )
    except DltkError as exc:
        if not any(marker.lower() in str(exc).lower() for marker in UNSTABLE_MARKERS):
            raise
        first = None
        reason = f"{exc} (with a {cfg.measurement_interval_ms} ms window)"
    longer = longer_window(cfg)
    if longer is None:
        if first is None:
            raise DltkError(f"{reason}; the window is already at its {MAX_INTERVAL_MS} ms cap")
        return replace(first, retries=(reason,))
    try:
        second = run_perf(binary, longer, env, timeout_for(longer), runner)
    except DltkError as exc:
        raise DltkError(
            f"first run {reason}; retried once with a {longer.measurement_interval_ms} ms "
            f"window: {exc}"
        ) from None
    return replace(second, retries=(reason,))


def timeout_for(cfg: PerfConfig) -> float:
    """Kill perf_analyzer after its measuring budget plus per-level overhead and a margin."""
    return cfg.time_budget_s * 1.5 + 5.0 * len(cfg.concurrency.levels) + 30.0


def last_error_line(output: str) -> str:
    """The most telling line of perf_analyzer's output for a one-line error."""
    lines = [ln.strip() for ln in output.splitlines() if ln.strip()]
    for ln in reversed(lines):
        if ln.lower().startswith(("error", "failed", "thread [")) or "error:" in ln.lower():
            return ln
    return lines[-1] if lines else "(no output)"


def run_perf(
    binary: Path,
    cfg: PerfConfig,
    env: Mapping[str, str],
    timeout_s: float | None = None,
    runner: Runner = subprocess.run,
) -> PerfResult:
    """Run perf_analyzer once (bounded by `timeout_s`) and parse its CSV."""
    timeout = timeout_for(cfg) if timeout_s is None else timeout_s
    with tempfile.TemporaryDirectory(prefix="dltk-perf-") as tmp:
        csv_path = Path(tmp) / "perf.csv"
        cmd = build_command(binary, cfg, csv_path)
        started = time.monotonic()
        done = run_bounded(
            cmd,
            timeout,
            timed_out=f"perf_analyzer did not finish within {timeout:.0f}s; lower the "
            "concurrency range or the measurement interval",
            cannot_start=f"cannot run perf_analyzer ({binary})",
            env=env,
            runner=runner,
        )
        elapsed = time.monotonic() - started
        if done.returncode != 0:
            hint = ""
            if "stable measurement" in done.output:
                hint = "; raise the measurement interval or the stability percentage"
            raise DltkError(
                f"perf_analyzer failed (exit {done.returncode}): "
                f"{last_error_line(done.output)}{hint}"
            )
        if not csv_path.exists():
            raise DltkError(f"perf_analyzer wrote no CSV: {last_error_line(done.output)}")
        text = csv_path.read_text()
        rows = parse_csv(text)
    return PerfResult(
        config=cfg, command=redact_command(cmd), rows=rows, elapsed_s=elapsed, csv=text
    )


def format_command(cmd: Sequence[str]) -> str:
    return " ".join(cmd)


def best_row(rows: Sequence[PerfRow], max_p99_ms: float | None = None) -> PerfRow | None:
    """The highest-throughput row, among those within `max_p99_ms` when given (pure)."""
    within = [r for r in rows if max_p99_ms is None or r.p99_ms <= max_p99_ms]
    return max(within, key=lambda r: r.throughput) if within else None
