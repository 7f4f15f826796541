"""triton_verify's derived values (plugins/filter/triton_verify_plan.py): the models to verify, the
verifier's options document and each model's run (full verification or quick check)."""

from __future__ import annotations

import pytest
from role_plugins import load_role_plugin

plan = load_role_plugin("plugins/filter/triton_verify_plan.py")

VARS = {
    "server": "tritonserver",
    "host": "gpu-01",
    "metrics": "yes",
    "use_key": True,
    "tolerance": {"fp16": {"atol": 0.01}},
    "min_accuracy": "0.9",
    "perf": "false",
    "concurrency": "1:4",
    "gpus": 2,
    "batch_size": 8,
    "perf_protocol": "grpc",
    "shared_memory": False,
    "slo_min_throughput": 0,
    "slo_max_p99_ms": 0,
    "slo_max_errors": -1,
}


@pytest.mark.parametrize(
    ("given", "asked"),
    [("mnist, resnet18,", ["mnist", "resnet18"]), (["a", "b"], ["a", "b"]), ("", []), (None, [])],
)
def test_the_models_asked_for_as_a_list_or_an_e_string(given, asked) -> None:
    assert plan.triton_verify_models_asked(given) == asked


def test_the_models_asked_for_then_the_loaded_ones_then_the_repositorys_directories() -> None:
    repo = [{"path": "/repo/mnist_classifier"}, {"path": "/repo/mnist"}]
    assert plan.triton_verify_models(["x"], ["mnist"], repo) == ["x"]
    assert plan.triton_verify_models([], ["mnist"], repo) == ["mnist"]
    assert plan.triton_verify_models([], [], repo) == [], "tritonserver said: nothing loaded"
    assert plan.triton_verify_models([], None, repo) == ["mnist", "mnist_classifier"]


def test_the_options_document_takes_values_as_given() -> None:
    doc = plan.triton_verify_options(VARS)
    assert doc["url"] == "tritonserver:8000" and doc["grpc_url"] == "tritonserver:8001"
    assert doc["metrics_url"] == "tritonserver:8002"
    assert doc["api_key_file"] == "/run/secrets/triton-api-key"
    assert doc["perf"] == "false" and doc["min_accuracy"] == "0.9", "dltk converts and checks"
    assert doc["perf_shared_memory"] is False and doc["concurrency"] == "1:4"
    off = plan.triton_verify_options({**VARS, "metrics": "false", "use_key": False})
    assert off["metrics_url"] is None and off["api_key_file"] is None


def test_a_full_run_and_a_quick_check_are_named_apart() -> None:
    options = plan.triton_verify_options(VARS)
    full = plan.triton_verify_run(options, "mnist", True)
    assert full["report_name"] == "mnist.json"
    assert full["options"] == {
        **options,
        "model": "mnist",
        "report": "/reports/mnist.json",
        "quick": False,
    }
    quick = plan.triton_verify_run(options, "mnist", "False")
    assert quick["report_name"] == "mnist.quick.json" and quick["options"]["quick"] is True


def test_a_full_verification_runs_one_container_per_model_the_quick_check_one_for_all() -> None:
    options = plan.triton_verify_options(VARS)
    full = plan.triton_verify_batches(options, ["mnist", "resnet"], "true")
    assert [b["models"] for b in full] == [["mnist"], ["resnet"]]
    assert full[1]["documents"] == [plan.triton_verify_run(options, "resnet", True)["options"]]
    assert full[1]["reports"] == ["resnet.json"]
    quick = plan.triton_verify_batches(options, ["mnist", "resnet"], False)
    assert len(quick) == 1 and quick[0]["models"] == ["mnist", "resnet"]
    assert quick[0]["documents"] == [
        plan.triton_verify_run(options, m, False)["options"] for m in ("mnist", "resnet")
    ]
    assert quick[0]["reports"] == ["mnist.quick.json", "resnet.quick.json"]
    assert plan.triton_verify_batches(options, [], False) == []
