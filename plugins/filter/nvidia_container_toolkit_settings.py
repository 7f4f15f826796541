"""nvidia_container_toolkit's derived values (issue 12 item 5: vars/ holds constants, Python
computes): the Debian architecture of NVIDIA's repository and the daemon.json keys that register
the nvidia runtime with docker.

- `nvidia_container_toolkit_deb_arch`: ansible_facts['architecture'] -> amd64/arm64 (the role's
  default nvidia_container_toolkit_repo_url calls it; argument specs are validated before any task).
- `nvidia_container_toolkit_daemon_json`: set once as _nvidia_container_toolkit_runtime in
  tasks/main.yml.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# NVIDIA publishes the toolkit for amd64 and arm64; any other architecture is used as it is.
DEB_ARCH = {"x86_64": "amd64", "aarch64": "arm64"}


def nvidia_container_toolkit_deb_arch(architecture: str) -> str:
    """The Debian name of an ansible_facts['architecture'] value."""
    return DEB_ARCH.get(str(architecture), str(architecture))


def nvidia_container_toolkit_daemon_json(inputs: Mapping[str, Any]) -> dict[str, Any]:
    """{settings, remove_if} for docker_engine's daemon-json entry point.

    inputs: runtime_name, runtime_path, default_runtime (bool). The runtime is always registered;
    it is made the default runtime only when asked, and turning the default off removes
    `default-runtime` only when it names this runtime (someone else's default stays)."""
    name = str(inputs["runtime_name"])
    settings: dict[str, Any] = {"runtimes": {name: {"path": inputs["runtime_path"], "args": []}}}
    if inputs["default_runtime"]:
        return {"settings": {**settings, "default-runtime": name}, "remove_if": {}}
    return {"settings": settings, "remove_if": {"default-runtime": name}}


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {
            "nvidia_container_toolkit_deb_arch": nvidia_container_toolkit_deb_arch,
            "nvidia_container_toolkit_daemon_json": nvidia_container_toolkit_daemon_json,
        }
