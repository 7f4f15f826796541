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


def test_command_is_exactly_perf_analyzers_argv(tmp_path: Path) -> None:
    """Rule: time-window measurement and the verbose CSV (server-side latency columns) are
    always asked for; options come in this order, shapes sorted by input name."""
    cfg = PerfConfig(
        model="m",
        url="127.0.0.1:8001",
        protocol="grpc",
        shapes={"b": (2,), "a": (1, 3)},
        stability_percentage=12.5,
        async_mode=True,
    )
    assert build_command("pa", cfg, tmp_path / "x.csv") == [
        *("pa", "-m", "m", "-u", "127.0.0.1:8001", "-i", "grpc", "-b", "1"),
        *("--concurrency-range", "1:1:1", "--measurement-mode", "time_windows"),
        *("-p", "1000", "--max-trials", "5", "-s", "12.5", "-f", str(tmp_path / "x.csv")),
        *("--verbose-csv", "--shape", "a:1,3", "--shape", "b:2", "--async"),
    ]


def test_stability_percentage_must_be_positive(tmp_path: Path) -> None:
    """Rule: any stability percentage > 0 is accepted (0.5 % included); 0 is refused."""
    cmd = check(tmp_path, stability_percentage=0.5)
    assert cmd[cmd.index("-s") + 1] == "0.5"
    with pytest.raises(DltkError) as exc:
        check(tmp_path, stability_percentage=0)
    assert str(exc.value) == "stability percentage must be > 0"


def test_unknown_protocol_lists_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(DltkError) as exc:
        check(tmp_path, protocol="udp")
    assert str(exc.value) == "protocol 'udp' is not one of http, grpc"


def test_timeout_is_budget_and_a_half_plus_5_s_per_level_plus_30_s() -> None:
    """Rule: perf_analyzer is killed after 1.5 x its measuring budget (levels x trials x
    interval), plus 5 s per concurrency level for connecting and warming up, plus 30 s."""
    from dltk.perf import ConcurrencyRange, timeout_for

    cfg = PerfConfig(model="m", url="u", concurrency=ConcurrencyRange(1, 4), max_trials=4)
    assert cfg.time_budget_s == 16.0
    assert timeout_for(cfg) == 16.0 * 1.5 + 5.0 * 4 + 30.0


def test_a_range_with_step_lists_start_then_each_step_up_to_end() -> None:
    """Rule: 'START:END:STEP' and 'N' (one level) both parse; 'N' is N:N:1."""
    assert str(parse_concurrency_range("3")) == "3:3:1"
    assert str(parse_concurrency_range("2:8:3")) == "2:8:3"
    assert parse_concurrency_range("2:8:3").levels == [2, 5, 8]
    with pytest.raises(DltkError) as exc:
        parse_concurrency_range("0:2")
    assert str(exc.value) == (
        "concurrency range '0:2' must satisfy 1 <= START <= END <= 64 and STEP >= 1"
    )


@pytest.mark.parametrize(
    "text, expected",
    [
        ("gpu_0/data:0:1,3,224,224", ("gpu_0/data:0", (1, 3, 224, 224))),
        ("input:28", ("input", (28,))),
    ],
)
def test_shape_splits_at_the_last_colon(text: str, expected: tuple) -> None:
    """Rule: tensor names may contain ':' (ONNX zoo names like gpu_0/data:0), so NAME:DIMS
    splits at the last colon."""
    from dltk.perf import parse_shape

    assert parse_shape(text) == expected


@pytest.mark.parametrize("text", [":1,2", "input:", "input:a", "input:0", "input"])
def test_bad_shape_names_the_option(text: str) -> None:
    """Rule: a shape needs a name and positive integer dims; the error names the option."""
    from dltk.perf import parse_shape

    with pytest.raises(DltkError) as exc:
        parse_shape(text, "--input")
    assert str(exc.value) == (
        f"--input {text!r} is not NAME:D1,D2,... with positive dims, e.g. input:1,28,28"
    )
    with pytest.raises(DltkError, match=r"^shape "):
        parse_shape(text)


@pytest.mark.parametrize(
    "output, line",
    [
        ("starting\nERROR: no model\nbye\n", "ERROR: no model"),
        ("a\nFailed to connect\nb\n", "Failed to connect"),
        ("a\nThread [0] had error: x\nb\n", "Thread [0] had error: x"),
        ("a\nclient error: timeout\nb\n", "client error: timeout"),
        ("Error while loading\nb\n", "Error while loading"),
        ("thread [1] stopped\nb\n", "thread [1] stopped"),
        ("first\nsecond\nlast\n\n", "last"),
        ("  \n", "(no output)"),
    ],
)
def test_last_error_line_prefers_the_last_error_else_the_last_line(output: str, line: str) -> None:
    """Rule: the newest line that starts with error/failed/thread [ (any case) or contains
    'error:' explains a failure; without one, the last non-blank line does."""
    from dltk.perf import last_error_line

    assert last_error_line(output) == line


CSV = "Concurrency,Inferences/Second,p50 latency,p90 latency,p95 latency,p99 latency\n"


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "perf CSV is empty: perf_analyzer measured nothing"),
        (CSV, "perf CSV has a header but no rows: perf_analyzer measured nothing"),
        (
            "Concurrency,Inferences/Second\n1,2\n",
            "perf CSV lacks columns p50 latency, p90 latency, p95 latency, p99 latency; is it a "
            "concurrency run of perf_analyzer -f?",
        ),
        (
            CSV + "1,10,1,2,3,4\n2,x,1,2,3,4\n",
            "perf CSV line 3: column 'Inferences/Second' is not a number: 'x'",
        ),
        # A short row (no p99 cell): one line, not a TypeError from PerfRow (issue 14 defect).
        (CSV + "x,10,1,2,3,4\n", "perf CSV line 2: column 'Concurrency' is not a number: 'x'"),
        (CSV + "1,10,1,2,3\n", "perf CSV line 2: column 'p99 latency' is not a number: ''"),
    ],
)
def test_bad_csv_is_one_exact_line(text: str, message: str) -> None:
    """Rule: a CSV perf_analyzer could not have meant is refused in one line that names the
    line (the header is line 1) and the column."""
    from dltk.perf import parse_csv

    with pytest.raises(DltkError) as exc:
        parse_csv(text)
    assert str(exc.value) == message


def test_csv_cells_are_stripped_and_blank_optional_columns_are_absent() -> None:
    """Rule: spaces around names and values are ignored; an empty latency cell is no value."""
    from dltk.perf import parse_csv

    (row,) = parse_csv(
        CSV.replace(",", ", ").rstrip("\n") + ", Avg latency\n1, 10, 1000, 2, 3, 4,\n"
    )
    assert (row.concurrency, row.throughput, row.p50_ms, row.avg_ms) == (1, 10.0, 1.0, None)


def test_run_perf_returns_its_config_command_csv_and_a_measured_time() -> None:
    """Rule: the result carries the config and argv it ran, the CSV exactly as written and the
    wall time of the run (between 0 and the time the call took)."""
    import subprocess
    import time

    from dltk.perf import run_perf

    text = CSV + "2,10,1000,2000,3000,4000\n"

    def fake_run(cmd: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
        """Test double of subprocess.run: writes the CSV perf_analyzer would."""
        Path(cmd[cmd.index("-f") + 1]).write_text(text)
        return subprocess.CompletedProcess(cmd, 0, "", "")

    cfg = PerfConfig(model="m", url="127.0.0.1:8000")
    before = time.monotonic()
    result = run_perf(Path("pa"), cfg, {}, timeout_s=60, runner=fake_run)
    took = time.monotonic() - before
    assert result.config == cfg and result.command[:3] == ["pa", "-m", "m"]
    assert result.csv == text and result.rows[0].p99_ms == 4.0
    assert 0 <= result.elapsed_s <= took


def test_run_perf_without_a_csv_says_so_with_the_error_line() -> None:
    """Rule: exit 0 without the CSV is one line: no CSV, and perf_analyzer's error line."""
    import subprocess

    from dltk.perf import run_perf

    def fake_run(cmd: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
        """Test double of subprocess.run: succeeds without writing the CSV."""
        return subprocess.CompletedProcess(cmd, 0, "warming up\nerror: no data\n", "")

    with pytest.raises(DltkError) as exc:
        run_perf(Path("pa"), PerfConfig(model="m", url="u"), {}, timeout_s=60, runner=fake_run)
    assert str(exc.value) == "perf_analyzer wrote no CSV: error: no data"
