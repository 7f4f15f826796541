"""The roles' fast path (dltk.deploy.role_state, docs/fast-path.md) run for real by ansible-playbook
on localhost: the action plugin, the module and `meta: end_role`, in a small role of this test
that writes one file the way every DLTK role works (probe, end the role, work, record).

The whole deploy.yml's fast path runs in molecule default (its idempotence run is the fast path,
its side effects drift the server behind it) and in `dltk bench converge`.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from .support import changed_count, run_playbook

pytestmark = pytest.mark.integration

ROLE_TASKS = """\
- name: Compare the inputs and the host with the last full run
  dltk.deploy.role_state:
    observe: {files: ["{{ probe_file }}"]}
  register: __probe_fast
  tags: [always]

- name: Publish what the last full run published
  ansible.builtin.set_fact:
    probe_out: "{{ __probe_fast.outputs.value }}"
  when: __probe_fast.converged
  tags: [always]

- name: End the role, nothing changed
  ansible.builtin.meta: end_role
  when: __probe_fast.converged
  tags: [always]

- name: Say the role runs in full
  ansible.builtin.debug:
    msg: "FULL RUN: {{ __probe_fast.why }}"
  tags: [always]

- name: Write the file (the role's work)
  ansible.builtin.copy:
    dest: "{{ probe_file }}"
    content: "{{ probe_content }}\\n"
    mode: "0644"
  tags: [probe_write]

- name: Publish the output
  ansible.builtin.set_fact:
    probe_out: "{{ probe_content }}"
  tags: [probe_write]

- name: Record what the role left
  dltk.deploy.role_state:
    state: record
    inputs: "{{ __probe_fast.inputs }}"
    observe: {files: ["{{ probe_file }}"]}
    outputs: {value: "{{ probe_out | default('none') }}"}
"""

PLAYBOOK = """\
- name: A role with a fast path
  hosts: all
  gather_facts: false
  tasks:
    - name: Run the role
      ansible.builtin.include_role:
        name: "{{ probe_role }}"
      tags: [always]
    - name: Show the published output
      ansible.builtin.debug:
        msg: "OUTPUT={{ probe_out | default('none') }}"
      tags: [always]
"""


@pytest.fixture
def setup(tmp_path: Path) -> dict[str, str]:
    role = tmp_path / "roles" / "probe"
    (role / "tasks").mkdir(parents=True)
    (role / "tasks" / "main.yml").write_text("---\n" + ROLE_TASKS)
    return {
        "probe_role": str(role),
        "probe_file": str(tmp_path / "work" / "state.txt"),
        "probe_content": "one",
        "dltk_state_dir": str(tmp_path / "state"),
    }


def play(
    tmp_path: Path, variables: dict[str, str], *extra: str
) -> subprocess.CompletedProcess[str]:
    proc = run_playbook(tmp_path, PLAYBOOK, variables, *extra)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    return proc


def test_a_converged_role_ends_early_and_publishes_what_its_last_full_run_published(
    tmp_path: Path, setup: dict[str, str]
) -> None:
    (tmp_path / "work").mkdir()
    first = play(tmp_path, setup)
    assert "FULL RUN: no record of an earlier run" in first.stdout
    assert (
        changed_count(first.stdout) == 1
    )  # the file (writing the record is no change of the host)
    record = json.loads((tmp_path / "state" / "roles" / "probe.json").read_text())
    assert record["outputs"] == {"value": "one"} and len(record["inputs"]) == 64 + 1 + 64

    second = play(tmp_path, setup)
    assert "FULL RUN" not in second.stdout
    assert "OUTPUT=one" in second.stdout
    assert changed_count(second.stdout) == 0


def test_a_changed_variable_or_a_file_changed_on_the_host_runs_the_role_in_full(
    tmp_path: Path, setup: dict[str, str]
) -> None:
    (tmp_path / "work").mkdir()
    play(tmp_path, setup)
    changed = play(tmp_path, {**setup, "probe_content": "two"})
    assert "FULL RUN: the role's inputs changed" in changed.stdout
    assert changed_count(changed.stdout) == 1 and "OUTPUT=two" in changed.stdout

    Path(setup["probe_file"]).write_text("edited behind Ansible's back\n")
    repaired = play(tmp_path, {**setup, "probe_content": "two"})
    assert (
        f"FULL RUN: the host changed since the last run: file {setup['probe_file']}"
        in repaired.stdout
    )
    assert Path(setup["probe_file"]).read_text() == "two\n"
    assert changed_count(repaired.stdout) == 1, "the file repaired"


def test_fast_path_off_runs_every_task_and_a_run_limited_by_tags_is_not_recorded(
    tmp_path: Path, setup: dict[str, str]
) -> None:
    (tmp_path / "work").mkdir()
    play(tmp_path, setup)
    off = play(tmp_path, setup, "-e", "dltk_fast_path=false")
    assert "FULL RUN: dltk_fast_path is false" in off.stdout
    assert changed_count(off.stdout) == 0, "a converged role run in full changes nothing"

    record = tmp_path / "state" / "roles" / "probe.json"
    before = record.read_text()
    tagged = play(tmp_path, {**setup, "probe_content": "three"}, "--skip-tags", "probe_write", "-v")
    assert "not recorded: probe_write limited this run" in tagged.stdout
    assert record.read_text() == before
    # The next whole run sees other inputs than the record's and runs in full; a tag that is not
    # the role's (molecule's --skip-tags notest) leaves the role whole: it is recorded.
    whole = play(tmp_path, {**setup, "probe_content": "three"}, "--skip-tags", "notest")
    assert "FULL RUN" in whole.stdout and record.read_text() != before
