"""triton_server's derived values (issue 12 item 5: vars/ holds constants, Python computes).

The role calls three filters: tasks/settings.yml (first) sets
    _triton_server_settings: "{{ {...settings...} | dltk.deploy.triton_server_settings }}"
tasks/main.yml, once the backends are known (tritonserver's command, what `dltk repo load` loads),
    _triton_server_run: "{{ _triton_server_settings | dltk.deploy.triton_server_command({...}) }}"
and tasks/dltk.yml after each dltk run
    _triton_server_dltk: "{{ {...} | dltk.deploy.triton_server_dltk_answer }}"
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

# Ports inside the container: fixed, whatever is published on the host.
INTERNAL_PORTS = {"http": 8000, "grpc": 8001, "metrics": 8002}
# Where the image keeps its backends (NGC layout; dltk/triton-cpu has the same).
BACKENDS_DIR = "/opt/tritonserver/backends"
API_KEY_HEADER = "dltk-api-key"
API_KEY_MOUNT = "/run/secrets/triton-api-key"
# /v2/health/ready probed from inside the container with bash only (no curl in some images).
HEALTHCHECK = (
    "exec 3<>/dev/tcp/127.0.0.1/8000"
    " && printf 'GET /v2/health/ready HTTP/1.0\\r\\n\\r\\n' >&3"
    " && head -n 1 <&3 | grep -q ' 200 '"
)


def _bind(source: str, target: str, read_only: bool = False) -> dict[str, Any]:
    mount: dict[str, Any] = {"type": "bind", "source": source, "target": target}
    if read_only:
        mount["read_only"] = True
    return mount


def triton_server_settings(v: Mapping[str, Any]) -> dict[str, Any]:
    """What the role's variables say, computed once: the ports, the API key's files and mounts,
    where `dltk repo load/sync` reach tritonserver, the toolkit container's mounts.

    v: http_port, grpc_port, metrics_port, restricted_apis, api_key_dir, secrets_dir, host
    (inventory_hostname), container_name, load_via, bind_address, model_repo_dir, previous_dir."""
    ports = [int(v["http_port"]), int(v["grpc_port"]), int(v["metrics_port"])]
    restricted = len(v.get("restricted_apis") or []) > 0
    key_host = f"{v['secrets_dir']}/triton-api-key"
    key_local = f"{v['api_key_dir']}/{v['host']}/triton-api-key"
    restriction = f"{','.join(v.get('restricted_apis') or [])}:{API_KEY_HEADER}"
    # tritonserver takes the key only on its command line: a wrapper reads it from the mounted
    # key file at start, so `docker inspect` shows the wrapper, not the key.
    key_wrapper = (
        f'key=$(cat {API_KEY_MOUNT}) && exec tritonserver "$@"'
        f' --http-restricted-api={restriction}="$key"'
        f' --grpc-restricted-protocol={restriction}="$key"'
    )
    key_mounts = [_bind(key_host, API_KEY_MOUNT, read_only=True)] if restricted else []
    if v["load_via"] == "toolkit_container":
        api = {"url": f"{v['container_name']}:8000", "repo": "/models", "previous": "/previous",
               "key": API_KEY_MOUNT}  # fmt: skip
    else:
        api = {"url": f"{v['bind_address']}:{ports[0]}", "repo": v["model_repo_dir"],
               "previous": v["previous_dir"], "key": key_local}  # fmt: skip
    return {
        "ports": ports,
        "internal_ports": dict(INTERNAL_PORTS),
        "healthcheck": HEALTHCHECK,
        "backends_dir": BACKENDS_DIR,
        "restricted": restricted,
        "api_key_host": key_host,
        "api_key_local": key_local,
        "key_wrapper": key_wrapper,
        "key_mounts": key_mounts,
        "api": api,
        "api_key_args": ["--api-key-file", api["key"]] if restricted else [],
        # The repository read-only for `dltk repo sync`; `dltk repo load` mounts it read-write with
        # the kept versions (it restores a model that fails to load).
        "dltk_mounts_ro": [_bind(v["model_repo_dir"], "/models", read_only=True), *key_mounts],
        "dltk_mounts_rw": [
            _bind(v["model_repo_dir"], "/models"),
            _bind(v["previous_dir"], "/previous", read_only=True),
            *key_mounts,
        ],
    }


def triton_server_command(settings: Mapping[str, Any], v: Mapping[str, Any]) -> dict[str, Any]:
    """tritonserver's command, and what this run loads through the repository API.

    v: model_control_mode, extra_args, skipped ({model: backend} the image cannot load),
    loadable (the models it can), changed / removed (dltk_model_repo_changed / _removed),
    load_timeout."""
    skipped = v.get("skipped") or {}
    args = [
        "--model-repository=/models",
        "--http-port=8000",
        "--grpc-port=8001",
        "--metrics-port=8002",
    ]
    if v["model_control_mode"] == "explicit":
        # Every model (*), or only those the image can load when some are skipped.
        loads = (
            [f"--load-model={m}" for m in v.get("loadable") or []]
            if skipped
            else ["--load-model=*"]
        )
        args += ["--model-control-mode=explicit", *loads]
    args += list(v.get("extra_args") or [])
    wrapper = (
        ["bash", "-c", settings["key_wrapper"], "tritonserver"]
        if settings["restricted"]
        else ["tritonserver"]
    )
    changed = sorted(set(v.get("changed") or []) - set(skipped))
    removed = list(v.get("removed") or [])
    return {
        "command": wrapper + args,
        "changed": changed,
        "removed": removed,
        # `dltk repo load` arguments after the URL.
        "load_args": ["--timeout", str(int(v["load_timeout"]))]
        + [f"--unload={m}" for m in removed]
        + changed,
    }


def triton_server_dltk_answer(v: Mapping[str, Any]) -> dict[str, Any]:
    """The answer of whichever task of tasks/dltk.yml ran: {rc, output, sync}.

    v: via (triton_server_load_via), container (docker_container's result), local (command's
    result). sync is `dltk repo sync --json`'s one JSON line ({} when there is none)."""
    if v["via"] == "toolkit_container":
        result = v.get("container") or {}
        rc = result.get("status", 1)
        stdout = (result.get("container") or {}).get("Output")
        output = stdout if stdout is not None else result.get("msg", "")
        stdout = stdout or ""
    else:
        result = v.get("local") or {}
        rc = result.get("rc", 1)
        stdout = result.get("stdout", "")
        output = f"{stdout}\n{result.get('stderr', '')}"
    lines = [line for line in str(stdout).splitlines() if re.match(r"^[{]", line)]
    sync = json.loads(lines[-1]) if lines else {}
    return {"rc": int(rc if rc is not None else 1), "output": str(output), "sync": sync}


def new_bindings(
    addresses: Sequence[str], ports: Sequence[int], current: Mapping[str, Any]
) -> list[str]:
    """'address:port:port' of each (address, port) this run publishes that the running container
    (docker_container_info's container, or {}) does not."""
    bindings = (current.get("HostConfig") or {}).get("PortBindings") or {}
    taken = {
        int(b["HostPort"])
        for values in bindings.values()
        for b in values or []
        if b.get("HostPort")
    }
    return [
        f"{a}:{p}:{p}" for a, p in zip(addresses, map(int, ports), strict=True) if p not in taken
    ]


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {
            "triton_server_settings": triton_server_settings,
            "triton_server_command": triton_server_command,
            "triton_server_dltk_answer": triton_server_dltk_answer,
            "triton_server_new_bindings": new_bindings,
        }
