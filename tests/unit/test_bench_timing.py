"""bench/timing.py: bounded timing loops and batch lists (a fake clock, no real timing)."""

from __future__ import annotations

import pytest

from dltk.bench.timing import parse_batches, summarize, time_calls
from dltk.errors import DltkError


class FakeClock:
    """Test double for time.perf_counter: every call advances by `step` seconds."""

    def __init__(self, step: float) -> None:
        self.now = 0.0
        self.step = step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


def test_time_calls_stops_at_the_budget() -> None:
    calls: list[int] = []
    timing = time_calls(lambda: calls.append(1), 8, budget_s=1.0, warmup=2, clock=FakeClock(0.1))
    # warm-up calls are not timed; each timed call spans one clock step (0.1 s)
    assert timing.iterations == len(calls) - 2 and 3 <= timing.iterations <= 6
    assert timing.mean_ms == pytest.approx(100.0)
    assert timing.throughput == pytest.approx(8 / 0.1)


def test_time_calls_stops_at_the_iteration_cap() -> None:
    timing = time_calls(lambda: None, 1, budget_s=1e9, max_iterations=7, clock=FakeClock(1e-6))
    assert timing.iterations == 7


def test_time_calls_runs_sync_after_each_call() -> None:
    synced: list[int] = []
    time_calls(
        lambda: None, 1, 1.0, 5, warmup=1, clock=FakeClock(1.0), sync=lambda: synced.append(1)
    )
    assert len(synced) == 2  # one warm-up + one timed call (budget spent after it)


def test_time_calls_rejects_unbounded_settings() -> None:
    with pytest.raises(DltkError, match="time budget"):
        time_calls(lambda: None, 1, budget_s=0)
    with pytest.raises(DltkError, match="iterations"):
        time_calls(lambda: None, 1, budget_s=1, max_iterations=0)


def test_summarize_percentiles() -> None:
    t = summarize(4, [0.001] * 99 + [0.101])
    assert t.median_ms == pytest.approx(1.0) and t.p99_ms == pytest.approx(1.0)
    assert t.mean_ms == pytest.approx(2.0)
    assert summarize(1, [0.5]).p99_ms == 500.0
    with pytest.raises(DltkError, match="nothing was timed"):
        summarize(1, [])


@pytest.mark.parametrize(
    ("text", "batches"),
    [
        ("1-128", (1, 2, 4, 8, 16, 32, 64, 128)),
        ("8,1,8,32", (1, 8, 32)),
        ("3-20", (4, 8, 16)),
    ],
)
def test_parse_batches(text: str, batches: tuple[int, ...]) -> None:
    assert parse_batches(text) == batches


@pytest.mark.parametrize("text", ["", "a,b", "0,1", "1-x", "1,100000"])
def test_parse_batches_rejects(text: str) -> None:
    with pytest.raises(DltkError, match="batch sizes"):
        parse_batches(text)
