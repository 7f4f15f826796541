"""perf.py: perf_analyzer command line, CSV parsing and the runner's error handling.

The CSV fixtures in tests/unit/data/ were captured once from real runs of the tritonclient
2.51.0 perf_analyzer against the nvidia-pytriton tritonserver 2.51.0 on this CPU machine,
serving an MNIST-shaped python-onnxruntime model (input [N,1,28,28] FP32, output [N,10]):
  perf_http_b8_c1-3.csv:             -i http -b 8 --concurrency-range 1:3:1 -p 1000 -r 5 -f
  perf_grpc_shm_verbose_b4_c1-2.csv: -i grpc -b 4 --concurrency-range 1:2:1 -p 1000 -r 5
                                     --shared-memory system --verbose-csv -f
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from dltk.errors import DltkError
from dltk.perf import (
    ConcurrencyRange,
    PerfConfig,
    PerfRow,
    best_row,
    build_command,
    last_error_line,
    longer_window,
    parse_concurrency_range,
    parse_csv,
    parse_shape,
    run_perf,
    run_sweep,
    timeout_for,
)

DATA = Path(__file__).parent / "data"
HTTP_CSV = DATA / "perf_http_b8_c1-3.csv"
GRPC_CSV = DATA / "perf_grpc_shm_verbose_b4_c1-2.csv"


def test_parse_real_http_csv_converts_microseconds_to_ms() -> None:
    rows = parse_csv(HTTP_CSV.read_text())
    assert [r.concurrency for r in rows] == [1, 2, 3]
    first = rows[0]
    assert first.throughput == pytest.approx(11937.6)
    assert (first.p50_ms, first.p90_ms, first.p95_ms, first.p99_ms) == pytest.approx(
        (0.636, 0.769, 0.823, 1.070)
    )
    assert first.server_queue_ms == pytest.approx(0.202)
    assert first.server_compute_infer_ms == pytest.approx(0.185)
    assert first.client_send_ms == pytest.approx(0.047)
    assert first.avg_ms is None  # only --verbose-csv has "Avg latency"


def test_parse_real_verbose_grpc_csv_has_avg_latency() -> None:
    rows = parse_csv(GRPC_CSV.read_text())
    assert [(r.concurrency, r.throughput) for r in rows] == [(1, 6125.96), (2, 9809.84)]
    assert rows[1].avg_ms == pytest.approx(0.811)
    assert rows[1].p99_ms == pytest.approx(1.416)


def test_parse_csv_sorts_by_concurrency() -> None:
    """perf_analyzer sorts its CSV by throughput (seen: 1, 2, 4, 3 with a saturated CPU)."""
    header, *rows = HTTP_CSV.read_text().strip().splitlines()
    shuffled = "\n".join([header, rows[2], rows[0], rows[1]])
    assert [r.concurrency for r in parse_csv(shuffled)] == [1, 2, 3]


def test_parse_csv_stops_at_a_following_section() -> None:
    text = HTTP_CSV.read_text().rstrip("\n") + "\n\nGPU metrics,foo\n1,2\n"
    assert len(parse_csv(text)) == 3


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("Concurrency,Inferences/Second\n1,5\n", "lacks columns p50 latency"),
        (HTTP_CSV.read_text().splitlines()[0] + "\n", "no rows"),
        (HTTP_CSV.read_text().replace("11937.6", "fast"), "not a number"),
    ],
)
def test_parse_csv_rejects_bad_input(text: str, message: str) -> None:
    with pytest.raises(DltkError, match=message):
        parse_csv(text)


@pytest.mark.parametrize(
    ("text", "levels"),
    [("1:4", [1, 2, 3, 4]), ("2", [2]), ("1:9:4", [1, 5, 9]), ("3:3", [3])],
)
def test_concurrency_range(text: str, levels: list[int]) -> None:
    assert parse_concurrency_range(text).levels == levels


@pytest.mark.parametrize("text", ["0:4", "4:1", "1:65", "1:4:0", "a:b", "1:2:3:4", "1:32"])
def test_concurrency_range_is_bounded(text: str) -> None:
    with pytest.raises(DltkError, match="concurrency range"):
        parse_concurrency_range(text)


def test_parse_shape() -> None:
    assert parse_shape("input:1,28,28") == ("input", (1, 28, 28))
    with pytest.raises(DltkError, match="NAME:D1"):
        parse_shape("input")
    with pytest.raises(DltkError, match="NAME:D1"):
        parse_shape("input:1,0")


def test_build_command_has_every_bound_and_option(tmp_path: Path) -> None:
    cfg = PerfConfig(
        model="mnist",
        url="127.0.0.1:8001",
        protocol="grpc",
        concurrency=ConcurrencyRange(1, 4, 1),
        batch_size=16,
        shapes={"input": (1, 28, 28)},
        measurement_interval_ms=500,
        max_trials=4,
        stability_percentage=25,
        shared_memory=True,
        async_mode=True,
        max_threads=2,
    )
    cmd = build_command("/bin/perf_analyzer", cfg, tmp_path / "out.csv")
    text = " ".join(cmd)
    assert cmd[0] == "/bin/perf_analyzer"
    for part in (
        "-m mnist",
        "-u 127.0.0.1:8001",
        "-i grpc",
        "-b 16",
        "--concurrency-range 1:4:1",
        "-p 500",
        "--max-trials 4",
        "-s 25",
        f"-f {tmp_path / 'out.csv'}",
        "--shape input:1,28,28",
        "--shared-memory system",
        "--async",
        "--max-threads 2",
    ):
        assert part in text


def test_build_command_omits_optional_parts(tmp_path: Path) -> None:
    cmd = build_command("pa", PerfConfig(model="m", url="127.0.0.1:8000"), tmp_path / "x.csv")
    assert "--shape" not in cmd and "--shared-memory" not in cmd
    assert "--async" not in cmd and "--max-threads" not in cmd
    assert cmd[cmd.index("-i") + 1] == "http"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"protocol": "udp"}, "protocol"),
        ({"batch_size": 0}, "batch size"),
        ({"measurement_interval_ms": 10}, "measurement interval"),
        ({"max_trials": 100}, "max trials"),
        ({"stability_percentage": 0}, "stability"),
        ({"max_threads": 0}, "client threads"),
    ],
)
def test_config_is_checked(change: dict, message: str, tmp_path: Path) -> None:
    cfg = PerfConfig(model="m", url="127.0.0.1:8000", **change)
    with pytest.raises(DltkError, match=message):
        build_command("pa", cfg, tmp_path / "x.csv")


def test_time_budget_and_timeout_grow_with_levels_and_trials() -> None:
    small = PerfConfig(model="m", url="u", concurrency=ConcurrencyRange(1, 1))
    big = PerfConfig(model="m", url="u", concurrency=ConcurrencyRange(1, 4), max_trials=10)
    assert small.time_budget_s == pytest.approx(5.0)  # 1 level x 5 trials x 1 s
    assert big.time_budget_s == pytest.approx(40.0)
    assert timeout_for(small) > small.time_budget_s
    assert timeout_for(big) > timeout_for(small)


def test_last_error_line_picks_the_error() -> None:
    out = "*** Measurement Settings ***\nerror: failed to get model metadata: unknown 'x'\n\n"
    assert last_error_line(out) == "error: failed to get model metadata: unknown 'x'"
    assert last_error_line("") == "(no output)"


# Test doubles standing in for subprocess.run: they write what perf_analyzer would.


def fake_runner_writing(csv_text: str, returncode: int = 0, stderr: str = ""):
    def fake_run(cmd: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
        Path(cmd[cmd.index("-f") + 1]).write_text(csv_text)
        return subprocess.CompletedProcess(cmd, returncode, "", stderr)

    return fake_run


def fake_runner_timing_out(cmd: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    raise subprocess.TimeoutExpired(cmd, float(kwargs["timeout"]))  # type: ignore[arg-type]


def test_run_perf_parses_the_csv_it_asked_for() -> None:
    cfg = PerfConfig(model="mnist", url="127.0.0.1:8000", concurrency=ConcurrencyRange(1, 3))
    result = run_perf(Path("pa"), cfg, {}, runner=fake_runner_writing(HTTP_CSV.read_text()))
    assert len(result.rows) == 3 and result.command[0] == "pa"


def test_run_perf_reports_failure_in_one_line() -> None:
    cfg = PerfConfig(model="nope", url="127.0.0.1:8000")
    runner = fake_runner_writing("", 2, "Failed to obtain stable measurement.\n")
    with pytest.raises(DltkError, match=r"exit 2.*stable measurement.*stability percentage"):
        run_perf(Path("pa"), cfg, {}, runner=runner)


def test_run_perf_timeout_is_an_error() -> None:
    cfg = PerfConfig(model="m", url="127.0.0.1:8000")
    with pytest.raises(DltkError, match="did not finish within 3s"):
        run_perf(Path("pa"), cfg, {}, timeout_s=3, runner=fake_runner_timing_out)


def test_run_perf_missing_binary_is_an_error() -> None:
    cfg = PerfConfig(model="m", url="127.0.0.1:8000")
    with pytest.raises(DltkError, match="cannot run perf_analyzer"):
        run_perf(Path("/nonexistent/perf_analyzer"), cfg, {}, timeout_s=5)


def test_run_perf_passes_its_env_and_a_timeout_to_the_runner() -> None:
    cfg = PerfConfig(model="m", url="127.0.0.1:8000", concurrency=ConcurrencyRange(1, 3))
    seen: dict[str, object] = {}
    write_csv = fake_runner_writing(HTTP_CSV.read_text())

    def recording(cmd: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
        seen.update(kwargs)
        return write_csv(cmd, **kwargs)

    run_perf(Path("pa"), cfg, {"LD_LIBRARY_PATH": "/opt/pa/lib"}, timeout_s=7, runner=recording)
    assert seen["env"] == {"LD_LIBRARY_PATH": "/opt/pa/lib"} and seen["timeout"] == 7


def test_run_perf_failure_of_a_real_process_without_output() -> None:
    cfg = PerfConfig(model="m", url="127.0.0.1:8000")
    with pytest.raises(DltkError, match=r"^perf_analyzer failed \(exit 1\): \(no output\)$"):
        run_perf(Path("/bin/false"), cfg, {}, timeout_s=30)


def test_best_row_within_a_latency_budget() -> None:
    rows = [
        PerfRow(1, 100.0, 1.0, 1.0, 1.0, 2.0),
        PerfRow(2, 300.0, 2.0, 2.0, 2.0, 9.0),
        PerfRow(3, 200.0, 3.0, 3.0, 3.0, 5.0),
    ]
    assert best_row(rows).concurrency == 2
    assert best_row(rows, max_p99_ms=5.0).concurrency == 3
    assert best_row(rows, max_p99_ms=1.0) is None
    assert best_row([]) is None


# A sweep that measured fewer levels than asked: retried once with a longer window, never passed.

ONE_LEVEL_CSV = "\n".join(HTTP_CSV.read_text().strip().splitlines()[:2]) + "\n"


def fake_runner_sequence(*outcomes: tuple[str, int, str]):
    """Test double: the n-th perf_analyzer call writes outcomes[n] = (csv, exit code, output)."""
    calls: list[list[str]] = []

    def fake_run(cmd: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
        csv_text, code, output = outcomes[len(calls)]
        calls.append(cmd)
        if csv_text:
            Path(cmd[cmd.index("-f") + 1]).write_text(csv_text)
        return subprocess.CompletedProcess(cmd, code, output, "")

    return fake_run, calls


def _interval(cmd: list[str]) -> int:
    return int(cmd[cmd.index("-p") + 1])


def test_run_sweep_complete_first_run_is_not_retried() -> None:
    cfg = PerfConfig(model="m", url="127.0.0.1:8000", concurrency=ConcurrencyRange(1, 3))
    runner, calls = fake_runner_sequence((HTTP_CSV.read_text(), 0, ""))
    result = run_sweep(Path("pa"), cfg, {}, runner=runner)
    assert len(calls) == 1 and result.retries == () and result.missing_levels == []


def test_run_sweep_with_missing_levels_is_retried_once_with_a_longer_window() -> None:
    """perf_analyzer exited 0 with 1 of 3 levels (as seen on the sandbox): one retry, 3x window."""
    cfg = PerfConfig(model="m", url="127.0.0.1:8000", concurrency=ConcurrencyRange(1, 3))
    runner, calls = fake_runner_sequence((ONE_LEVEL_CSV, 0, ""), (HTTP_CSV.read_text(), 0, ""))
    result = run_sweep(Path("pa"), cfg, {}, runner=runner)
    assert [_interval(c) for c in calls] == [1000, 3000]
    assert result.missing_levels == [] and len(result.rows) == 3
    assert result.config.measurement_interval_ms == 3000
    assert "measured 1 of 3 levels (missing concurrency 2, 3)" in result.retries[0]


def test_run_sweep_still_missing_after_the_retry_keeps_the_gap() -> None:
    cfg = PerfConfig(model="m", url="127.0.0.1:8000", concurrency=ConcurrencyRange(1, 3))
    runner, calls = fake_runner_sequence((ONE_LEVEL_CSV, 0, ""), (ONE_LEVEL_CSV, 0, ""))
    result = run_sweep(Path("pa"), cfg, {}, runner=runner)
    assert len(calls) == 2  # bounded: one retry only
    assert result.missing_levels == [2, 3] and result.retries


def test_run_sweep_retries_an_unstable_measurement_failure() -> None:
    cfg = PerfConfig(model="m", url="127.0.0.1:8000", concurrency=ConcurrencyRange(1, 3))
    unstable = ("", 1, "Failed to obtain stable measurement within 5 measurement windows\n")
    runner, calls = fake_runner_sequence(unstable, (HTTP_CSV.read_text(), 0, ""))
    result = run_sweep(Path("pa"), cfg, {}, runner=runner)
    assert [_interval(c) for c in calls] == [1000, 3000]
    assert "stable measurement" in result.retries[0]


def test_run_sweep_failing_twice_names_both_runs() -> None:
    cfg = PerfConfig(model="m", url="127.0.0.1:8000")
    unstable = ("", 1, "Please use a larger time window.\n")
    runner, calls = fake_runner_sequence(unstable, unstable)
    with pytest.raises(
        DltkError, match=r"first run .*larger time window.*retried once with a 3000"
    ):
        run_sweep(Path("pa"), cfg, {}, runner=runner)
    assert len(calls) == 2


def test_run_sweep_does_not_retry_other_failures() -> None:
    cfg = PerfConfig(model="m", url="127.0.0.1:8000")
    runner, calls = fake_runner_sequence(("", 1, "error: failed to get model metadata\n"))
    with pytest.raises(DltkError, match="model metadata"):
        run_sweep(Path("pa"), cfg, {}, runner=runner)
    assert len(calls) == 1


def test_longer_window_triples_up_to_the_cap() -> None:
    cfg = PerfConfig(model="m", url="u", measurement_interval_ms=40_000)
    assert longer_window(PerfConfig(model="m", url="u")).measurement_interval_ms == 3000
    assert longer_window(cfg).measurement_interval_ms == 60_000
    assert longer_window(PerfConfig(model="m", url="u", measurement_interval_ms=60_000)) is None
