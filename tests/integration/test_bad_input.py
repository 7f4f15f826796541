"""Bad input: a wrong-shape request, a model that does not exist, a broken config.pbtxt."""

from __future__ import annotations

import shutil
import socket
from pathlib import Path

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

from dltk.serve.server import BackgroundServer, free_port, is_ready
from dltk.verify.records import TensorSpec
from dltk.verify.triton_client import Triton, probe_bad_input

from .support import MODEL, Artifacts, run_dltk

pytestmark = pytest.mark.integration
SPEC = TensorSpec("input", "FP32", (-1, 1, 28, 28))


def test_wrong_shape_is_rejected_and_server_keeps_serving(
    triton: BackgroundServer, artifacts: Artifacts
) -> None:
    inputs, labels = artifacts.load_samples()
    good = inputs[:8].astype(np.float32)
    bad = np.zeros((2, 3, 28, 28), np.float32)
    http = httpclient.InferenceServerClient(triton.http_url, network_timeout=30)
    grpc = grpcclient.InferenceServerClient(triton.grpc_url)
    for client, module in ((http, httpclient), (grpc, grpcclient)):
        inp = module.InferInput("input", list(bad.shape), "FP32")
        inp.set_data_from_numpy(bad)
        with pytest.raises(InferenceServerException) as err:
            client.infer(MODEL, [inp])
        message = err.value.message()
        assert "unexpected shape for input 'input'" in message
        assert "got [2,3,28,28]" in message and "Expected [-1,1,28,28]" in message

    assert http.is_server_ready() and http.is_model_ready(MODEL)
    inp = httpclient.InferInput("input", list(good.shape), "FP32")
    inp.set_data_from_numpy(good)
    logits = http.infer(MODEL, [inp]).as_numpy("logits")
    assert logits.shape == (8, 10)
    assert np.isfinite(logits).all()
    http.close()
    grpc.close()


def test_verifier_probe_reports_rejection_and_recovery(
    triton: BackgroundServer, artifacts: Artifacts
) -> None:
    inputs, _ = artifacts.load_samples()
    client = Triton(triton.http_url, None, timeout=30)
    try:
        probe = probe_bad_input(client, MODEL, SPEC, inputs[:1].astype(np.float32), True, 30)
    finally:
        client.close()
    assert probe.sent_shape == (1, 2, 28, 28)
    assert probe.rejected and probe.status == "400"
    assert "[1,2,28,28]" in probe.message
    assert probe.ready_after and probe.good_request_after and probe.ok


def test_verify_unknown_model_is_one_clear_line(triton: BackgroundServer) -> None:
    proc = run_dltk(
        "verify", "--url", triton.http_url, "--model", "no_such_model", "--timeout", "10"
    )
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("dltk verify: error: ")
    expected = "'no_such_model' is not in the server's repository (models: mnist, mnist_classifier)"
    assert expected in lines[0]
    assert "Traceback" not in proc.stdout + proc.stderr


def test_verify_without_server_is_one_clear_line() -> None:
    port = free_port()  # nothing listens there
    proc = run_dltk("verify", "--url", f"127.0.0.1:{port}", "--model", MODEL, "--timeout", "5")
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert f"cannot connect to Triton at 127.0.0.1:{port}" in lines[0]


def port_is_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_serve_refuses_a_broken_config_and_starts_nothing(
    rendered_repo: Path, tmp_path: Path
) -> None:
    repo = tmp_path / "broken"
    shutil.copytree(rendered_repo, repo)
    config = repo / MODEL / "config.pbtxt"
    lines = config.read_text().splitlines()
    lines.insert(1, "bogus_field: 3")  # line 2, column 1: not a ModelConfig field
    config.write_text("\n".join(lines) + "\n")
    ports = [free_port() for _ in range(3)]

    proc = run_dltk(
        "serve",
        str(repo),
        f"--http-port={ports[0]}",
        f"--grpc-port={ports[1]}",
        f"--metrics-port={ports[2]}",
        timeout=60,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    err = proc.stderr.strip()
    assert err.startswith("dltk serve: error: ")
    assert f"{config}:2:1" in err or f"{MODEL}/config.pbtxt:2:1" in err, err
    assert "bogus_field" in err
    assert "Traceback" not in err and len(err.splitlines()) == 1
    # No server started: its banner never printed and nothing listens on the ports.
    assert "tritonserver on http" not in proc.stdout + proc.stderr
    assert not any(port_is_open(p) for p in ports)
    assert not is_ready(f"127.0.0.1:{ports[0]}", timeout=1)


def test_wrong_datatype_is_rejected_and_server_keeps_serving(
    triton: BackgroundServer, artifacts: Artifacts
) -> None:
    inputs, _ = artifacts.load_samples()
    bad = inputs[:2].astype(np.float64)  # the model takes FP32
    http = httpclient.InferenceServerClient(triton.http_url, network_timeout=30)
    grpc = grpcclient.InferenceServerClient(triton.grpc_url)
    for client, module in ((http, httpclient), (grpc, grpcclient)):
        inp = module.InferInput("input", list(bad.shape), "FP64")
        inp.set_data_from_numpy(bad)
        with pytest.raises(InferenceServerException) as err:
            client.infer(MODEL, [inp])
        assert (
            "inference input 'input' data-type is 'FP64', but model 'mnist' expects 'FP32'"
            in err.value.message()
        )

    assert http.is_server_ready() and http.is_model_ready(MODEL)
    good = httpclient.InferInput("input", [2, 1, 28, 28], "FP32")
    good.set_data_from_numpy(inputs[:2].astype(np.float32))
    assert http.infer(MODEL, [good]).as_numpy("logits").shape == (2, 10)
    http.close()
    grpc.close()
