"""docker_engine's derived values (plugins/filter/docker_engine_settings.py, issue 12 item 5): the
Debian architecture name and the daemon.json keys the role owns, which vars/main.yml computed in
Jinja (combine, recursive) before; the users without an account, which tasks/preflight.yml
computed in Jinja before."""

from __future__ import annotations

import pytest
from role_plugins import load_role_plugin

de = load_role_plugin("plugins/filter/docker_engine_settings.py")


def settings(**over: object) -> dict:
    inputs = {
        "architecture": "x86_64",
        "log_driver": "json-file",
        "log_max_size": "10m",
        "log_max_file": 3,
        "daemon_options": {},
    }
    return de.docker_engine_settings({**inputs, **over})


@pytest.mark.parametrize(
    ("arch", "deb"),
    [("x86_64", "amd64"), ("aarch64", "arm64"), ("armv7l", "armhf"), ("ppc64le", "ppc64el"),
     ("s390x", "s390x"), ("riscv64", "riscv64")],
)  # fmt: skip
def test_debian_architecture_names_fall_back_to_the_fact(arch, deb) -> None:
    assert settings(architecture=arch)["deb_arch"] == deb


@pytest.mark.parametrize("driver", ["json-file", "local"])
def test_rotating_drivers_get_log_opts_as_strings(driver) -> None:
    assert settings(log_driver=driver, log_max_file=3)["daemon_settings"] == {
        "log-driver": driver,
        "log-opts": {"max-size": "10m", "max-file": "3"},
    }


@pytest.mark.parametrize("driver", ["journald", "syslog", "none"])
def test_other_drivers_get_no_log_opts_they_would_refuse(driver) -> None:
    assert settings(log_driver=driver)["daemon_settings"] == {"log-driver": driver}


def test_daemon_options_merge_recursively_on_top() -> None:
    got = settings(
        daemon_options={"log-opts": {"max-file": "5", "compress": "true"}, "debug": True}
    )
    assert got["daemon_settings"] == {
        "log-driver": "json-file",
        "log-opts": {"max-size": "10m", "max-file": "5", "compress": "true"},
        "debug": True,
    }


def test_daemon_options_replace_lists_and_scalars_and_may_set_the_driver() -> None:
    got = settings(
        log_driver="journald",
        daemon_options={"log-driver": "local", "dns": ["10.0.0.2"], "log-opts": {"tag": "x"}},
    )
    assert got["daemon_settings"] == {
        "log-driver": "local",
        "dns": ["10.0.0.2"],
        "log-opts": {"tag": "x"},
    }
    assert de.merge({"a": {"b": 1}, "l": [1]}, {"a": 2, "l": [2]}) == {"a": 2, "l": [2]}


def test_merge_leaves_its_inputs_alone() -> None:
    base = {"log-opts": {"max-size": "10m"}}
    de.merge(base, {"log-opts": {"max-file": "3"}})
    assert base == {"log-opts": {"max-size": "10m"}}


def test_none_as_options_is_no_options() -> None:
    assert settings(daemon_options=None)["daemon_settings"]["log-driver"] == "json-file"


def test_users_without_an_account_in_the_order_listed() -> None:
    accounts = {"root": ["x", "0"], "alice": ["x", "1000"]}
    got = de.docker_engine_missing_users(
        {"users": ["bob", "alice", "root", "carol", "bob"], "accounts": accounts}
    )
    assert got == ["bob", "carol", "bob"]
    assert de.docker_engine_missing_users({"users": ["root"], "accounts": accounts}) == []
    assert de.docker_engine_missing_users({"users": [], "accounts": {}}) == []


def test_the_filters_are_exported() -> None:
    assert set(de.FilterModule().filters()) == {
        "docker_engine_settings",
        "docker_engine_missing_users",
    }
