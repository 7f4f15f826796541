"""`dltk bench trt`: latency and throughput per batch size of a TensorRT engine (GPU hosts).

Like the seed's tensorrt_test.py, but through `trtexec --loadEngine`, which every TensorRT
install ships: one bounded trtexec run per batch size (--shapes picks the batch inside the
engine's optimization profile), its performance summary parsed into latency (mean, median,
p99 of host-to-host latency, GPU compute mean) and throughput (queries/s x batch = samples/s).
Command building and parsing are pure and unit-tested; running needs a GPU and trtexec.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from dltk.errors import DltkError
from dltk.perf import parse_shape
from dltk.proc import Runner, run_bounded

TRTEXEC_TIMEOUT_S = 300.0
_PREFIX = re.compile(r"^\s*(\[[^\]]*\]\s*)+")  # "[11/22/2026-05:00:00] [I] "
_STAT = re.compile(r"(min|max|mean|median|percentile\((\d+(?:\.\d+)?)%\))\s*=\s*([0-9.eE+-]+)\s*ms")


@dataclass(frozen=True)
class TrtRun:
    """Settings of one trtexec measurement."""

    engine: Path
    input_name: str
    sample_dims: tuple[int, ...]  # one sample's dims, without the batch dim
    batch: int
    duration_s: int = 3
    warmup_ms: int = 500
    iterations: int = 100


def trtexec_command(run: TrtRun, trtexec: str = "trtexec") -> list[str]:
    """trtexec's argv for one batch size (pure)."""
    if run.batch < 1 or run.duration_s < 1 or run.iterations < 1:
        raise DltkError("batch, duration and iterations must all be >= 1")
    shape = "x".join(str(d) for d in (run.batch, *run.sample_dims))
    return [
        trtexec,
        f"--loadEngine={run.engine}",
        f"--shapes={run.input_name}:{shape}",
        f"--warmUp={run.warmup_ms}",
        f"--duration={run.duration_s}",
        f"--iterations={run.iterations}",
        "--useSpinWait",
    ]


@dataclass(frozen=True)
class TrtStats:
    """trtexec's performance summary for one batch size."""

    batch: int
    qps: float  # queries (batches) per second
    mean_ms: float
    median_ms: float
    p99_ms: float
    gpu_compute_mean_ms: float | None = None

    @property
    def throughput(self) -> float:
        """Samples per second."""
        return self.qps * self.batch


def _stats(line: str) -> dict[str, float]:
    values: dict[str, float] = {}
    for name, pct, value in _STAT.findall(line):
        key = f"p{float(pct):g}" if pct else name
        values[key] = float(value)
    return values


def parse_trtexec(text: str, batch: int) -> TrtStats:
    """The 'Performance summary' of trtexec's output (TensorRT 8.x and 10.x) (pure)."""
    qps: float | None = None
    latency: dict[str, float] = {}
    gpu: dict[str, float] = {}
    for raw in text.splitlines():
        line = _PREFIX.sub("", raw).strip()
        if line.startswith("Throughput:"):
            match = re.search(r"Throughput:\s*([0-9.eE+-]+)\s*qps", line)
            qps = float(match.group(1)) if match else None
        elif line.startswith("Latency:"):
            latency = _stats(line)
        elif line.startswith("GPU Compute Time:"):
            gpu = _stats(line)
    missing = [
        name
        for name, ok in (
            ("Throughput", qps is not None),
            ("Latency mean", "mean" in latency),
            ("Latency median", "median" in latency),
        )
        if not ok
    ]
    if missing:
        raise DltkError(
            f"trtexec output has no {', '.join(missing)}: did the engine load? "
            "(run trtexec --loadEngine=... by hand to see why)"
        )
    assert qps is not None
    return TrtStats(
        batch=batch,
        qps=qps,
        mean_ms=latency["mean"],
        median_ms=latency["median"],
        p99_ms=latency.get("p99", latency.get("max", latency["mean"])),
        gpu_compute_mean_ms=gpu.get("mean"),
    )


def parse_input_shape(text: str) -> tuple[str, tuple[int, ...]]:
    """'input:1,28,28' -> ('input', (1, 28, 28)): one sample's dims, without the batch."""
    return parse_shape(text, what="--input")


def run_trt(
    runs: Sequence[TrtRun],
    trtexec: str = "trtexec",
    runner: Runner = subprocess.run,
    timeout_s: float = TRTEXEC_TIMEOUT_S,
) -> list[TrtStats]:
    """One bounded trtexec per run; the first failure stops with trtexec's last line."""
    results: list[TrtStats] = []
    for run in runs:
        done = run_bounded(
            trtexec_command(run, trtexec),
            timeout_s,
            timed_out=f"trtexec did not finish within {timeout_s:.0f}s at batch {run.batch}",
            cannot_start=f"cannot run {trtexec}",
            runner=runner,
        )
        if done.returncode != 0:
            last = [ln for ln in done.output.splitlines() if ln.strip()][-1:] or ["(no output)"]
            raise DltkError(
                f"trtexec failed at batch {run.batch} (exit {done.returncode}): {last[0].strip()}"
            )
        results.append(parse_trtexec(done.output, run.batch))
    return results
