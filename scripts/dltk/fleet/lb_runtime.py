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

import subprocess
from collections.abc import Sequence

from dltk.errors import DltkError
from dltk.fleet import haproxy_runtime
from dltk.fleet.haproxy_runtime import BACKENDS, SOCKET, STATES, ServerStat

__all__ = ["BACKENDS", "SOCKET", "STATES", "ServerStat", "parse_stat", "state_commands"]


def state_commands(server: str, state: str, backends: Sequence[str] = BACKENDS) -> list[str]:
    """The runtime commands that set `server` to `state` in every backend."""
    try:
        return haproxy_runtime.state_commands(server, state, backends)
    except ValueError as exc:
        raise DltkError(str(exc)) from None


def parse_stat(text: str) -> list[ServerStat]:
    """`show stat` CSV (its header starts with '# ') -> one row per server, not FRONTEND/BACKEND."""
    try:
        return haproxy_runtime.parse_stat(text)
    except ValueError as exc:
        raise DltkError(str(exc)) from None


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
