"""Runs the venv's `ansible-playbook` or `ansible` against localhost (local connection, this
Python) with the checkout's roles and collection: the shared scaffolding of the unit tests that
exercise role or module code through Ansible itself."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def run_on_localhost(
    tool: str,
    *args: str,
    env: dict[str, str | None] | None = None,
    cwd: Path | None = None,
    timeout: float = 300,
) -> subprocess.CompletedProcess[str]:
    """TOOL ("ansible-playbook" or "ansible") with ARGS after the localhost inventory; ENV entries
    override the defaults, a None value removes the variable (e.g. ANSIBLE_CONFIG)."""
    full: dict[str, str | None] = {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "ANSIBLE_ROLES_PATH": str(REPO / "roles"),
        # The collection dltk.deploy from the checkout (as ansible.cfg's collections_path).
        "ANSIBLE_COLLECTIONS_PATH": str(REPO / "collections"),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_LOCALHOST_WARNING": "false",
        "ANSIBLE_INVENTORY_UNPARSED_WARNING": "false",
        **(env or {}),
    }
    argv = [str(BIN / tool), "-i", "localhost,", "-c", "local"]
    argv += ["-e", f"ansible_python_interpreter={sys.executable}", *args]
    return subprocess.run(
        argv,
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
        cwd=cwd,
        env={k: v for k, v in full.items() if v is not None},
    )
