"""Helpers shared by the integration tests: paths, the `dltk` subprocess, the artifacts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from dltk.bench.converge import changed_count as recap_changed

REPO_ROOT = Path(__file__).resolve().parents[2]
MANIFEST = REPO_ROOT / "model_repo" / "models.yml"
MODELS_DIR = REPO_ROOT / "build" / "models"
DLTK = (sys.executable, "-m", "dltk")
MODEL = "mnist"
READY_TIMEOUT_S = 120.0
PLAY_TIMEOUT_S = 300.0


def run_dltk(*args: str, timeout: float = 300.0) -> subprocess.CompletedProcess[str]:
    """`dltk ARGS` in a subprocess (bounded), output captured as text."""
    return subprocess.run(
        [*DLTK, *args], capture_output=True, text=True, timeout=timeout, cwd=REPO_ROOT
    )


def require_ok(proc: subprocess.CompletedProcess[str]) -> None:
    if proc.returncode != 0:
        pytest.fail(
            f"{' '.join(map(str, proc.args))} exited {proc.returncode}:\n"
            f"{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
        )


def run_playbook(
    base: Path, playbook: str, variables: dict, *extra: str, timeout: float = PLAY_TIMEOUT_S
) -> subprocess.CompletedProcess[str]:
    """The venv's ansible-playbook runs PLAYBOOK (YAML text) on localhost (connection local)
    with the project's roles and ansible.cfg and VARIABLES as extra vars; bounded, captured.
    Its files (deploy.yml, inventory.yml, vars.json) are written to BASE."""
    bindir = Path(sys.executable).parent
    inventory = base / "inventory.yml"
    inventory.write_text(
        "all:\n  hosts:\n    localhost:\n      ansible_connection: local\n"
        f"      ansible_python_interpreter: {sys.executable}\n"
    )
    # The roles' records (docs/fast-path.md) stay in BASE: no test sees another's.
    variables = {"dltk_state_dir": str(base / "dltk-state"), **variables}
    (base / "vars.json").write_text(json.dumps(variables))
    (base / "deploy.yml").write_text(playbook)
    env = {
        **os.environ,
        "ANSIBLE_CONFIG": str(REPO_ROOT / "ansible.cfg"),
        "ANSIBLE_ROLES_PATH": str(REPO_ROOT / "roles"),
        "ANSIBLE_NOCOLOR": "1",
        "PATH": f"{bindir}:{os.environ.get('PATH', '')}",
    }
    return subprocess.run(
        [str(bindir / "ansible-playbook"), str(base / "deploy.yml"), "-i", str(inventory),
         "-e", f"@{base / 'vars.json'}", *extra],
        capture_output=True, text=True, timeout=timeout, env=env, cwd=REPO_ROOT,
    )  # fmt: skip


def changed_count(output: str, host: str = "localhost") -> int:
    """`changed=N` of HOST in the last play recap (dltk's one reading of a recap line);
    AssertionError when the recap is missing."""
    found = recap_changed(output, host)
    assert found is not None, f"no play recap for {host} in:\n{output[-3000:]}"
    return found


@dataclass(frozen=True)
class Artifacts:
    onnx: Path
    samples: Path

    def load_samples(self) -> tuple[np.ndarray, np.ndarray]:
        with np.load(self.samples) as data:
            return data["inputs"], data["labels"]
