#!/usr/bin/python3 -I
# Copyright: DLTK Deploy contributors
# Apache-2.0
"""The one merge of the docker engine's daemon.json (standard library only).

Two users, one copy of the logic:
- the Ansible module plugins/modules/docker_daemon_json.py imports it as
  `ansible_collections.dltk.deploy.plugins.module_utils.daemon_json` (it ships in the collection);
- scripts/ensure-docker.sh runs it with Debian's python3 before any venv exists:
  `python3 daemon_json.py merge FILE SETTINGS [--defaults JSON] [--remove-if JSON]`
  prints `changed` or `unchanged` (stdout; `changed (backup: PATH)` when it kept one);
  `python3 daemon_json.py get FILE KEY` prints one top-level value (a string as it is).

The merge: the caller's settings go recursively into the current file (a nested map keeps its
other keys; any other value is replaced, as Ansible's `combine(recursive=true)`), `defaults` fill
only what the file does not set, and a top-level key whose merged value equals its value in
`remove_if` is dropped. The file is written (a backup of the old one next to it, then an atomic
rename) only when the merged content differs: equal content in another layout is left alone.
A file that is not a JSON object stops it with one error, and nothing is changed.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time

FILE_MODE = 0o644
DIR_MODE = 0o755


class DaemonJsonError(Exception):
    """daemon.json cannot be merged (not a JSON object); nothing was changed."""


def merge(base: dict, overlay: dict) -> dict:
    """A copy of base with overlay merged in: nested maps recursively, other values replaced."""
    result = dict(base)
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = merge(result[key], value)
        else:
            result[key] = value
    return result


def wanted(
    current: dict, settings: dict, remove_if: dict | None = None, defaults: dict | None = None
) -> dict:
    """The content daemon.json should have: defaults under current, settings over it, then
    the top-level keys whose value equals the one in remove_if dropped."""
    merged = merge(merge(defaults or {}, current), settings)
    drop = remove_if or {}
    return {key: value for key, value in merged.items() if key not in drop or drop[key] != value}


def _json_type(value: object) -> str:
    names = {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}
    return names.get(type(value), "a number")


def not_an_object(path: str, reason: str, host: str = "") -> str:
    """The one error for a daemon.json that cannot be merged."""
    where = f"{path} on {host}" if host else path
    reason = reason if len(reason) <= 120 else reason[:117] + "..."
    return (
        f"{where} is not a JSON object ({reason}): fix or remove it, then run again. "
        "Nothing was changed."
    )


def read(path: str, host: str = "") -> tuple[str | None, dict]:
    """(the file's text or None when it is missing, its content; empty text is {})."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        return None, {}
    except (OSError, UnicodeDecodeError) as exc:
        raise DaemonJsonError(not_an_object(path, f"unreadable: {exc}", host)) from exc
    if not text.strip():
        return text, {}
    try:
        content = json.loads(text)
    except ValueError as exc:
        raise DaemonJsonError(not_an_object(path, str(exc), host)) from exc
    if not isinstance(content, dict):
        raise DaemonJsonError(not_an_object(path, f"it holds {_json_type(content)}", host))
    return text, content


def render(content: dict) -> str:
    """The text written: sorted keys, two-space indent, one trailing newline."""
    return json.dumps(content, indent=2, sort_keys=True, separators=(",", ": ")) + "\n"


def backup_name(path: str) -> str:
    """Where the old file is kept; the name Ansible's `backup: true` gives it."""
    return f"{path}.{os.getpid()}.{time.strftime('%Y-%m-%d@%H:%M:%S~', time.localtime())}"


def _write(path: str, text: str) -> None:
    """text into path atomically (temporary file in the same directory, then rename)."""
    directory = os.path.dirname(path) or "."
    if not os.path.isdir(directory):
        os.makedirs(directory, mode=DIR_MODE)
        os.chmod(directory, DIR_MODE)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".daemon.json.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def update(
    path: str,
    settings: dict,
    remove_if: dict | None = None,
    defaults: dict | None = None,
    check: bool = False,
    backup: bool = True,
    host: str = "",
) -> dict:
    """Merge into the file at path; writes only when the content differs and not check.

    Returns changed, before/after (content), before_text/after_text (for a diff), backup_file
    ("" when none was kept). Raises DaemonJsonError before touching anything."""
    before_text, before = read(path, host)
    after = wanted(before, settings, remove_if, defaults)
    changed = after != before
    after_text = render(after) if changed else (before_text or "")
    backup_file = ""
    if changed and not check:
        if backup and before_text is not None:
            backup_file = backup_name(path)
            shutil.copy2(path, backup_file)  # bytes, mode and times, as Ansible's backup_local
        _write(path, after_text)
    return {
        "changed": changed,
        "before": before,
        "after": after,
        "before_text": before_text or "",
        "after_text": after_text,
        "backup_file": backup_file,
    }


def _object_arg(text: str, name: str) -> dict:
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise DaemonJsonError(f"{name} is not JSON ({exc}): {text!r}") from exc
    if not isinstance(value, dict):
        raise DaemonJsonError(f"{name} must be a JSON object, got {_json_type(value)}: {text!r}")
    return value


USAGE = (
    "usage: daemon_json.py merge FILE SETTINGS [--defaults JSON] [--remove-if JSON] "
    "[--check] [--no-backup]\n"
    "       daemon_json.py get FILE KEY"
)


def cli(argv: list[str]) -> int:
    """The command line of scripts/ensure-docker.sh (see the module docstring)."""
    args = list(argv)
    flags = {flag: flag in args for flag in ("--check", "--no-backup")}
    args = [arg for arg in args if arg not in flags]
    options = {"--defaults": "{}", "--remove-if": "{}"}
    for name in options:
        if name in args:
            i = args.index(name)
            if i + 1 >= len(args):
                print(f"{name} needs a JSON object\n{USAGE}", file=sys.stderr)
                return 2
            options[name] = args.pop(i + 1)
            args.pop(i)
    try:
        if len(args) == 3 and args[0] == "merge":
            result = update(
                args[1],
                _object_arg(args[2], "SETTINGS"),
                remove_if=_object_arg(options["--remove-if"], "--remove-if"),
                defaults=_object_arg(options["--defaults"], "--defaults"),
                check=flags["--check"],
                backup=not flags["--no-backup"],
            )
            state = "changed" if result["changed"] else "unchanged"
            print(f"{state} (backup: {result['backup_file']})" if result["backup_file"] else state)
            return 0
        if len(args) == 3 and args[0] == "get":
            value = read(args[1])[1].get(args[2])
            if value is not None:
                print(value if isinstance(value, str) else json.dumps(value, sort_keys=True))
            return 0
    except DaemonJsonError as exc:
        print(exc, file=sys.stderr)
        return 1
    print(USAGE, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(cli(sys.argv[1:]))
