"""triton_lb's filter (plugins/filter/triton_lb_config.py): the backend servers read from the
inventory, the errors the preflight asserts, the docker networks, and haproxy.cfg line by line
(tests/integration/test_triton_lb.py runs the same file in HAProxy against real tritonservers)."""

from __future__ import annotations

import re

import pytest
from role_plugins import load_role_plugin

lb = load_role_plugin("plugins/filter/triton_lb_config.py")

APIS = ["health", "metadata", "model-config", "inference"]
SERVERS = [
    {"name": "gpu-01", "address": "gpu-01-tritonserver", "http_port": 8000, "grpc_port": 8001,
     "network": "gpu-01-net"},
    {"name": "gpu-02", "address": "10.0.0.2", "http_port": "18000", "grpc_port": 18001,
     "network": ""},
]  # fmt: skip
VARS = {
    "servers": SERVERS,
    "backend_group": "triton",
    "http_port": 8000,
    "grpc_port": "8001",
    "bind_address": "127.0.0.1",
    "http_apis": APIS,
    "grpc_apis": APIS,
    "balance": "roundrobin",
    "check_interval": "2s",
    "check_fall": 2,
    "check_rise": "3",
    "timeout_connect": "5s",
    "timeout_client": "300s",
    "timeout_server": "301s",
    "maxconn": 4096,
    "docker_dns": True,
    "network": "triton-lb",
}


def plan(**changes):
    return lb.triton_lb_plan({**VARS, **changes})


def section(config: str, header: str) -> list[str]:
    """The lines of one section of haproxy.cfg (up to the next blank line)."""
    lines = config.splitlines()
    start = lines.index(header)
    end = lines.index("", start) if "" in lines[start:] else len(lines)
    return lines[start + 1 : end]


def allowed(config: str, method: str, path: str) -> bool:
    """Evaluate the HTTP frontend's rules as HAProxy does, for one request (first match wins)."""
    acls: dict[str, bool] = {}
    for line in section(config, "frontend triton_http"):
        words = line.split()
        if words[0] == "acl":
            name, kind, values = words[1], words[2], words[3:]
            if kind == "path":
                acls[name] = path in values
            elif kind == "path_reg":
                acls[name] = any(re.search(v, path) for v in values)
            elif kind == "method":
                acls[name] = method in values
            else:
                raise AssertionError(line)
        elif words[:2] == ["http-request", "allow"]:
            conds = words[3:]
            if all(not acls[c[1:]] if c.startswith("!") else acls[c] for c in conds):
                return True
        elif words[:2] == ["http-request", "deny"]:
            return False
    raise AssertionError("no final rule")


def test_servers_from_the_inventory_hosts_own_variables() -> None:
    hostvars = {
        "a": {"triton_lb_server_address": "a-tritonserver", "triton_lb_server_http_port": 18000,
              "triton_lb_server_grpc_port": 18001, "triton_lb_server_network": "a-net"},
        "b": {"ansible_host": "10.1.1.2"},
        "c": {},
    }  # fmt: skip
    assert lb.triton_lb_servers(["a", "b", "c"], hostvars) == [
        {"name": "a", "address": "a-tritonserver", "http_port": 18000, "grpc_port": 18001,
         "network": "a-net"},
        {"name": "b", "address": "10.1.1.2", "http_port": 8000, "grpc_port": 8001, "network": ""},
        {"name": "c", "address": "c", "http_port": 8000, "grpc_port": 8001, "network": ""},
    ]  # fmt: skip
    assert lb.triton_lb_servers([], hostvars) == []
    assert lb.triton_lb_servers(["missing"], {})[0]["address"] == "missing"


def test_valid_input_has_no_errors_and_every_backend_server() -> None:
    p = plan()
    assert p["errors"] == []
    assert p["networks"] == ["triton-lb", "gpu-01-net"]
    assert p["container_networks"] == [{"name": "triton-lb"}, {"name": "gpu-01-net"}]
    assert p["published"] == ["127.0.0.1:8000:8000", "127.0.0.1:8001:8001"]
    assert p["ready_url"] == "http://127.0.0.1:8000/v2/health/ready"
    assert p["runtime_socket"] == "/run/haproxy/admin.sock"
    assert p["backends"] == {"http": "triton_http", "grpc": "triton_grpc"}


def test_networks_without_an_own_network_and_duplicates_once() -> None:
    servers = [dict(SERVERS[0]), {**SERVERS[1], "name": "gpu-03", "network": "gpu-01-net"}]
    assert plan(servers=servers, network="")["networks"] == ["gpu-01-net"]


def test_ready_url_of_a_wildcard_bind_asks_loopback() -> None:
    p = plan(bind_address="0.0.0.0", http_port=9000)
    assert p["ready_url"] == "http://127.0.0.1:9000/v2/health/ready"
    assert p["published"][0] == "0.0.0.0:9000:8000"
    assert plan(bind_address="10.0.0.5")["ready_url"].startswith("http://10.0.0.5:8000/")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"servers": []}, "no backend server: list the Triton hosts in the group "
                          "triton_lb_backend_group ('triton') or set triton_lb_servers"),
        ({"servers": [{**SERVERS[0], "name": "bad name"}]},
         "server name 'bad name': use letters, digits and . _ : - only"),
        ({"servers": [{**SERVERS[0], "address": " "}]}, "server gpu-01: empty address"),
        ({"servers": [{**SERVERS[0], "http_port": 0}]},
         "server gpu-01: http_port 0 is not a port in 1-65535"),
        ({"servers": [{**SERVERS[0], "grpc_port": "x"}]},
         "server gpu-01: grpc_port 'x' is not a port in 1-65535"),
        ({"servers": [{**SERVERS[0], "grpc_port": 65536}]},
         "server gpu-01: grpc_port 65536 is not a port in 1-65535"),
        ({"servers": [SERVERS[0], SERVERS[0]]}, "server name 'gpu-01' appears more than once"),
        ({"grpc_port": 8000}, "triton_lb_http_port and triton_lb_grpc_port must be two different "
                              "ports in 1-65535 (got 8000, 8000)"),
        ({"http_port": None}, "triton_lb_http_port and triton_lb_grpc_port must be two different "
                              "ports in 1-65535 (got None, '8001')"),
        ({"bind_address": "localhost"},
         "triton_lb_bind_address 'localhost' is not an IPv4 address"),
        ({"http_apis": [*APIS, "logging"]},
         "unknown API group(s) ['logging']: choose from ['health', 'inference', 'metadata', "
         "'model-config', 'statistics']"),
        ({"grpc_apis": ["trace"]}, "unknown API group(s) ['trace']"),
        ({"http_apis": ["inference"]},
         "triton_lb_http_apis must include health (clients and checks need it)"),
    ],
)  # fmt: skip
def test_bad_input_is_one_error_each_and_no_config(changes: dict, message: str) -> None:
    p = plan(**changes)
    assert len(p["errors"]) == 1, p["errors"]
    assert p["errors"][0].startswith(message)
    assert p["config"] == ""


def test_global_defaults_and_the_runtime_socket() -> None:
    config = plan()["config"]
    assert config.startswith("# Rendered by the triton_lb role")
    assert section(config, "global") == [
        "    log stdout format raw local0 info",
        "    maxconn 4096",
        "    stats socket /run/haproxy/admin.sock mode 600 level admin expose-fd listeners",
        "    stats timeout 30s",
    ]
    d = section(config, "defaults")
    assert "    mode http" in d
    assert "    timeout connect 5s" in d
    assert "    timeout client 300s" in d
    assert "    timeout server 301s" in d


def test_docker_dns_resolvers_and_runtime_resolution() -> None:
    config = plan()["config"]
    assert section(config, "resolvers docker") == [
        "    nameserver dns 127.0.0.11:53",
        "    hold valid 10s",
    ]
    for backend in ("backend triton_http", "backend triton_grpc"):
        assert "    default-server init-addr last,libc,none resolvers docker" in section(
            config, backend
        )
    plain = plan(docker_dns=False)["config"]
    assert "resolvers" not in plain
    assert "init-addr" not in plain


def test_http_backend_checks_ready_on_every_server() -> None:
    lines = section(plan()["config"], "backend triton_http")
    assert lines[:4] == [
        "    balance roundrobin",
        "    option httpchk",
        "    http-check send meth GET uri /v2/health/ready ver HTTP/1.1 hdr Host triton",
        "    http-check expect status 200",
    ]
    assert lines[-2:] == [
        "    server gpu-01 gpu-01-tritonserver:8000 check inter 2s fall 2 rise 3",
        "    server gpu-02 10.0.0.2:18000 check inter 2s fall 2 rise 3",
    ]


def test_grpc_backend_is_h2_checked_over_http1_on_the_http_port() -> None:
    lines = section(plan(balance="leastconn")["config"], "backend triton_grpc")
    assert lines[0] == "    balance leastconn"
    assert lines[-2:] == [
        "    server gpu-01 gpu-01-tritonserver:8001 proto h2 check inter 2s fall 2 rise 3"
        " port 8000 check-proto h1",
        "    server gpu-02 10.0.0.2:18001 proto h2 check inter 2s fall 2 rise 3"
        " port 18000 check-proto h1",
    ]


def test_frontends_listen_on_the_container_ports() -> None:
    config = plan()["config"]
    http = section(config, "frontend triton_http")
    grpc = section(config, "frontend triton_grpc")
    assert http[0] == "    bind :8000"
    assert http[-1] == "    default_backend triton_http"
    assert grpc[0] == "    bind :8001 proto h2"
    assert grpc[-1] == "    default_backend triton_grpc"


@pytest.mark.parametrize(
    ("method", "path", "ok"),
    [
        ("GET", "/v2/health/ready", True),
        ("GET", "/v2/health/live", True),
        ("HEAD", "/v2/health/ready", True),
        ("GET", "/v2/models/mnist/ready", True),
        ("GET", "/v2/models/mnist/versions/3/ready", True),
        ("GET", "/v2", True),
        ("GET", "/v2/models/mnist", True),
        ("GET", "/v2/models/mnist/versions/1", True),
        ("GET", "/v2/models/mnist/config", True),
        ("POST", "/v2/models/mnist/infer", True),
        ("POST", "/v2/models/mnist/versions/2/infer", True),
        ("POST", "/v2/models/llm/generate", True),
        ("POST", "/v2/models/llm/generate_stream", True),
        # refused: other APIs, wrong methods, look-alikes
        ("GET", "/v2/models/stats", False),
        ("GET", "/v2/models/mnist/stats", False),
        ("GET", "/v2/models/mnist/versions/1/stats", False),
        ("POST", "/v2/repository/index", False),
        ("POST", "/v2/repository/models/mnist/load", False),
        ("POST", "/v2/repository/models/mnist/unload", False),
        ("GET", "/v2/systemsharedmemory/status", False),
        ("POST", "/v2/systemsharedmemory/region/r/register", False),
        ("GET", "/v2/cudasharedmemory/status", False),
        ("GET", "/v2/trace/setting", False),
        ("POST", "/v2/models/mnist/trace/setting", False),
        ("GET", "/v2/logging", False),
        ("GET", "/metrics", False),
        ("GET", "/", False),
        ("GET", "/v2/models/mnist/infer", False),
        ("POST", "/v2/health/ready", False),
        ("POST", "/v2/models/mnist/config", False),
        ("DELETE", "/v2/models/mnist", False),
        ("GET", "//v2/health/ready", False),
        ("GET", "/v2/health/ready/x", False),
        ("GET", "/v2/health/readyz", False),
        ("GET", "/v2/models/mnist/versions/x/ready", False),
        ("GET", "/v3/health/ready", False),
    ],
)
def test_http_frontend_forwards_only_the_open_api_groups(method: str, path: str, ok: bool) -> None:
    assert allowed(plan()["config"], method, path) is ok


@pytest.mark.parametrize(
    ("apis", "method", "path", "ok"),
    [
        (["health"], "GET", "/v2/health/ready", True),
        (["health"], "POST", "/v2/models/mnist/infer", False),
        (["health"], "GET", "/v2/models/mnist", False),
        (["health", "inference"], "POST", "/v2/models/mnist/infer", True),
        (["health", "inference"], "GET", "/v2/models/mnist/config", False),
        (["health", "model-config"], "GET", "/v2/models/mnist/config", True),
        (["health", "metadata"], "GET", "/v2/models/stats", False),
        # statistics only when asked for (tritonserver still wants the key for it)
        (["health", "statistics"], "GET", "/v2/models/stats", True),
        (["health", "statistics"], "GET", "/v2/models/mnist/stats", True),
        (["health", "statistics"], "GET", "/v2/models/mnist/versions/1/stats", True),
        (["health", "statistics"], "POST", "/v2/models/mnist/stats", False),
        (["health", "statistics"], "GET", "/v2/models/mnist", False),
        ([*APIS, "statistics"], "GET", "/v2/models/mnist", True),
        ([*APIS, "statistics"], "POST", "/v2/repository/index", False),
    ],
)
def test_http_frontend_follows_the_chosen_groups(
    apis: list[str], method: str, path: str, ok: bool
) -> None:
    assert allowed(plan(http_apis=apis)["config"], method, path) is ok


def grpc_allowed(config: str) -> list[str]:
    lines = section(config, "frontend triton_grpc")
    acl = [line.split()[3:] for line in lines if line.startswith("    acl grpc_allowed path")]
    return acl[0] if acl else []


def test_grpc_frontend_forwards_only_the_open_methods() -> None:
    config = plan()["config"]
    service = "/inference.GRPCInferenceService/"
    assert grpc_allowed(config) == [
        f"{service}ServerLive", f"{service}ServerReady", f"{service}ModelReady",
        "/grpc.health.v1.Health/Check",
        f"{service}ServerMetadata", f"{service}ModelMetadata",
        f"{service}ModelConfig",
        f"{service}ModelInfer", f"{service}ModelStreamInfer",
    ]  # fmt: skip
    assert "    http-request deny deny_status 403 unless grpc_allowed" in section(
        config, "frontend triton_grpc"
    )
    for method in ("RepositoryIndex", "RepositoryModelLoad", "ModelStatistics", "LogSettings",
                   "SystemSharedMemoryRegister", "TraceSetting"):  # fmt: skip
        assert f"{service}{method}" not in config


def test_grpc_frontend_forwards_statistics_only_when_asked_for() -> None:
    service = "/inference.GRPCInferenceService/"
    assert f"{service}ModelStatistics" in grpc_allowed(
        plan(grpc_apis=[*APIS, "statistics"])["config"]
    )
    assert f"{service}ModelStatistics" not in grpc_allowed(plan()["config"])


def test_grpc_frontend_with_fewer_groups_and_with_none() -> None:
    only = grpc_allowed(plan(grpc_apis=["inference"])["config"])
    assert only == [
        "/inference.GRPCInferenceService/ModelInfer",
        "/inference.GRPCInferenceService/ModelStreamInfer",
    ]
    none = section(plan(grpc_apis=[])["config"], "frontend triton_grpc")
    assert none == [
        "    bind :8001 proto h2",
        "    http-request deny deny_status 403",
        "    default_backend triton_grpc",
    ]


def test_filters_are_registered() -> None:
    assert set(lb.FilterModule().filters()) == {"triton_lb_plan", "triton_lb_servers"}
