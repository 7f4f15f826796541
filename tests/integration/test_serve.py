"""`dltk serve`: the real tritonserver on loopback serves the rendered MNIST model."""

from __future__ import annotations

import json
import signal
import urllib.request
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from dltk.serve.server import BackgroundServer, background_server, is_ready

from .support import MODEL, Artifacts

pytestmark = pytest.mark.integration


def get(url: str) -> tuple[int, bytes]:
    with urllib.request.urlopen(f"http://{url}", timeout=10) as resp:
        return resp.status, resp.read()


def listening_addresses(port: int) -> set[str]:
    """Local addresses with a TCP socket LISTENing on `port` (from /proc/net/tcp{,6})."""
    found: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, port_hex = local.split(":")
            if state == "0A" and int(port_hex, 16) == port:
                found.add(address)
    return found


def test_health_endpoints_and_model_ready(triton: BackgroundServer) -> None:
    assert get(f"{triton.http_url}/v2/health/live")[0] == 200
    assert get(f"{triton.http_url}/v2/health/ready")[0] == 200
    assert get(f"{triton.http_url}/v2/models/{MODEL}/ready")[0] == 200
    status, body = get(f"{triton.http_url}/v2")
    assert status == 200 and json.loads(body)["version"] == "2.51.0"


def test_every_endpoint_binds_loopback_only(triton: BackgroundServer) -> None:
    # 127.0.0.1 as /proc/net/tcp writes it, and as /proc/net/tcp6 writes ::ffff:127.0.0.1
    # (gRPC listens on an IPv6 socket with the v4-mapped loopback address).
    loopback = {"0100007F", "0000000000000000FFFF00000100007F"}
    for port in (triton.opts.http_port, triton.opts.grpc_port, triton.opts.metrics_port):
        found = listening_addresses(port)
        assert found and found <= loopback, f"port {port} listens on {found}"


def test_model_config_comes_from_the_rendered_repo(triton: BackgroundServer) -> None:
    _, body = get(f"{triton.http_url}/v2/models/{MODEL}/config")
    config = json.loads(body)
    assert config["backend"] == "python"
    assert config["max_batch_size"] == 64  # batch.max in model_repo/models.yml
    assert config["input"][0]["dims"] == [1, 28, 28]


def test_json_inference_matches_onnxruntime(triton: BackgroundServer, artifacts: Artifacts) -> None:
    inputs, _ = artifacts.load_samples()
    batch = inputs[:4].astype(np.float32)
    request = {
        "inputs": [
            {
                "name": "input",
                "shape": list(batch.shape),
                "datatype": "FP32",
                "data": batch.flatten().tolist(),
            }
        ]
    }
    req = urllib.request.Request(
        f"http://{triton.http_url}/v2/models/{MODEL}/infer",
        data=json.dumps(request).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=30) as resp:
        answer = json.loads(resp.read())
    logits = np.array(answer["outputs"][0]["data"], dtype=np.float32).reshape(4, 10)
    session = ort.InferenceSession(str(artifacts.onnx), providers=["CPUExecutionProvider"])
    expected = session.run(None, {session.get_inputs()[0].name: batch})[0]
    assert np.abs(logits - expected).max() <= 1e-4


def test_metrics_count_the_inferences(triton: BackgroundServer) -> None:
    status, body = get(f"{triton.metrics_url}/metrics")
    text = body.decode()
    assert status == 200
    assert f'nv_inference_request_success{{model="{MODEL}"' in text


def test_sigterm_stops_the_server_cleanly(rendered_repo: Path, tmp_path: Path) -> None:
    """dltk serve forwards SIGTERM to tritonserver and returns its exit code (0)."""
    with background_server(rendered_repo, tmp_path / "serve.log", ready_timeout=120) as server:
        assert is_ready(server.http_url)
        server.proc.send_signal(signal.SIGTERM)
        code = server.proc.wait(timeout=60)
    assert code == 0, server.log()[-2000:]
    assert not is_ready(server.http_url, timeout=1)
    assert "successfully unloaded" in server.log()
