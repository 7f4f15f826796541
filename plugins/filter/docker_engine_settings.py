"""docker_engine's derived values (issue 12 item 5: vars/ holds constants, Python computes):
the Debian architecture name of the host, the daemon.json keys the role owns and the users
without an account.

- `docker_engine_settings`: called once, near the top of tasks/main.yml:
    _docker_engine_settings: "{{ {...inputs...} | dltk.deploy.docker_engine_settings }}"
- `docker_engine_missing_users` (tasks/preflight.yml): docker_engine_users lacking an account.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# The one recursive merge of daemon.json settings (the docker_daemon_json module uses it too).
from ansible_collections.dltk.deploy.plugins.module_utils.daemon_json import merge

# Debian architecture names for ansible_facts['architecture'] (others are used as they are).
DEB_ARCH = {
    "x86_64": "amd64",
    "aarch64": "arm64",
    "armv7l": "armhf",
    "ppc64le": "ppc64el",
    "s390x": "s390x",
}
# The log drivers that accept max-size/max-file (the others refuse these options).
ROTATING_LOG_DRIVERS = ("json-file", "local")


def daemon_settings(
    log_driver: str, max_size: Any, max_file: Any, options: Mapping[str, Any]
) -> dict[str, Any]:
    """The daemon.json keys docker_engine owns: the log driver, its rotation (only for drivers
    that take it, as strings as dockerd wants them), then docker_engine_daemon_options on top."""
    settings: dict[str, Any] = {"log-driver": log_driver}
    if log_driver in ROTATING_LOG_DRIVERS:
        settings["log-opts"] = {"max-size": str(max_size), "max-file": str(max_file)}
    return merge(settings, options)


def docker_engine_settings(inputs: Mapping[str, Any]) -> dict[str, Any]:
    """{deb_arch, daemon_settings} from the role's variables and the host's architecture.

    inputs: architecture (ansible_facts), log_driver, log_max_size, log_max_file, daemon_options."""
    arch = str(inputs["architecture"])
    return {
        "deb_arch": DEB_ARCH.get(arch, arch),
        "daemon_settings": daemon_settings(
            inputs["log_driver"],
            inputs["log_max_size"],
            inputs["log_max_file"],
            inputs.get("daemon_options") or {},
        ),
    }


def docker_engine_missing_users(inputs: Mapping[str, Any]) -> list[Any]:
    """The users (in the order listed) with no account on the host.

    inputs: users (docker_engine_users), accounts (ansible_facts['getent_passwd']: {name: ...})."""
    return [user for user in inputs["users"] if user not in inputs["accounts"]]


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {
            "docker_engine_settings": docker_engine_settings,
            "docker_engine_missing_users": docker_engine_missing_users,
        }
