"""Role variables given as `-e key=value` (strings) work: booleans and numbers.

`ansible-playbook deploy.yml -e triton_verify_perf=false` failed with "Conditionals must have a
boolean result": an extra var given as key=value is the string "false". These tests run the real
ansible-playbook on the control node (connection local, no docker, no host touched) with string
values, through the roles' preflight checks (triton_verify's runs `dltk verify --check-options`
on its options document) and the verifier's options document, and check what the verifier makes
of them (the same loader the verifier runs: scripts/dltk/verify/options.py). A static check below
covers the conditionals these runs cannot reach (handlers, docker tasks).
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

from dltk.verify.options import load_options

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
        seen:
          verify_options: >-
            {{ (_triton_verify_options | dltk.deploy.triton_verify_run(
                  'mnist', _triton_verify_full_now | default(true))).options }}
          verify_models: "{{ _triton_verify_models_asked }}"
          server_ports: "{{ _triton_server_settings.ports }}"
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
    opts = load_options(seen["verify_options"])
    assert not opts.perf and opts.metrics_url is None and opts.perf_shared_memory is False
    assert opts.slo.max_errors is None and (opts.gpus, opts.batch_size) == (2, 4)
    assert opts.host == "localhost" and opts.model == "mnist"
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
    opts = load_options(seen["verify_options"])
    assert opts.perf and (opts.gpus, opts.batch_size, opts.slo.max_errors) == (2, 4, 0)
    assert opts.metrics_url == "tritonserver:8002" and str(opts.concurrency) == "1:8:1"
    # First run on this host (no record): the full verification, its report named for it.
    assert seen["verify_options"]["quick"] is False
    assert seen["verify_options"]["report"] == "/reports/mnist.json"


@pytest.mark.parametrize(
    ("value", "levels"),
    [("4", [4]), ("2:6:2", [2, 4, 6]), ("auto", [1, 2, 3, 4])],
)
def test_a_concurrency_range_passes_the_preflight_as_perf_analyzer_reads_it(
    tmp_path: Path, value: str, levels: list[int]
) -> None:
    """'4' is one level of 4 outstanding requests (the role's old regex refused it)."""
    proc, seen = run_play(tmp_path, f"triton_verify_concurrency={value}")
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert load_options(seen["verify_options"]).concurrency.levels == levels


def test_a_string_false_still_trips_the_slo_preflight(tmp_path: Path) -> None:
    """'false' is false: an error gate without metrics is refused, as with a YAML false."""
    proc, _ = run_play(tmp_path, "triton_verify_metrics=false", "triton_verify_slo_max_errors=0")
    assert proc.returncode != 0
    assert (
        "dltk verify: error: slo_max_errors '0' needs metrics_url (--metrics-url; role: "
        "triton_verify_metrics: true), or -1 for no gate (--slo-max-errors, role variable "
        "triton_verify_slo_max_errors)" in " ".join(proc.stdout.split())
    ), proc.stdout[-3000:]


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
