"""dltk.fleet: the fleet sandbox's inventory, the load balancer's runtime commands and `show stat`
parsing (data/haproxy_show_stat.txt: the answer of HAProxy 2.6 in dltk/haproxy to `show stat`,
its server still unresolved), and the traffic check's arithmetic."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from dltk.errors import DltkError
from dltk.fleet import inventory, lb_runtime, traffic

DATA = Path(__file__).parent / "data"


def test_host_names_and_distinct_ports() -> None:
    assert inventory.host_names(2) == ["dltk-fleet-1", "dltk-fleet-2"]
    assert inventory.host_ports(1) == {"triton_server_http_port": 18400,
                                       "triton_server_grpc_port": 18401,
                                       "triton_server_metrics_port": 18402}  # fmt: skip
    ports = [p for i in range(1, 9) for p in inventory.host_ports(i).values()]
    assert len(set(ports)) == len(ports)
    assert max(ports) < inventory.LB_HTTP_PORT < inventory.LB_GRPC_PORT


@pytest.mark.parametrize("count", [0, 9, -1])
def test_host_count_out_of_range(count: int) -> None:
    with pytest.raises(DltkError, match=f"--hosts {count}: choose 1 to 8"):
        inventory.host_names(count)


def test_inventory_groups_and_how_the_lb_reaches_each_host() -> None:
    inv = inventory.fleet_inventory(3)["all"]["children"]
    assert list(inv["sandbox"]["hosts"]) == ["dltk-fleet-1", "dltk-fleet-2", "dltk-fleet-3"]
    assert inv["sandbox"]["hosts"]["dltk-fleet-3"]["triton_server_http_port"] == 18420
    assert inv["sandbox"]["vars"]["triton_lb_server_address"] == "{{ dltk_triton_container }}"
    assert inv["sandbox"]["vars"]["triton_lb_server_network"] == "{{ dltk_triton_network }}"
    assert inv["sandbox"]["vars"]["triton_verify_perf"] is False
    # Rolling deploys drain the hosts there.
    assert inv["sandbox"]["vars"]["dltk_lb_host"] == inventory.LB_HOST
    lb = inv["triton_lb"]["hosts"]["dltk-fleet-lb"]
    assert lb["triton_lb_backend_group"] == "sandbox"
    assert (lb["triton_lb_http_port"], lb["triton_lb_grpc_port"]) == (18490, 18491)
    assert lb["ansible_connection"] == "local"
    assert lb["triton_lb_dir"] == "/srv/dltk-sandbox/dltk-fleet-lb"


def test_a_named_fleet_beside_the_default_one_shares_no_name_or_port() -> None:
    """A test's or a bench's fleet (--name, --base-port) must not collide with `make fleet`'s."""
    other = inventory.fleet_inventory(8, name="dltk-ci", base_port=18600)["all"]["children"]
    default = inventory.fleet_inventory(8)["all"]["children"]

    def names_and_ports(inv: dict) -> tuple[set, set]:
        hosts = inv["sandbox"]["hosts"]
        ((lb_name, lb),) = inv["triton_lb"]["hosts"].items()
        ports = {p for h in hosts.values() for p in h.values()}
        ports |= {lb["triton_lb_http_port"], lb["triton_lb_grpc_port"]}
        names = {*hosts, lb_name, lb["triton_lb_container_name"], lb["triton_lb_network"]}
        return names, ports

    names, ports = names_and_ports(other)
    assert not names & names_and_ports(default)[0]
    assert not ports & names_and_ports(default)[1]
    assert other["sandbox"]["vars"]["dltk_lb_host"] == "dltk-ci-lb"
    assert other["triton_lb"]["hosts"]["dltk-ci-lb"]["triton_lb_http_port"] == 18690
    assert other["sandbox"]["hosts"]["dltk-ci-2"]["triton_server_grpc_port"] == 18611


def test_write_inventory_links_the_project_group_vars(tmp_path: Path) -> None:
    group_vars = tmp_path / "project" / "group_vars"
    group_vars.mkdir(parents=True)
    out = inventory.write_inventory(2, tmp_path / "fleet" / "inventory.yml", group_vars)
    key_file = str((tmp_path / "fleet" / "triton-api-key").resolve())
    assert yaml.safe_load(out.read_text()) == inventory.fleet_inventory(2, key_file=key_file)
    assert (out.parent / "group_vars").resolve() == group_vars.resolve()
    inventory.write_inventory(1, out, group_vars)  # again: the link is replaced, not an error
    assert list(yaml.safe_load(out.read_text())["all"]["children"]["sandbox"]["hosts"]) == [
        "dltk-fleet-1"
    ]


def test_state_commands_cover_both_backends() -> None:
    assert lb_runtime.state_commands("dltk-fleet-2", "drain") == [
        "set server triton_http/dltk-fleet-2 state drain",
        "set server triton_grpc/dltk-fleet-2 state drain",
    ]
    assert lb_runtime.state_commands("a", "maint", ["b1"]) == ["set server b1/a state maint"]


@pytest.mark.parametrize(
    ("server", "state", "message"),
    [
        ("a", "down", "state 'down': choose one of ready, drain, maint"),
        ("", "drain", "server name '' is not a server name"),
        ("a; shutdown", "drain", "is not a server name"),
        ("a/b", "ready", "is not a server name"),
    ],
)
def test_state_commands_refuse_bad_input(server: str, state: str, message: str) -> None:
    with pytest.raises(DltkError, match=message):
        lb_runtime.state_commands(server, state)


def test_parse_show_stat_keeps_servers_only() -> None:
    stats = lb_runtime.parse_stat((DATA / "haproxy_show_stat.txt").read_text())
    assert stats == [
        lb_runtime.ServerStat("triton_http", "h1", "MAINT (resolution)", 0, ""),
        lb_runtime.ServerStat("triton_grpc", "h1", "MAINT (resolution)", 0, ""),
    ]


def test_parse_show_stat_refuses_another_answer() -> None:
    with pytest.raises(DltkError, match="not a `show stat` answer: .Unknown command"):
        lb_runtime.parse_stat("Unknown command: 'show stats'\n")


def test_zeros_inputs_from_metadata() -> None:
    meta = {"inputs": [{"name": "x", "datatype": "FP32", "shape": [-1, 1, 28, 28]},
                       {"name": "n", "datatype": "INT64", "shape": [3]}]}  # fmt: skip
    (x, n) = traffic.zeros_inputs(meta)
    assert (x[0], x[1], x[2], x[3].shape, str(x[3].dtype)) == (
        "x",
        [1, 1, 28, 28],
        "FP32",
        (1, 1, 28, 28),
        "float32",
    )
    assert (n[1], str(n[3].dtype), n[3].sum()) == ([3], "int64", 0)  # fmt: skip


def test_host_counts_and_unreached_hosts() -> None:
    counts = traffic.host_counts({"a": 10.0, "b": 3.0, "c": 0.0}, {"a": 30.0, "b": 3.0, "c": 1.0})
    assert [(c.host, c.delta) for c in counts] == [("a", 20), ("b", 0), ("c", 1)]
    assert traffic.unreached(counts) == ["b"]
    assert traffic.unreached(counts[:1]) == []


def test_the_fleet_shares_one_key_and_its_load_balancer_forwards_statistics() -> None:
    """perf_analyzer through the load balancer reads the statistics API, which tritonserver
    answers only with the key: every host gets the fleet's key, the LB forwards statistics."""
    inv = inventory.fleet_inventory(2, key_file="/x/fleet/triton-api-key")["all"]["children"]
    key = inv["sandbox"]["vars"]["triton_server_api_key"]
    assert key.startswith("{{ lookup('ansible.builtin.password', '/x/fleet/triton-api-key', ")
    assert "chars=['ascii_letters', 'digits']" in key
    lb = inv["triton_lb"]["hosts"]["dltk-fleet-lb"]
    assert "statistics" in lb["triton_lb_http_apis"] and "statistics" in lb["triton_lb_grpc_apis"]
    # Without a key file each host keeps its own key, as a one-host deploy does.
    assert (
        "triton_server_api_key"
        not in inventory.fleet_inventory(2)["all"]["children"]["sandbox"]["vars"]
    )
