"""deploy.yml's preflight: no host is touched when the inventory or the control node is wrong.

Runs the real ansible-playbook (from the venv) against deploy.yml; none of these runs reaches a
host: they stop in playbooks/preflight.yml or while parsing the inventory.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PLAYBOOK = str(ROOT / "deploy.yml")


def run_playbook(*args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '')}"
    return subprocess.run(
        ["ansible-playbook", PLAYBOOK, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_missing_inventory_fails_instead_of_running_no_host(tmp_path: Path) -> None:
    result = run_playbook("-i", str(tmp_path / "gpu_hosts"))
    assert result.returncode != 0
    assert "The inventory lists no host" in result.stdout


def test_unparsable_inventory_fails(tmp_path: Path) -> None:
    inventory = tmp_path / "gpu_hosts.yml"
    inventory.write_text("all:\n  hosts:\n    gpu-01: [\n")
    result = run_playbook("-i", str(inventory))
    assert result.returncode != 0
    assert "The inventory lists no host" in result.stdout


def test_inventory_without_hosts_fails_with_what_to_do(tmp_path: Path) -> None:
    inventory = tmp_path / "empty.yml"
    inventory.write_text("all:\n  hosts: {}\n")
    result = run_playbook("-i", str(inventory))
    assert result.returncode != 0
    assert "The inventory lists no host" in result.stdout
    assert "inventory/gpu_hosts.example.yml" in result.stdout


def test_missing_dltk_on_the_control_node_stops_before_any_host(tmp_path: Path) -> None:
    # A host that does not exist (a container name no engine has, so a connection attempt would
    # fail locally, never on the network): the run must stop on the control node before it.
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(
        "all:\n  hosts:\n    dltk-no-such-host:\n"
        "      ansible_connection: community.docker.docker\n"
    )
    result = run_playbook("-i", str(inventory), "-e", f"dltk_command={tmp_path}/no-dltk")
    assert result.returncode != 0
    assert "does not run on the control node" in result.stdout
    assert "UNREACHABLE" not in result.stdout
    assert "Gathering Facts" not in result.stdout


def _unreachable_host_inventory(tmp_path: Path) -> Path:
    """A host no engine has (a connection attempt would fail locally, never on the network)."""
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(
        "all:\n  hosts:\n    dltk-no-such-host:\n"
        "      ansible_connection: community.docker.docker\n"
    )
    return inventory


def test_unknown_ngc_release_stops_before_any_host(tmp_path: Path) -> None:
    inventory = _unreachable_host_inventory(tmp_path)
    result = run_playbook("-i", str(inventory), "-e", "dltk_ngc_release=99.99")
    assert result.returncode != 0
    assert (
        "NGC release 99.99 is not in dltk's release table (known: 24.10, 25.08); add it to "
        "roles/dltk_ngc/defaults/main.json (dltk_ngc_releases)" in result.stdout
    )
    assert "Nothing was changed on any host" in result.stdout
    assert "UNREACHABLE" not in result.stdout
    assert "Gathering Facts" not in result.stdout


def test_unquoted_ngc_release_is_explained(tmp_path: Path) -> None:
    """`dltk_ngc_release: 24.10` unquoted in YAML is the number 24.1."""
    inventory = _unreachable_host_inventory(tmp_path)
    result = run_playbook("-i", str(inventory), "-e", '{"dltk_ngc_release": 24.10}')
    assert result.returncode != 0
    assert "NGC release '24.1' must look like 24.10 (YY.MM)" in result.stdout
    assert "an unquoted 24.10 is the number 24.1" in " ".join(result.stdout.split())
    assert "Gathering Facts" not in result.stdout
