"""Bad role variables: the roles stop in their argument spec or preflight and change nothing.

Each case runs the real ansible-playbook on the control node (connection local), including the
whole role (its argument-spec validation, then its preflight, then the tasks that change
things) with one bad variable. The role must fail with the expected message before any task
that changes something: the play recap says changed=0, and the places the role would write
(its model repository / verifier directory under tmp_path, the docker network and container
names unique to the test) stay as they were. The model repository given to triton_server does
not exist (its preflight ends by asserting it does), its image is one the engine has, and
triton_verify's first change is the verifier directory under tmp_path: a case that slipped
through its check stops there, with another message, before it reaches the docker engine.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from .test_role_extra_vars import ROOT

PLAYBOOK = """\
- name: Run one role as deploy.yml would, on the control node
  hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: Run the role
      ansible.builtin.include_role:
        name: "{{ role_under_test }}"
"""

SERVER_PORTS = (
    "triton_server_http_port, triton_server_grpc_port and triton_server_metrics_port must be three "
    "different ports in 1-65535"
)
CASES: dict[str, tuple[str, dict[str, object], str]] = {
    "wheel index not an http(s) URL": (
        "dltk_image",
        {"dltk_image_wheel_index": "/srv/wheel-index/gpu/simple"},
        "dltk_image_wheel_index must be the http:// or https:// URL of a PEP 503 index that "
        "docker builds on the host reach",
    ),
    "port out of range": (
        "triton_server",
        {"triton_server_http_port": 70000},
        f"{SERVER_PORTS} (got 70000, 8001, 8002).",
    ),
    "two services on one port": (
        "triton_server",
        {"triton_server_grpc_port": 8000},
        f"{SERVER_PORTS} (got 8000, 8000, 8002).",
    ),
    "port not a number": (
        "triton_server",
        {"triton_server_http_port": "http"},
        "argument 'triton_server_http_port' is of type str and we were unable to convert to int",
    ),
    "bind address not an IP": (
        "triton_server",
        {"triton_server_bind_address": "my-server"},
        "triton_server_bind_address and triton_server_metrics_bind_address must be IP addresses "
        "(got my-server, 127.0.0.1).",
    ),
    "GPU count not a number": (
        "triton_server",
        {"triton_server_gpus": "two"},
        "value of triton_server_gpus must be one of: , all, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, "
        "12, 13, 14, 15, 16, got: two",
    ),
    "negative GPU count": (
        "triton_server",
        {"triton_server_gpus": "-1"},
        "value of triton_server_gpus must be one of: , all, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, "
        "12, 13, 14, 15, 16, got: -1",
    ),
    "unknown model control mode": (
        "triton_server",
        {"triton_server_model_control_mode": "poll"},
        "value of triton_server_model_control_mode must be one of: explicit, none, got: poll",
    ),
    "unknown restricted API": (
        "triton_server",
        {"triton_server_restricted_apis": ["model-repository", "everything"]},
        "value of triton_server_restricted_apis must be one or more of: health, metadata, "
        "inference, shared-memory, model-config, model-repository, statistics, trace, logging. "
        "Got no match for: everything",
    ),
    "read-only flag not a boolean": (
        "triton_server",
        {"triton_server_read_only_rootfs": "maybe"},
        "argument 'triton_server_read_only_rootfs' is of type str and we were unable to convert "
        "to bool",
    ),
    "model repository missing on the host": (
        "triton_server",
        {},
        "Model repository {tmp}/no-such-repo does not exist on the host: run the "
        "triton_model_repo role first or set triton_server_model_repo_dir.",
    ),
    "registry lock file missing": (
        "triton_server",
        {"triton_server_registry": "127.0.0.1:5000", "dltk_registry_lock": "{tmp}/no-lock.json"},
        "triton_server: cannot pull dltk/triton-cpu:2.51.0 by digest from registry 127.0.0.1:5000: "
        "the lock file {tmp}/no-lock.json is missing or empty.",
    ),
    "registry given as a URL": (
        "triton_server",
        {"triton_server_registry": "http://127.0.0.1:5000"},
        "the registry must be HOST:PORT (no scheme, no path)",
    ),
    "verify perf flag not a boolean": (
        "triton_verify",
        {"triton_verify_perf": "maybe"},
        "argument 'triton_verify_perf' is of type str and we were unable to convert to bool",
    ),
    # triton_verify's options are checked by dltk verify --check-options on the control node.
    "verify concurrency range": (
        "triton_verify",
        {"triton_verify_concurrency": "lots"},
        "dltk verify: error: concurrency 'lots' is not START[:END[:STEP]], e.g. 1:4 "
        "(--concurrency, role variable triton_verify_concurrency)",
    ),
    "verify negative GPU count": (
        "triton_verify",
        {"triton_verify_gpus": -1},
        "dltk verify: error: gpus -1 must be >= 0 (--gpus, role variable triton_verify_gpus)",
    ),
    "verify concurrency beyond perf_analyzer's bound": (
        "triton_verify",
        {"triton_verify_concurrency": "1:100"},
        "dltk verify: error: concurrency '1:100' must satisfy 1 <= START <= END <= 64 and "
        "STEP >= 1 (--concurrency, role variable triton_verify_concurrency)",
    ),
}


def snapshot(root: Path) -> list[tuple[str, int]]:
    return sorted((str(p.relative_to(root)), p.stat().st_mtime_ns) for p in root.rglob("*"))


def docker_names() -> set[str]:
    """Names of every docker network and container of the engine."""
    names: set[str] = set()
    for argv in (
        ["docker", "network", "ls", "--format", "{{.Name}}"],
        ["docker", "container", "ls", "-a", "--format", "{{.Names}}"],
    ):
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=True)
        names |= set(proc.stdout.split())
    return names


@pytest.mark.parametrize("role, bad, expected", CASES.values(), ids=list(CASES))
def test_bad_role_variable_stops_the_role_and_changes_nothing(
    role: str, bad: dict[str, object], expected: str, tmp_path: Path
) -> None:
    tag = f"dltk-badinput-{uuid.uuid4().hex[:8]}"
    (tmp_path / "keep").write_text("a file the role must leave alone\n")
    playbook = tmp_path / "play.yml"
    playbook.write_text(PLAYBOOK)
    variables: dict[str, object] = {
        "role_under_test": role,
        "dltk_ngc_release": "24.10",
        "dltk_model_repo_dir": str(tmp_path / "no-such-repo"),
        "triton_server_image": "dltk/triton-cpu:2.51.0",
        "triton_server_network": tag,
        "triton_server_container_name": tag,
        "dltk_secrets_dir": str(tmp_path / "secrets"),
        "dltk_verify_dir": str(tmp_path / "verify"),
        "triton_verify_manifest": str(tmp_path / "no-manifest.yml"),
        "triton_verify_server": tag,
        "triton_verify_network": tag,
        "ansible_python_interpreter": sys.executable,
    }
    variables.update(
        {k: v.format(tmp=tmp_path) if isinstance(v, str) else v for k, v in bad.items()}
    )
    before = snapshot(tmp_path)
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    env["ANSIBLE_ROLES_PATH"] = str(ROOT / "roles")
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '')}"
    proc = subprocess.run(
        ["ansible-playbook", "-i", "localhost,", str(playbook), "-e", json.dumps(variables)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out[-3000:]
    assert expected.format(tmp=tmp_path) in " ".join(out.split()), out[-3000:]
    assert "localhost                  : ok=" in out and " changed=0 " in out, out[-2000:]
    assert " failed=1 " in out
    assert snapshot(tmp_path) == before
    assert tag not in docker_names()
