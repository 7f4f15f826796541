"""HAProxy's runtime API in the triton_lb container: drain a server, put it back, read states.

The socket (/run/haproxy/admin.sock, level admin) lives inside the container only; commands
reach it through `docker exec <lb> socat stdio <socket>` on the load balancer host. A rolling
deploy drains a host in both backends (HTTP and gRPC) before touching its server:

    python -m dltk.fleet lb --container dltk-fleet-lb drain dltk-fleet-2
    python -m dltk.fleet lb --container dltk-fleet-lb servers

HAProxy's management guide, "Unix Socket commands": `set server <backend>/<server> state
[ready|drain|maint]`, `show servers state`, `show stat`.
"""

from __future__ import annotations

import csv
import io
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass

from dltk.errors import DltkError

SOCKET = "/run/haproxy/admin.sock"
BACKENDS = ("triton_http", "triton_grpc")
STATES = ("ready", "drain", "maint")


def state_commands(server: str, state: str, backends: Sequence[str] = BACKENDS) -> list[str]:
    """The runtime commands that set `server` to `state` in every backend."""
    if state not in STATES:
        raise DltkError(f"lb: state {state!r}: choose one of {', '.join(STATES)}")
    if not server or any(c in server for c in " ;/\n"):
        raise DltkError(f"lb: server name {server!r} is not a server name")
    return [f"set server {backend}/{server} state {state}" for backend in backends]


@dataclass(frozen=True)
class ServerStat:
    backend: str
    server: str
    status: str  # UP, DOWN, DRAIN, MAINT, "no check", ...
    sessions_total: int  # requests (HTTP) / streams (gRPC) sent to it (stot)
    check_status: str


def parse_stat(text: str) -> list[ServerStat]:
    """`show stat` CSV (its header starts with '# ') -> one row per server, not FRONTEND/BACKEND."""
    body = text.lstrip()
    if not body.startswith("# "):
        raise DltkError(f"lb: not a `show stat` answer: {text[:80]!r}")
    rows = csv.DictReader(io.StringIO(body[2:]))
    return [
        ServerStat(
            backend=row["pxname"],
            server=row["svname"],
            status=row["status"],
            sessions_total=int(row["stot"] or 0),
            check_status=row.get("check_status", ""),
        )
        for row in rows
        if row.get("svname") not in ("FRONTEND", "BACKEND", None)
    ]


def run(container: str, commands: Sequence[str], docker: str = "docker") -> str:
    """Send commands (one session, `;`-separated) to the runtime socket; HAProxy's answer."""
    proc = subprocess.run(
        [docker, "exec", "-i", container, "socat", "stdio", SOCKET],
        input="; ".join(commands) + "\n",
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise DltkError(f"lb: docker exec {container} failed: {proc.stderr.strip()}")
    # set server answers nothing on success, an error sentence otherwise.
    return proc.stdout


def set_state(container: str, server: str, state: str) -> None:
    answer = run(container, state_commands(server, state)).strip()
    if answer:
        raise DltkError(f"lb: {answer}")


def servers(container: str) -> list[ServerStat]:
    return parse_stat(run(container, ["show stat"]))
