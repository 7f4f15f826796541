"""verify/verifier.py's pure parts: URL handling, model info, shapes, comparisons, report, CLI
options."""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
from pathlib import Path

import numpy as np
import pytest

from dltk.errors import DltkError
from dltk.metrics import ModelMetrics
from dltk.perf import ConcurrencyRange, PerfConfig, PerfResult, PerfRow
from dltk.verify.cli import options_from_args
from dltk.verify.data import load_samples
from dltk.verify.perf import metrics_check, perf_errors, slo_check
from dltk.verify.records import (
    DEFAULT_ATOL,
    FAIL,
    PASS,
    SKIP,
    BadInputProbe,
    Check,
    Slo,
    TensorSpec,
    VerifyOptions,
    accuracy,
    batches,
    check_sample_shape,
    chunk_size,
    compare,
    model_info,
    normalize_url,
    overall_exit_code,
    perf_check,
    perf_shapes,
    synthetic_inputs,
    wrong_shape,
)
from dltk.verify.report import build_report, checks_table, failure_line, write_report

# Shapes of what tritonserver 2.51 answered for the rendered MNIST python-onnxruntime model.
METADATA = {
    "name": "mnist",
    "versions": ["1"],
    "platform": "python",
    "inputs": [{"name": "input", "datatype": "FP32", "shape": [-1, 1, 28, 28]}],
    "outputs": [{"name": "logits", "datatype": "FP32", "shape": [-1, 10]}],
}
CONFIG = {
    "name": "mnist",
    "backend": "python",
    "max_batch_size": 64,
    "instance_group": [{"name": "mnist_0", "kind": "KIND_CPU", "count": 1}],
    "dynamic_batching": {"max_queue_delay_microseconds": 100},
}
SPEC = TensorSpec("input", "FP32", (-1, 1, 28, 28))


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("127.0.0.1:8000", "127.0.0.1:8000"),
        ("http://127.0.0.1:8000/", "127.0.0.1:8000"),
        ("grpc://localhost:8001", "localhost:8001"),
    ],
)
def test_normalize_url(url: str, expected: str) -> None:
    assert normalize_url(url) == expected


@pytest.mark.parametrize("url", ["127.0.0.1", "127.0.0.1:http", ":8000", "host:70000"])
def test_normalize_url_rejects(url: str) -> None:
    with pytest.raises(DltkError, match="HOST:PORT"):
        normalize_url(url)


def test_model_info_summary() -> None:
    info = model_info(METADATA, CONFIG)
    assert info.max_batch_size == 64 and info.backend == "python"
    assert info.inputs == (SPEC,)
    assert info.outputs[0].name == "logits"
    assert info.instance_groups == ("1x KIND_CPU",)
    summary = info.summary()
    assert summary["inputs"][0]["shape"] == (-1, 1, 28, 28)
    assert summary["dynamic_batching"] == {"max_queue_delay_microseconds": 100}


def test_chunk_size_and_batches() -> None:
    info = model_info(METADATA, CONFIG)
    assert chunk_size(info, 200) == 64
    assert chunk_size(info, 10) == 10
    fixed = model_info(
        {**METADATA, "inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 3, 224, 224]}]},
        {**CONFIG, "max_batch_size": 0},
    )
    assert chunk_size(fixed, 64) == 1
    sizes = [len(b) for b in batches(np.zeros((130, 2)), 64)]
    assert sizes == [64, 64, 2]


def test_check_sample_shape() -> None:
    check_sample_shape(SPEC, (64, 1, 28, 28), batched=True)
    check_sample_shape(TensorSpec("x", "FP32", (-1, -1)), (5, 7), batched=True)
    with pytest.raises(DltkError, match=r"samples have shape \[64, 3, 28, 28\]"):
        check_sample_shape(SPEC, (64, 3, 28, 28), batched=True)
    with pytest.raises(DltkError, match="samples have shape"):
        check_sample_shape(SPEC, (64, 784), batched=True)


def test_wrong_shape_changes_a_fixed_dim_or_adds_one() -> None:
    assert wrong_shape((1, 1, 28, 28), SPEC, batched=True) == (1, 2, 28, 28)
    dynamic = TensorSpec("x", "FP32", (-1, -1))
    assert wrong_shape((1, 5), dynamic, batched=True) == (1, 5, 1)
    fixed_batch = TensorSpec("x", "FP32", (1, 10))
    assert wrong_shape((1, 10), fixed_batch, batched=False) == (2, 10)


def test_perf_shapes_only_for_dynamic_dims() -> None:
    assert perf_shapes(SPEC, (64, 1, 28, 28), batched=True) == {}
    dynamic = TensorSpec("tokens", "INT64", (-1, -1))
    assert perf_shapes(dynamic, (8, 128), batched=True) == {"tokens": (128,)}


def test_synthetic_inputs_are_deterministic() -> None:
    a = synthetic_inputs(SPEC, True, np.dtype(np.float32))
    b = synthetic_inputs(SPEC, True, np.dtype(np.float32))
    assert a.shape == (8, 1, 28, 28) and a.dtype == np.float32
    assert np.array_equal(a, b)


def test_compare_reports_max_abs_diff_against_tolerance() -> None:
    ref = np.array([[1.0, 2.0, 0.5], [3.0, 0.0, 1.0]], dtype=np.float32)
    same = compare(ref.copy(), ref, DEFAULT_ATOL)
    assert same.max_abs == 0.0 and same.ok and same.argmax_agreement == 1.0
    off = ref.copy()
    off[1, 0] -= 5e-4
    diff = compare(off, ref, DEFAULT_ATOL)
    assert diff.max_abs == pytest.approx(5e-4, rel=1e-3) and not diff.ok
    flipped = ref[:, [2, 0, 1]].copy()
    assert compare(flipped, ref, 10.0).argmax_agreement == 0.0
    bad_shape = compare(ref[:1], ref, DEFAULT_ATOL)
    assert math.isinf(bad_shape.max_abs) and not bad_shape.ok
    nan = ref.copy()
    nan[0, 0] = np.nan
    assert not compare(nan, ref, DEFAULT_ATOL).ok


def test_accuracy() -> None:
    logits = np.eye(4, dtype=np.float32)
    assert accuracy(logits, np.array([0, 1, 2, 3])) == 1.0
    assert accuracy(logits, np.array([0, 1, 0, 0])) == 0.5
    with pytest.raises(DltkError, match="inconsistent"):
        accuracy(logits, np.array([0, 1]))


def test_exit_code_fails_only_on_fail() -> None:
    assert overall_exit_code([Check("a", PASS, ""), Check("b", SKIP, "")]) == 0
    assert overall_exit_code([Check("a", PASS, ""), Check("b", FAIL, "")]) == 1


def test_bad_input_probe_ok_needs_all_three() -> None:
    good = BadInputProbe((1, 2), True, "400", "unexpected shape", True, True)
    assert good.ok
    assert not BadInputProbe((1, 2), False, "200", "", True, True).ok
    assert not BadInputProbe((1, 2), True, "400", "x", False, True).ok
    assert not BadInputProbe((1, 2), True, "400", "x", True, False).ok


def _perf_result(
    throughputs: list[float], asked: int = 0, retries: tuple[str, ...] = ()
) -> PerfResult:
    rows = [PerfRow(i + 1, t, 1.0, 2.0, 3.0, 4.0) for i, t in enumerate(throughputs)]
    end = asked or max(len(throughputs), 1)
    cfg = PerfConfig(model="mnist", url="127.0.0.1:8000", concurrency=ConcurrencyRange(1, end))
    return PerfResult(
        config=cfg,
        command=["perf_analyzer", "-m", "mnist"],
        rows=rows,
        elapsed_s=2.5,
        retries=retries,
    )


def test_perf_check() -> None:
    ok = perf_check(_perf_result([100.0, 180.0]))
    assert ok.result == PASS and "best 180 infer/s at concurrency 2" in ok.detail
    assert perf_check(_perf_result([100.0, 0.0])).result == FAIL
    assert perf_check(_perf_result([])).result == FAIL


def test_perf_check_fails_a_sweep_with_fewer_levels_than_asked() -> None:
    """`make demo` passed with 1 of 4 levels measured ("1 levels, concurrency 1:4:1")."""
    partial = perf_check(_perf_result([6000.0], asked=4))
    assert partial.result == FAIL
    assert "1 of 4 levels" in partial.detail and "missing concurrency 2, 3, 4" in partial.detail
    assert partial.data["levels_missing"] == [2, 3, 4]


def test_perf_check_says_whether_the_levels_came_from_a_retry() -> None:
    first = perf_check(_perf_result([100.0, 180.0]))
    assert "first run, 1000 ms window" in first.detail and first.data["retried"] is False
    retried = perf_check(_perf_result([100.0, 180.0], retries=("measured 1 of 2 levels",)))
    assert retried.result == PASS and retried.data["retried"] is True
    assert "retried once with a 1000 ms window after the first run measured 1 of 2" in (
        retried.detail
    )


def test_report_is_json_with_checks_perf_and_timestamps(tmp_path: Path) -> None:
    opts = VerifyOptions(url="127.0.0.1:8000", model="mnist", report=tmp_path / "r.json")
    checks = [
        Check("server live", PASS, "triton 2.51.0", {"diff": np.float32(0.5)}),
        Check("accuracy", FAIL, "0.5"),
    ]
    report = build_report(
        opts,
        checks,
        "2026-01-01T00:00:00+00:00",
        {"version": "2.51.0"},
        model_info(METADATA, CONFIG),
        _perf_result([100.0]),
    )
    write_report(tmp_path / "r.json", report)
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["passed"] is False
    assert [c["result"] for c in data["checks"]] == [PASS, FAIL]
    assert data["checks"][0]["data"]["diff"] == 0.5
    assert data["server"]["version"] == "2.51.0"
    assert data["model_config"]["max_batch_size"] == 64
    assert data["perf"]["rows"][0]["throughput"] == 100.0
    assert data["started_at"] <= data["finished_at"]
    assert data["tolerance"]["atol"] == DEFAULT_ATOL


def test_report_names_the_deployment_host_and_the_missing_levels(tmp_path: Path) -> None:
    """The role passes inventory_hostname; before, `host` was the verifier container's id."""
    opts = VerifyOptions(url="tritonserver:8000", model="mnist", host="gpu-01")
    retried = _perf_result([100.0], asked=3, retries=("measured 1 of 3 levels",))
    report = build_report(opts, [], "2026-01-01T00:00:00+00:00", {}, None, retried)
    assert report["host"] == "gpu-01"
    assert report["perf"]["levels_asked"] == [1, 2, 3]
    assert report["perf"]["levels_missing"] == [2, 3]
    assert report["perf"]["retried"] is True
    write_report(tmp_path / "r.json", report, plot=False)
    md = (tmp_path / "r.md").read_text()
    assert "mnist on gpu-01" in md and "Not measured: concurrency 2, 3" in md
    assert "Retried once with a 1000 ms window" in md


def test_checks_table_lists_every_check() -> None:
    table = checks_table([Check("a", PASS, "x"), Check("b", FAIL, "y")])
    assert table.row_count == 2


def test_load_samples(tmp_path: Path) -> None:
    path = tmp_path / "s.npz"
    np.savez(path, inputs=np.zeros((3, 1, 28, 28), np.float32), labels=np.arange(3))
    samples = load_samples(path)
    assert samples.inputs.shape == (3, 1, 28, 28) and list(samples.labels) == [0, 1, 2]
    np.savez(tmp_path / "bad.npz", images=np.zeros(3))
    with pytest.raises(DltkError, match="no 'inputs' array"):
        load_samples(tmp_path / "bad.npz")
    (tmp_path / "junk.npz").write_text("not a zip")
    with pytest.raises(DltkError, match="cannot read samples"):
        load_samples(tmp_path / "junk.npz")


def _args(**over: object) -> argparse.Namespace:
    base = dict(
        url="127.0.0.1:8000",
        grpc_url=None,
        model="mnist",
        onnx=None,
        samples=None,
        perf=False,
        concurrency="1:4",
        batch_size=1,
        perf_protocol="http",
        perf_interval_ms=1000,
        perf_max_trials=5,
        perf_stability=50.0,
        perf_shared_memory="none",
        perf_async=False,
        perf_threads=None,
        metrics_url=None,
        slo_min_throughput=0.0,
        slo_max_p99_ms=0.0,
        slo_max_errors=None,
        report=None,
        timeout=60.0,
        atol=DEFAULT_ATOL,
        min_accuracy=0.9,
        manifest=None,
        reference_dir=None,
        synthetic_batch=None,
        tolerance=None,
        gpus=0,
        host=None,
        api_key_file=None,
    )
    base.update(over)
    return argparse.Namespace(**base)


def test_host_option_reaches_the_options() -> None:
    from dltk.cli import build_parser

    args = build_parser().parse_args(
        ["verify", "--url", "t:8000", "--model", "m", "--host", "gpu-01"]
    )
    assert options_from_args(args).host == "gpu-01"
    plain = build_parser().parse_args(["verify", "--url", "t:8000", "--model", "m"])
    assert options_from_args(plain).host is None


def test_options_from_args() -> None:
    opts = options_from_args(_args(grpc_url="http://127.0.0.1:8001", concurrency="1:3"))
    assert opts.grpc_url == "127.0.0.1:8001"
    assert opts.concurrency.levels == [1, 2, 3]


# Every field's bad value and its one-line error: tests/unit/test_verify_options.py.
def test_a_missing_reference_file_is_named_with_its_flag() -> None:
    with pytest.raises(DltkError, match="--onnx /nonexistent/m.onnx: no such file"):
        options_from_args(_args(onnx="/nonexistent/m.onnx"))


def test_options_carry_slo_metrics_and_client_settings() -> None:
    opts = options_from_args(
        _args(
            perf=True,
            grpc_url="127.0.0.1:8001",
            perf_protocol="grpc",
            perf_shared_memory="system",
            perf_async=True,
            perf_threads=2,
            metrics_url="http://127.0.0.1:8002/",
            slo_min_throughput=500.0,
            slo_max_p99_ms=20.0,
            slo_max_errors=0,
        )
    )
    assert opts.metrics_url == "127.0.0.1:8002"
    assert opts.perf_shared_memory and opts.perf_async and opts.perf_threads == 2
    assert opts.slo == Slo(min_throughput=500.0, max_p99_ms=20.0, max_errors=0)


def _rows() -> list[PerfRow]:
    # concurrency, infer/s, p50, p90, p95, p99
    return [
        PerfRow(1, 1000.0, 1.0, 1.5, 1.8, 2.0),
        PerfRow(2, 1800.0, 1.2, 2.0, 3.0, 6.0),
        PerfRow(4, 2400.0, 2.0, 5.0, 9.0, 15.0),
    ]


def test_slo_without_gates_is_skipped() -> None:
    assert slo_check(Slo(), _rows(), 0).result == SKIP


def test_slo_passes_with_the_best_point_within_the_latency_budget() -> None:
    check = slo_check(Slo(min_throughput=1500, max_p99_ms=10, max_errors=0), _rows(), 0)
    assert check.result == PASS
    assert check.data["best_concurrency"] == 2 and check.data["best_throughput"] == 1800.0
    assert "1800 infer/s at concurrency 2 (p99 6.00 ms <= 10 ms) >= min 1500" in check.detail


@pytest.mark.parametrize(
    ("slo", "errors", "reason"),
    [
        (Slo(min_throughput=2000, max_p99_ms=10), 0, "best throughput 1800 infer/s"),
        (Slo(min_throughput=5000), 0, "< min 5000 infer/s"),
        (Slo(max_p99_ms=1.0), 0, "p99 latency 2.00 ms at concurrency 1 (the lowest measured)"),
        (Slo(max_errors=0), 3, "3 failed requests during perf_analyzer > max 0"),
        (Slo(max_errors=0), None, "needs the metrics port"),
    ],
)
def test_slo_fails_with_a_one_line_reason(slo: Slo, errors: int | None, reason: str) -> None:
    check = slo_check(slo, _rows(), errors)
    assert check.result == FAIL and reason in check.detail
    assert "\n" not in check.detail
    assert failure_line([Check("a", PASS, ""), check]).startswith(f"FAILED slo: {check.detail}")


def test_slo_throughput_gate_needs_a_perf_sweep() -> None:
    check = slo_check(Slo(min_throughput=1.0), None, None)
    assert check.result == FAIL and "need a perf_analyzer sweep" in check.detail


def test_perf_errors_counts_server_failures_and_a_failed_run() -> None:
    assert perf_errors(None, False) is None
    assert perf_errors(None, True) == 1
    failed = ModelMetrics("mnist", success=10, failure=2)
    assert perf_errors(failed, False) == 2 and perf_errors(failed, True) == 3


def test_metrics_check_reports_batching_and_queue_vs_compute() -> None:
    whole = ModelMetrics(
        "mnist",
        success=100,
        inferences=800,
        executions=50,
        queue_us=20_000,
        compute_infer_us=50_000,
    )
    check = metrics_check("mnist", whole, whole, _rows())
    assert check.result == PASS
    assert "avg batch 16.00 (800 inferences / 50 executions)" in check.detail
    assert "queue 0.200 ms vs compute 0.500 ms per request" in check.detail
    assert check.data["perf"]["avg_batch"] == 16.0
    assert metrics_check("mnist", None, None, None).result == SKIP
    assert metrics_check("mnist", None, None, None, "cannot scrape").result == FAIL
    nothing = metrics_check("mnist", ModelMetrics("mnist"), ModelMetrics("mnist"), _rows())
    assert nothing.result == FAIL and "no successful request" in nothing.detail


def test_report_bundle_has_markdown_csv_and_plot(tmp_path: Path) -> None:
    opts = VerifyOptions(
        url="127.0.0.1:8000", model="mnist", slo=Slo(min_throughput=100, max_p99_ms=50)
    )
    checks = [Check("server live", PASS, "ok"), Check("slo", FAIL, "p99 | too high")]
    metrics = {"perf": ModelMetrics("mnist", success=4, inferences=8, executions=2)}
    report = build_report(
        opts, checks, "2026-01-01T00:00:00+00:00", {}, None, _perf_result([100.0, 150.0]), metrics
    )
    written = write_report(tmp_path / "mnist.json", report, perf_csv="Concurrency,x\n1,2\n")
    names = sorted(p.name for p in written)
    md = (tmp_path / "mnist.md").read_text()
    assert "**FAILED**" in md and "p99 \\| too high" in md
    if importlib.util.find_spec("matplotlib") is None:
        print("matplotlib is not installed: checking the report says there is no plot")
        assert names == ["mnist.json", "mnist.md", "mnist.perf.csv"]
        assert "no throughput-vs-latency plot: matplotlib is not installed" in md
    else:
        assert names == ["mnist.json", "mnist.md", "mnist.perf.csv", "mnist.png"]
        assert (tmp_path / "mnist.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert "![throughput vs latency](mnist.png)" in md
    assert "| perf | 4 | 0 | 4.00 |" in md
    data = json.loads((tmp_path / "mnist.json").read_text())
    assert data["slo"]["max_p99_ms"] == 50 and data["metrics"]["perf"]["avg_batch"] == 4.0


def test_report_without_perf_has_no_plot(tmp_path: Path) -> None:
    opts = VerifyOptions(url="127.0.0.1:8000", model="mnist")
    report = build_report(opts, [Check("a", PASS, "")], "t", {}, None, None)
    written = write_report(tmp_path / "r.json", report)
    assert sorted(p.name for p in written) == ["r.json", "r.md"]


def test_report_removes_a_stale_plot_and_csv(tmp_path: Path) -> None:
    opts = VerifyOptions(url="127.0.0.1:8000", model="mnist")
    with_perf = build_report(opts, [Check("a", PASS, "")], "t", {}, None, _perf_result([9.0]))
    (tmp_path / "r.png").write_bytes(b"an earlier run's plot")
    write_report(tmp_path / "r.json", with_perf, perf_csv="x\n")
    assert (tmp_path / "r.perf.csv").exists()
    write_report(tmp_path / "r.json", build_report(opts, [], "t", {}, None, None))
    assert not (tmp_path / "r.png").exists() and not (tmp_path / "r.perf.csv").exists()


def test_default_concurrency_follows_the_gpu_count() -> None:
    assert str(options_from_args(_args(concurrency=None)).concurrency) == "1:4:1"
    assert str(options_from_args(_args(concurrency=None, gpus=8)).concurrency) == "4:32:4"
    assert str(options_from_args(_args(concurrency="1:2", gpus=8)).concurrency) == "1:2:1"
    with pytest.raises(DltkError, match="--gpus"):
        options_from_args(_args(gpus=-1))
