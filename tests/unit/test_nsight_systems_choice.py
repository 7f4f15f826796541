"""nsight_systems' derived values (plugins/filter/nsight_systems_choice.py, issue 12 item 5): the
source, package and version a host gets and NVIDIA's devtools repository directory, which
vars/main.yml computed in Jinja before; whether nsys is the pinned version, which tasks/run.yml
computed in Jinja before."""

from __future__ import annotations

import pytest
from role_plugins import load_role_plugin

ns = load_role_plugin("plugins/filter/nsight_systems_choice.py")


def choice(**over: object) -> dict:
    inputs = {"source": "auto", "distribution": "Debian", "package": "", "version": ""}
    return ns.nsight_systems_choice({**inputs, **over})


def test_auto_is_debians_package_on_debian_and_nvidias_repository_on_ubuntu() -> None:
    assert choice() == {
        "source": "distribution",
        "package": "nsight-systems",
        "version": "2022.4.*",
    }
    assert choice(distribution="Ubuntu") == {
        "source": "nvidia",
        "package": "nsight-systems-cli",
        "version": "2025.3.*",
    }


def test_an_explicit_source_is_kept() -> None:
    assert choice(source="nvidia")["package"] == "nsight-systems-cli"
    # Preflight, not the filter, says Ubuntu ships no nsight-systems.
    assert choice(source="distribution", distribution="Ubuntu")["source"] == "distribution"


def test_the_users_package_and_version_win_over_the_sources() -> None:
    got = choice(source="nvidia", package="nsight-systems-2025.3.1", version="2025.3.1.90-3582212")
    assert got["package"] == "nsight-systems-2025.3.1"
    # An exact version stays exact; a wildcard prefix stays a prefix (apt_pinned_version matches).
    assert got["version"] == "2025.3.1.90-3582212"
    assert choice(version="2022.4.2*")["version"] == "2022.4.2*"


def test_empty_means_the_sources_default_and_none_counts_as_empty() -> None:
    assert choice(package=None, version=None)["package"] == "nsight-systems"
    assert choice(package=None, version=None)["version"] == "2022.4.*"


@pytest.mark.parametrize(
    ("facts", "expected"),
    [
        ({"distribution": "Ubuntu", "distribution_version": "24.04", "architecture": "x86_64"},
         "ubuntu2404/amd64"),
        ({"distribution": "Ubuntu", "distribution_version": "22.04", "architecture": "aarch64"},
         "ubuntu2204/arm64"),
        # NVIDIA publishes Ubuntu builds only: Debian 12 uses Ubuntu 22.04's (same glibc).
        ({"distribution": "Debian", "distribution_version": "12", "architecture": "x86_64"},
         "ubuntu2204/amd64"),
        ({"distribution": "Debian", "distribution_version": "12", "architecture": "riscv64"},
         "ubuntu2204/riscv64"),
    ],
)  # fmt: skip
def test_devtools_repository_directory(facts, expected) -> None:
    assert ns.nvidia_devtools_repo_dir(facts) == expected


# --- nsys --version against the resolved version (tasks/run.yml) ---


def nsys(resolved: str, stdout: str) -> dict:
    return ns.nsight_systems_nsys_check({"resolved": resolved, "stdout": stdout})


@pytest.mark.parametrize(
    ("resolved", "stdout", "upstream"),
    [
        ("2022.4.2.1~11.8.0-5~deb12u1", "NVIDIA Nsight Systems version 2022.4.2.1-1d2e1b7",
         "2022.4.2.1"),  # Debian
        ("2025.3.1.90-3582212", "NVIDIA Nsight Systems version 2025.3.1.90-253135822126v0",
         "2025.3.1.90"),  # NVIDIA
        ("2025.3.1", "NVIDIA Nsight Systems version 2025.3.1", "2025.3.1"),  # at the end
    ],
)  # fmt: skip
def test_nsys_reporting_the_upstream_version_is_pinned(resolved, stdout, upstream) -> None:
    assert nsys(resolved, stdout) == {"upstream": upstream, "pinned": True}


@pytest.mark.parametrize(
    "stdout",
    [
        "NVIDIA Nsight Systems version 2025.3.10",  # another digit follows
        "NVIDIA Nsight Systems version 2025.3.1.5",  # a longer version
        "NVIDIA Nsight Systems version 2025x3x1",  # the dots are dots, not any character
        "NVIDIA Nsight Systems 2025.3.1",  # not after "version "
        "",
    ],
)
def test_another_version_is_not_pinned(stdout) -> None:
    assert nsys("2025.3.1-1", stdout) == {"upstream": "2025.3.1", "pinned": False}


def test_a_version_without_dotted_numbers_is_looked_for_as_it_is() -> None:
    assert nsys("weird+1", "version weird+1 (beta)") == {"upstream": "weird+1", "pinned": True}
    assert nsys("2025", "version 2025") == {"upstream": "2025", "pinned": True}
    # Dotted numbers are the upstream part: a number without a dot is not cut.
    assert nsys("2025-1", "version 2025-1") == {"upstream": "2025-1", "pinned": True}
    assert nsys("2025", "version 20255") == {"upstream": "2025", "pinned": False}


def test_the_filters_are_exported() -> None:
    assert set(ns.FilterModule().filters()) == {
        "nsight_systems_choice",
        "nvidia_devtools_repo_dir",
        "nsight_systems_nsys_check",
    }
