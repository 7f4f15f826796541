"""HAProxy's runtime API, the parts a rolling deploy needs (stdlib only: the collection's filter
plugins ship this very file as plugins/module_utils/dltk_haproxy_runtime.py, and dltk.fleet
imports it).

HAProxy's management guide, "Unix Socket commands": `set server <backend>/<server> state
ready|drain|maint` (drain: no new request goes to the server, those in flight finish),
`show stat` (CSV, header line starting with '# '; scur is a server's current sessions, i.e. the
requests (HTTP) or streams (gRPC) it is serving now).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass

SOCKET = "/run/haproxy/admin.sock"
BACKENDS = ("triton_http", "triton_grpc")
STATES = ("ready", "drain", "maint")
_BAD_NAME_CHARS = " ;/\n"


def state_commands(server: str, state: str, backends: Sequence[str] = BACKENDS) -> list[str]:
    """The runtime commands that set `server` to `state` in every backend (ValueError on bad
    input: the names go into a command line of the admin socket)."""
    if state not in STATES:
        raise ValueError(f"lb: state {state!r}: choose one of {', '.join(STATES)}")
    if not server or any(c in server for c in _BAD_NAME_CHARS):
        raise ValueError(f"lb: server name {server!r} is not a server name")
    return [f"set server {backend}/{server} state {state}" for backend in backends]


@dataclass(frozen=True)
class ServerStat:
    backend: str
    server: str
    status: str  # UP, DOWN, DRAIN, MAINT, "no check", ...
    sessions_total: int  # requests (HTTP) / streams (gRPC) sent to it (stot)
    check_status: str
    sessions_now: int = 0  # requests / streams it is serving now (scur)


def parse_stat(text: str) -> list[ServerStat]:
    """`show stat` CSV -> one row per server, not FRONTEND/BACKEND (ValueError otherwise)."""
    body = text.lstrip()
    if not body.startswith("# "):
        raise ValueError(f"lb: not a `show stat` answer: {text[:80]!r}")
    rows = csv.DictReader(io.StringIO(body[2:]))
    return [
        ServerStat(
            backend=row["pxname"],
            server=row["svname"],
            status=row["status"],
            sessions_total=int(row["stot"] or 0),
            check_status=row.get("check_status") or "",
            sessions_now=int(row.get("scur") or 0),
        )
        for row in rows
        if row.get("svname") not in ("FRONTEND", "BACKEND", None)
    ]


GOALS = {"drain": "drained", "ready": "up"}


def member_state(
    text: str, server: str, state: str = "", backends: Sequence[str] = BACKENDS
) -> dict[str, object]:
    """What a rolling deploy waits on, for `server` in every backend: found, drained (no request
    in flight), up (every backend reports it UP), in_flight, statuses; with STATE (drain, ready)
    also done (found and drained / up) and settled (done, or the server is unknown: waiting
    longer cannot help)."""
    rows = [s for s in parse_stat(text) if s.server == server and s.backend in backends]
    statuses = {s.backend: s.status for s in rows}
    in_flight = sum(s.sessions_now for s in rows)
    found = sorted(statuses) == sorted(backends)
    answer: dict[str, object] = {
        "found": found,
        "drained": found and in_flight == 0,
        "up": found and all(s.status.startswith("UP") for s in rows),
        "in_flight": in_flight,
        "statuses": statuses,
    }
    if state:
        if state not in GOALS:
            raise ValueError(f"lb: state {state!r}: choose one of {', '.join(GOALS)}")
        answer["done"] = bool(answer[GOALS[state]])
        answer["settled"] = answer["done"] or not found
    return answer
