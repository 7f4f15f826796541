"""verify.py's pure parts: URL handling, model info, shapes, comparisons, report, CLI options."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
import pytest

from dltk.errors import DltkError
from dltk.perf import ConcurrencyRange, PerfConfig, PerfResult, PerfRow
from dltk.verify import options_from_args
from dltk.verify_data import load_samples
from dltk.verify_records import (
    DEFAULT_ATOL,
    FAIL,
    PASS,
    SKIP,
    BadInputProbe,
    Check,
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
from dltk.verify_report import build_report, checks_table, write_report

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


def _perf_result(throughputs: list[float]) -> PerfResult:
    rows = [PerfRow(i + 1, t, 1.0, 2.0, 3.0, 4.0) for i, t in enumerate(throughputs)]
    cfg = PerfConfig(model="mnist", url="127.0.0.1:8000", concurrency=ConcurrencyRange(1, 2))
    return PerfResult(
        config=cfg, command=["perf_analyzer", "-m", "mnist"], rows=rows, elapsed_s=2.5
    )


def test_perf_check() -> None:
    ok = perf_check(_perf_result([100.0, 180.0]))
    assert ok.result == PASS and "best 180 infer/s at concurrency 2" in ok.detail
    assert perf_check(_perf_result([100.0, 0.0])).result == FAIL
    assert perf_check(_perf_result([])).result == FAIL


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
        report=None,
        timeout=60.0,
        atol=DEFAULT_ATOL,
        min_accuracy=0.9,
    )
    base.update(over)
    return argparse.Namespace(**base)


def test_options_from_args() -> None:
    opts = options_from_args(_args(grpc_url="http://127.0.0.1:8001", concurrency="1:3"))
    assert opts.grpc_url == "127.0.0.1:8001"
    assert opts.concurrency.levels == [1, 2, 3]


@pytest.mark.parametrize(
    ("over", "message"),
    [
        ({"onnx": "/nonexistent/m.onnx"}, "--onnx /nonexistent/m.onnx: no such file"),
        ({"timeout": 0}, "--timeout"),
        ({"min_accuracy": 1.5}, "--min-accuracy"),
        ({"batch_size": 0}, "--batch-size"),
        ({"concurrency": "1:100"}, "concurrency range"),
        ({"url": "nowhere"}, "HOST:PORT"),
        ({"perf_protocol": "grpc"}, "--perf-protocol grpc needs --grpc-url"),
    ],
)
def test_options_reject_bad_input(over: dict, message: str) -> None:
    with pytest.raises(DltkError, match=message):
        options_from_args(_args(**over))
