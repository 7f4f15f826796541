"""bench/trt.py: trtexec commands and output parsing (TensorRT needs a GPU: test doubles)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from dltk.bench.trt import TrtRun, parse_input_shape, parse_trtexec, run_trt, trtexec_command
from dltk.errors import DltkError

# The performance summary as TensorRT 10 trtexec prints it (values invented, format real).
P = "[11/22/2026-05:00:00] [I] "
TRT10 = (
    f"{P}=== Performance summary ===\n"
    f"{P}Throughput: 2412.37 qps\n"
    f"{P}Latency: min = 0.401 ms, max = 1.92 ms, mean = 0.452 ms, median = 0.441 ms, "
    "percentile(90%) = 0.49 ms, percentile(95%) = 0.51 ms, percentile(99%) = 0.733 ms\n"
    f"{P}Enqueue Time: min = 0.01 ms, max = 0.1 ms, mean = 0.02 ms, median = 0.02 ms\n"
    f"{P}GPU Compute Time: min = 0.2 ms, max = 1.1 ms, mean = 0.251 ms, median = 0.25 ms, "
    "percentile(99%) = 0.4 ms\n"
)
# TensorRT 8.x: no 90/95 percentiles.
TRT8 = (
    "[I] Throughput: 100.5 qps\n"
    "[I] Latency: min = 9.1 ms, max = 12.0 ms, mean = 9.9 ms, median = 9.8 ms, "
    "percentile(99%) = 11.5 ms\n"
)
ENGINE = Path("/engines/mnist.plan")


def test_command_has_shapes_and_bounds() -> None:
    cmd = trtexec_command(TrtRun(ENGINE, "input", (1, 28, 28), 32, duration_s=2, iterations=50))
    assert cmd[0] == "trtexec"
    assert "--loadEngine=/engines/mnist.plan" in cmd
    assert "--shapes=input:32x1x28x28" in cmd
    assert "--duration=2" in cmd and "--iterations=50" in cmd
    with pytest.raises(DltkError, match=">= 1"):
        trtexec_command(TrtRun(ENGINE, "input", (1, 28, 28), 0))


def test_parse_trtexec_10() -> None:
    stats = parse_trtexec(TRT10, 8)
    assert stats.qps == pytest.approx(2412.37)
    assert stats.mean_ms == 0.452 and stats.median_ms == 0.441 and stats.p99_ms == 0.733
    assert stats.gpu_compute_mean_ms == 0.251
    assert stats.throughput == pytest.approx(2412.37 * 8)


def test_parse_trtexec_8() -> None:
    stats = parse_trtexec(TRT8, 1)
    assert stats.p99_ms == 11.5 and stats.gpu_compute_mean_ms is None


def test_parse_trtexec_without_summary_is_one_line() -> None:
    with pytest.raises(DltkError, match="no Throughput, Latency mean, Latency median"):
        parse_trtexec("[E] Error[1]: engine deserialization failed\n", 1)


def test_parse_input_shape() -> None:
    assert parse_input_shape("input:1,28,28") == ("input", (1, 28, 28))
    with pytest.raises(DltkError, match=r"^--input 'input' is not NAME:D1,D2,\.\.\. with"):
        parse_input_shape("input")


def test_run_trt_with_a_test_double_for_trtexec() -> None:
    seen: list[list[str]] = []

    def fake_trtexec(cmd: list[str], **_kw: object) -> subprocess.CompletedProcess[str]:
        seen.append(cmd)
        return subprocess.CompletedProcess(cmd, 0, TRT10, "")

    runs = [TrtRun(ENGINE, "input", (1, 28, 28), b) for b in (1, 64)]
    stats = run_trt(runs, "/usr/src/tensorrt/bin/trtexec", runner=fake_trtexec)
    assert [s.batch for s in stats] == [1, 64]
    assert stats[1].throughput == pytest.approx(2412.37 * 64)
    assert seen[1][0] == "/usr/src/tensorrt/bin/trtexec" and "--shapes=input:64x1x28x28" in seen[1]


def test_run_trt_failure_is_one_line() -> None:
    def failing(cmd: list[str], **_kw: object) -> subprocess.CompletedProcess[str]:
        return subprocess.CompletedProcess(
            cmd, 1, "", "[E] shape input:512x1x28x28 out of profile\n"
        )

    with pytest.raises(DltkError, match=r"trtexec failed at batch 512 \(exit 1\): \[E\] shape"):
        run_trt([TrtRun(ENGINE, "input", (1, 28, 28), 512)], runner=failing)


def test_run_trt_timeout_and_missing_binary() -> None:
    def slow(cmd: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
        raise subprocess.TimeoutExpired(cmd, float(kw["timeout"]))  # type: ignore[arg-type]

    with pytest.raises(DltkError, match="did not finish within 5s"):
        run_trt([TrtRun(ENGINE, "input", (1,), 1)], runner=slow, timeout_s=5)
    with pytest.raises(DltkError, match="cannot run /nonexistent/trtexec"):
        run_trt([TrtRun(ENGINE, "input", (1,), 1)], trtexec="/nonexistent/trtexec")


def test_run_trt_failure_of_a_real_process_without_output() -> None:
    with pytest.raises(DltkError, match=r"^trtexec failed at batch 2 \(exit 1\): \(no output\)$"):
        run_trt([TrtRun(ENGINE, "input", (1,), 2)], trtexec="/bin/false", timeout_s=30)
