"""metrics.py: Prometheus text parsing and per-model counters (no server)."""

from __future__ import annotations

import pytest

from dltk.errors import DltkError
from dltk.metrics import ModelMetrics, metric_models, model_metrics, parse_prometheus, scrape
from dltk.serve.server import free_port

# Lines as tritonserver 2.51 answers on its metrics port (two versions, failure reasons).
TEXT = """\
# HELP nv_inference_request_success Number of successful inference requests, all batch sizes
# TYPE nv_inference_request_success counter
nv_inference_request_success{model="mnist",version="1"} 7282
nv_inference_request_success{model="mnist",version="2"} 18
nv_inference_request_success{model="other",version="1"} 5
nv_inference_request_failure{model="mnist",reason="BACKEND",version="1"} 2
nv_inference_request_failure{model="mnist",reason="REJECTED",version="1"} 1
nv_inference_count{model="mnist",version="1"} 58361
nv_inference_count{model="mnist",version="2"} 39
nv_inference_exec_count{model="mnist",version="1"} 6172
nv_inference_exec_count{model="mnist",version="2"} 28
nv_inference_request_duration_us{model="mnist",version="1"} 9024642
nv_inference_queue_duration_us{model="mnist",version="1"} 2691135
nv_inference_compute_input_duration_us{model="mnist",version="1"} 144103
nv_inference_compute_infer_duration_us{model="mnist",version="1"} 4292366
nv_inference_compute_output_duration_us{model="mnist",version="1"} 1871204
nv_cpu_utilization 0.95
nv_gpu_utilization{gpu_uuid="GPU-1"} 1e-2 1700000000000
"""


def test_parse_prometheus_reads_labels_values_and_timestamps() -> None:
    samples = parse_prometheus(TEXT)
    assert samples[0].name == "nv_inference_request_success"
    assert samples[0].labels == {"model": "mnist", "version": "1"} and samples[0].value == 7282
    assert samples[-1].labels == {"gpu_uuid": "GPU-1"} and samples[-1].value == 0.01
    assert metric_models(samples) == ["mnist", "other"]


def test_model_metrics_sums_versions_and_reasons() -> None:
    m = model_metrics(parse_prometheus(TEXT), "mnist")
    assert m.success == 7300 and m.failure == 3 and m.requests == 7303
    assert m.inferences == 58400 and m.executions == 6200
    assert m.avg_batch == pytest.approx(58400 / 6200)
    assert m.queue_ms == pytest.approx(2691135 / 7300 / 1000)
    compute = (144103 + 4292366 + 1871204) / 7300 / 1000
    assert m.compute_ms == pytest.approx(compute)
    assert model_metrics(parse_prometheus(TEXT), "absent") == ModelMetrics("absent")


def test_delta_and_summary_of_two_scrapes() -> None:
    before = ModelMetrics("m", success=10, inferences=10, executions=10, queue_us=1000)
    after = ModelMetrics("m", success=110, inferences=810, executions=60, queue_us=21000)
    delta = after.minus(before)
    assert delta.success == 100 and delta.avg_batch == 16.0 and delta.queue_ms == 0.2
    summary = delta.summary()
    assert summary["avg_batch"] == 16.0 and summary["model"] == "m"
    empty = ModelMetrics("m").summary()
    assert empty["avg_batch"] is None and empty["queue_ms"] is None


@pytest.mark.parametrize(
    ("text", "message"),
    [("garbage line here", "not a Prometheus sample"), ('metric{a="b"} abc', "not a number")],
)
def test_parse_prometheus_rejects_bad_lines(text: str, message: str) -> None:
    with pytest.raises(DltkError, match=message):
        parse_prometheus(text)


def test_scrape_of_a_closed_port_is_one_line() -> None:
    port = free_port()
    with pytest.raises(
        DltkError, match=rf"cannot scrape Triton metrics at http://127.0.0.1:{port}/"
    ):
        scrape(f"127.0.0.1:{port}", timeout=2.0)
