"""metrics.py rules that mutation testing (issue 14) found unpinned, one test per rule.

`scrape` is exercised against a small HTTP server on 127.0.0.1 started by the test (a test
double for tritonserver's metrics port: it answers fixed Prometheus text and records the paths
it was asked for).
"""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator

import pytest

from dltk.errors import DltkError
from dltk.metrics import ModelMetrics, Sample, metric_models, parse_prometheus, scrape

BODY = 'nv_inference_count{model="mnist",version="1"} 5\n# caf\xe9\n'.encode("latin-1")


class _MetricsDouble(http.server.BaseHTTPRequestHandler):
    """Test double of the metrics port: /metrics answers BODY (with a non-UTF-8 byte)."""

    paths: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self.paths.append(self.path)
        status = 200 if self.path == "/metrics" else 404
        self.send_response(status)
        self.end_headers()
        self.wfile.write(BODY if status == 200 else b"not found")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[tuple[str, list[str]]]:
    """(host:port, paths asked) of a metrics-port test double on 127.0.0.1."""
    _MetricsDouble.paths = []
    httpd = http.server.HTTPServer(("127.0.0.1", 0), _MetricsDouble)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{httpd.server_address[1]}", _MetricsDouble.paths
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=10)


@pytest.mark.parametrize(
    "form", ["{hp}", "http://{hp}", "http://{hp}/", "http://{hp}/metrics", "{hp}/metrics"]
)
def test_scrape_accepts_host_port_or_url_and_asks_for_metrics(
    server: tuple[str, list[str]], form: str
) -> None:
    """Rule: HOST:PORT, a URL, with or without /metrics or a trailing slash: all scrape
    http://HOST:PORT/metrics, and a body that is not UTF-8 is still read (bytes replaced)."""
    hostport, paths = server
    samples = scrape(form.format(hp=hostport), timeout=30)
    assert samples == [Sample("nv_inference_count", {"model": "mnist", "version": "1"}, 5.0)]
    assert paths == ["/metrics"]


def test_scrape_of_a_wrong_path_names_the_reason(server: tuple[str, list[str]]) -> None:
    """Rule: an HTTP error is one line with the URL asked and the server's reason."""
    hostport, _ = server
    with pytest.raises(DltkError) as exc:
        scrape(f"http://{hostport}/other", timeout=30)
    assert str(exc.value) == (
        f"cannot scrape Triton metrics at http://{hostport}/other/metrics: Not Found; is the "
        "metrics port (--metrics-port, default 8002) published and enabled?"
    )


def test_scrape_of_a_closed_port_gives_the_socket_reason() -> None:
    """Rule: an unreachable port says why (connection refused), not just that it failed."""
    from dltk.serve.server import free_port

    port = free_port()
    with pytest.raises(DltkError, match=r"/metrics: \[Errno 111\] Connection refused; is the"):
        scrape(f"127.0.0.1:{port}", timeout=5)


def test_parse_error_names_the_line_number_counting_from_1() -> None:
    """Rule: a bad line is reported by its 1-based line number and its first 80 characters."""
    text = "# comment\n\nok 1\n" + "x" * 100
    with pytest.raises(DltkError) as exc:
        parse_prometheus(text)
    assert str(exc.value) == f"metrics line 4 is not a Prometheus sample: {'x' * 80!r}"


def test_escaped_quotes_in_label_values_are_unescaped() -> None:
    """Rule: a label value's \\" is a quote; a sample without labels has none."""
    (one, two) = parse_prometheus('m{reason="a \\"b\\""} 1\nn 2\n')
    assert one.labels == {"reason": 'a "b"'}
    assert two.labels == {} and two.value == 2.0


def test_metric_models_lists_only_models_of_per_model_counters() -> None:
    """Rule: only Triton's per-model counters name models (a gauge with a model label does not
    add one, nor does a counter without the label)."""
    samples = parse_prometheus(
        'nv_inference_count{model="a"} 1\nnv_gpu_memory{model="b"} 1\nnv_inference_count 3\n'
    )
    assert metric_models(samples) == ["a"]


def test_summary_rounds_derived_values_to_4_decimals() -> None:
    """Rule: the report's derived values are rounded to 4 decimals."""
    summary = ModelMetrics("m", success=3, inferences=10, executions=3, queue_us=1).summary()
    assert summary["avg_batch"] == 3.3333
    assert summary["queue_ms"] == 0.0003
