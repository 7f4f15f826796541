"""The Ansible module dltk.deploy.nvidia_gpu_facts: it ships dltk/gpu_facts.py itself (symlinked
plugins/module_utils), stdlib only, and returns gather()'s answer as the fact nvidia_gpu_facts.
Reads plugins/ (left out of the mutation run's staging, like the other role tests)."""

from __future__ import annotations

import ast
import json
import sys
from pathlib import Path

from local_ansible import run_on_localhost
from test_gpu_facts import A100_BOARD, H100_BOARD, stand_in_sysfs

from dltk import gpu_facts
from dltk.gpu_facts import gather

REPO = Path(__file__).resolve().parents[2]


def test_the_module_ships_this_very_file_and_it_is_stdlib_only() -> None:
    shipped = REPO / "plugins" / "module_utils" / "dltk_gpu_facts.py"
    assert shipped.resolve() == Path(gpu_facts.__file__).resolve()
    tree = ast.parse(Path(gpu_facts.__file__).read_text())
    imported = {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    } | {
        node.module.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module
    }
    assert imported - {"__future__"} <= set(sys.stdlib_module_names), imported


def test_the_ansible_module_returns_the_fact(tmp_path: Path) -> None:
    """The module as Ansible ships it (AnsiballZ with the symlinked module_utils), run locally."""
    root = stand_in_sysfs(tmp_path / "pci", H100_BOARD)
    (tmp_path / "ansible.cfg").write_text("[defaults]\n")
    out = run_on_localhost(
        "ansible",
        "localhost",
        "-m",
        "dltk.deploy.nvidia_gpu_facts",
        "-a",
        f"pci_devices_dir={root} driver=false",
        env={
            "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1",
            "ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.json",
            "ANSIBLE_CONFIG": str(tmp_path / "ansible.cfg"),  # empty: not the project's callbacks
        },
    )
    assert out.returncode == 0, out.stdout + out.stderr
    result = json.loads(out.stdout)["plays"][0]["tasks"][0]["hosts"]["localhost"]
    assert result["changed"] is False
    facts = result["ansible_facts"]["nvidia_gpu_facts"]
    assert facts == gather(str(root), driver=False)


def test_the_role_reads_once_per_run_unless_the_settings_differ_or_it_is_asked(
    tmp_path: Path,
) -> None:
    """Role nvidia_gpu_facts, included as the roles of deploy.yml do: the second include with the
    same settings reuses the answer (a board changed in between is not seen), other settings or
    nvidia_gpu_facts_reread read again (as nvidia_driver does after loading a driver)."""
    first = stand_in_sysfs(tmp_path / "first", H100_BOARD)
    other = stand_in_sysfs(tmp_path / "other", A100_BOARD)

    def include(root: Path, **extra: object) -> dict[str, object]:
        return {
            "ansible.builtin.include_role": {"name": "dltk.deploy.nvidia_gpu_facts"},
            "vars": {
                "nvidia_gpu_facts_pci_devices_dir": str(root),
                "nvidia_gpu_facts_driver": False,
                **extra,
            },
        }

    def count(name: str) -> dict[str, object]:
        return {
            "ansible.builtin.set_fact": {
                name: "{{ ansible_facts['nvidia_gpu_facts'].nvswitches | length }}"
            }
        }

    tasks = [include(first), count("n1")]
    # The board behind the first settings changes within the run: a reuse does not see it.
    tasks += [{"ansible.builtin.file": {"path": str(first / "0000:07:00.0"), "state": "absent"}}]
    tasks += [include(first), count("n2"), include(other), count("n3")]
    tasks += [include(first), count("n4"), include(first, nvidia_gpu_facts_reread=True)]
    tasks += [count("n5"), {"ansible.builtin.debug": {"msg": "{{ [n1, n2, n3, n4, n5] }}"}}]
    playbook = tmp_path / "play.yml"
    playbook.write_text(json.dumps([{"hosts": "localhost", "gather_facts": False, "tasks": tasks}]))
    (tmp_path / "ansible.cfg").write_text("[defaults]\n")
    out = run_on_localhost(
        "ansible-playbook",
        str(playbook),
        env={
            "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1",
            "ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.json",
            "ANSIBLE_CONFIG": str(tmp_path / "ansible.cfg"),
        },
    )
    assert out.returncode == 0, out.stdout + out.stderr
    results = json.loads(out.stdout)["plays"][0]["tasks"]
    # Each include's first task: skipped, the role goes on to read; run, the role ends there
    # (a meta task: no host result) and the answer of this run stands.
    reads = [
        "read" if t["hosts"].get("localhost", {}).get("skipped") else "reused"
        for t in results
        if "End nvidia_gpu_facts" in t["task"]["name"]
    ]
    assert reads == ["read", "reused", "read", "read", "read"]
    assert sum("Read the NVIDIA GPU facts" in t["task"]["name"] for t in results) == 4
    # NVSwitches: 4 on the H100 board (3 once one is removed), 6 on the A100 board.
    assert [int(n) for n in results[-1]["hosts"]["localhost"]["msg"]] == [4, 4, 6, 3, 3]
