"""The HAProxy runtime logic a rolling deploy waits on (scripts/dltk/fleet/haproxy_runtime.py,
shipped to Ansible as plugins/module_utils/dltk_haproxy_runtime.py) and the filters over it."""

from __future__ import annotations

from pathlib import Path

import pytest
from role_plugins import load_role_plugin

from dltk.fleet import haproxy_runtime as rt

REPO = Path(__file__).resolve().parents[2]
DATA = Path(__file__).parent / "data"
HEADER = (
    "# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,"
    "wredis,status,weight,act,bck,chkfail,chkdown,lastchg,downtime,qlimit,pid,iid,sid,throttle,"
    "lbtot,tracked,type,rate,rate_lim,rate_max,check_status\n"
)


def stat(*rows: tuple[str, str, int, int, str]) -> str:
    """A `show stat` answer with the columns read (backend, server, scur, stot, status); the
    frontends and backends' own rows as HAProxy prints them."""
    lines = [HEADER, "triton_http,FRONTEND,,,3,3,100,9,,,,,,,,,,OPEN,,,,,,,,,1,2,0,,,,,,,,\n"]
    for backend, server, scur, stot, status in rows:
        fields = [backend, server, "0", "0", str(scur), "4", "", str(stot)] + [""] * 9
        fields += [status] + [""] * 18 + ["L7OK"]
        lines.append(",".join(fields) + "\n")
    lines.append("triton_http,BACKEND,0,0,3,3,10,9,,,,,,,,,,UP,,,,,,,,,1,4,0,,,,,,,,\n")
    return "".join(lines)


def test_the_module_utils_file_is_this_module() -> None:
    shipped = REPO / "plugins" / "module_utils" / "dltk_haproxy_runtime.py"
    assert shipped.resolve() == Path(rt.__file__).resolve()


def test_a_draining_server_with_requests_in_flight_is_not_drained() -> None:
    text = stat(
        ("triton_http", "h1", 2, 50, "DRAIN"),
        ("triton_grpc", "h1", 1, 20, "DRAIN"),
        ("triton_http", "h2", 3, 70, "UP"),
        ("triton_grpc", "h2", 0, 20, "UP"),
    )
    h1 = rt.member_state(text, "h1", "drain")
    assert h1["found"] and h1["in_flight"] == 3 and not h1["drained"]
    assert not h1["done"] and not h1["settled"]
    assert h1["statuses"] == {"triton_http": "DRAIN", "triton_grpc": "DRAIN"}
    h2 = rt.member_state(text, "h2", "ready")
    assert h2["up"] and h2["done"] and h2["settled"] and h2["in_flight"] == 3


def test_drained_when_no_request_is_in_flight_in_either_backend() -> None:
    text = stat(("triton_http", "h1", 0, 50, "DRAIN"), ("triton_grpc", "h1", 0, 20, "DRAIN"))
    assert rt.member_state(text, "h1", "drain")["done"] is True
    # Drained is not up: the health checks must pass before it takes requests again.
    assert rt.member_state(text, "h1", "ready")["done"] is False


@pytest.mark.parametrize(
    ("statuses", "up"),
    [
        (("UP", "UP"), True),
        (("UP", "DOWN"), False),
        (("UP 1/2", "UP"), True),
        (("MAINT", "UP"), False),
    ],
)
def test_up_needs_every_backend_up(statuses: tuple[str, str], up: bool) -> None:
    text = stat(("triton_http", "h1", 0, 1, statuses[0]), ("triton_grpc", "h1", 0, 1, statuses[1]))
    assert rt.member_state(text, "h1", "ready")["done"] is up


def test_an_unknown_server_is_settled_but_not_done() -> None:
    """Waiting cannot make an unknown server appear: settled ends the wait, the assert fails."""
    text = stat(("triton_http", "h1", 0, 1, "UP"), ("triton_grpc", "h1", 0, 1, "UP"))
    other = rt.member_state(text, "h9", "drain")
    assert not other["found"] and not other["done"] and other["settled"]
    # A server in one backend only is not found either.
    half = rt.member_state(stat(("triton_http", "h1", 0, 1, "UP")), "h1", "ready")
    assert not half["found"] and half["settled"]


def test_the_real_haproxy_answer_parses() -> None:
    """HAProxy 2.6's own `show stat` (captured from the fleet sandbox's load balancer)."""
    state = rt.member_state((DATA / "haproxy_show_stat.txt").read_text(), "h1", "ready")
    assert state["found"] and not state["up"] and state["in_flight"] == 0


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="state 'up'"):
        rt.member_state(stat(), "h1", "up")
    with pytest.raises(ValueError, match="not a `show stat` answer"):
        rt.member_state("Unknown command\n", "h1")


def test_the_filters_give_the_socket_call_and_the_state() -> None:
    from ansible.errors import AnsibleFilterError

    filters = load_role_plugin("plugins/filter/triton_lb_runtime.py").FilterModule().filters()
    commands = filters["triton_lb_state_commands"]("h1", "drain")
    assert commands == [
        "set server triton_http/h1 state drain",
        "set server triton_grpc/h1 state drain",
    ]
    call = filters["triton_lb_runtime_call"](commands)
    assert call == {
        "argv": ["socat", "stdio", "/run/haproxy/admin.sock"],
        "stdin": "set server triton_http/h1 state drain; set server triton_grpc/h1 state drain",
    }
    assert filters["triton_lb_runtime_call"]("show stat")["stdin"] == "show stat"
    text = stat(("triton_http", "h1", 0, 1, "UP"), ("triton_grpc", "h1", 0, 1, "UP"))
    assert filters["triton_lb_member_state"](text, "h1", "ready")["done"] is True
    with pytest.raises(AnsibleFilterError, match="server name 'a b'"):
        filters["triton_lb_state_commands"]("a b", "drain")
    with pytest.raises(AnsibleFilterError, match="not a `show stat` answer"):
        filters["triton_lb_member_state"]("nope", "h1")


def test_the_config_filter_uses_the_same_socket_and_backend_names() -> None:
    config = load_role_plugin("plugins/filter/triton_lb_config.py")
    assert config.RUNTIME_SOCKET == rt.SOCKET
    assert tuple(config.BACKENDS.values()) == rt.BACKENDS
