"""`dltk verify --perf` as a user runs it, against the real server; the JSON report's content."""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from dltk.serve.server import BackgroundServer, background_server
from dltk.verify.records import DEFAULT_ATOL
from unit.onnx_builders import two_input_model

from .support import MANIFEST, MODEL, READY_TIMEOUT_S, Artifacts, require_ok, run_dltk

pytestmark = pytest.mark.integration


@dataclass(frozen=True)
class Verified:
    """One `dltk verify` run: its stdout, its JSON report and the report's checks by name."""

    stdout: str
    report: dict[str, Any]
    checks: dict[str, dict[str, Any]]


def run_verify(
    triton: BackgroundServer, report_path: Path, *args: str, returncode: int, model: str = MODEL
) -> Verified:
    """`dltk verify --url <triton> --model MODEL ARGS --report REPORT`, exiting `returncode`."""
    proc = run_dltk(
        "verify", "--url", triton.http_url, "--model", model, *args, "--report", str(report_path)
    )
    assert proc.returncode == returncode, proc.stdout + proc.stderr
    report = json.loads(report_path.read_text())
    return Verified(proc.stdout, report, {c["name"]: c for c in report["checks"]})


def test_verify_with_perf_passes_and_reports(
    triton: BackgroundServer, artifacts: Artifacts, tmp_path: Path
) -> None:
    report_path = tmp_path / "report.json"
    verified = run_verify(
        triton,
        report_path,
        "--grpc-url",
        triton.grpc_url,
        "--onnx",
        str(artifacts.onnx),
        "--samples",
        str(artifacts.samples),
        "--perf",
        "--concurrency",
        "1:2",
        "--batch-size",
        "8",
        "--perf-protocol",
        "grpc",
        "--perf-shared-memory",
        "system",
        "--metrics-url",
        triton.metrics_url,
        "--slo-max-errors",
        "0",
        "--timeout",
        "60",
        returncode=0,
    )
    assert "max |triton - onnxruntime|" in verified.stdout
    assert "all checks passed" in verified.stdout
    report, checks = verified.report, verified.checks
    assert report["passed"] is True
    for name in (
        "server live",
        "server ready",
        "grpc live",
        "model ready",
        "model config",
        "samples",
        "http inference",
        "grpc inference",
        "outputs vs onnxruntime",
        "accuracy",
        "wrong shape rejected",
        "perf_analyzer",
        "metrics",
        "slo",
    ):
        assert checks[name]["result"] == "PASS", checks.get(name)
    diff = checks["outputs vs onnxruntime"]["data"]
    assert 0.0 <= diff["max_abs_diff"] <= DEFAULT_ATOL
    assert diff["atol"] == DEFAULT_ATOL
    acc = checks["accuracy"]["data"]
    _, labels = artifacts.load_samples()
    assert acc["samples"] == len(labels)
    assert 0.9 <= acc["accuracy"] <= 1.0
    assert report["server"]["version"] == "2.51.0"
    assert report["model_config"]["max_batch_size"] == 64
    assert report["model_config"]["backend"] == "python"
    assert report["started_at"] < report["finished_at"]
    perf = report["perf"]
    assert [r["concurrency"] for r in perf["rows"]] == [1, 2]
    assert all(r["throughput"] > 0 and r["p99_ms"] >= r["p50_ms"] > 0 for r in perf["rows"])
    assert perf["batch_size"] == 8 and "-b 8" in perf["command"]
    assert perf["protocol"] == "grpc" and "--shared-memory system" in perf["command"]
    # Triton's own counters agree with what perf_analyzer sent: 8 samples per request.
    counted = report["metrics"]["perf"]
    assert counted["success"] > 0 and counted["failure"] == 0
    assert counted["inferences"] == 8 * counted["success"]
    assert counted["avg_batch"] >= 8.0
    assert checks["slo"]["data"]["errors"] == 0
    plotted = importlib.util.find_spec("matplotlib") is not None
    for suffix in (".md", ".perf.csv", ".png") if plotted else (".md", ".perf.csv"):
        assert report_path.with_suffix(suffix).stat().st_size > 0
    assert "Concurrency" in report_path.with_suffix(".perf.csv").read_text()


def test_verify_takes_the_roles_options_document(
    triton: BackgroundServer, artifacts: Artifacts, tmp_path: Path
) -> None:
    """The options as the triton_verify role passes them: one JSON document, values as Ansible
    gives them (strings from `-e`), concurrency "2" is one level of 2 outstanding requests as in
    perf_analyzer; the quick check of the same document runs no sweep and no SLO gate."""
    document = {
        "url": triton.http_url,
        "grpc_url": triton.grpc_url,
        "metrics_url": triton.metrics_url,
        "model": MODEL,
        "host": "gpu-01",
        "reference_dir": str(artifacts.onnx.parent),
        "manifest": str(MANIFEST),
        "tolerance": {"fp32": {"atol": 1.0e-4, "rtol": 0.0}},
        "min_accuracy": "0.9",
        "perf": "true",
        "concurrency": "2",
        "gpus": "0",
        "batch_size": "8",
        "perf_protocol": "grpc",
        "perf_shared_memory": False,
        "slo_min_throughput": "0",
        "slo_max_p99_ms": "0",
        "slo_max_errors": "0",
        "api_key_file": None,
        "report": str(tmp_path / "full.json"),
        "quick": False,
    }
    full = run_dltk("verify", "--options", json.dumps(document))
    assert full.returncode == 0, full.stdout + full.stderr
    report = json.loads((tmp_path / "full.json").read_text())
    checks = {c["name"]: c for c in report["checks"]}
    assert report["passed"] and report["host"] == "gpu-01"
    assert [r["concurrency"] for r in report["perf"]["rows"]] == [2]
    assert checks["slo"]["result"] == "PASS" and checks["slo"]["data"]["errors"] == 0
    quick_doc = {**document, "quick": True, "report": str(tmp_path / "quick.json")}
    quick = run_dltk("verify", "--options", json.dumps(quick_doc))
    assert quick.returncode == 0, quick.stdout + quick.stderr
    names = [c["name"] for c in json.loads((tmp_path / "quick.json").read_text())["checks"]]
    assert "perf_analyzer" not in names and "http inference" in names
    # The quick check does not load the reference ONNX (as big as the model): the full one compared.
    quick_report = json.loads((tmp_path / "quick.json").read_text())
    quick_checks = {c["name"]: c for c in quick_report["checks"]}
    assert quick_checks["outputs vs onnxruntime"]["result"] == "SKIP"
    assert checks["outputs vs onnxruntime"]["result"] == "PASS"


def test_verify_slo_gate_fails_the_run_with_one_line(
    triton: BackgroundServer, artifacts: Artifacts, tmp_path: Path
) -> None:
    report_path = tmp_path / "slo.json"
    verified = run_verify(
        triton,
        report_path,
        "--perf",
        "--concurrency",
        "1:1",
        "--perf-interval-ms",
        "500",
        "--perf-max-trials",
        "3",
        "--metrics-url",
        triton.metrics_url,
        "--slo-min-throughput",
        "1e12",
        returncode=1,
    )
    last = verified.stdout.strip().splitlines()[-1]
    assert last.startswith("FAILED slo: best throughput ") and "< min 1e+12 infer/s" in last
    assert verified.checks["slo"]["result"] == "FAIL" and verified.report["passed"] is False
    assert "**FAILED**" in report_path.with_suffix(".md").read_text()


def test_verify_with_an_unreachable_metrics_port_fails_that_check(
    triton: BackgroundServer, tmp_path: Path
) -> None:
    from dltk.serve.server import free_port

    unreachable = f"127.0.0.1:{free_port()}"
    verified = run_verify(triton, tmp_path / "m.json", "--metrics-url", unreachable, returncode=1)
    metrics = verified.checks["metrics"]
    assert metrics["result"] == "FAIL" and "cannot scrape Triton metrics" in metrics["detail"]


def zero_weights_model(path: Path) -> None:
    """An ONNX model with mnist's interface whose logits are all 0: wrong on purpose."""
    graph = helper.make_graph(
        [
            helper.make_node("Flatten", ["input"], ["flat"], axis=1),
            helper.make_node("Gemm", ["flat", "W", "B"], ["logits"]),
        ],
        "zeros",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 1, 28, 28])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 10])],
        [
            numpy_helper.from_array(np.zeros((784, 10), np.float32), "W"),
            numpy_helper.from_array(np.zeros(10, np.float32), "B"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)


def test_verify_fails_when_outputs_differ_from_the_reference(
    triton: BackgroundServer, artifacts: Artifacts, tmp_path: Path
) -> None:
    wrong = tmp_path / "zeros.onnx"
    zero_weights_model(wrong)
    verified = run_verify(
        triton,
        tmp_path / "report.json",
        "--onnx",
        str(wrong),
        "--samples",
        str(artifacts.samples),
        returncode=1,
    )
    checks = verified.checks
    assert verified.report["passed"] is False
    assert checks["outputs vs onnxruntime"]["result"] == "FAIL"
    assert checks["outputs vs onnxruntime"]["data"]["max_abs_diff"] > DEFAULT_ATOL
    assert checks["http inference"]["result"] == "PASS"  # the server itself answered
    assert checks["grpc inference"]["result"] == "SKIP"
    assert "FAILED outputs vs onnxruntime: max |triton - onnxruntime|" in verified.stdout


# --- every deployed model: a BLS pipeline, a model with two inputs and two outputs -----------


def test_verify_the_mnist_classifier_pipeline_as_the_role_runs_it(
    triton: BackgroundServer, artifacts: Artifacts, tmp_path: Path
) -> None:
    """uint8 images made from the samples; probabilities vs softmax(onnxruntime), classes vs
    onnxruntime's argmax and the labels; reference files found as the role lays them out."""
    verified = run_verify(
        triton,
        tmp_path / "pipeline.json",
        "--grpc-url",
        triton.grpc_url,
        "--reference-dir",
        str(artifacts.onnx.parent),
        "--manifest",
        str(MANIFEST),
        model="mnist_classifier",
        returncode=0,
    )
    checks = verified.checks
    assert checks["model config"]["data"] == {"kind": "pipeline", "reference_model": MODEL}
    assert "uint8 images behind the model's normalized samples" in checks["samples"]["detail"]
    outputs = checks["outputs vs onnxruntime"]
    assert outputs["result"] == "PASS" and outputs["data"]["served_by"] == MODEL
    assert outputs["data"]["max_abs_diff"] <= DEFAULT_ATOL
    _, labels = artifacts.load_samples()
    classes = checks["classes vs onnxruntime"]
    assert classes["result"] == "PASS"
    assert classes["data"]["http"]["agree"] == classes["data"]["grpc"]["agree"] == len(labels)
    assert checks["accuracy"]["result"] == "PASS" and checks["accuracy"]["data"]["samples"] == 64
    assert checks["wrong shape rejected"]["result"] == "PASS"


def test_verify_the_pipeline_fails_against_a_wrong_reference(
    triton: BackgroundServer, artifacts: Artifacts, tmp_path: Path
) -> None:
    wrong = tmp_path / "zeros.onnx"
    zero_weights_model(wrong)
    verified = run_verify(
        triton,
        tmp_path / "pipeline.json",
        "--onnx",
        str(wrong),
        "--samples",
        str(artifacts.samples),
        model="mnist_classifier",
        returncode=1,
    )
    assert verified.checks["outputs vs onnxruntime"]["result"] == "FAIL"
    assert verified.checks["http inference"]["result"] == "PASS"


@pytest.fixture(scope="module")
def two_inputs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[BackgroundServer, Path]]:
    """The real CPU tritonserver serving a 2-input, 2-output model (python-onnxruntime)."""
    base = tmp_path_factory.mktemp("two-inputs")
    onnx_path = two_input_model(base / "two.onnx")
    repo = base / "repo"
    require_ok(
        run_dltk(
            "repo",
            "add",
            str(onnx_path),
            "--name",
            "two",
            "--repo",
            str(repo),
            "--runtime",
            "python-onnxruntime",
            "--max-batch-size",
            "8",
        )
    )
    with background_server(repo, base / "tritonserver.log", READY_TIMEOUT_S) as server:
        yield server, onnx_path


def test_verify_a_two_input_model_with_inputs_from_its_onnx_signature(
    two_inputs: tuple[BackgroundServer, Path], tmp_path: Path
) -> None:
    """Before: `dltk verify feeds exactly one` input. Now every input is generated from the
    ONNX signature (float32 x, int64 k) and every output is compared with onnxruntime."""
    server, onnx_path = two_inputs
    verified = run_verify(
        server,
        tmp_path / "two.json",
        "--grpc-url",
        server.grpc_url,
        "--onnx",
        str(onnx_path),
        "--synthetic-batch",
        "5",
        model="two",
        returncode=0,
    )
    checks = verified.checks
    assert "inputs x FP32 [-1, 3], k INT64 [-1, 1]" in checks["model config"]["detail"]
    assert checks["samples"]["result"] == "SKIP"
    assert (
        "generated from the ONNX signature of two.onnx: x [5, 3], k [5, 1]"
        in (checks["samples"]["detail"])
    )
    outputs = checks["outputs vs onnxruntime"]
    assert outputs["result"] == "PASS"
    for proto in ("http", "grpc"):
        for name in ("scaled", "total"):
            assert outputs["data"][f"{proto}_{name}_max_abs_diff"] <= DEFAULT_ATOL
    assert checks["wrong shape rejected"]["result"] == "PASS"


def test_verify_a_two_input_model_with_samples_per_input(
    two_inputs: tuple[BackgroundServer, Path], tmp_path: Path
) -> None:
    server, onnx_path = two_inputs
    samples = tmp_path / "two.samples.npz"
    rng = np.random.default_rng(3)
    np.savez(
        samples, x=rng.standard_normal((12, 3)).astype(np.float32), k=rng.integers(-3, 4, (12, 1))
    )
    verified = run_verify(
        server,
        tmp_path / "two.json",
        "--onnx",
        str(onnx_path),
        "--samples",
        str(samples),
        model="two",
        returncode=0,
    )
    assert verified.checks["samples"]["detail"].startswith("12 samples x [12, 3], k [12, 1]")
    assert "2 request(s)" in verified.checks["http inference"]["detail"]  # max_batch_size 8
    assert verified.checks["outputs vs onnxruntime"]["result"] == "PASS"
    # A reference that differs from what is served (x * k * 2) fails the comparison.
    wrong = two_input_model(tmp_path / "wrong.onnx", factor=2.0)
    failed = run_verify(
        server,
        tmp_path / "wrong.json",
        "--onnx",
        str(wrong),
        "--samples",
        str(samples),
        model="two",
        returncode=1,
    )
    outputs = failed.checks["outputs vs onnxruntime"]
    assert outputs["result"] == "FAIL" and "http scaled outside the tolerance" in outputs["detail"]
    assert outputs["data"]["http_total_max_abs_diff"] <= DEFAULT_ATOL
