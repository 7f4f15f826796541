"""nvidia_driver's derived values (plugins/filter/nvidia_driver_names.py, issue 12 item 5): the
source, package names, Debian components lacking and the CUDA repository directory that
vars/main.yml computed in Jinja before. Loaded by path, as the other filter plugins."""

from __future__ import annotations

import pytest
from role_plugins import load_role_plugin

nd = load_role_plugin("plugins/filter/nvidia_driver_names.py")

OWN = "/etc/apt/sources.list.d/dltk-debian-nonfree.sources"
MIRROR = "http://deb.debian.org/debian"
SECURITY = "http://security.debian.org/debian-security"
COMPONENTS = ["contrib", "non-free", "non-free-firmware"]


def names(**over: object) -> dict:
    inputs = {
        "source": "auto",
        "distribution": "Debian",
        "branch": 580,
        "version": "",
        "persistenced_service": "nvidia-persistenced",
    }
    return nd.nvidia_driver_names({**inputs, **over})


def packages(**over: object) -> dict:
    inputs = {
        "source": "debian",
        "distribution": "Debian",
        "branch": 580,
        "kernel_modules": "auto",
        "plan": {"open_modules": False, "fabricmanager_package": ""},
        "packages": [],
        "extra_packages": [],
    }
    return nd.nvidia_driver_packages({**inputs, **over})


# --- source, wanted, persistence daemon unit ---


@pytest.mark.parametrize(
    ("source", "distribution", "resolved"),
    [
        ("auto", "Debian", "debian"),
        ("auto", "Ubuntu", "ubuntu"),
        ("auto", "Rocky", "debian"),  # anything but Ubuntu (preflight rejects it later)
        ("cuda", "Ubuntu", "cuda"),
        ("debian", "Ubuntu", "debian"),  # as set: preflight says it does not fit
    ],
)
def test_auto_is_the_distributions_own_source(source, distribution, resolved) -> None:
    assert names(source=source, distribution=distribution)["source"] == resolved


def test_wanted_names_the_version_when_one_is_set_else_the_branch() -> None:
    assert names()["wanted"] == "branch 580"
    assert names(branch="535")["wanted"] == "branch 535"
    assert names(version="580.95.05-1")["wanted"] == "version 580.95.05-1"


def test_the_persistence_daemon_unit_and_its_drop_in() -> None:
    got = names(persistenced_service="nvidia-persistenced")
    assert got["persistenced_unit"] == "nvidia-persistenced.service"
    assert got["persistenced_dropin"] == (
        "/etc/systemd/system/nvidia-persistenced.service.d/dltk-persistence-mode.conf"
    )


# --- driver packages per source ---


def test_debian_proprietary_and_open() -> None:
    assert packages()["packages"] == [
        "nvidia-driver", "nvidia-smi", "libnvidia-cfg1", "nvidia-kernel-dkms"
    ]  # fmt: skip
    got = packages(plan={"open_modules": True})
    assert got["packages"][-1] == "nvidia-open-kernel-dkms"
    assert got["extra_packages"] == ["nvidia-persistenced"]


def test_ubuntu_headless_server_packages_with_the_branch() -> None:
    got = packages(source="ubuntu", distribution="Ubuntu", branch=570)
    assert got["packages"] == ["nvidia-headless-no-dkms-570-server", "nvidia-utils-570-server"]
    assert got["extra_packages"] == []
    got = packages(source="ubuntu", distribution="Ubuntu", plan={"open_modules": True})
    assert got["packages"] == ["nvidia-headless-no-dkms-580-server-open", "nvidia-utils-580-server"]


@pytest.mark.parametrize(
    ("distribution", "branch", "open_modules", "expected", "extra"),
    [
        ("Ubuntu", 580, False, ["cuda-drivers-580", "nvidia-driver-580"], []),
        ("Ubuntu", 580, True, ["nvidia-open-580", "nvidia-driver-580-open"], []),
        # NVIDIA drops the branch from the names from 590 on.
        ("Ubuntu", 590, False, ["cuda-drivers", "nvidia-driver"], []),
        ("Ubuntu", "595", True, ["nvidia-open", "nvidia-driver-open"], []),
        ("Ubuntu", 589, True, ["nvidia-open-589", "nvidia-driver-589-open"], []),
        (
            "Debian",
            580,
            False,
            ["cuda-drivers-580", "nvidia-driver", "nvidia-kernel-dkms"],
            ["nvidia-persistenced"],
        ),
        (
            "Debian",
            590,
            True,
            ["nvidia-open", "nvidia-driver", "nvidia-kernel-open-dkms"],
            ["nvidia-persistenced"],
        ),
    ],
)
def test_cuda_repository_names(distribution, branch, open_modules, expected, extra) -> None:
    got = packages(
        source="cuda", distribution=distribution, branch=branch, plan={"open_modules": open_modules}
    )
    assert got["packages"] == expected
    assert got["extra_packages"] == extra


def test_auto_source_is_resolved_for_a_play_that_only_lists_packages() -> None:
    assert packages(source="auto", distribution="Ubuntu")["packages"][0].startswith(
        "nvidia-headless-no-dkms-"
    )
    assert packages(source="auto")["packages"][0] == "nvidia-driver"


def test_without_a_plan_kernel_modules_decides_open() -> None:
    assert packages(plan={}, kernel_modules="open")["packages"][-1] == "nvidia-open-kernel-dkms"
    assert packages(plan={}, kernel_modules="auto")["packages"][-1] == "nvidia-kernel-dkms"
    assert packages(plan=None, kernel_modules="proprietary")["packages"][-1] == "nvidia-kernel-dkms"
    # The plan, when there is one, wins over the setting (auto picks per GPU architecture).
    got = packages(plan={"open_modules": False}, kernel_modules="open")
    assert got["packages"][-1] == "nvidia-kernel-dkms"


def test_the_users_packages_replace_the_sources_and_extras_add_up() -> None:
    got = packages(packages=["my-driver"], extra_packages=["nvidia-modprobe"])
    assert got["packages"] == ["my-driver"]
    assert got["extra_packages"] == ["nvidia-persistenced", "nvidia-modprobe"]
    assert got["resolve_packages"] == ["my-driver"]


def test_the_fabric_manager_is_resolved_with_the_driver() -> None:
    got = packages(plan={"open_modules": True, "fabricmanager_package": "nvidia-fabricmanager-580"})
    assert got["fabricmanager_package"] == "nvidia-fabricmanager-580"
    assert got["resolve_packages"] == got["packages"] + ["nvidia-fabricmanager-580"]
    assert packages(plan={})["fabricmanager_package"] == ""
    assert packages()["resolve_packages"] == packages()["packages"]


def test_an_unknown_source_is_an_error_not_an_empty_list() -> None:
    with pytest.raises(ValueError, match="unknown nvidia_driver source 'rpm'"):
        packages(source="rpm")


# --- Debian components the host lacks ---


def missing(lines: list[str], components: list[str] = COMPONENTS) -> list[dict]:
    return nd.nvidia_driver_debian_missing(
        {
            "indextargets": lines,
            "sources_file": OWN,
            "release": "bookworm",
            "components": components,
            "mirror_url": MIRROR,
            "security_url": SECURITY,
        }
    )


DEBIAN_SOURCES = "/etc/apt/sources.list.d/debian.sources"


def entry(release: str, component: str, source: str = DEBIAN_SOURCES, line: int = 1) -> str:
    return f"{release} {component} {source}:{line}"


def test_a_host_with_main_only_lacks_all_three_components_in_all_three_suites() -> None:
    lines = [entry(s, "main") for s in ("bookworm", "bookworm-updates", "bookworm-security")]
    assert missing(lines) == [
        {"url": MIRROR, "suite": "bookworm", "components": COMPONENTS},
        {"url": MIRROR, "suite": "bookworm-updates", "components": COMPONENTS},
        {"url": SECURITY, "suite": "bookworm-security", "components": COMPONENTS},
    ]


def test_components_other_sources_provide_are_left_out_per_suite() -> None:
    lines = [
        entry("bookworm", "main"),
        entry("bookworm", "contrib"),
        entry("bookworm", "non-free"),
        entry("bookworm-updates", "non-free-firmware"),
        entry("bookworm-security", "contrib"),
        entry("bookworm-security", "non-free"),
        entry("bookworm-security", "non-free-firmware"),
    ]
    assert missing(lines) == [
        {"url": MIRROR, "suite": "bookworm", "components": ["non-free-firmware"]},
        {"url": MIRROR, "suite": "bookworm-updates", "components": ["contrib", "non-free"]},
    ]


def test_the_roles_own_file_does_not_count_as_providing() -> None:
    lines = [entry(s, c, OWN, 3) for s in ("bookworm", "bookworm-updates") for c in COMPONENTS]
    assert [m["suite"] for m in missing(lines)] == [
        "bookworm", "bookworm-updates", "bookworm-security"
    ]  # fmt: skip
    # A file whose name only starts like the role's still counts.
    other = [entry("bookworm", c, OWN + ".bak", 1) for c in COMPONENTS]
    assert [m["suite"] for m in missing(other)][0] == "bookworm-updates"
    # The file name is matched literally (its dot is not a regex wildcard).
    lookalike = [entry("bookworm", c, OWN.replace(".sources", "Xsources"), 1) for c in COMPONENTS]
    assert [m["suite"] for m in missing(lookalike)][0] == "bookworm-updates"


def test_a_host_providing_everything_lacks_nothing() -> None:
    suites = ("bookworm", "bookworm-updates", "bookworm-security")
    assert missing([entry(s, c) for s in suites for c in COMPONENTS]) == []


def test_a_suite_name_is_matched_whole_not_as_a_prefix() -> None:
    # bookworm-backports providing contrib does not provide it for bookworm.
    lines = [entry("bookworm-backports", c) for c in COMPONENTS]
    assert missing(lines)[0] == {"url": MIRROR, "suite": "bookworm", "components": COMPONENTS}


def test_components_keep_the_order_asked_and_no_output_means_none_present() -> None:
    assert missing([], ["non-free", "contrib"])[0]["components"] == ["non-free", "contrib"]
    assert len(missing([])) == 3


# --- NVIDIA's CUDA repository directory ---


@pytest.mark.parametrize(
    ("facts", "expected"),
    [
        ({"distribution": "Ubuntu", "distribution_version": "22.04", "architecture": "x86_64"},
         "ubuntu2204/x86_64"),
        ({"distribution": "Ubuntu", "distribution_version": "24.04", "architecture": "aarch64"},
         "ubuntu2404/sbsa"),
        ({"distribution": "Debian", "distribution_version": "12.7",
          "distribution_major_version": "12", "architecture": "x86_64"}, "debian12/x86_64"),
        # An architecture NVIDIA has no other name for is used as it is.
        ({"distribution": "Debian", "distribution_version": "12",
          "distribution_major_version": "12", "architecture": "ppc64le"}, "debian12/ppc64le"),
    ],
)  # fmt: skip
def test_cuda_repository_directory(facts, expected) -> None:
    assert nd.nvidia_cuda_repo_dir(facts) == expected


def test_the_filters_are_exported() -> None:
    assert set(nd.FilterModule().filters()) == {
        "nvidia_driver_names",
        "nvidia_driver_packages",
        "nvidia_driver_debian_missing",
        "nvidia_cuda_repo_dir",
    }
