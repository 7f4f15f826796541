"""perf_analyzer bounds: one test per rule, on both sides of each limit.

These were survivors of mutation testing (issue 14): moving a bound in perf.py made no test
fail. The bounds keep every perf_analyzer run finite in count and time (see perf.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from dltk.errors import DltkError
from dltk.perf import (
    MAX_CONCURRENCY,
    MAX_LEVELS,
    MAX_TRIALS,
    PerfConfig,
    build_command,
    parse_concurrency_range,
)


def test_concurrency_may_reach_max_concurrency() -> None:
    """Rule: concurrency END may equal MAX_CONCURRENCY (64); 65 is refused."""
    assert MAX_CONCURRENCY == 64
    assert parse_concurrency_range("64").levels == [64]
    assert parse_concurrency_range("4:64:4").levels[-1] == 64
    with pytest.raises(DltkError, match=r"1 <= START <= END <= 64"):
        parse_concurrency_range("65")


def test_concurrency_starts_at_1() -> None:
    """Rule: START >= 1 (0 concurrent requests measure nothing)."""
    assert parse_concurrency_range("1").levels == [1]
    with pytest.raises(DltkError, match=r"1 <= START"):
        parse_concurrency_range("0:2")


def test_a_range_may_have_max_levels_levels_but_not_more() -> None:
    """Rule: at most MAX_LEVELS (16) concurrency levels per run; 16 pass, 17 are refused."""
    assert MAX_LEVELS == 16
    assert len(parse_concurrency_range("1:16").levels) == 16
    with pytest.raises(DltkError, match=r"has 17 levels; at most 16 \(raise STEP\)"):
        parse_concurrency_range("1:17")


def test_step_1_is_the_default_and_the_smallest() -> None:
    """Rule: 'START:END' steps by 1; STEP must be >= 1."""
    assert parse_concurrency_range("2:4").levels == [2, 3, 4]
    assert parse_concurrency_range("2:4:1").levels == [2, 3, 4]
    with pytest.raises(DltkError, match="STEP >= 1"):
        parse_concurrency_range("2:4:0")


def check(tmp_path: Path, **change: object) -> list[str]:
    return build_command("pa", PerfConfig(model="m", url="127.0.0.1:8000", **change), tmp_path)


@pytest.mark.parametrize("trials", [3, MAX_TRIALS])
def test_max_trials_may_be_3_to_max_trials(tmp_path: Path, trials: int) -> None:
    """Rule: perf_analyzer needs 3 windows to judge stability, so max_trials is in 3..20."""
    cmd = check(tmp_path, max_trials=trials)
    assert cmd[cmd.index("--max-trials") + 1] == str(trials)


@pytest.mark.parametrize("trials", [2, MAX_TRIALS + 1])
def test_max_trials_outside_3_to_max_trials_is_refused(tmp_path: Path, trials: int) -> None:
    """Rule: fewer than 3 trials cannot show stability; more than 20 make a run too long."""
    with pytest.raises(DltkError, match=f"max trials {trials} must be between 3 and 20"):
        check(tmp_path, max_trials=trials)


@pytest.mark.parametrize("interval", [100, 60_000])
def test_measurement_interval_may_be_100_ms_to_60_s(tmp_path: Path, interval: int) -> None:
    """Rule: the measurement window is 100 ms .. 60 s, both ends included."""
    cmd = check(tmp_path, measurement_interval_ms=interval)
    assert cmd[cmd.index("-p") + 1] == str(interval)


@pytest.mark.parametrize("interval", [99, 60_001])
def test_measurement_interval_outside_is_refused(tmp_path: Path, interval: int) -> None:
    with pytest.raises(DltkError, match="must be between 100 and 60000"):
        check(tmp_path, measurement_interval_ms=interval)


@pytest.mark.parametrize("threads", [1, 64])
def test_client_threads_may_be_1_to_max_concurrency(tmp_path: Path, threads: int) -> None:
    """Rule: --max-threads is 1..MAX_CONCURRENCY; 0 and 65 are refused."""
    cmd = check(tmp_path, max_threads=threads)
    assert cmd[cmd.index("--max-threads") + 1] == str(threads)
    with pytest.raises(DltkError, match="client threads"):
        check(tmp_path, max_threads=threads - 1 if threads == 1 else threads + 1)


def test_batch_size_1_is_the_smallest(tmp_path: Path) -> None:
    """Rule: batch size >= 1."""
    assert check(tmp_path, batch_size=1)[check(tmp_path).index("-b") + 1] == "1"
    with pytest.raises(DltkError, match="batch size 0 must be >= 1"):
        check(tmp_path, batch_size=0)
