"""The triton_lb role for real: HAProxy (dltk/haproxy, Debian's package) in front of two real
tritonservers (dltk/triton-cpu, each serving a small python-backend identity model), on docker
networks this test creates; the load balancer is published on free loopback ports.

Checks: inference through the load balancer over HTTP and gRPC, both servers used; the
repository, statistics and shared-memory APIs refused by the load balancer itself (the servers
here run WITHOUT restricted APIs, so a 403 can only come from HAProxy); a second run changes
nothing; a changed setting reloads HAProxy in place (same container, same start); a stopped
server is marked down by the /v2/health/ready check and traffic keeps flowing to the other;
bad input stops the role before anything changes.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import yaml

from dltk.fleet import lb_runtime
from dltk.release import CPU_TRITON

from .support import REPO_ROOT, changed_count, run_playbook

pytestmark = pytest.mark.integration

TRITON_IMAGE = f"dltk/triton-cpu:{CPU_TRITON['tritonserver']}"
# The role's default image (scripts/build-images.sh builds it; make integration runs that first).
LB_IMAGE = yaml.safe_load((REPO_ROOT / "roles/triton_lb/defaults/main.yml").read_text())[
    "triton_lb_image"
]
PLAYBOOK = """\
- name: The load balancer
  hosts: all
  gather_facts: false
  roles:
    - role: dltk.deploy.triton_lb
"""
CONFIG = """\
name: "identity"
backend: "python"
max_batch_size: 8
input [ { name: "INPUT0", data_type: TYPE_FP32, dims: [ 4 ] } ]
output [ { name: "OUTPUT0", data_type: TYPE_FP32, dims: [ 4 ] } ]
instance_group [ { kind: KIND_CPU, count: 1 } ]
"""
MODEL_PY = """\
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def execute(self, requests):
        return [pb_utils.InferenceResponse([pb_utils.Tensor(
            "OUTPUT0", pb_utils.get_input_tensor_by_name(r, "INPUT0").as_numpy())])
            for r in requests]
"""


def docker(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http(url: str, method: str = "GET", body: dict | None = None) -> tuple[int, str]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def infer_http(base: str) -> list[float]:
    body = {"inputs": [{"name": "INPUT0", "shape": [1, 4], "datatype": "FP32",
                        "data": [1.0, 2.0, 3.0, 4.0]}]}  # fmt: skip
    status, text = http(f"{base}/v2/models/identity/infer", "POST", body)
    assert status == 200, text
    return json.loads(text)["outputs"][0]["data"]


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """Two tritonservers on networks of their own, and what the role needs to reach them."""
    for image in (TRITON_IMAGE, LB_IMAGE):
        if shutil.which("docker") is None or docker("image", "inspect", image).returncode != 0:
            pytest.fail(f"needs a docker engine with {image}: `make images`")
    tag = uuid.uuid4().hex[:8]
    repo = tmp_path_factory.mktemp("lbrepo")
    (repo / "identity" / "1").mkdir(parents=True)
    (repo / "identity" / "config.pbtxt").write_text(CONFIG)
    (repo / "identity" / "1" / "model.py").write_text(MODEL_PY)
    repo.chmod(0o755)
    names = [f"dltk-lbtest-{tag}-{i}" for i in (1, 2)]
    servers = []
    for name in names:
        assert docker("network", "create", f"{name}-net").returncode == 0
        run = docker("run", "-d", "--name", name, "--network", f"{name}-net", "--shm-size",
                     "128m", "-v", f"{repo}:/models:ro", TRITON_IMAGE, "tritonserver",
                     "--model-repository=/models")  # fmt: skip
        assert run.returncode == 0, run.stderr
        servers.append({"name": name, "address": name, "http_port": 8000, "grpc_port": 8001,
                        "network": f"{name}-net"})  # fmt: skip
    lb = f"dltk-lbtest-{tag}-lb"
    variables = {
        "triton_lb_servers": servers,
        "triton_lb_container_name": lb,
        "triton_lb_network": f"{lb}-net",
        "triton_lb_http_port": free_port(),
        "triton_lb_grpc_port": free_port(),
        "triton_lb_dir": str(tmp_path_factory.mktemp("lbdir")),
        "triton_lb_check_interval": "1s",
        "triton_lb_ready_timeout": 120,
        "triton_lb_image_build": False,
    }
    yield {"lb": lb, "servers": names, "vars": variables,
           "base": f"http://127.0.0.1:{variables['triton_lb_http_port']}",
           "grpc": f"127.0.0.1:{variables['triton_lb_grpc_port']}"}  # fmt: skip
    for name in [*names, lb]:
        docker("rm", "-f", name)
        docker("network", "rm", f"{name}-net")


def play(tmp_path: Path, variables: dict, *extra: str) -> subprocess.CompletedProcess[str]:
    return run_playbook(tmp_path, PLAYBOOK, variables, *extra)


def container_start(name: str) -> str:
    return docker("inspect", "-f", "{{.Id}} {{.State.StartedAt}}", name).stdout.strip()


def stot(lb: str) -> dict[str, int]:
    return {f"{s.backend}/{s.server}": s.sessions_total for s in lb_runtime.servers(lb)}


def test_role_forwards_inference_refuses_the_rest_and_converges(
    fleet: dict, tmp_path: Path
) -> None:
    first = play(tmp_path, fleet["vars"])
    assert first.returncode == 0, first.stdout[-4000:]
    base, lb = fleet["base"], fleet["lb"]
    # Both servers must be up (the role waits for one): the check runs every second.
    deadline = time.monotonic() + 60
    while {s.status for s in lb_runtime.servers(lb)} != {"UP"} and time.monotonic() < deadline:
        time.sleep(1)
    assert {s.status for s in lb_runtime.servers(lb)} == {"UP"}, lb_runtime.servers(lb)

    before = stot(lb)
    for _ in range(6):
        assert infer_http(base) == [1.0, 2.0, 3.0, 4.0]
    import tritonclient.grpc as grpcclient

    client = grpcclient.InferenceServerClient(fleet["grpc"])
    for _ in range(6):
        inp = grpcclient.InferInput("INPUT0", [1, 4], "FP32")
        inp.set_data_from_numpy(np.arange(4, dtype=np.float32).reshape(1, 4))
        out = client.infer("identity", [inp]).as_numpy("OUTPUT0")
        assert out.tolist() == [[0.0, 1.0, 2.0, 3.0]]
    after = stot(lb)
    for server in fleet["servers"]:
        assert after[f"triton_http/{server}"] > before[f"triton_http/{server}"], (before, after)
        assert after[f"triton_grpc/{server}"] > before[f"triton_grpc/{server}"], (before, after)

    # Open: health, metadata, config. Refused by HAProxy (the servers restrict nothing here).
    assert http(f"{base}/v2/health/ready")[0] == 200
    assert http(f"{base}/v2/models/identity")[0] == 200
    assert http(f"{base}/v2/models/identity/config")[0] == 200
    refused = [("POST", "/v2/repository/index"), ("POST", "/v2/repository/models/identity/load"),
               ("GET", "/v2/models/stats"), ("GET", "/v2/models/identity/stats"),
               ("GET", "/v2/systemsharedmemory/status"), ("GET", "/v2/logging"),
               ("GET", "/v2/models/identity/infer"), ("GET", "/metrics")]  # fmt: skip
    for method, path in refused:
        status, text = http(f"{base}{path}", method, {} if method == "POST" else None)
        assert status == 403, (method, path, status, text)
    with pytest.raises(Exception, match="(?i)permission|403|denied"):
        client.get_model_repository_index()
    with pytest.raises(Exception, match="(?i)permission|403|denied"):
        client.unload_model("identity")
    assert client.is_model_ready("identity")

    second = play(tmp_path, fleet["vars"])
    assert second.returncode == 0, second.stdout[-4000:]
    assert changed_count(second.stdout) == 0, second.stdout[-4000:]

    # --check: converged, nothing to do; a changed setting is reported, nothing is touched.
    started = container_start(lb)
    cfg = Path(fleet["vars"]["triton_lb_dir"]) / "config" / "haproxy.cfg"
    checked = play(tmp_path, fleet["vars"], "--check")
    assert checked.returncode == 0, checked.stdout[-4000:]
    assert changed_count(checked.stdout) == 0, checked.stdout[-4000:]
    checked = play(tmp_path, {**fleet["vars"], "triton_lb_balance": "leastconn"}, "--check")
    assert checked.returncode == 0, checked.stdout[-4000:]
    assert changed_count(checked.stdout) == 1, checked.stdout[-4000:]
    assert "balance roundrobin" in cfg.read_text()
    assert container_start(lb) == started

    # A changed setting: a new haproxy.cfg, reloaded in the running container.
    third = play(tmp_path, {**fleet["vars"], "triton_lb_balance": "leastconn"})
    assert third.returncode == 0, third.stdout[-4000:]
    assert "Reload HAProxy gracefully" in third.stdout
    assert changed_count(third.stdout) == 2  # the file and the reload
    assert "balance leastconn" in cfg.read_text()
    assert container_start(lb) == started
    assert infer_http(base) == [1.0, 2.0, 3.0, 4.0]


def test_a_stopped_server_is_marked_down_and_traffic_flows_to_the_other(fleet: dict) -> None:
    lb, (down, up) = fleet["lb"], fleet["servers"]
    assert docker("stop", "-t", "2", down).returncode == 0
    deadline = time.monotonic() + 30
    state: dict[str, str] = {}
    while time.monotonic() < deadline:
        state = {f"{s.backend}/{s.server}": s.status for s in lb_runtime.servers(lb)}
        if state[f"triton_http/{down}"] == "DOWN" and state[f"triton_grpc/{down}"] == "DOWN":
            break
        time.sleep(0.5)
    assert state[f"triton_http/{down}"] == "DOWN", state
    assert state[f"triton_grpc/{down}"] == "DOWN", state
    before = stot(lb)
    for _ in range(10):
        assert infer_http(fleet["base"]) == [1.0, 2.0, 3.0, 4.0]
    after = stot(lb)
    assert after[f"triton_http/{up}"] - before[f"triton_http/{up}"] == 10, (before, after)
    assert after[f"triton_http/{down}"] == before[f"triton_http/{down}"]


def test_drain_through_the_runtime_socket(fleet: dict) -> None:
    lb, (_, up) = fleet["lb"], fleet["servers"]
    lb_runtime.set_state(lb, up, "drain")
    try:
        states = {f"{s.backend}/{s.server}": s.status for s in lb_runtime.servers(lb)}
        assert states[f"triton_http/{up}"] == "DRAIN", states
    finally:
        lb_runtime.set_state(lb, up, "ready")
    states = {f"{s.backend}/{s.server}": s.status for s in lb_runtime.servers(lb)}
    assert states[f"triton_http/{up}"] == "UP", states


def test_bad_input_stops_before_anything_changes(fleet: dict, tmp_path: Path) -> None:
    started = container_start(fleet["lb"])
    bad = {**fleet["vars"], "triton_lb_servers": [], "triton_lb_bind_address": "localhost"}
    proc = play(tmp_path, bad)
    assert proc.returncode != 0
    assert "triton_lb: no backend server" in proc.stdout, proc.stdout[-3000:]
    assert "triton_lb_bind_address 'localhost' is not an IPv4 address" in proc.stdout
    assert "Nothing was changed" in proc.stdout
    assert changed_count(proc.stdout) == 0
    assert container_start(fleet["lb"]) == started


def test_the_role_builds_its_image_when_absent(fleet: dict, tmp_path: Path) -> None:
    """On a load balancer host without the image (a real one): the role copies its Dockerfile and
    builds it (here from the project's base image; docker's layer cache may reuse the layers)."""
    image = f"dltk/haproxy:test-{uuid.uuid4().hex[:8]}"
    variables = {**fleet["vars"], "triton_lb_image": image, "triton_lb_image_build": True,
                 "triton_lb_base_image": "dltk/debian-base:bookworm"}  # fmt: skip
    try:
        proc = play(tmp_path, variables)
        assert proc.returncode == 0, proc.stdout[-4000:]
        assert docker("image", "inspect", image).returncode == 0
        used = docker("inspect", "-f", "{{.Config.Image}}", fleet["lb"]).stdout.strip()
        assert used == image
        dockerfile = Path(fleet["vars"]["triton_lb_dir"]) / "image" / "Dockerfile"
        assert (
            REPO_ROOT / "roles/triton_lb/files/Dockerfile"
        ).read_text() == dockerfile.read_text()
        assert infer_http(fleet["base"]) == [1.0, 2.0, 3.0, 4.0]
    finally:
        docker("rmi", "-f", image)
