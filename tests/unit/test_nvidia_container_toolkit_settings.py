"""nvidia_container_toolkit's derived values (plugins/filter/nvidia_container_toolkit_settings.py,
issue 12 item 5): the repository's Debian architecture (vars/main.yml before) and the daemon.json
keys of the nvidia runtime (Jinja in tasks/main.yml before)."""

from __future__ import annotations

import pytest
from role_plugins import load_role_plugin

nct = load_role_plugin("plugins/filter/nvidia_container_toolkit_settings.py")

RUNTIME = {"runtime_name": "nvidia", "runtime_path": "/usr/bin/nvidia-container-runtime"}


@pytest.mark.parametrize(
    ("arch", "deb"), [("x86_64", "amd64"), ("aarch64", "arm64"), ("ppc64le", "ppc64le")]
)
def test_debian_architecture_names_fall_back_to_the_fact(arch, deb) -> None:
    assert nct.nvidia_container_toolkit_deb_arch(arch) == deb


def test_the_runtime_is_registered_and_made_the_default_when_asked() -> None:
    got = nct.nvidia_container_toolkit_daemon_json({**RUNTIME, "default_runtime": True})
    assert got == {
        "settings": {
            "runtimes": {"nvidia": {"path": "/usr/bin/nvidia-container-runtime", "args": []}},
            "default-runtime": "nvidia",
        },
        "remove_if": {},
    }


def test_turning_the_default_off_removes_it_only_if_it_is_ours() -> None:
    got = nct.nvidia_container_toolkit_daemon_json(
        {**RUNTIME, "runtime_name": "nv", "default_runtime": False}
    )
    assert got["settings"] == {
        "runtimes": {"nv": {"path": "/usr/bin/nvidia-container-runtime", "args": []}}
    }
    assert got["remove_if"] == {"default-runtime": "nv"}


def test_the_filters_are_exported() -> None:
    assert set(nct.FilterModule().filters()) == {
        "nvidia_container_toolkit_deb_arch",
        "nvidia_container_toolkit_daemon_json",
    }
