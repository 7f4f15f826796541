"""`dltk verify`'s measuring stage: perf_analyzer sweep, Prometheus metrics and SLO gates.

The checks are built by pure functions from what was measured (perf rows, metric deltas), so
the gates are tested without a server. SLO semantics:
- max p99: the sweep's operating points are the concurrency levels whose p99 latency is within
  the budget; the gate fails when none is.
- min throughput: the best throughput among those operating points must reach the minimum.
- max errors: requests the server counted as failed during the perf sweep (metrics delta) plus
  a perf_analyzer run that failed outright.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from dltk.metrics import ModelMetrics, model_metrics, scrape
from dltk.perf import MAX_CONCURRENCY, ConcurrencyRange, PerfRow, best_row
from dltk.verify.records import FAIL, PASS, SKIP, Check, Slo

# The default sweep: Triton's optimization guide measures one GPU with --concurrency-range 1:4
# (https://docs.nvidia.com/deeplearning/triton-inference-server/user-guide/docs/optimization.html).
# A KIND_GPU instance group puts one instance on every GPU, so N GPUs need N times the
# outstanding requests for the same load per GPU: the sweep ends at 4 per GPU (4 on CPU hosts),
# in at most DEFAULT_SWEEP_LEVELS evenly spaced levels so a big host does not sweep for long.
CONCURRENCY_PER_GPU = 4
DEFAULT_SWEEP_LEVELS = 8


def default_concurrency(gpus: int) -> ConcurrencyRange:
    """The default perf_analyzer concurrency range for a server with `gpus` GPUs (pure).

    0 or 1 GPU: 1:4:1 (as before); 2: 1:8:1; 4: 2:16:2; 8: 4:32:4; capped at MAX_CONCURRENCY.
    """
    end = min(MAX_CONCURRENCY, CONCURRENCY_PER_GPU * max(gpus, 1))
    step = max(1, math.ceil(end / DEFAULT_SWEEP_LEVELS))
    end = min(MAX_CONCURRENCY, step * math.ceil(end / step))
    return ConcurrencyRange(1 if step == 1 else step, end, step)


def slo_check(slo: Slo, rows: Sequence[PerfRow] | None, errors: int | None) -> Check:
    """One check for every gate; its detail is one line saying which gate failed and why."""
    data: dict[str, Any] = {
        "min_throughput": slo.min_throughput,
        "max_p99_ms": slo.max_p99_ms,
        "max_errors": slo.max_errors,
        "errors": errors,
    }
    if not slo.active:
        return Check("slo", SKIP, "no SLO gates set", data)
    failures: list[str] = []
    passes: list[str] = []
    if slo.needs_perf:
        if not rows:
            failures.append("throughput/latency gates need a perf_analyzer sweep (--perf)")
        else:
            budget = slo.max_p99_ms or None
            best = best_row(rows, budget)
            if best is None:
                fastest = min(rows, key=lambda r: r.p99_ms)
                failures.append(
                    f"p99 latency {fastest.p99_ms:.2f} ms at concurrency {fastest.concurrency} "
                    f"(the lowest measured) > max {slo.max_p99_ms:g} ms"
                )
            else:
                data.update(
                    best_throughput=best.throughput,
                    best_concurrency=best.concurrency,
                    best_p99_ms=best.p99_ms,
                )
                point = (
                    f"{best.throughput:.0f} infer/s at concurrency {best.concurrency} "
                    f"(p99 {best.p99_ms:.2f} ms"
                    + (f" <= {slo.max_p99_ms:g} ms)" if budget else ")")
                )
                if best.throughput < slo.min_throughput:
                    failures.append(f"best throughput {point} < min {slo.min_throughput:g} infer/s")
                else:
                    floor = f" >= min {slo.min_throughput:g}" if slo.min_throughput else ""
                    passes.append(f"{point}{floor}")
    if slo.max_errors is not None:
        if errors is None:
            failures.append("the error gate needs the metrics port (--metrics-url) and --perf")
        elif errors > slo.max_errors:
            failures.append(f"{errors} failed requests during perf_analyzer > max {slo.max_errors}")
        else:
            passes.append(f"{errors} failed requests <= max {slo.max_errors}")
    if failures:
        return Check("slo", FAIL, "; ".join(failures), data)
    return Check("slo", PASS, "; ".join(passes), data)


def describe(delta: ModelMetrics) -> str:
    def ms(value: float | None) -> str:
        return "-" if value is None else f"{value:.3f} ms"

    batch = "-" if delta.avg_batch is None else f"{delta.avg_batch:.2f}"
    return (
        f"{delta.success:.0f} ok / {delta.failure:.0f} failed requests, avg batch {batch} "
        f"({delta.inferences:.0f} inferences / {delta.executions:.0f} executions), "
        f"queue {ms(delta.queue_ms)} vs compute {ms(delta.compute_ms)} per request"
    )


def metrics_check(
    model: str,
    whole: ModelMetrics | None,
    perf: ModelMetrics | None,
    perf_rows: Sequence[PerfRow] | None,
    error: str | None = None,
) -> Check:
    """The metrics port agrees with what the verifier sent (pure).

    `whole` is the delta over the whole verification (it includes the deliberately rejected
    wrong-shape request), `perf` the delta over the perf_analyzer sweep alone.
    """
    if error:
        return Check("metrics", FAIL, error)
    if whole is None:
        return Check("metrics", SKIP, "no --metrics-url: Triton's counters not checked")
    data: dict[str, Any] = {"verify": whole.summary()}
    problems: list[str] = []
    if whole.success <= 0:
        problems.append(f"the server counted no successful request for {model!r}")
    parts = [f"whole run: {describe(whole)}"]
    if perf is not None:
        data["perf"] = perf.summary()
        parts.append(f"perf_analyzer: {describe(perf)}")
        if perf_rows and perf.success <= 0:
            problems.append("perf_analyzer measured requests the server did not count")
    detail = "; ".join(problems + parts)
    return Check("metrics", FAIL if problems else PASS, detail, data)


def scrape_model(url: str, model: str, timeout: float) -> ModelMetrics:
    """The model's counters now (DltkError when the port does not answer)."""
    return model_metrics(scrape(url, timeout=min(timeout, 10.0)), model)


def perf_errors(perf: ModelMetrics | None, perf_failed: bool) -> int | None:
    """Failed requests during the sweep: server-side failures, +1 when perf_analyzer failed."""
    if perf is None:
        return 1 if perf_failed else None
    return int(perf.failure) + (1 if perf_failed else 0)
