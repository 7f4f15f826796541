"""The Ansible module dltk.deploy.nvidia_gpu_facts: it ships dltk/gpu_facts.py itself (symlinked
plugins/module_utils), stdlib only, and returns gather()'s answer as the fact nvidia_gpu_facts.
Reads plugins/ (left out of the mutation run's staging, like the other role tests)."""

from __future__ import annotations

import ast
import json
import sys
from pathlib import Path

from local_ansible import run_on_localhost
from test_gpu_facts import H100_BOARD, stand_in_sysfs

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
