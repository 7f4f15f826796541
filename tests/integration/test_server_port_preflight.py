"""triton_server's preflight: a port another process holds stops the run before the serving
container is touched (the "port taken" fault drill, docs/reliability.md).

Runs the role's real preflight.yml (ansible-playbook on localhost) against the real docker
engine. The "running tritonserver" is a TEST DOUBLE: a `sleep` container from
dltk/debian-base:bookworm publishing three loopback ports, as the role's container would.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from .support import REPO_ROOT

pytestmark = pytest.mark.integration

IMAGE = "dltk/debian-base:bookworm"
PLAYBOOK = """\
- name: Run triton_server's preflight
  hosts: all
  gather_facts: false
  tasks:
    - name: Check the role's preconditions
      ansible.builtin.include_role:
        name: triton_server
        tasks_from: preflight.yml
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def docker(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=120, check=False
    )


@pytest.fixture
def serving() -> Iterator[tuple[str, list[int]]]:
    """TEST DOUBLE of the running tritonserver: a container publishing 3 loopback ports."""
    if shutil.which("docker") is None or docker("image", "inspect", IMAGE).returncode != 0:
        pytest.fail(f"needs a docker engine with {IMAGE}: `make images` (make integration does it)")
    name = f"dltk-test-portcheck-{uuid.uuid4().hex[:8]}"
    ports = [free_port(), free_port(), free_port()]
    published = [f"-p127.0.0.1:{p}:{8000 + i}" for i, p in enumerate(ports)]
    started = docker("run", "-d", "--name", name, *published, IMAGE, "sleep", "300")
    assert started.returncode == 0, started.stderr
    yield name, ports
    docker("rm", "-f", name, f"{name}-portcheck")


def preflight(tmp_path: Path, name: str, ports: list[int]) -> subprocess.CompletedProcess[str]:
    (tmp_path / "play.yml").write_text(PLAYBOOK)
    (tmp_path / "repo").mkdir(exist_ok=True)
    inventory = tmp_path / "inventory.yml"
    inventory.write_text(
        "all:\n  hosts:\n    localhost:\n      ansible_connection: local\n"
        f"      ansible_python_interpreter: {sys.executable}\n"
    )
    bin_dir = Path(sys.executable).parent
    env = dict(
        os.environ,
        ANSIBLE_CONFIG=str(REPO_ROOT / "ansible.cfg"),
        ANSIBLE_ROLES_PATH=str(REPO_ROOT / "roles"),
        ANSIBLE_NOCOLOR="1",
        PATH=f"{bin_dir}:{os.environ.get('PATH', '')}",
    )
    extra = [
        f"triton_server_container_name={name}",
        f"triton_server_http_port={ports[0]}",
        f"triton_server_grpc_port={ports[1]}",
        f"triton_server_metrics_port={ports[2]}",
        f"triton_server_model_repo_dir={tmp_path / 'repo'}",
    ]
    return subprocess.run(
        [str(bin_dir / "ansible-playbook"), str(tmp_path / "play.yml"), "-i", str(inventory)]
        + [arg for e in extra for arg in ("-e", e)],
        capture_output=True, text=True, timeout=300, env=env, cwd=REPO_ROOT, check=False,
    )  # fmt: skip


def state(name: str) -> str:
    return docker("inspect", "-f", "{{.Id}} {{.State.StartedAt}} {{.State.Running}}", name).stdout


def test_a_port_another_process_holds_fails_before_the_server_is_touched(
    serving: tuple[str, list[int]], tmp_path: Path
) -> None:
    name, ports = serving
    before = state(name)
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen(1)
        taken = holder.getsockname()[1]
        result = preflight(tmp_path, name, [taken, ports[1], ports[2]])
    out = result.stdout + result.stderr
    assert result.returncode != 0, out
    assert f"Cannot publish 127.0.0.1:{taken}:{taken}: another process holds the" in out
    assert "address already in use" in out and "500 Server Error" not in out
    assert f"The running {name} was left untouched" in out
    assert state(name) == before
    assert docker("inspect", f"{name}-portcheck").returncode != 0  # no probe left behind


def test_the_ports_the_running_server_publishes_pass(
    serving: tuple[str, list[int]], tmp_path: Path
) -> None:
    name, ports = serving
    result = preflight(tmp_path, name, ports)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Check the new ports are free" in result.stdout
    assert "skipping: [localhost]" in result.stdout  # nothing to probe: all ports are ours


def test_a_free_new_port_passes_and_leaves_no_probe(
    serving: tuple[str, list[int]], tmp_path: Path
) -> None:
    name, ports = serving
    before = state(name)
    result = preflight(tmp_path, name, [free_port(), ports[1], ports[2]])
    assert result.returncode == 0, result.stdout + result.stderr
    assert state(name) == before
    assert docker("inspect", f"{name}-portcheck").returncode != 0
