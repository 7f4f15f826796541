"""The load balancer's runtime API for a rolling deploy (roles/triton_lb/tasks/member.yml): the
input sent to HAProxy's admin socket to drain a server or put it back, and what `show stat` says
about it. The logic is scripts/dltk/fleet/haproxy_runtime.py (module_utils/dltk_haproxy_runtime.py
is a symlink to it), shared with `python -m dltk.fleet lb`.
"""

from __future__ import annotations

from typing import Any

from ansible.errors import AnsibleFilterError
from ansible_collections.dltk.deploy.plugins.module_utils.dltk_haproxy_runtime import (
    SOCKET,
    member_state,
    state_commands,
)


def triton_lb_runtime_call(commands: str | list[str]) -> dict[str, Any]:
    """{argv, stdin} of one session on the admin socket inside the container: COMMANDS (a list,
    or 'show stat'), ';'-separated on one line."""
    lines = [commands] if isinstance(commands, str) else [str(c) for c in commands]
    return {"argv": ["socat", "stdio", SOCKET], "stdin": "; ".join(lines)}


def triton_lb_state_commands(server: str, state: str) -> list[str]:
    """The commands that set SERVER to STATE (drain, ready, maint) in both backends."""
    try:
        return state_commands(str(server), str(state))
    except ValueError as exc:
        raise AnsibleFilterError(str(exc)) from None


def triton_lb_member_state(stat_text: str, server: str, state: str = "") -> dict[str, Any]:
    """found, drained, up, in_flight and statuses of SERVER in `show stat`'s answer; with STATE
    (drain, ready) also done and settled."""
    try:
        return member_state(str(stat_text), str(server), str(state))
    except ValueError as exc:
        raise AnsibleFilterError(str(exc)) from None


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {
            "triton_lb_runtime_call": triton_lb_runtime_call,
            "triton_lb_state_commands": triton_lb_state_commands,
            "triton_lb_member_state": triton_lb_member_state,
        }
