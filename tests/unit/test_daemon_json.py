"""The one daemon.json merge (issue 12, item 3): plugins/module_utils/daemon_json.py.

The role's module docker_daemon_json and scripts/ensure-docker.sh both run this file, so its
semantics are pinned here: recursive merge, remove_if, defaults, the one error for a file that is
not a JSON object (nothing changed), no write for equal content in another layout, the backup,
check mode, and the command line the shell script calls (with Debian's /usr/bin/python3 -I,
as ensure-docker.sh runs it before any venv exists).
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
from pathlib import Path

import pytest
from role_plugins import load_role_plugin

dj = load_role_plugin("plugins/module_utils/daemon_json.py")
TOOL = Path(dj.__file__)
SYSTEM_PYTHON = "/usr/bin/python3"

FOREIGN = {"labels": ["dltk.test=set-before"], "log-opts": {"labels": "dltk.team"}}


def files(directory: Path) -> dict[str, tuple[bytes, int]]:
    """name -> (bytes, mtime_ns) of every file in directory."""
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(directory.iterdir())}


# --- the merge ---------------------------------------------------------------------------------


def test_merge_is_recursive_for_maps_and_replaces_everything_else() -> None:
    current = {"log-opts": {"labels": "dltk.team", "max-size": "1m"}, "labels": ["a"], "debug": 1}
    settings = {
        "log-opts": {"max-size": "10m", "max-file": "3"},
        "labels": ["b"],
        "debug": {"x": 1},
    }
    assert dj.merge(current, settings) == {
        "log-opts": {"labels": "dltk.team", "max-size": "10m", "max-file": "3"},
        "labels": ["b"],
        "debug": {"x": 1},
    }
    # The inputs are not modified.
    assert current["log-opts"] == {"labels": "dltk.team", "max-size": "1m"}


def test_merge_keeps_other_runtimes_when_one_is_added() -> None:
    current = {"runtimes": {"foreign": {"path": "/f"}}, "default-runtime": "foreign"}
    settings = {"runtimes": {"nvidia": {"path": "nvidia-container-runtime", "args": []}}}
    assert dj.wanted(current, settings)["runtimes"] == {
        "foreign": {"path": "/f"},
        "nvidia": {"path": "nvidia-container-runtime", "args": []},
    }


def test_remove_if_drops_a_top_level_key_only_when_its_value_matches() -> None:
    settings = {"runtimes": {"nvidia": {"path": "/n"}}}
    ours = {"default-runtime": "nvidia", "labels": ["a"]}
    theirs = {"default-runtime": "foreign", "labels": ["a"]}
    remove_if = {"default-runtime": "nvidia"}
    assert "default-runtime" not in dj.wanted(ours, settings, remove_if)
    assert dj.wanted(theirs, settings, remove_if)["default-runtime"] == "foreign"
    assert dj.wanted(ours, settings, remove_if)["labels"] == ["a"]
    # Compared after the merge, as the role always did.
    assert "default-runtime" not in dj.wanted({}, {"default-runtime": "nvidia"}, remove_if)
    # A nested key in remove_if is compared as a whole value, never recursed into.
    nested = {"runtimes": {"nvidia": {"path": "/n"}, "other": {"path": "/o"}}}
    assert dj.wanted(nested, {}, {"runtimes": {"nvidia": {"path": "/n"}}}) == nested


def test_defaults_fill_only_what_the_file_does_not_set() -> None:
    defaults = {"default-runtime": "dltk-runc-capbnd", "runtimes": {"w": {"path": "/d"}}}
    assert dj.wanted({}, {}, defaults=defaults) == defaults
    kept = dj.wanted({"default-runtime": "runc"}, {}, defaults=defaults)
    assert kept["default-runtime"] == "runc"
    # Settings still win over the file.
    assert dj.wanted({"a": 1}, {"a": 2}, defaults={"a": 0}) == {"a": 2}


# --- reading: the one error --------------------------------------------------------------------


def test_a_missing_or_blank_file_is_an_empty_object(tmp_path: Path) -> None:
    assert dj.read(str(tmp_path / "absent.json")) == (None, {})
    blank = tmp_path / "blank.json"
    blank.write_text(" \n")
    assert dj.read(str(blank)) == (" \n", {})


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ('{"labels": ["unterminated"]\n', "Expecting ',' delimiter: line 2 column 1 (char 28)"),
        ('["a"]\n', "it holds an array"),
        ('"runc"\n', "it holds a string"),
        ("3\n", "it holds a number"),
        ("null\n", "it holds null"),
    ],
)
def test_a_file_that_is_not_an_object_fails_with_one_error_and_nothing_changes(
    tmp_path: Path, text: str, reason: str
) -> None:
    path = tmp_path / "daemon.json"
    path.write_text(text)
    before = files(tmp_path)
    with pytest.raises(dj.DaemonJsonError) as caught:
        dj.update(str(path), {"log-driver": "json-file"}, host="gpu-01")
    assert str(caught.value) == (
        f"{path} on gpu-01 is not a JSON object ({reason}): fix or remove it, then run again. "
        "Nothing was changed."
    )
    assert files(tmp_path) == before


def test_the_error_without_a_host_names_the_file_and_truncates_a_long_reason() -> None:
    msg = dj.not_an_object("/etc/docker/daemon.json", "x" * 300)
    assert msg.startswith("/etc/docker/daemon.json is not a JSON object (" + "x" * 117 + "...)")
    assert "\n" not in msg


# --- writing -----------------------------------------------------------------------------------


def test_a_difference_is_written_with_a_backup_of_the_old_file(tmp_path: Path) -> None:
    path = tmp_path / "daemon.json"
    old = json.dumps(FOREIGN)
    path.write_text(old)
    path.chmod(0o600)
    old_mtime = path.stat().st_mtime_ns
    result = dj.update(str(path), {"log-driver": "json-file", "log-opts": {"max-size": "10m"}})
    assert result["changed"] is True
    written = json.loads(path.read_text())
    assert written == {
        "labels": ["dltk.test=set-before"],
        "log-driver": "json-file",
        "log-opts": {"labels": "dltk.team", "max-size": "10m"},
    }
    assert path.read_text() == dj.render(written) and path.read_text().endswith("}\n")
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    backup = Path(result["backup_file"])
    assert backup.parent == tmp_path and backup.name.startswith(f"daemon.json.{os.getpid()}.")
    assert backup.name.endswith("~")
    assert backup.read_text() == old
    assert stat.S_IMODE(backup.stat().st_mode) == 0o600
    assert backup.stat().st_mtime_ns == old_mtime
    assert result["before_text"] == old and result["after_text"] == path.read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["daemon.json", backup.name])


def test_no_backup_when_asked_or_when_there_was_no_file(tmp_path: Path) -> None:
    path = tmp_path / "etc-docker" / "daemon.json"
    result = dj.update(str(path), {"a": 1})
    assert result["changed"] and result["backup_file"] == ""
    assert json.loads(path.read_text()) == {"a": 1}
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o755
    dj.update(str(path), {"a": 2}, backup=False)
    assert [p.name for p in path.parent.iterdir()] == ["daemon.json"]


def test_equal_content_in_another_layout_is_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "daemon.json"
    path.write_text('{"log-opts":{"max-size":"10m"},   "labels":["x"]}')
    before = files(tmp_path)
    result = dj.update(str(path), {"labels": ["x"], "log-opts": {"max-size": "10m"}})
    assert result["changed"] is False
    assert result["backup_file"] == ""
    assert files(tmp_path) == before
    assert result["after_text"] == result["before_text"]


def test_a_second_update_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "daemon.json"
    path.write_text(json.dumps(FOREIGN))
    settings = {"runtimes": {"nvidia": {"path": "/n", "args": []}}, "default-runtime": "nvidia"}
    assert dj.update(str(path), settings)["changed"] is True
    after_first = files(tmp_path)
    assert dj.update(str(path), settings)["changed"] is False
    assert files(tmp_path) == after_first


def test_check_mode_reports_the_change_and_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "daemon.json"
    path.write_text(json.dumps(FOREIGN))
    before = files(tmp_path)
    result = dj.update(str(path), {"log-driver": "local"}, check=True)
    assert result["changed"] is True
    assert result["after"] == {**FOREIGN, "log-driver": "local"}
    assert result["after_text"] == dj.render(result["after"])
    assert result["backup_file"] == ""
    assert files(tmp_path) == before
    absent = tmp_path / "new" / "daemon.json"
    assert dj.update(str(absent), {"a": 1}, check=True)["changed"] is True
    assert not absent.parent.exists()


# --- the command line of scripts/ensure-docker.sh ---------------------------------------------


def tool(*args: str) -> subprocess.CompletedProcess[str]:
    """The file as ensure-docker.sh runs it: Debian's python3, isolated mode, no venv."""
    return subprocess.run(
        [SYSTEM_PYTHON, "-I", str(TOOL), *args], capture_output=True, text=True, check=False
    )


def test_cli_merge_prints_changed_with_the_backup_then_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "daemon.json"
    path.write_text('{"default-runtime": "runc"}\n')
    wrapper = '{"runtimes": {"w": {"path": "/usr/local/sbin/w"}}}'
    first = tool("merge", str(path), wrapper, "--defaults", '{"default-runtime": "w"}')
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("changed (backup: " + str(path) + ".")
    assert json.loads(path.read_text()) == {
        "default-runtime": "runc",
        "runtimes": {"w": {"path": "/usr/local/sbin/w"}},
    }
    second = tool("merge", str(path), wrapper, "--defaults", '{"default-runtime": "w"}')
    assert (second.returncode, second.stdout, second.stderr) == (0, "unchanged\n", "")
    assert tool("get", str(path), "default-runtime").stdout == "runc\n"
    assert tool("get", str(path), "runtimes").stdout == '{"w": {"path": "/usr/local/sbin/w"}}\n'
    assert tool("get", str(path), "absent").stdout == ""


def test_cli_remove_if_check_and_no_backup(tmp_path: Path) -> None:
    path = tmp_path / "daemon.json"
    path.write_text('{"default-runtime": "nvidia", "labels": ["a"]}')
    before = files(tmp_path)
    checked = tool(
        "merge", str(path), "{}", "--remove-if", '{"default-runtime": "nvidia"}', "--check"
    )
    assert checked.stdout == "changed\n" and files(tmp_path) == before
    done = tool(
        "merge", str(path), "{}", "--remove-if", '{"default-runtime": "nvidia"}', "--no-backup"
    )
    assert done.stdout == "changed\n"
    assert json.loads(path.read_text()) == {"labels": ["a"]}
    assert [p.name for p in tmp_path.iterdir()] == ["daemon.json"]


def test_cli_bad_file_exits_1_with_the_one_error_and_leaves_it(tmp_path: Path) -> None:
    path = tmp_path / "daemon.json"
    path.write_text("[]")
    before = files(tmp_path)
    result = tool("merge", str(path), '{"a": 1}')
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr == (
        f"{path} is not a JSON object (it holds an array): fix or remove it, then run again. "
        "Nothing was changed.\n"
    )
    assert files(tmp_path) == before


@pytest.mark.parametrize(
    ("args", "rc", "error"),
    [
        (["merge", "F", "not json"], 1, "SETTINGS is not JSON (Expecting value"),
        (["merge", "F", "[1]"], 1, "SETTINGS must be a JSON object, got an array"),
        (["merge", "F", "{}", "--remove-if", "1"], 1, "--remove-if must be a JSON object"),
        (["merge", "F", "{}", "--defaults"], 2, "--defaults needs a JSON object"),
        (["merge", "F"], 2, "usage: daemon_json.py merge FILE SETTINGS"),
        (["set", "F", "{}"], 2, "usage: daemon_json.py merge FILE SETTINGS"),
    ],
)
def test_cli_bad_arguments(tmp_path: Path, args: list[str], rc: int, error: str) -> None:
    args = [str(tmp_path / "daemon.json") if a == "F" else a for a in args]
    result = tool(*args)
    assert (result.returncode, result.stdout) == (rc, "")
    assert error in result.stderr
    assert list(tmp_path.iterdir()) == []
