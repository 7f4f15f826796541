"""The module docker_daemon_json and the task file daemon-json.yml of roles/docker_engine, as
Ansible runs them (issue 12, item 3).

One real ansible-playbook run on localhost against files under tmp_path (no engine: the restart
gate is off, so the handler restarts nothing): Ansible bundles the module
dltk.deploy.docker_daemon_json with its module_utils import (plugins/ of the collection, from the
checkout), checks the arguments against the module's spec, and runs check mode, diff, the role's
task file (write, deferred restart) and a rerun. (The role called through include_role from
another role is what molecule/nvidia_container_toolkit runs.)
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from local_ansible import run_on_localhost

REPO = Path(__file__).resolve().parents[2]

PLAYBOOK = """\
- name: docker_daemon_json as the roles call it
  hosts: localhost
  gather_facts: false
  vars:
    dir: "{dir}"
  tasks:
    - name: no-settings
      dltk.deploy.docker_daemon_json:
        path: "{{{{ dir }}}}/args.json"
      ignore_errors: true
    - name: settings-not-a-map
      dltk.deploy.docker_daemon_json:
        path: "{{{{ dir }}}}/args.json"
        settings: [log-driver, local]
      ignore_errors: true
    - name: unknown-option
      dltk.deploy.docker_daemon_json:
        path: "{{{{ dir }}}}/args.json"
        settings: {{}}
        restart: true
      ignore_errors: true
    - name: not-an-object
      dltk.deploy.docker_daemon_json:
        path: "{{{{ dir }}}}/list.json"
        settings: {{a: 1}}
        host: gpu-01
      ignore_errors: true
    - name: check
      dltk.deploy.docker_daemon_json:
        path: "{{{{ dir }}}}/daemon.json"
        settings: {{runtimes: {{nvidia: {{path: /n, args: []}}}}}}
        remove_if: {{default-runtime: nvidia}}
      check_mode: true
      diff: true
    - name: defaults
      dltk.deploy.docker_daemon_json:
        settings: {{}}
      check_mode: true
    - name: role-gate-off
      ansible.builtin.include_role:
        name: docker_engine
        tasks_from: daemon-json
      vars:
        docker_engine_daemon_json_path: "{{{{ dir }}}}/daemon.json"
        docker_engine_daemon_json_settings: {{runtimes: {{nvidia: {{path: /n, args: []}}}}}}
        docker_engine_daemon_json_remove_if: {{default-runtime: nvidia}}
        docker_engine_daemon_json_restart: false
        docker_engine_daemon_json_caller: unit-test
    - name: rerun
      dltk.deploy.docker_daemon_json:
        path: "{{{{ dir }}}}/daemon.json"
        settings: {{runtimes: {{nvidia: {{path: /n, args: []}}}}}}
        remove_if: {{default-runtime: nvidia}}
"""


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, list[dict]]]:
    """Runs the playbook once; returns (its directory, task name -> results in order)."""
    directory = tmp_path_factory.mktemp("daemon-json")
    (directory / "daemon.json").write_text(
        '{"default-runtime": "nvidia", "runtimes": {"foreign": {"path": "/f"}}}'
    )
    (directory / "list.json").write_text("[]")
    playbook = directory / "play.yml"
    playbook.write_text(PLAYBOOK.format(dir=directory))
    (directory / "ansible.cfg").write_text("[defaults]\n")
    out = run_on_localhost(
        "ansible-playbook",
        str(playbook),
        env={
            "ANSIBLE_CONFIG": str(directory / "ansible.cfg"),
            "ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.json",
        },
        cwd=directory,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    report = json.loads(out.stdout)
    results: dict[str, list[dict]] = {}
    for task in report["plays"][0]["tasks"]:
        results.setdefault(task["task"]["name"], []).append(task["hosts"]["localhost"])
    return directory, results


def one(results: dict[str, list[dict]], name: str) -> dict:
    [result] = results[name]
    return result


def test_settings_are_required_a_map_and_options_are_checked(run) -> None:
    _, results = run
    assert one(results, "no-settings")["msg"] == "missing required arguments: settings"
    bad_type = one(results, "settings-not-a-map")
    assert bad_type["failed"] is True
    assert (
        "argument 'settings' is of type list and we were unable to convert to dict"
        in (bad_type["msg"])
    )
    unknown = one(results, "unknown-option")
    assert unknown["failed"] is True and "Unsupported parameters" in unknown["msg"]
    assert "restart" in unknown["msg"]


def test_not_an_object_fails_with_the_one_error(run) -> None:
    directory, results = run
    result = one(results, "not-an-object")
    assert result["failed"] is True and result["changed"] is False
    assert result["msg"] == (
        f"{directory}/list.json on gpu-01 is not a JSON object (it holds an array): "
        "fix or remove it, then run again. Nothing was changed."
    )
    assert (directory / "list.json").read_text() == "[]"


def test_check_mode_reports_the_change_with_a_diff(run) -> None:
    directory, results = run
    result = one(results, "check")
    assert result["changed"] is True
    assert result["daemon_json"] == {
        "runtimes": {"foreign": {"path": "/f"}, "nvidia": {"path": "/n", "args": []}}
    }
    assert result["backup_file"] == ""
    [diff] = result["diff"] if isinstance(result["diff"], list) else [result["diff"]]
    assert diff["before"].startswith('{"default-runtime": "nvidia"')
    assert '"nvidia": {\n      "args": [],\n      "path": "/n"\n    }' in diff["after"]
    assert diff["before_header"] == f"{directory}/daemon.json"


def test_path_defaults_to_the_engine_file(run) -> None:
    _, results = run
    assert one(results, "defaults")["path"] == "/etc/docker/daemon.json"


def test_the_role_task_file_writes_once_defers_the_restart_and_a_rerun_changes_nothing(
    run,
) -> None:
    directory, results = run
    merged = one(
        results, "docker_engine : Merge the caller's keys into the engine's daemon.json (unit-test)"
    )
    assert merged["changed"] is True
    assert merged["backup_file"].startswith(f"{directory}/daemon.json.")
    assert json.loads(Path(merged["backup_file"]).read_text())["default-runtime"] == "nvidia"
    deferred = one(results, "docker_engine : Say that the engine restart is deferred (unit-test)")
    assert deferred["msg"] == textwrap.dedent(
        f"""\
        {directory}/daemon.json changed for unit-test, but its restart gate is off: the engine keeps
        its old configuration until you run `systemctl restart docker`."""
    ).replace("\n", " ")
    assert json.loads((directory / "daemon.json").read_text()) == {
        "runtimes": {"foreign": {"path": "/f"}, "nvidia": {"path": "/n", "args": []}}
    }
    # The handler ran (notified) but its gate kept the engine alone.
    restart = one(results, "docker_engine : Restart the docker engine to load daemon.json")
    assert restart["skipped"] is True
    assert one(results, "rerun")["changed"] is False
