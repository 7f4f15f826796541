"""Role variables given as `-e key=value` (strings) work: booleans and numbers.

`ansible-playbook deploy.yml -e triton_verify_perf=false` failed with "Conditionals must have a
boolean result": an extra var given as key=value is the string "false". These tests run the real
ansible-playbook on the control node (connection local, no docker, no host touched) with string
values, through the roles' preflight checks and the verifier's command line, and check what the
roles made of them. A static check below covers the conditionals these runs cannot reach
(handlers, docker tasks).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
ROLES = ("triton_verify", "triton_server")

PLAYBOOK = """\
- name: Evaluate the roles' variables as the deploy would
  hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: Run triton_verify's preflight
      ansible.builtin.include_role:
        name: triton_verify
        tasks_from: preflight
        public: true
    - name: Run triton_server's preflight
      ansible.builtin.include_role:
        name: triton_server
        tasks_from: preflight
        public: true
    - name: Write what the roles made of the variables
      ansible.builtin.copy:
        dest: "{{ out }}"
        mode: "0644"
        content: "{{ seen | to_json }}"
      vars:
        _triton_verify_model: mnist
        seen:
          verify_command: "{{ _triton_verify_command }}"
          verify_models: "{{ _triton_verify_models_asked }}"
          server_ports: "{{ _triton_server_ports }}"
"""


def run_play(tmp_path: Path, *extra: str) -> tuple[subprocess.CompletedProcess[str], dict]:
    playbook = tmp_path / "play.yml"
    playbook.write_text(PLAYBOOK)
    repo = tmp_path / "model_repo"
    repo.mkdir(exist_ok=True)
    out = tmp_path / "out.json"
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    env["ANSIBLE_ROLES_PATH"] = str(ROOT / "roles")
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '')}"
    args = ["-e", f"out={out}", "-e", f"triton_server_model_repo_dir={repo}"]
    args += ["-e", f"ansible_python_interpreter={sys.executable}"]
    for item in extra:
        args += ["-e", item]
    proc = subprocess.run(
        ["ansible-playbook", "-i", "localhost,", str(playbook), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    return proc, (json.loads(out.read_text()) if out.exists() else {})


def test_string_booleans_and_numbers_are_understood(tmp_path: Path) -> None:
    proc, seen = run_play(
        tmp_path,
        "triton_verify_perf=false",
        "triton_verify_metrics=false",
        "triton_verify_shared_memory=no",
        "triton_verify_slo_max_errors=-1",
        "triton_verify_gpus=2",
        "triton_verify_batch_size=4",
        "triton_verify_models=mnist,resnet18",
        "triton_server_http_port=9000",
        "triton_server_grpc_port=9001",
        "triton_server_metrics_port=9002",
        "triton_server_restart_on_change=false",
        "triton_server_ready_timeout=30",
    )
    assert proc.returncode == 0, proc.stdout[-3000:]
    command = seen["verify_command"]
    assert "--perf" not in command and "--metrics-url" not in command
    assert command[command.index("--host") + 1] == "localhost"
    assert seen["verify_models"] == ["mnist", "resnet18"]
    assert seen["server_ports"] == [9000, 9001, 9002]


def test_string_true_turns_the_checks_on(tmp_path: Path) -> None:
    proc, seen = run_play(
        tmp_path,
        "triton_verify_perf=true",
        "triton_verify_metrics=yes",
        "triton_verify_gpus=2",
        "triton_verify_batch_size=4",
        "triton_verify_slo_max_errors=0",
    )
    assert proc.returncode == 0, proc.stdout[-3000:]
    command = seen["verify_command"]
    assert command[command.index("--gpus") + 1] == "2"
    assert command[command.index("--batch-size") + 1] == "4"
    assert command[command.index("--slo-max-errors") + 1] == "0"
    assert "--metrics-url" in command


def test_a_string_false_still_trips_the_slo_preflight(tmp_path: Path) -> None:
    """'false' is false: an error gate without metrics is refused, as with a YAML false."""
    proc, _ = run_play(tmp_path, "triton_verify_metrics=false", "triton_verify_slo_max_errors=0")
    assert proc.returncode != 0
    assert "needs triton_verify_metrics: true" in proc.stdout


def _typed_variables(kind: str) -> list[str]:
    names: list[str] = []
    for role in ROLES:
        specs = yaml.safe_load((ROOT / "roles" / role / "meta" / "argument_specs.yml").read_text())
        options = specs["argument_specs"]["main"]["options"]
        names += [name for name, spec in options.items() if spec.get("type") == kind]
    return names


def _role_logic_files() -> list[Path]:
    return [
        path
        for role in ROLES
        for sub in ("tasks", "handlers", "vars")
        for path in sorted((ROOT / "roles" / role / sub).glob("*.yml"))
    ]


@pytest.mark.parametrize("kind", ["bool", "int"])
def test_every_typed_variable_is_converted_where_it_decides(kind: str) -> None:
    """A bool variable in a condition needs `| bool`, an int in a comparison `| int`."""
    names = _typed_variables(kind)
    assert names, f"no {kind} variable found in the argument specs"
    bare: list[str] = []
    for path in _role_logic_files():
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            for name in names:
                if kind == "bool":
                    pattern = (
                        rf"(\bif|\band|\bor|\bnot|when:|^\s*-)\s+{name}\b(?!\s*\|\s*bool)"
                        rf"|\b{name}\s+(and|or|else)\b"
                    )
                else:
                    pattern = rf"\b{name}\s*(==|!=|<=|>=|<|>|/|\*)"
                if re.search(pattern, line):
                    bare.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not bare, "\n".join(bare)
