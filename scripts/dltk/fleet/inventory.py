"""The fleet sandbox's inventory (make fleet): N sandbox hosts with distinct loopback ports and
the load balancer host (the control node itself, its HAProxy a container on the same engine)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from dltk.errors import DltkError

MAX_HOSTS = 8
# The default fleet (make fleet); a test or a bench names its own so that fleets do not collide.
NAME = "dltk-fleet"
BASE_PORT = 18400  # host i: BASE + 10 * (i - 1) + {0 http, 1 grpc, 2 metrics}; the LB: +90, +91
LB_HTTP_PORT = BASE_PORT + 90
LB_GRPC_PORT = BASE_PORT + 91
LB_HOST = f"{NAME}-lb"


def lb_host(name: str = NAME) -> str:
    return f"{name}-lb"


def lb_ports(base_port: int = BASE_PORT) -> tuple[int, int]:
    """The load balancer's HTTP and gRPC ports."""
    return base_port + 90, base_port + 91


def host_names(count: int, name: str = NAME) -> list[str]:
    if not 1 <= count <= MAX_HOSTS:
        raise DltkError(f"fleet: --hosts {count}: choose 1 to {MAX_HOSTS} (10 ports per host)")
    return [f"{name}-{i}" for i in range(1, count + 1)]


def host_ports(index: int, base_port: int = BASE_PORT) -> dict[str, int]:
    """Published ports of the index-th host (1-based)."""
    base = base_port + 10 * (index - 1)
    return {
        "triton_server_http_port": base,
        "triton_server_grpc_port": base + 1,
        "triton_server_metrics_port": base + 2,
    }


# What the fleet's load balancer forwards: triton_lb's default groups and statistics, which
# tritonserver answers only with the fleet's key (perf_analyzer through the load balancer:
# `dltk bench fleet --perf`; roles/triton_lb/README.md).
LB_APIS = ["health", "metadata", "model-config", "inference", "statistics"]
KEY_FILE = "triton-api-key"


def key_path(inventory_file: Path) -> Path:
    """Where a fleet's one API key is kept on the control node: next to its inventory."""
    return inventory_file.parent.resolve() / KEY_FILE


def key_lookup(path: str) -> str:
    """The fleet's one API key, generated on the control node on first use (as triton_server
    generates a host's own): every server behind the load balancer must accept the same key."""
    return (
        f"{{{{ lookup('ansible.builtin.password', '{path}', length=40, "
        "chars=['ascii_letters', 'digits']) }}"
    )


def fleet_inventory(
    count: int,
    data_root: str = "/srv/dltk-sandbox",
    name: str = NAME,
    base_port: int = BASE_PORT,
    key_file: str | None = None,
) -> dict[str, Any]:
    """The inventory as a dict (YAML inventory layout); `key_file`: where the fleet's API key
    is kept on the control node (None: each host keeps its own, as on one host)."""
    hosts = {
        host: host_ports(i, base_port) for i, host in enumerate(host_names(count, name), start=1)
    }
    lb = lb_host(name)
    http_port, grpc_port = lb_ports(base_port)
    return {
        "all": {
            "children": {
                "sandbox": {
                    "hosts": hosts,
                    "vars": {
                        # How the load balancer reaches each host: its tritonserver container by
                        # name on the host's own docker network (roles/triton_lb/README.md).
                        "triton_lb_server_address": "{{ dltk_triton_container }}",
                        "triton_lb_server_network": "{{ dltk_triton_network }}",
                        # Rolling deploys drain each host on this load balancer first
                        # (playbooks/serve.yml, docs/rolling.md).
                        "dltk_lb_host": lb,
                        # Each host verifies its answers; no per-host perf sweep (the fleet is
                        # measured through the load balancer).
                        "triton_verify_perf": False,
                        **({"triton_server_api_key": key_lookup(key_file)} if key_file else {}),
                    },
                },
                "triton_lb": {
                    "hosts": {
                        lb: {
                            "ansible_connection": "local",
                            "ansible_python_interpreter": "{{ ansible_playbook_python }}",
                            "ansible_become": False,
                            "triton_lb_backend_group": "sandbox",
                            "triton_lb_container_name": lb,
                            "triton_lb_network": f"{lb}-net",
                            "triton_lb_http_port": http_port,
                            "triton_lb_grpc_port": grpc_port,
                            "triton_lb_dir": f"{data_root}/{lb}",
                            "triton_lb_base_image": "dltk/debian-base:bookworm",
                            "triton_lb_http_apis": LB_APIS,
                            "triton_lb_grpc_apis": LB_APIS,
                        }
                    }
                },
            }
        }
    }


def write_inventory(
    count: int, out: Path, group_vars: Path, name: str = NAME, base_port: int = BASE_PORT
) -> Path:
    """Write the inventory to `out`, with a group_vars link to the project's (sandbox.yml, the
    release file), since Ansible reads group_vars next to the inventory file."""
    out.parent.mkdir(parents=True, exist_ok=True)
    header = (
        "# Generated by `python -m dltk.fleet inventory` (make fleet): do not edit.\n"
        "# The fleet sandbox: sandbox hosts with their own loopback ports, and the load balancer.\n"
    )
    out.write_text(
        header
        + "---\n"
        + yaml.safe_dump(
            fleet_inventory(count, name=name, base_port=base_port, key_file=str(key_path(out))),
            sort_keys=False,
        )
    )
    link = out.parent / "group_vars"
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(group_vars.resolve())
    return out
