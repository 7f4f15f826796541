"""scripts/ensure-docker.sh without Python in heredocs (issue 12, item 3).

The runc wrapper is scripts/dltk-runc-capbnd.py (the script fills in the real runc when it
installs it) and daemon.json goes through the docker_engine role's merge
(plugins/module_utils/daemon_json.py). Here: the script embeds no Python, its two
functions that use those files (sourced, not the engine part), and the wrapper's logic. The
wrapper's capability masks are TEST DOUBLES of /proc/self/status; os.execv is replaced so that
no runc runs.
"""

from __future__ import annotations

import importlib.util
import io
import json
import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts/ensure-docker.sh"
WRAPPER_SOURCE = REPO / "scripts/dltk-runc-capbnd.py"
NAME = "dltk-runc-capbnd"


def test_the_script_embeds_no_python() -> None:
    text = SCRIPT.read_text()
    assert not re.search(r"python3?(\s+-I)?\s+-(\s|c\b)", text), "python3 - or python3 -c"
    assert "import " not in text
    assert not re.search(r"<<-?\s*['\"]?[A-Za-z_]", text), "a heredoc"


# --- the script's functions, sourced -----------------------------------------------------------


def shell(tmp_path: Path, command: str) -> subprocess.CompletedProcess[str]:
    """Source the script (its functions only) with daemon.json under tmp_path, run command."""
    env = {"PATH": "/usr/bin:/bin", "DOCKER_DAEMON_JSON": str(tmp_path / "docker/daemon.json")}
    return subprocess.run(
        ["bash", "-c", f'source "{SCRIPT}"; {command}'],
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )


def test_wrapper_source_is_the_repository_file_with_runc_filled_in(tmp_path: Path) -> None:
    result = shell(tmp_path, "wrapper_source /usr/sbin/runc")
    assert result.returncode == 0, result.stderr
    expected = WRAPPER_SOURCE.read_text().replace("@RUNC@", "/usr/sbin/runc")
    assert result.stdout == expected
    assert "@RUNC@" not in result.stdout
    assert result.stdout.startswith("#!/usr/bin/python3 -I\n")
    assert re.search(r'^RUNC = "/usr/sbin/runc"', result.stdout, re.MULTILINE)
    installed = tmp_path / NAME
    installed.write_text(result.stdout)
    compiled = subprocess.run(["/usr/bin/python3", "-m", "py_compile", str(installed)], check=False)
    assert compiled.returncode == 0


def test_merge_registers_the_wrapper_as_default_then_changes_nothing(tmp_path: Path) -> None:
    first = shell(tmp_path, "merge_daemon_json")
    assert (first.returncode, first.stdout, first.stderr) == (0, "changed\n", "")
    daemon_json = tmp_path / "docker/daemon.json"
    assert json.loads(daemon_json.read_text()) == {
        "default-runtime": NAME,
        "runtimes": {NAME: {"path": f"/usr/local/sbin/{NAME}"}},
    }
    second = shell(tmp_path, "merge_daemon_json")
    assert (second.returncode, second.stdout, second.stderr) == (0, "unchanged\n", "")
    assert [p.name for p in daemon_json.parent.iterdir()] == ["daemon.json"]


def test_merge_keeps_another_default_and_other_keys_and_says_so(tmp_path: Path) -> None:
    daemon_json = tmp_path / "docker/daemon.json"
    daemon_json.parent.mkdir()
    daemon_json.write_text('{"default-runtime": "runc", "labels": ["a"]}')
    result = shell(tmp_path, "merge_daemon_json")
    assert result.returncode == 0
    assert result.stdout.startswith(f"changed (backup: {daemon_json}.")
    assert result.stderr == (
        "[ensure-docker] note: default-runtime stays 'runc': "
        f"use --runtime {NAME} for --privileged containers\n"
    )
    assert json.loads(daemon_json.read_text()) == {
        "default-runtime": "runc",
        "labels": ["a"],
        "runtimes": {NAME: {"path": f"/usr/local/sbin/{NAME}"}},
    }


def test_merge_refuses_a_file_that_is_not_an_object_and_leaves_it(tmp_path: Path) -> None:
    daemon_json = tmp_path / "docker/daemon.json"
    daemon_json.parent.mkdir()
    daemon_json.write_text('{"labels": [\n')
    result = shell(tmp_path, 'state=$(merge_daemon_json); echo "went on: $state"')
    assert result.returncode == 1, "set -e stops the script at the failed merge"
    assert result.stdout == ""
    assert result.stderr.startswith(f"{daemon_json} is not a JSON object (Expecting value")
    assert result.stderr.endswith("fix or remove it, then run again. Nothing was changed.\n")
    assert daemon_json.read_text() == '{"labels": [\n'
    assert [p.name for p in daemon_json.parent.iterdir()] == ["daemon.json"]


# --- the wrapper -------------------------------------------------------------------------------


@pytest.fixture
def wrapper():
    spec = importlib.util.spec_from_file_location("dltk_runc_capbnd", WRAPPER_SOURCE)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def status(mask: str):
    """TEST DOUBLE of open('/proc/self/status') with this CapBnd."""
    return lambda path: io.StringIO(f"Name:\tpython3\nCapBnd:\t{mask}\nCapAmb:\t0\n")


def test_missing_capabilities_reads_the_bounding_set(wrapper, monkeypatch) -> None:
    monkeypatch.setattr(wrapper, "open", status("000001fffeffffff"), raising=False)
    assert wrapper.missing_capabilities() == {"CAP_SYS_RESOURCE"}
    monkeypatch.setattr(wrapper, "open", status("000001ffffffffff"), raising=False)
    assert wrapper.missing_capabilities() == set()
    monkeypatch.setattr(wrapper, "open", status("000001fffefffffe"), raising=False)
    assert wrapper.missing_capabilities() == {"CAP_CHOWN", "CAP_SYS_RESOURCE"}


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["create", "--bundle", "/b", "id"], ("/b/config.json", "process")),
        (
            ["--root", "/run/runc", "--log", "/l", "run", "-b", "/b", "id"],
            ("/b/config.json", "process"),
        ),
        (["--systemd-cgroup", "create", "--bundle=/b", "id"], ("/b/config.json", "process")),
        (["run", "id"], ("./config.json", "process")),
        (["exec", "--process", "/p.json", "id"], ("/p.json", None)),
        (["exec", "-p=/p.json", "id"], ("/p.json", None)),
        (["exec", "id", "sh"], (None, None)),
        (["--root", "/r", "delete", "id"], (None, None)),
        ([], (None, None)),
    ],
)
def test_spec_to_filter(wrapper, args: list[str], expected: tuple) -> None:
    assert wrapper.spec_to_filter(args) == expected


def test_drop_missing_removes_only_the_missing_capabilities(wrapper, monkeypatch, tmp_path) -> None:
    monkeypatch.setattr(wrapper, "missing_capabilities", lambda: {"CAP_SYS_RESOURCE"})
    config = tmp_path / "config.json"
    caps = ["CAP_CHOWN", "CAP_SYS_RESOURCE", "CAP_SYS_ADMIN"]
    spec = {
        "ociVersion": "1.0.2",
        "process": {"capabilities": {"bounding": caps, "effective": caps}},
    }
    config.write_text(json.dumps(spec))
    wrapper.drop_missing(str(config), "process")
    kept = ["CAP_CHOWN", "CAP_SYS_ADMIN"]
    assert json.loads(config.read_text())["process"]["capabilities"] == {
        "bounding": kept,
        "effective": kept,
    }
    assert [p.name for p in tmp_path.iterdir()] == ["config.json"]
    # An exec process file is the process itself (key None).
    process = tmp_path / "process.json"
    process.write_text(json.dumps({"capabilities": {"permitted": caps}}))
    wrapper.drop_missing(str(process), None)
    assert json.loads(process.read_text())["capabilities"]["permitted"] == kept


def test_a_spec_without_missing_capabilities_is_left_byte_for_byte(
    wrapper, monkeypatch, tmp_path
) -> None:
    monkeypatch.setattr(wrapper, "missing_capabilities", lambda: {"CAP_SYS_RESOURCE"})
    config = tmp_path / "config.json"
    text = '{"process":  {"capabilities": {"bounding": ["CAP_CHOWN"]}}}'
    config.write_text(text)
    mtime = config.stat().st_mtime_ns
    wrapper.drop_missing(str(config), "process")
    assert (config.read_text(), config.stat().st_mtime_ns) == (text, mtime)


@pytest.mark.parametrize("config", ["not json", "[]", None])
def test_main_always_execs_runc_with_the_same_arguments(
    wrapper, monkeypatch, tmp_path, capsys, config
) -> None:
    """Whatever goes wrong with the spec (not JSON, not an object, absent), runc still runs."""
    calls = []
    monkeypatch.setattr(wrapper, "RUNC", "/usr/sbin/runc")
    monkeypatch.setattr(wrapper.os, "execv", lambda path, argv: calls.append((path, argv)))
    monkeypatch.setattr(wrapper, "missing_capabilities", lambda: {"CAP_SYS_RESOURCE"})
    if config is not None:
        (tmp_path / "config.json").write_text(config)
    args = ["create", "--bundle", str(tmp_path), "id"]
    monkeypatch.setattr(wrapper.sys, "argv", [NAME, *args])
    wrapper.main()
    assert calls == [("/usr/sbin/runc", ["/usr/sbin/runc", *args])]
    assert capsys.readouterr().err.startswith(f"{NAME}: left the spec as it was: ")
    if config is not None:
        assert (tmp_path / "config.json").read_text() == config
