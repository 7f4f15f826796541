"""triton_lb's derived values: the backend servers from the inventory and haproxy.cfg.

tasks/main.yml calls, once:
    _triton_lb_plan: "{{ {...role variables...} | dltk.deploy.triton_lb_plan }}"
and the default of triton_lb_servers is
    "{{ groups[triton_lb_backend_group] | default([]) | dltk.deploy.triton_lb_servers(hostvars) }}"

The plan holds `errors` (one line per bad input, asserted by tasks/preflight.yml), the servers
normalized, the docker networks the container joins and the whole haproxy.cfg text.

What the HTTP and gRPC frontends forward mirrors tritonserver's own API groups (Triton's
--http-restricted-api / --grpc-restricted-protocol names: health, metadata, model-config,
inference, and statistics when asked for): an allow-list per group, everything else answered 403
by the load balancer. statistics is one of the APIs triton_server restricts to the deployment's
key: forwarding it lets a client holding the key (perf_analyzer reads it for every measurement)
measure the fleet through the load balancer; tritonserver still refuses it without the key.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from ansible_collections.dltk.deploy.plugins.module_utils.dltk_haproxy_runtime import (
    BACKENDS as RUNTIME_BACKENDS,
)
from ansible_collections.dltk.deploy.plugins.module_utils.dltk_haproxy_runtime import SOCKET

# Ports the container listens on (published on the LB host as triton_lb_http_port/_grpc_port).
LISTEN = {"http": 8000, "grpc": 8001}
# The admin socket and the backends' names: one home, shared with the runtime filter and dltk.fleet.
RUNTIME_SOCKET = SOCKET
HEALTH_URI = "/v2/health/ready"
BACKENDS = dict(zip(("http", "grpc"), RUNTIME_BACKENDS, strict=True))

_MODEL = r"/v2/models/[^/]+(/versions/[0-9]+)?"
# HTTP: (methods, path regexes) per API group of Triton's KServe v2 endpoints.
HTTP_APIS: dict[str, tuple[str, list[str]]] = {
    "health": ("GET HEAD", [r"^/v2/health/(live|ready)$", rf"^{_MODEL}/ready$"]),
    "metadata": ("GET HEAD", [r"^/v2$", rf"^{_MODEL}$"]),
    "model-config": ("GET HEAD", [rf"^{_MODEL}/config$"]),
    "inference": ("POST", [rf"^{_MODEL}/(infer|generate|generate_stream)$"]),
    "statistics": ("GET HEAD", [r"^/v2/models/stats$", rf"^{_MODEL}/stats$"]),
}
# GET /v2/models/stats is the statistics API, though it matches the metadata pattern (a model
# named "stats"): refused by every group's allow rule but the statistics group's.
HTTP_ALWAYS_DENIED = ["/v2/models/stats"]
# gRPC: the methods of inference.GRPCInferenceService per group (grpc_service.proto), and the
# standard health service Triton also serves.
GRPC_SERVICE = "/inference.GRPCInferenceService/"
GRPC_APIS: dict[str, list[str]] = {
    "health": [
        f"{GRPC_SERVICE}ServerLive",
        f"{GRPC_SERVICE}ServerReady",
        f"{GRPC_SERVICE}ModelReady",
        "/grpc.health.v1.Health/Check",
    ],
    "metadata": [f"{GRPC_SERVICE}ServerMetadata", f"{GRPC_SERVICE}ModelMetadata"],
    "model-config": [f"{GRPC_SERVICE}ModelConfig"],
    "inference": [f"{GRPC_SERVICE}ModelInfer", f"{GRPC_SERVICE}ModelStreamInfer"],
    "statistics": [f"{GRPC_SERVICE}ModelStatistics"],
}
_NAME = re.compile(r"^[A-Za-z0-9_.:-]+$")
_IPV4 = re.compile(r"^(\d{1,3}\.){3}\d{1,3}$")


def triton_lb_servers(hosts: Sequence[str], hostvars: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One backend server per inventory host, from the host's own triton_lb_server_* variables:
    address (default ansible_host, else the host's name), http_port (8000), grpc_port (8001),
    network (the docker network the load balancer joins to reach it; '' for none)."""
    servers = []
    for host in hosts:
        hv = hostvars.get(host) or {}
        address = hv.get("triton_lb_server_address") or hv.get("ansible_host") or host
        servers.append(
            {
                "name": host,
                "address": str(address),
                "http_port": hv.get("triton_lb_server_http_port", LISTEN["http"]),
                "grpc_port": hv.get("triton_lb_server_grpc_port", LISTEN["grpc"]),
                "network": str(hv.get("triton_lb_server_network") or ""),
            }
        )
    return servers


def _port(value: Any) -> int | None:
    try:
        port = int(value)
    except (TypeError, ValueError):
        return None
    return port if 1 <= port <= 65535 else None


def _errors(v: Mapping[str, Any], servers: Sequence[Mapping[str, Any]]) -> list[str]:
    errors = []
    if not servers:
        errors.append(
            "no backend server: list the Triton hosts in the group triton_lb_backend_group "
            f"({v.get('backend_group')!r}) or set triton_lb_servers"
        )
    names = [str(s.get("name", "")) for s in servers]
    for server in servers:
        name = str(server.get("name", ""))
        if not _NAME.match(name):
            errors.append(f"server name {name!r}: use letters, digits and . _ : - only")
        if not str(server.get("address", "")).strip():
            errors.append(f"server {name}: empty address")
        for key in ("http_port", "grpc_port"):
            if _port(server.get(key)) is None:
                errors.append(f"server {name}: {key} {server.get(key)!r} is not a port in 1-65535")
    errors += [f"server name {n!r} appears more than once" for n in sorted(set(names))
               if names.count(n) > 1]  # fmt: skip
    published = [_port(v.get("http_port")), _port(v.get("grpc_port"))]
    if None in published or published[0] == published[1]:
        errors.append(
            "triton_lb_http_port and triton_lb_grpc_port must be two different ports in 1-65535 "
            f"(got {v.get('http_port')!r}, {v.get('grpc_port')!r})"
        )
    if not _IPV4.match(str(v.get("bind_address", ""))):
        errors.append(f"triton_lb_bind_address {v.get('bind_address')!r} is not an IPv4 address")
    unknown = sorted(set(v.get("http_apis") or []) - set(HTTP_APIS))
    unknown += sorted(set(v.get("grpc_apis") or []) - set(GRPC_APIS))
    if unknown:
        errors.append(f"unknown API group(s) {unknown}: choose from {sorted(HTTP_APIS)}")
    if "health" not in (v.get("http_apis") or []):
        errors.append("triton_lb_http_apis must include health (clients and checks need it)")
    return errors


def _http_rules(apis: Sequence[str]) -> list[str]:
    lines = [f"    acl denied_path path {' '.join(HTTP_ALWAYS_DENIED)}"]
    allows = []
    for api in [a for a in HTTP_APIS if a in apis]:
        methods, paths = HTTP_APIS[api]
        acl = api.replace("-", "_")
        lines.append(f"    acl {acl}_path path_reg {' '.join(paths)}")
        lines.append(f"    acl {acl}_method method {methods}")
        unless = "" if api == "statistics" else " !denied_path"
        allows.append(f"    http-request allow if {acl}_method {acl}_path{unless}")
    return [
        *lines,
        *allows,
        "    http-request deny deny_status 403",
    ]


def _grpc_rules(apis: Sequence[str]) -> list[str]:
    methods = [m for a in GRPC_APIS if a in apis for m in GRPC_APIS[a]]
    if not methods:
        return ["    http-request deny deny_status 403"]
    return [
        f"    acl grpc_allowed path {' '.join(methods)}",
        "    http-request deny deny_status 403 unless grpc_allowed",
    ]


def _backend(kind: str, v: Mapping[str, Any], servers: Sequence[Mapping[str, Any]]) -> list[str]:
    fall, rise = int(v["check_fall"]), int(v["check_rise"])
    check = f"check inter {v['check_interval']} fall {fall} rise {rise}"
    lines = [
        f"backend {BACKENDS[kind]}",
        f"    balance {v['balance']}",
        "    option httpchk",
        f"    http-check send meth GET uri {HEALTH_URI} ver HTTP/1.1 hdr Host triton",
        "    http-check expect status 200",
    ]
    if v.get("docker_dns"):
        # Names of containers resolve through docker's embedded DNS, again at run time (a
        # recreated tritonserver gets a new address); a name that does not resolve yet leaves
        # the server down instead of failing the start.
        lines.append("    default-server init-addr last,libc,none resolvers docker")
    for s in servers:
        if kind == "http":
            lines.append(f"    server {s['name']} {s['address']}:{int(s['http_port'])} {check}")
        else:
            # gRPC is HTTP/2 cleartext to Triton; the check asks the HTTP port with HTTP/1.1.
            lines.append(
                f"    server {s['name']} {s['address']}:{int(s['grpc_port'])} proto h2 {check}"
                f" port {int(s['http_port'])} check-proto h1"
            )
    return lines


def render_config(v: Mapping[str, Any], servers: Sequence[Mapping[str, Any]]) -> str:
    """haproxy.cfg for the servers (already validated)."""
    lines = [
        "# Rendered by the triton_lb role (dltk.deploy): do not edit, re-run the role.",
        "global",
        "    log stdout format raw local0 info",
        f"    maxconn {int(v['maxconn'])}",
        # The runtime API: drain/maint a server, read its state (README: "Draining a server").
        f"    stats socket {RUNTIME_SOCKET} mode 600 level admin expose-fd listeners",
        "    stats timeout 30s",
        "",
        "defaults",
        "    mode http",
        "    log global",
        "    option httplog",
        "    option dontlog-normal",
        f"    timeout connect {v['timeout_connect']}",
        f"    timeout client {v['timeout_client']}",
        f"    timeout server {v['timeout_server']}",
        "    timeout http-request 10s",
        "    timeout http-keep-alive 10s",
        "",
    ]
    if v.get("docker_dns"):
        lines += [
            "resolvers docker",
            "    nameserver dns 127.0.0.11:53",
            "    hold valid 10s",
            "",
        ]
    lines += [
        "frontend triton_http",
        f"    bind :{LISTEN['http']}",
        *_http_rules(v.get("http_apis") or []),
        f"    default_backend {BACKENDS['http']}",
        "",
        "frontend triton_grpc",
        f"    bind :{LISTEN['grpc']} proto h2",
        *_grpc_rules(v.get("grpc_apis") or []),
        f"    default_backend {BACKENDS['grpc']}",
        "",
        *_backend("http", v, servers),
        "",
        *_backend("grpc", v, servers),
    ]
    return "\n".join(lines) + "\n"


def triton_lb_plan(v: Mapping[str, Any]) -> dict[str, Any]:
    """Everything the role derives from its variables.

    v: servers, backend_group, http_port, grpc_port, bind_address, http_apis, grpc_apis, balance,
    check_interval, check_fall, check_rise, timeout_connect, timeout_client, timeout_server,
    maxconn, docker_dns, network (the load balancer's own docker network)."""
    servers = list(v.get("servers") or [])
    errors = _errors(v, servers)
    networks = [v["network"]] if v.get("network") else []
    bind = v.get("bind_address")
    ready_host = "127.0.0.1" if bind == "0.0.0.0" else bind
    for s in servers:
        if s.get("network") and s["network"] not in networks:
            networks.append(s["network"])
    return {
        "errors": errors,
        "servers": servers,
        "networks": networks,
        "container_networks": [{"name": n} for n in networks],
        "config": "" if errors else render_config(v, servers),
        "published": [
            f"{v.get('bind_address')}:{v.get('http_port')}:{LISTEN['http']}",
            f"{v.get('bind_address')}:{v.get('grpc_port')}:{LISTEN['grpc']}",
        ],
        # Where the role (and you, on the LB host) asks the LB itself for readiness.
        "ready_url": f"http://{ready_host}:{v.get('http_port')}{HEALTH_URI}",
        "runtime_socket": RUNTIME_SOCKET,
        "backends": dict(BACKENDS),
    }


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"triton_lb_plan": triton_lb_plan, "triton_lb_servers": triton_lb_servers}
