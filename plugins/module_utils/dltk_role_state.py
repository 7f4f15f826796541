"""What a role left on a host, and whether the host still holds it (issue 12: a converged re-run
costs seconds).

A role that ran in full records on the host (plugins/modules/role_state.py, `state: record`):
- `inputs`: a digest of everything the control node gave the role (its variables, the collection's
  code, control-node files it reads; plugins/action/role_state.py computes it),
- `observed`: what the host holds of the role's work, observed with cheap reads (file checksums,
  directory listings with sizes and mtimes, package versions, services, containers, images,
  networks, group members),
- `outputs`: the facts it published for the roles after it.
On the next run (`state: check`) the role ends right away when the inputs are the recorded ones and
the host observes as recorded (the role then publishes the recorded outputs); anything else runs
the role in full. Stdlib only: this file runs on the host.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess
from collections.abc import Callable, Mapping, Sequence
from typing import Any

# Kinds of observation, in the order they are reported.
KINDS = ("files", "trees", "packages", "services", "containers", "images", "networks", "groups")

Runner = Callable[[Sequence[str]], "tuple[int, str]"]

ABSENT = "absent"


def run(argv: Sequence[str]) -> tuple[int, str]:
    """(rc, stdout) of a command; rc 127 when the command is not installed."""
    try:
        done = subprocess.run(list(argv), capture_output=True, text=True, check=False)
    except FileNotFoundError:
        return 127, ""
    return done.returncode, done.stdout


def observe_file(path: str) -> str:
    """sha256, mode, owner and group of a file (symlinks followed), or 'absent'."""
    try:
        info = os.stat(path)
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    except (FileNotFoundError, NotADirectoryError):
        return ABSENT
    return f"{digest.hexdigest()} {stat.S_IMODE(info.st_mode):o} {info.st_uid}:{info.st_gid}"


def observe_tree(path: str) -> str:
    """sha256 of a directory's listing (relative path, type, size, mtime, mode; link targets;
    __pycache__ left out) or 'absent'. Contents are not read: a 1 GB model costs what a 1 MB
    one does (as rsync's quick check, a rewrite keeping size and mtime is not seen)."""
    if not os.path.isdir(path):
        return ABSENT
    entries = []
    for top, dirs, files in os.walk(path):
        # Bytecode caches appear at run time (Triton's python backend imports model.py from the
        # repository): not something a role put there.
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in sorted(dirs + [f for f in files if not f.endswith(".pyc")]):
            full = os.path.join(top, name)
            info = os.lstat(full)
            rel = os.path.relpath(full, path)
            if stat.S_ISLNK(info.st_mode):
                entries.append([rel, "l", os.readlink(full)])
            elif stat.S_ISDIR(info.st_mode):
                entries.append([rel, "d", stat.S_IMODE(info.st_mode)])
            else:
                entries.append(
                    [rel, "f", info.st_size, info.st_mtime_ns, stat.S_IMODE(info.st_mode)]
                )
    return hashlib.sha256(json.dumps(entries).encode()).hexdigest()


def observe_packages(names: Sequence[str], runner: Runner = run) -> dict[str, str]:
    """Installed version of each Debian package ('absent' when not installed)."""
    found = {name: ABSENT for name in names}
    if not names:
        return found
    _, out = runner(
        ["dpkg-query", "-W", "-f", "${Package}\t${db:Status-Abbrev}\t${Version}\n", *names]
    )
    for line in out.splitlines():
        parts = line.split("\t")
        if len(parts) == 3 and parts[0] in found and parts[1].startswith("ii"):
            found[parts[0]] = parts[2]
    return found


def observe_service(name: str, runner: Runner = run) -> str:
    """'<active> <enabled>' as systemctl says them."""
    _, active = runner(["systemctl", "is-active", name])
    _, enabled = runner(["systemctl", "is-enabled", name])
    return f"{active.strip() or 'unknown'} {enabled.strip() or 'unknown'}"


class EngineAPI:
    """GET requests to the docker engine's API over its unix socket (the docker CLI may be absent:
    the sandbox host reaches its engine through the socket only)."""

    def __init__(self, socket_path: str = "/var/run/docker.sock") -> None:
        self.socket_path = socket_path

    def get(self, path: str) -> dict[str, Any] | None:
        """The JSON answer; None on 404 or when no engine answers."""
        import http.client
        import socket

        class _Connection(http.client.HTTPConnection):
            def connect(self_inner) -> None:
                self_inner.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self_inner.sock.settimeout(30)
                self_inner.sock.connect(self.socket_path)

        conn = _Connection("localhost")
        try:
            conn.request("GET", path)
            answer = conn.getresponse()
            body = answer.read()
        except OSError:
            return None
        finally:
            conn.close()
        if answer.status != 200:
            return None
        doc = json.loads(body)
        return doc if isinstance(doc, dict) else None


def _quoted(name: str) -> str:
    from urllib.parse import quote

    return quote(name, safe="")


def observe_container(name: str, api: EngineAPI) -> str:
    """The container's ID, image, whether it runs and when it started ('absent' when none):
    a recreated or restarted container observes differently."""
    doc = api.get(f"/containers/{_quoted(name)}/json")
    if not doc:
        return ABSENT
    state = doc.get("State") or {}
    return f"{doc.get('Id')} {doc.get('Image')} {state.get('Running')} {state.get('StartedAt')}"


def observe_image(ref: str, api: EngineAPI) -> str:
    doc = api.get(f"/images/{_quoted(ref)}/json")
    return str(doc.get("Id")) if doc else ABSENT


def observe_network(name: str, api: EngineAPI) -> str:
    doc = api.get(f"/networks/{_quoted(name)}")
    return str(doc.get("Id")) if doc else ABSENT


def observe_group(name: str, runner: Runner = run) -> str:
    """The group's members, sorted ('absent' when there is no such group)."""
    rc, out = runner(["getent", "group", name])
    if rc != 0 or not out.strip():
        return ABSENT
    members = out.strip().split(":")[-1]
    return ",".join(sorted(m for m in members.split(",") if m))


def observe(
    spec: Mapping[str, Sequence[str]], runner: Runner = run, api: EngineAPI | None = None
) -> dict[str, dict[str, str]]:
    """Every observation `spec` asks for: {kind: {name: observed}}."""
    api = api or EngineAPI()
    unknown = sorted(set(spec) - set(KINDS))
    if unknown:
        raise ValueError(
            f"unknown kind(s) of observation {', '.join(unknown)}; known: {', '.join(KINDS)}"
        )
    one: dict[str, Callable[[str], str]] = {
        "files": observe_file,
        "trees": observe_tree,
        "services": lambda n: observe_service(n, runner),
        "containers": lambda n: observe_container(n, api),
        "images": lambda n: observe_image(n, api),
        "networks": lambda n: observe_network(n, api),
        "groups": lambda n: observe_group(n, runner),
    }
    seen: dict[str, dict[str, str]] = {}
    for kind in KINDS:
        names = [str(n) for n in spec.get(kind) or []]
        if not names:
            continue
        seen[kind] = (
            observe_packages(names, runner)
            if kind == "packages"
            else {n: one[kind](n) for n in names}
        )
    return seen


def differences(
    recorded: Mapping[str, Mapping[str, str]], seen: Mapping[str, Mapping[str, str]]
) -> list[str]:
    """What differs between the recorded observation and this one, as 'kind name' strings."""
    out = []
    for kind in KINDS:
        before, now = recorded.get(kind) or {}, seen.get(kind) or {}
        out += [
            f"{kind[:-1]} {name}"
            for name in sorted(set(before) | set(now))
            if before.get(name) != now.get(name)
        ]
    return out


def compare(
    record: Mapping[str, Any] | None, inputs: str, seen: Mapping[str, Mapping[str, str]]
) -> tuple[bool, str]:
    """(converged, why): whether the host holds what the recorded run left, for these inputs."""
    if not record:
        return False, "no record of an earlier run of this role on the host"
    if record.get("inputs") != inputs:
        return (
            False,
            "the role's inputs changed (variables, the collection's code or control-node files)",
        )
    changed = differences(record.get("observed") or {}, seen)
    if changed:
        shown = ", ".join(changed[:4]) + (
            f" and {len(changed) - 4} more" if len(changed) > 4 else ""
        )
        return False, f"the host changed since the last run: {shown}"
    return True, f"nothing changed since the run of {record.get('at', 'an earlier run')}"


def read_record(path: str) -> dict[str, Any] | None:
    """The record at `path`; None when missing or not a JSON object (a damaged record re-runs)."""
    try:
        with open(path, encoding="utf-8") as handle:
            doc = json.load(handle)
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


def same_record(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> bool:
    """Whether writing `new` would change what `old` says (its time aside)."""
    strip = ("at",)
    return old is not None and {k: v for k, v in old.items() if k not in strip} == {
        k: v for k, v in new.items() if k not in strip
    }
