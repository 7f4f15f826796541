"""verify_perf's gates and messages: one test per rule, with whole expected checks.

These pin what mutation testing found unpinned (issue 14 item 1: survivors of
`MUTATION_MODULES="verify_records verify_perf" scripts/mutation.sh`). Every expected value is
written from the rule (the module docstring's SLO semantics, the functions' docstrings), on both
sides of each comparison.
"""

from __future__ import annotations

import pytest

import dltk.verify.perf
from dltk.metrics import ModelMetrics, Sample
from dltk.perf import ConcurrencyRange, PerfRow
from dltk.verify.perf import default_concurrency, describe, metrics_check, scrape_model, slo_check
from dltk.verify.records import FAIL, PASS, SKIP, Check, Slo

# --- default_concurrency ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("gpus", "levels"),
    [
        (-1, ConcurrencyRange(1, 4, 1)),  # nonsense counts as a CPU host
        (0, ConcurrencyRange(1, 4, 1)),
        (1, ConcurrencyRange(1, 4, 1)),
        (2, ConcurrencyRange(1, 8, 1)),  # 8 levels of step 1
        (3, ConcurrencyRange(2, 12, 2)),  # 12 needs step 2 to stay within 8 levels
        (4, ConcurrencyRange(2, 16, 2)),
        (8, ConcurrencyRange(4, 32, 4)),
        (16, ConcurrencyRange(8, 64, 8)),  # 4 per GPU reaches MAX_CONCURRENCY (64)
        (32, ConcurrencyRange(8, 64, 8)),  # capped at 64
    ],
)
def test_the_default_sweep_ends_at_4_per_gpu_in_at_most_8_levels(
    gpus: int, levels: ConcurrencyRange
) -> None:
    """Rule: the sweep ends at 4 outstanding requests per GPU (4 without GPU), at most 64, in
    at most 8 evenly spaced levels starting at the step (1 when the step is 1)."""
    assert default_concurrency(gpus) == levels


# --- describe and metrics_check -------------------------------------------------------------------

# 4 successes and 1 failure; 12 inferences in 3 executions; per successful request:
# queue 2000 us / 4 = 0.5 ms, compute (400 + 3200 + 400) us / 4 = 1 ms.
COUNTED = ModelMetrics(
    "mnist",
    success=4,
    failure=1,
    inferences=12,
    executions=3,
    request_us=8000,
    queue_us=2000,
    compute_input_us=400,
    compute_infer_us=3200,
    compute_output_us=400,
)
COUNTED_TEXT = (
    "4 ok / 1 failed requests, avg batch 4.00 (12 inferences / 3 executions), "
    "queue 0.500 ms vs compute 1.000 ms per request"
)
NOTHING = ModelMetrics("mnist", failure=2)
NOTHING_TEXT = (
    "0 ok / 2 failed requests, avg batch - (0 inferences / 0 executions), "
    "queue - vs compute - per request"
)
ROWS = [PerfRow(1, 100.0, 1.0, 1.0, 1.0, 1.0)]


def test_metrics_are_described_as_requests_batching_and_queue_vs_compute() -> None:
    """Rule: the description counts successful and failed requests, the average batch
    (inferences per execution) and queue vs compute time per successful request; a value that
    cannot be computed (no execution, no success) is "-"."""
    assert describe(COUNTED) == COUNTED_TEXT
    assert describe(NOTHING) == NOTHING_TEXT


def test_metrics_check_fails_with_the_scrape_error_or_skips_without_a_metrics_port() -> None:
    """Rule: a scrape error is the check's failure; no metrics port: the check is skipped."""
    assert metrics_check("mnist", COUNTED, COUNTED, ROWS, "port 8002 refused") == Check(
        "metrics", FAIL, "port 8002 refused"
    )
    assert metrics_check("mnist", None, None, None) == Check(
        "metrics", SKIP, "no --metrics-url: Triton's counters not checked"
    )


def test_metrics_check_passes_a_run_the_server_counted() -> None:
    """Rule: at least one successful request counted over the whole run passes; the detail and
    data describe the whole run, and the perf sweep when it was measured."""
    assert metrics_check("mnist", COUNTED, None, None) == Check(
        "metrics", PASS, f"whole run: {COUNTED_TEXT}", {"verify": COUNTED.summary()}
    )
    assert metrics_check("mnist", COUNTED, COUNTED, ROWS) == Check(
        "metrics",
        PASS,
        f"whole run: {COUNTED_TEXT}; perf_analyzer: {COUNTED_TEXT}",
        {"verify": COUNTED.summary(), "perf": COUNTED.summary()},
    )


def test_metrics_check_fails_each_count_the_server_missed_first_in_the_detail() -> None:
    """Rule: no successful request counted for the model fails; perf_analyzer rows without a
    successful request counted during the sweep fail; the problems come first in the detail."""
    assert metrics_check("mnist", NOTHING, COUNTED, ROWS) == Check(
        "metrics",
        FAIL,
        f"the server counted no successful request for 'mnist'; whole run: {NOTHING_TEXT}; "
        f"perf_analyzer: {COUNTED_TEXT}",
        {"verify": NOTHING.summary(), "perf": COUNTED.summary()},
    )
    assert metrics_check("mnist", NOTHING, NOTHING, ROWS) == Check(
        "metrics",
        FAIL,
        "the server counted no successful request for 'mnist'; perf_analyzer measured "
        f"requests the server did not count; whole run: {NOTHING_TEXT}; "
        f"perf_analyzer: {NOTHING_TEXT}",
        {"verify": NOTHING.summary(), "perf": NOTHING.summary()},
    )


def test_one_counted_success_is_enough() -> None:
    """Rule: "no successful request" means 0; one success counted, over the whole run and
    during the sweep, passes."""
    one = ModelMetrics("mnist", success=1, inferences=1, executions=1)
    assert metrics_check("mnist", one, one, ROWS).result == PASS


@pytest.mark.parametrize("rows", [None, []])
def test_an_empty_sweep_has_nothing_the_server_should_have_counted(
    rows: list[PerfRow] | None,
) -> None:
    """Rule: without perf_analyzer rows, no success during the sweep is no problem."""
    check = metrics_check("mnist", COUNTED, NOTHING, rows)
    assert (check.result, check.detail) == (
        PASS,
        f"whole run: {COUNTED_TEXT}; perf_analyzer: {NOTHING_TEXT}",
    )


# --- slo_check ------------------------------------------------------------------------------------

# Listed out of concurrency order so neither the first nor the last row is the answer by place.
# concurrency, infer/s, p50, p90, p95, p99 (ms)
SWEEP = [
    PerfRow(4, 2400.0, 2.0, 5.0, 9.0, 15.0),
    PerfRow(1, 1000.0, 1.0, 1.5, 1.8, 2.0),
    PerfRow(2, 1800.0, 1.2, 2.0, 3.0, 6.0),
]


def data(slo: Slo, errors: int | None, best: PerfRow | None = None) -> dict:
    """What the check records: the gates, the errors, and the operating point when one fits."""
    out = {
        "min_throughput": slo.min_throughput,
        "max_p99_ms": slo.max_p99_ms,
        "max_errors": slo.max_errors,
        "errors": errors,
    }
    if best is not None:
        out.update(
            best_throughput=best.throughput,
            best_concurrency=best.concurrency,
            best_p99_ms=best.p99_ms,
        )
    return out


C1, C2, C4 = SWEEP[1], SWEEP[2], SWEEP[0]


@pytest.mark.parametrize(
    ("slo", "errors", "result", "detail", "best"),
    [
        (Slo(), 0, SKIP, "no SLO gates set", None),
        # p99 budget equal to a level's p99: that level is an operating point
        (
            Slo(min_throughput=1800, max_p99_ms=6),
            0,
            PASS,
            "1800 infer/s at concurrency 2 (p99 6.00 ms <= 6 ms) >= min 1800",
            C2,
        ),
        # the best operating point just below the minimum
        (
            Slo(min_throughput=1800.5, max_p99_ms=6),
            0,
            FAIL,
            "best throughput 1800 infer/s at concurrency 2 (p99 6.00 ms <= 6 ms) < min 1800.5 "
            "infer/s",
            C2,
        ),
        # a budget just below a level's p99 leaves it out
        (
            Slo(max_p99_ms=5.99),
            0,
            PASS,
            "1000 infer/s at concurrency 1 (p99 2.00 ms <= 5.99 ms)",
            C1,
        ),
        # no latency budget: the highest throughput of the sweep
        (
            Slo(min_throughput=1),
            0,
            PASS,
            "2400 infer/s at concurrency 4 (p99 15.00 ms) >= min 1",
            C4,
        ),
        # no level within the budget: the lowest p99 measured is named
        (
            Slo(max_p99_ms=1.99, min_throughput=1),
            0,
            FAIL,
            "p99 latency 2.00 ms at concurrency 1 (the lowest measured) > max 1.99 ms",
            None,
        ),
        # error gate: equal passes (also 0 of 0), one more fails, unknown fails
        (Slo(max_errors=2), 2, PASS, "2 failed requests <= max 2", None),
        (Slo(max_errors=0), 0, PASS, "0 failed requests <= max 0", None),
        (Slo(max_errors=2), 3, FAIL, "3 failed requests during perf_analyzer > max 2", None),
        (
            Slo(max_errors=2),
            None,
            FAIL,
            "the error gate needs the metrics port (--metrics-url) and --perf",
            None,
        ),
        # every gate that passes is in the detail, in order
        (
            Slo(max_p99_ms=20, max_errors=1),
            0,
            PASS,
            "2400 infer/s at concurrency 4 (p99 15.00 ms <= 20 ms); 0 failed requests <= max 1",
            C4,
        ),
        # only the failing gates are, when one fails
        (
            Slo(min_throughput=3000, max_errors=0),
            1,
            FAIL,
            "best throughput 2400 infer/s at concurrency 4 (p99 15.00 ms) < min 3000 infer/s; "
            "1 failed requests during perf_analyzer > max 0",
            C4,
        ),
        (
            Slo(min_throughput=3000, max_errors=1),
            1,
            FAIL,
            "best throughput 2400 infer/s at concurrency 4 (p99 15.00 ms) < min 3000 infer/s",
            C4,
        ),
    ],
)
def test_slo_check_states_each_gate_on_both_sides_of_its_limit(
    slo: Slo, errors: int | None, result: str, detail: str, best: PerfRow | None
) -> None:
    """Rule (module docstring): the operating points are the levels with p99 <= max p99; the
    best of them (highest throughput) must reach min throughput; failed requests must be <= max
    errors. The detail is one line: the failures, or else what passed, joined by "; "."""
    assert slo_check(slo, SWEEP, errors) == Check("slo", result, detail, data(slo, errors, best))


@pytest.mark.parametrize("rows", [None, []])
def test_throughput_and_latency_gates_fail_without_a_sweep(rows: list[PerfRow] | None) -> None:
    """Rule: a throughput or p99 gate without perf rows fails and says to run the sweep."""
    slo = Slo(max_p99_ms=5, max_errors=0)
    assert slo_check(slo, rows, 0) == Check(
        "slo",
        FAIL,
        "throughput/latency gates need a perf_analyzer sweep (--perf)",
        data(slo, 0),
    )


# --- scrape_model -------------------------------------------------------------------------------


@pytest.mark.parametrize(("timeout", "waited"), [(60.0, 10.0), (10.0, 10.0), (2.5, 2.5)])
def test_scrape_model_sums_the_models_counters_waiting_at_most_10_s(
    monkeypatch: pytest.MonkeyPatch, timeout: float, waited: float
) -> None:
    """Rule: the metrics port is asked at the given URL, waiting the verify timeout but at most
    10 s; the answer is the named model's counters summed over its versions (other models'
    left out). The scrape is a TEST DOUBLE (no server here) that records what it was asked."""
    asked: list[tuple[str, float]] = []

    def scrape_double(url: str, timeout: float = -1.0) -> list[Sample]:
        asked.append((url, timeout))
        return [
            Sample("nv_inference_request_success", {"model": "mnist", "version": "1"}, 3.0),
            Sample("nv_inference_request_success", {"model": "mnist", "version": "2"}, 4.0),
            Sample("nv_inference_request_failure", {"model": "mnist", "version": "1"}, 1.0),
            Sample("nv_inference_request_success", {"model": "resnet", "version": "1"}, 9.0),
        ]

    monkeypatch.setattr(dltk.verify.perf, "scrape", scrape_double)
    got = scrape_model("127.0.0.1:8002", "mnist", timeout)
    assert got == ModelMetrics("mnist", success=7.0, failure=1.0)
    assert asked == [("127.0.0.1:8002", waited)]
