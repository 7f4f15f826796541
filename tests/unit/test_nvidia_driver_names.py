"""nvidia_driver's derived values (plugins/filter/nvidia_driver_names.py, issue 12 item 5): the
source, package names, Debian components lacking and the CUDA repository directory that
vars/main.yml computed in Jinja before; the container test, the reboot blockers, the command
lines of dltk driver plan / resolve, the kernel packages missing and the install's names that the
task files computed in Jinja. Loaded by path, as the other filter plugins."""

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


# --- the container test (tasks/detect.yml) ---

GUEST_DOCKER = {"virtualization_role": "guest", "virtualization_type": "docker"}
GUEST_KVM = {"virtualization_role": "guest", "virtualization_type": "kvm"}


def in_container(host_type: str, facts: dict) -> bool:
    return nd.nvidia_driver_in_container({"host_type": host_type, "facts": facts})


@pytest.mark.parametrize("vtype", list(nd.CONTAINER_TYPES))
def test_auto_a_guest_of_a_container_type_is_a_container(vtype) -> None:
    assert in_container("auto", {"virtualization_role": "guest", "virtualization_type": vtype})


@pytest.mark.parametrize(
    "facts",
    [
        GUEST_KVM,  # a VM has a kernel of its own
        {"virtualization_role": "host", "virtualization_type": "docker"},  # runs containers
        {"virtualization_type": "docker"},
        {"virtualization_role": "guest"},
        {},  # no virtual facts
    ],
)
def test_auto_anything_else_is_not_a_container(facts) -> None:
    assert in_container("auto", facts) is False


def test_the_host_type_overrides_the_facts() -> None:
    assert in_container("container", {}) is True
    assert in_container("container", GUEST_KVM) is True
    assert in_container("metal", GUEST_DOCKER) is False
    assert nd.nvidia_driver_in_container({"host_type": "auto", "facts": None}) is False


# --- the reboot blockers (tasks/reboot-policy.yml) ---

LOCAL = "the connection is local (a reboot would take down the control node running Ansible)"
CONTROL_NODE = "it is the control node (same machine id as the machine running Ansible)"


def blockers(**over: object) -> list[str]:
    inputs = {
        "reboot": True,
        "connection": "ssh",
        "host_id": "1f0e",
        "controller_id": "9a8b",
        "in_container": False,
        "host_type": "auto",
        "facts": GUEST_KVM,
        "check_mode": False,
    }
    return nd.nvidia_driver_reboot_blockers({**inputs, **over})


def test_a_remote_vm_that_may_reboot_has_no_blocker() -> None:
    assert blockers() == []


@pytest.mark.parametrize(
    ("over", "expected"),
    [
        ({"reboot": False}, ["nvidia_driver_reboot is false"]),
        ({"connection": "local"}, [LOCAL]),
        ({"host_id": "9a8b"}, [CONTROL_NODE]),
        ({"in_container": True, "facts": GUEST_DOCKER}, ["it is a container (docker)"]),
        ({"check_mode": True}, ["check mode"]),
    ],
)
def test_each_reason_alone(over, expected) -> None:
    assert blockers(**over) == expected


def test_an_unread_machine_id_is_not_the_control_nodes() -> None:
    assert blockers(host_id="", controller_id="") == []
    assert blockers(host_id="", controller_id="9a8b") == []


def test_a_container_without_virtual_facts_says_question_mark() -> None:
    assert blockers(in_container=True, facts={}) == ["it is a container (?)"]


def test_a_container_run_as_metal_is_never_rebooted() -> None:
    assert blockers(host_type="metal", facts=GUEST_DOCKER) == [
        "it is a container (docker) run as nvidia_driver_host_type=metal"
    ]
    # A VM run as metal may reboot; a container already said so is not said twice.
    assert blockers(host_type="metal", facts=GUEST_KVM) == []
    assert blockers(host_type="metal", facts=GUEST_DOCKER, in_container=True) == [
        "it is a container (docker)"
    ]
    # Only metal: auto left the container decision to the detection (in_container).
    assert blockers(host_type="auto", facts=GUEST_DOCKER) == []


def test_every_reason_in_order() -> None:
    got = blockers(
        reboot=False,
        connection="local",
        host_id="9a8b",
        in_container=True,
        facts=GUEST_DOCKER,
        check_mode=True,
    )
    assert got == [
        "nvidia_driver_reboot is false",
        LOCAL,
        CONTROL_NODE,
        "it is a container (docker)",
        "check mode",
    ]


# --- the command line of dltk driver plan (tasks/plan.yml) ---

PLAN_HEAD = [
    "dltk", "driver", "plan", "--distribution", "Debian", "--source", "debian",
    "--branch", "580", "--kernel-modules", "auto", "--nvswitches", "0", "--ngc", "25.08",
    "--kernel", "6.1.0-18-amd64", "--arch", "x86_64", "--headers-metapackage", "auto",
    "--headers-package", "linux-headers-6.1.0-18-amd64",
]  # fmt: skip
SKIPPED = {"skipped": True, "changed": False}


def plan_argv(**over: object) -> list:
    inputs = {
        "dltk": "dltk",
        "distribution": "Debian",
        "source": "debian",
        "branch": 580,
        "kernel_modules": "auto",
        "nvswitches": [],
        "ngc_release": "25.08",
        "kernel": "6.1.0-18-amd64",
        "architecture": "x86_64",
        "headers_metapackage": "auto",
        "headers_package": "linux-headers-6.1.0-18-amd64",
        "gpus": [],
        "in_container": False,
        "mokutil": SKIPPED,
        "installed_images": [],
    }
    return nd.nvidia_driver_plan_argv({**inputs, **over})


def test_the_plan_command_line_of_a_host_without_gpus() -> None:
    assert plan_argv() == PLAN_HEAD


def test_numbers_become_strings_and_nvswitches_are_counted() -> None:
    got = plan_argv(branch=570, ngc_release=25.1, nvswitches=["a", "b", "c", "d"])
    assert got[got.index("--branch") + 1] == "570"
    assert got[got.index("--ngc") + 1] == "25.1"
    assert got[got.index("--nvswitches") + 1] == "4"


def test_gpus_container_mokutil_and_images_follow_in_that_order() -> None:
    got = plan_argv(
        gpus=["0000:3b:00.0 10de:2330", "0000:86:00.0 10de:2330"],
        in_container=True,
        mokutil={"rc": 0, "stdout": "SecureBoot enabled", "stderr": ""},
        installed_images=["ii  linux-image-6.1.0-18-amd64"],
    )
    assert got[len(PLAN_HEAD) :] == [
        "--gpu=0000:3b:00.0 10de:2330",
        "--gpu=0000:86:00.0 10de:2330",
        "--in-container",
        "--mokutil-rc", "0", "--mokutil-stdout", "SecureBoot enabled", "--mokutil-stderr", "",
        "--installed-image=linux-image-6.1.0-18-amd64",
    ]  # fmt: skip


@pytest.mark.parametrize(
    "mokutil",
    [
        SKIPPED,  # a container, or nothing to install
        {"rc": 2, "stdout": "", "stderr": "", "msg": "No such file or directory: b'mokutil'"},
        {"rc": 127, "stdout": "", "stderr": "sh: 1: mokutil: not found"},
        None,
    ],
)
def test_mokutil_is_passed_only_when_it_speaks_of_secure_boot_or_efi(mokutil) -> None:
    assert plan_argv(mokutil=mokutil) == PLAN_HEAD


def test_mokutil_on_a_host_without_efi_variables_is_passed() -> None:
    mokutil = {"rc": 255, "stdout": "", "stderr": "EFI variables are not supported on this system"}
    assert plan_argv(mokutil=mokutil)[len(PLAN_HEAD) :] == [
        "--mokutil-rc", "255", "--mokutil-stdout", "",
        "--mokutil-stderr", "EFI variables are not supported on this system",
    ]  # fmt: skip


def test_only_installed_kernel_images_are_passed() -> None:
    lines = [
        "ii  linux-image-6.1.0-18-amd64",
        "rc  linux-image-6.1.0-10-amd64",  # removed, config files left
        "iU  linux-image-6.1.0-20-amd64",  # unpacked, not configured
        "ii linux-image-amd64",
        " ii linux-image-indented",
    ]
    assert plan_argv(installed_images=lines)[len(PLAN_HEAD) :] == [
        "--installed-image=linux-image-6.1.0-18-amd64",
        "--installed-image=linux-image-amd64",
    ]
    assert plan_argv(installed_images=None) == PLAN_HEAD


# --- the command line of dltk driver resolve (tasks/resolve-version.yml) ---


def test_the_resolve_command_line() -> None:
    got = nd.nvidia_driver_resolve_argv(
        {
            "dltk": "/venv/bin/dltk",
            "madison": "nvidia-driver | 580.95.05-1 | http://x bookworm/non-free amd64 Packages",
            "branch": 580,
            "version": "",
            "packages": ["cuda-drivers-580", "nvidia-driver-580-open"],
            "pin_globs": ["*nvidia*", "libcuda*"],
        }
    )
    assert got == [
        "/venv/bin/dltk", "driver", "resolve",
        "--madison", "nvidia-driver | 580.95.05-1 | http://x bookworm/non-free amd64 Packages",
        "--branch", "580", "--version", "",
        "--package=cuda-drivers-580", "--package=nvidia-driver-580-open",
        "--pin-glob=*nvidia*", "--pin-glob=libcuda*",
    ]  # fmt: skip


def test_resolve_without_packages_or_globs() -> None:
    got = nd.nvidia_driver_resolve_argv(
        {"dltk": "dltk", "madison": "", "branch": "535", "version": "535.247.01-1",
         "packages": [], "pin_globs": []}
    )  # fmt: skip
    assert got == ["dltk", "driver", "resolve", "--madison", "", "--branch", "535",
                   "--version", "535.247.01-1"]  # fmt: skip


# --- the kernel packages apt does not offer (tasks/kernel-headers.yml) ---


def madison_line(package: str, kind: str = "amd64 Packages") -> str:
    return f"{package} | 6.1.76-1 | http://deb.debian.org/debian bookworm/main {kind}"


def kernel_missing(lines: list[str], packages: list[str]) -> list[str]:
    return nd.nvidia_driver_kernel_missing({"madison": lines, "packages": packages})


def test_offered_kernel_packages_are_not_missing() -> None:
    lines = [madison_line("linux-headers-6.1.0-18-amd64"), madison_line("linux-headers-amd64")]
    assert kernel_missing(lines, ["linux-headers-6.1.0-18-amd64", "linux-headers-amd64"]) == []


def test_missing_ones_keep_the_plans_order() -> None:
    lines = [madison_line("linux-headers-amd64")]
    wanted = ["linux-headers-6.1.0-9-amd64", "linux-headers-amd64", "linux-image-6.1.0-9-amd64"]
    assert kernel_missing(lines, wanted) == [
        "linux-headers-6.1.0-9-amd64",
        "linux-image-6.1.0-9-amd64",
    ]
    assert kernel_missing([], ["a", "b"]) == ["a", "b"]


def test_only_binary_package_lines_offer_a_package() -> None:
    # A source package of that name offers nothing to install.
    assert kernel_missing(
        [madison_line("linux-headers-amd64", "Sources")], ["linux-headers-amd64"]
    ) == ["linux-headers-amd64"]
    # Nor does a source line of a mirror whose path says Packages.
    mirror = "linux-headers-amd64 | 6.1.76-1 | http://mirror/Packages/debian bookworm/main Sources"
    assert kernel_missing([mirror], ["linux-headers-amd64"]) == ["linux-headers-amd64"]
    # Ubuntu's madison indents the name.
    modules = "linux-modules-nvidia-580-server-generic"
    indented = (
        f"   {modules} | 6.8.0-45.45 | http://archive.ubuntu.com/ubuntu noble/main amd64 Packages"
    )
    assert kernel_missing([indented], [modules]) == []
    # The name is the first word, not a prefix of it.
    assert kernel_missing([madison_line("linux-headers-amd64-extra")], ["linux-headers-amd64"]) == [
        "linux-headers-amd64"
    ]


# --- the install's package names (tasks/install.yml) ---


def test_each_resolved_package_at_its_version_then_the_extras() -> None:
    got = nd.nvidia_driver_versioned_packages(
        {
            "versions": {
                "cuda-drivers-580": "580.95.05-1",
                "nvidia-driver-580-open": "580.95.05-0ubuntu1",
            },
            "extra_packages": ["nvidia-persistenced"],
        }
    )
    assert got == [
        "cuda-drivers-580=580.95.05-1",
        "nvidia-driver-580-open=580.95.05-0ubuntu1",
        "nvidia-persistenced",
    ]
    assert nd.nvidia_driver_versioned_packages({"versions": {}, "extra_packages": []}) == []


def test_the_filters_are_exported() -> None:
    assert set(nd.FilterModule().filters()) == {
        "nvidia_driver_names",
        "nvidia_driver_packages",
        "nvidia_driver_debian_missing",
        "nvidia_cuda_repo_dir",
        "nvidia_driver_in_container",
        "nvidia_driver_plan_argv",
        "nvidia_driver_resolve_argv",
        "nvidia_driver_kernel_missing",
        "nvidia_driver_versioned_packages",
        "nvidia_driver_reboot_blockers",
    }
