"""Safe model updates: the real roles, a real tritonserver in explicit model-control mode.

A play (ansible-playbook on localhost: the triton_model_repo role, then triton_server's
load-models.yml with `triton_server_load_via: control_node`) deploys MNIST and its BLS pipeline
to a host directory that `dltk serve --model-control-mode=explicit` serves. While a client
thread keeps sending requests (bounded in count and time), the play deploys new weights (the
new version serves), then a model that validates but cannot load: the play fails with the
server's load error, no request fails, the previous version keeps serving and its files are
back on disk.
"""

from __future__ import annotations

import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import tritonclient.http as httpclient
from onnx import helper, numpy_helper

from dltk.serve.server import BackgroundServer, background_server

from .support import READY_TIMEOUT_S, Artifacts, require_ok, run_dltk, run_playbook

pytestmark = pytest.mark.integration

MAX_REQUESTS = 20000  # the client stops at whichever bound comes first
MAX_SECONDS = 240.0
PAUSE_S = 0.02  # between request pairs: steady traffic without starving the 2 cores
PLAYBOOK = """\
- name: Deploy the model repository and load what changed
  hosts: all
  gather_facts: false
  tasks:
    - name: Render, validate and copy the repository
      ansible.builtin.include_role:
        name: triton_model_repo
    - name: Load the changed models through the repository API
      ansible.builtin.include_role:
        name: triton_server
        tasks_from: load-models.yml
      when:
        - (dltk_model_repo_changed + dltk_model_repo_removed) | length > 0
        - not (first_deployment | default(false) | bool)
"""


def variant(source: Path, path: Path, shift: float) -> Path:
    """The same network with its last bias shifted: other answers, same interface."""
    model = onnx.load(str(source))
    last = model.graph.initializer[-1]
    last.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(last) + shift, last.name))
    onnx.save(model, str(path))
    return path


def broken(source: Path, path: Path) -> Path:
    """Passes `dltk validate` (same interface) but onnxruntime cannot load it: an unknown op."""
    model = onnx.load(str(source))
    output = model.graph.output[0].name
    model.graph.node[-1].output[0] = f"{output}_before"
    model.graph.node.append(
        helper.make_node("NoSuchOp", [f"{output}_before"], [output], domain="dltk.test")
    )
    model.opset_import.append(helper.make_opsetid("dltk.test", 1))
    onnx.save(model, str(path))
    return path


@dataclass
class Deployment:
    base: Path
    host_repo: Path
    models: Path
    port: int = 0
    plays: list[str] = field(default_factory=list)

    def manifest(self, onnx_name: str) -> Path:
        path = self.base / "models.yml"
        path.write_text(
            "models:\n"
            f"  - {{name: mnist, onnx: models/{onnx_name}, batch: {{max: 16}}, "
            "runtimes: [python-onnxruntime], dynamic_batching: {}}\n"
            "pipelines:\n"
            "  - {name: mnist_classifier, model: mnist, mean: 0.1307, std: 0.3081}\n"
        )
        return path

    def play(self, onnx_name: str, *extra: str) -> subprocess.CompletedProcess[str]:
        variables = {
            "dltk_manifest": str(self.manifest(onnx_name)),
            "dltk_model_repo_dir": str(self.host_repo),
            "triton_model_repo_stage_dir": str(self.base / "stage"),
            "triton_model_repo_runtimes": ["python-onnxruntime"],
            "triton_model_repo_instance_kind": "cpu",
            "dltk_command": str(Path(sys.executable).parent / "dltk"),
            "triton_server_load_via": "control_node",
            "triton_server_http_port": self.port,
            # `dltk serve` here restricts no API, so the loads carry no key (molecule default
            # tests the restricted server and its key).
            "triton_server_restricted_apis": [],
        }
        proc = run_playbook(self.base, PLAYBOOK, variables, *extra)
        self.plays.append(proc.stdout + proc.stderr)
        return proc


class Client(threading.Thread):
    """Sends MNIST and pipeline requests until stopped; bounded in count and time."""

    def __init__(self, url: str, images: np.ndarray) -> None:
        super().__init__(daemon=True)
        self.url, self.images = url, images
        self.stop = threading.Event()
        self.sent = 0
        self.failures: list[str] = []
        self.last: np.ndarray | None = None

    def run(self) -> None:
        client = httpclient.InferenceServerClient(self.url, network_timeout=60)
        started = time.monotonic()
        pixels = np.clip(np.rint((self.images * 0.3081 + 0.1307) * 255), 0, 255).astype(np.uint8)
        try:
            while (
                not self.stop.is_set()
                and self.sent < MAX_REQUESTS
                and time.monotonic() - started < MAX_SECONDS
            ):
                try:
                    tensor = httpclient.InferInput("input", list(self.images.shape), "FP32")
                    tensor.set_data_from_numpy(self.images)
                    self.last = client.infer("mnist", [tensor]).as_numpy("logits")
                    image = httpclient.InferInput("image", list(pixels.shape), "UINT8")
                    image.set_data_from_numpy(pixels)
                    client.infer("mnist_classifier", [image]).as_numpy("class")
                except Exception as exc:  # any failed request is a test failure
                    self.failures.append(str(exc).splitlines()[0])
                self.sent += 2
                self.stop.wait(PAUSE_S)
        finally:
            client.close()


@pytest.fixture(scope="module")
def deployment(
    artifacts: Artifacts, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Deployment, BackgroundServer]]:
    base = tmp_path_factory.mktemp("safe-update")
    models = base / "models"
    models.mkdir()
    (models / "v1.onnx").write_bytes(artifacts.onnx.read_bytes())
    variant(artifacts.onnx, models / "v2.onnx", shift=3.0)
    broken(artifacts.onnx, models / "broken.onnx")
    deploy = Deployment(base, base / "host" / "model_repo", models)
    # The first deployment writes the repository (there is no server to load into yet)...
    first = deploy.play("v1.onnx", "-e", "first_deployment=true")
    assert first.returncode == 0, first.stdout[-3000:]
    log = base / "tritonserver.log"
    extra = ["--model-control-mode=explicit"]
    with background_server(deploy.host_repo, log, READY_TIMEOUT_S, extra_serve_args=extra) as srv:
        # ...which then loads every model, as tritonserver --load-model=* does in the container.
        url = srv.http_url
        require_ok(run_dltk("repo", "load", "--url", url, "--repo", str(deploy.host_repo),
                            "mnist", "mnist_classifier"))  # fmt: skip
        deploy.port = srv.opts.http_port
        yield deploy, srv


def logits(onnx_path: Path, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    return session.run(["logits"], {"input": x})[0]


def test_updates_load_through_the_api_and_a_broken_one_fails_the_play_without_failed_requests(
    deployment: tuple[Deployment, BackgroundServer], artifacts: Artifacts
) -> None:
    deploy, server = deployment
    inputs, _ = artifacts.load_samples()
    x = inputs[:4].astype(np.float32)
    client = Client(server.http_url, x)
    client.start()
    try:
        # A run that changes nothing loads nothing.
        same = deploy.play("v1.onnx")
        assert same.returncode == 0, same.stdout[-3000:]
        assert re.search(r"TASK \[Load the changed models[^\n]*\n(skipping|.*\n)", same.stdout)
        assert re.search(r"localhost\s*: ok=\d+\s+changed=0\s", same.stdout), same.stdout[-2000:]

        # New weights: only mnist changed, it is loaded and serves the new answers.
        update = deploy.play("v2.onnx")
        assert update.returncode == 0, update.stdout[-3000:]
        assert "loaded mnist; unloaded none" in update.stdout
        wait_for(
            lambda: (
                client.last is not None and close(client.last, logits(deploy.models / "v2.onnx", x))
            )
        )

        sent_before = client.sent
        bad = deploy.play("broken.onnx")
        during = client.sent - sent_before
    finally:
        client.stop.set()
        client.join(timeout=60)

    output = bad.stdout + bad.stderr
    assert bad.returncode != 0
    assert "model 'mnist' failed to load (the previous version keeps serving)" in output
    assert "dltk.test:NoSuchOp(-1) is not a registered function/op" in output  # server's error
    print(f"\n{client.sent} requests ({during} during the broken deployment), "
          f"{len(client.failures)} failed")  # fmt: skip
    assert client.failures == []
    assert during > 0
    # The previous version still answers, and its files are back on disk.
    http = httpclient.InferenceServerClient(server.http_url)
    tensor = httpclient.InferInput("input", list(x.shape), "FP32")
    tensor.set_data_from_numpy(x)
    assert close(
        http.infer("mnist", [tensor]).as_numpy("logits"), logits(deploy.models / "v2.onnx", x)
    )
    http.close()
    served = deploy.host_repo / "mnist" / "1" / "model.onnx"
    assert served.read_bytes() == (deploy.models / "v2.onnx").read_bytes()
    assert "restored mnist from" in output


def test_the_broken_update_fails_again_on_the_next_run(
    deployment: tuple[Deployment, BackgroundServer],
) -> None:
    deploy, _ = deployment
    again = deploy.play("broken.onnx")
    assert again.returncode != 0
    assert "model 'mnist' failed to load" in again.stdout + again.stderr


def close(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and float(np.abs(a - b).max()) <= 1e-4


def wait_for(condition: object, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return
        time.sleep(0.2)
    raise AssertionError("condition not met in time")
