"""triton_server's restart on a changed repository (model control `none`), tasks/restart.yml, run
for real against a container of the docker engine: restarted only when triton_model_repo
published a change (dltk_model_repo_changed / _removed) and the container was not just created.

The container is a TEST DOUBLE of tritonserver: the Debian base image running `sleep`, since the
task only restarts a container by name; what a restarted tritonserver serves is covered by
molecule default.
"""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from .support import changed_count, run_playbook

pytestmark = pytest.mark.integration

IMAGE = "dltk/debian-base:bookworm"
PLAYBOOK = """\
- name: Restart tritonserver when the repository changed
  hosts: all
  gather_facts: false
  tasks:
    - name: The restart step of triton_server
      ansible.builtin.include_role:
        name: triton_server
        tasks_from: restart.yml
"""


def started_at(name: str) -> str:
    return subprocess.run(
        ["docker", "inspect", "-f", "{{.State.StartedAt}}", name],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout.strip()  # fmt: skip


@pytest.fixture
def container() -> Iterator[str]:
    name = f"dltk-restart-{uuid.uuid4().hex[:8]}"
    subprocess.run(
        ["docker", "run", "-d", "--name", name, IMAGE, "sleep", "600"],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    try:
        yield name
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True, timeout=60)


def play(tmp_path: Path, name: str, **facts: object) -> subprocess.CompletedProcess[str]:
    variables = {
        "triton_server_container_name": name,
        "triton_server_image": IMAGE,
        **facts,
    }
    return run_playbook(tmp_path, PLAYBOOK, variables)


@pytest.mark.parametrize(
    "facts",
    [
        {"dltk_model_repo_changed": ["mnist"]},
        {"dltk_model_repo_removed": ["old_model"]},
    ],
    ids=["changed", "removed"],
)
def test_a_published_change_restarts_the_server(
    tmp_path: Path, container: str, facts: dict[str, list[str]]
) -> None:
    before = started_at(container)
    proc = play(tmp_path, container, **facts)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert changed_count(proc.stdout) == 1
    assert started_at(container) != before


def test_no_change_leaves_the_server_running(tmp_path: Path, container: str) -> None:
    before = started_at(container)
    proc = play(tmp_path, container)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert changed_count(proc.stdout) == 0
    assert started_at(container) == before


def test_a_container_created_in_this_run_is_not_restarted_again(
    tmp_path: Path, container: str
) -> None:
    before = started_at(container)
    proc = play(
        tmp_path,
        container,
        dltk_model_repo_changed=["mnist"],
        __triton_server_container={"changed": True},
    )
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert changed_count(proc.stdout) == 0
    assert started_at(container) == before
