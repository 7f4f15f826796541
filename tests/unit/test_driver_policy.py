"""dltk.driver_policy: the nvidia_driver role's decisions (issue 9, defects 4-7).

Fixtures are real tool outputs from docs/gpu-interfaces.md (sections 1, 3, 4h, 6, 8) or the
exact `apt-cache madison` format; the CUDA-repository madison lines use NVIDIA's version strings
(`-1` for NVIDIA's own packages, `-0ubuntu1` for the Ubuntu-style ones).
"""

from __future__ import annotations

import datetime
import json

import pytest

from dltk import cli
from dltk.driver_gpus import gpu_model
from dltk.driver_policy import (
    check_fabric,
    choose_modules,
    fabricmanager_package,
    kernel_meta,
    parse_gpus,
    parse_madison,
    parse_persistence,
    parse_proc_version,
    persistenced_exec_start,
    pick_versions,
    pin_records,
    plan_driver,
    release_check,
    secure_boot_state,
    upstream,
)

TODAY = datetime.date(2026, 12, 1)
H100 = [f"0000:{bus}:00.0 10de:2330" for bus in ("1b", "43", "52", "61", "9d", "c3", "d1", "df")]
CUDA_REPO = "https://developer.download.nvidia.com/compute/cuda/repos/ubuntu2404/x86_64  Packages"
CUDA_UBUNTU_MADISON = "".join(
    f"{package} | {version} | {CUDA_REPO}\n"
    for package, version in [
        ("cuda-drivers-580", "580.95.05-1"),
        ("cuda-drivers-580", "580.82.07-1"),
        ("nvidia-driver-580-open", "580.95.05-0ubuntu1"),
        ("nvidia-driver-580-open", "580.82.07-0ubuntu1"),
        ("nvidia-fabricmanager", "580.95.05-1"),
        ("nvidia-fabricmanager", "580.82.07-1"),
    ]
)
DEB = "http://deb.debian.org/debian bookworm"
DEBIAN_MADISON = (
    "nvidia-driver | 535.309.01-0+deb12u1 | "
    "http://deb.debian.org/debian-security bookworm-security/non-free amd64 Packages\n"
    f"nvidia-driver | 535.261.03-1 | {DEB}/non-free amd64 Packages\n"
    f"nvidia-open-kernel-dkms | 535.261.03-1 | {DEB}/contrib amd64 Packages\n"
    f"nvidia-driver | 535.261.03-1 | {DEB}/non-free Sources\n"
)


def plan(**overrides):
    args = dict(
        distribution="Debian",
        source="cuda",
        branch=580,
        kernel_modules="auto",
        gpus=parse_gpus(H100),
        nvswitches=4,
        ngc="24.10",
        secure_boot="disabled",
        in_container=False,
        kernel="6.1.0-28-amd64",
        arch="x86_64",
        installed_images=["linux-image-6.1.0-28-amd64", "linux-image-amd64"],
        today=TODAY,
    )
    args.update(overrides)
    return plan_driver(**args)


# ------------------------------------------------------------ defect 7: versions and pins


def test_upstream_strips_epoch_and_revision():
    assert upstream("580.95.05-0ubuntu1") == "580.95.05"
    assert upstream("1:535.309.01-0+deb12u1") == "535.309.01"
    assert upstream("580.159.03-0ubuntu0.24.04.1") == "580.159.03"


def test_madison_keeps_binary_packages_newest_first():
    offered = parse_madison(DEBIAN_MADISON)
    assert offered["nvidia-driver"] == ["535.309.01-0+deb12u1", "535.261.03-1"]
    assert offered["nvidia-open-kernel-dkms"] == ["535.261.03-1"]


def test_each_cuda_package_gets_its_own_version_string_of_one_release():
    packages = ["cuda-drivers-580", "nvidia-driver-580-open", "nvidia-fabricmanager"]
    result = pick_versions(parse_madison(CUDA_UBUNTU_MADISON), packages, 580)
    assert result.error == ""
    assert result.driver_version == "580.95.05"
    assert result.versions == {
        "cuda-drivers-580": "580.95.05-1",
        "nvidia-driver-580-open": "580.95.05-0ubuntu1",
        "nvidia-fabricmanager": "580.95.05-1",
    }


def test_newest_release_every_package_offers_wins():
    # The Debian open module lags behind the security update: 535.261.03 is the common release.
    offered = parse_madison(DEBIAN_MADISON)
    result = pick_versions(offered, ["nvidia-driver", "nvidia-open-kernel-dkms"], 535)
    assert result.versions == {
        "nvidia-driver": "535.261.03-1",
        "nvidia-open-kernel-dkms": "535.261.03-1",
    }


def test_exact_version_picks_that_release_for_every_package():
    offered = parse_madison(CUDA_UBUNTU_MADISON)
    packages = ["cuda-drivers-580", "nvidia-driver-580-open"]
    result = pick_versions(offered, packages, 580, "580.82.07-1")
    assert result.versions == {
        "cuda-drivers-580": "580.82.07-1",
        "nvidia-driver-580-open": "580.82.07-0ubuntu1",
    }


def test_branch_not_offered_lists_what_is():
    result = pick_versions(parse_madison(DEBIAN_MADISON), ["nvidia-driver", "nvidia-smi"], 550)
    assert result.versions == {}
    assert result.error.startswith("Branch 550 is not offered for all of nvidia-driver, nvidia-smi")
    assert "nvidia-smi: nothing" in result.error


def test_pins_hold_each_package_and_what_it_pulls_in():
    versions = {"cuda-drivers-580": "580.95.05-1", "nvidia-driver-580-open": "580.95.05-0ubuntu1"}
    records = pin_records(versions, ["*nvidia*", "libcuda*"])
    assert [(r.packages, r.version) for r in records] == [
        ("cuda-drivers-580", "580.95.05-1"),
        ("nvidia-driver-580-open", "580.95.05-0ubuntu1"),
        ("*nvidia* libcuda*", "580.95.05-1"),
        ("*nvidia* libcuda*", "580.95.05-0ubuntu1"),
    ]


# ------------------------------------------------------------ defect 5: branch policy


def test_pci_ids_map_to_architectures():
    assert gpu_model("2330").architecture == "Hopper"
    assert gpu_model("10de:20b2").data_center
    assert gpu_model("2342").architecture == "Grace Hopper"
    assert gpu_model("2901").architecture == "Blackwell"
    assert gpu_model("1db5").architecture == "Volta"
    # Not in the data-center table: mapped by its chip's id range, never counted as data-center.
    rtx3090 = gpu_model("2204")
    assert (rtx3090.architecture, rtx3090.by_range, rtx3090.data_center) == ("Ampere", True, False)
    assert gpu_model("0fff") is None


def test_default_plan_for_hgx_h100_is_open_580_with_fabric_manager():
    result = plan()
    assert result.error == ""
    assert result.open_modules
    assert result.fabricmanager_package == "nvidia-fabricmanager"
    assert result.kernel_packages == ["linux-headers-amd64"]
    assert any("meets NGC 24.10's minimum" in n for n in result.notes)
    assert result.warnings == []


def test_blackwell_needs_open_modules_and_570():
    blackwell = parse_gpus(["0000:1b:00.0 10de:2901"])
    assert "branch >= 570" in plan(gpus=blackwell, branch=535).error
    assert (
        "need the open kernel modules" in plan(gpus=blackwell, kernel_modules="proprietary").error
    )
    assert plan(gpus=blackwell).open_modules


def test_volta_is_proprietary_only_and_ends_with_580():
    volta = parse_gpus(["0000:1b:00.0 10de:1db5"])
    assert not plan(gpus=volta).open_modules
    assert "proprietary kernel modules only" in plan(gpus=volta, kernel_modules="open").error
    assert "not supported after branch 580" in plan(gpus=volta, branch=595).error


def test_mixed_volta_and_blackwell_is_refused():
    mixed = parse_gpus(["0000:1b:00.0 10de:1db5", "0000:43:00.0 10de:2901"])
    assert "no driver serves both" in plan(gpus=mixed).error


def test_grace_hopper_refuses_proprietary():
    gh200 = parse_gpus(["0009:01:00.0 10de:2342"])
    assert "open kernel modules" in choose_modules("proprietary", 580, gh200)[2]


def test_535_prints_end_of_life_and_relies_on_forward_compat():
    result = plan(branch=535, source="debian", nvswitches=0)
    assert result.error == ""
    assert result.warnings == [
        "WARNING: driver branch 535 (LTSB) reached end of life in June 2026: it gets no more "
        "security fixes; move to 580 (LTSB) with nvidia_driver_branch"
    ]
    assert any("relies on forward compatibility" in n for n in result.notes)
    assert result.open_modules  # Hopper found: NVIDIA's recommendation, whatever the branch default


def test_forward_compat_needs_data_center_gpus():
    rtx = parse_gpus(["0000:af:00.0 10de:2204"])
    error, _ = release_check(535, "24.10", rtx)
    assert "not data-center GPUs" in error
    assert "below NGC 24.10's minimum R560" in release_check(550, "24.10", rtx)[0]


def test_no_gpu_below_560_defaults_to_proprietary():
    assert choose_modules("auto", 535, [])[0] is False
    assert choose_modules("auto", 580, [])[0] is True


# ------------------------------------------------------------ defect 4: fabric manager


def test_fabric_manager_package_naming():
    assert fabricmanager_package("cuda", 580) == "nvidia-fabricmanager"
    assert fabricmanager_package("cuda", 570) == "nvidia-fabricmanager-570"
    assert fabricmanager_package("ubuntu", 580) == "nvidia-fabricmanager-580"
    assert fabricmanager_package("debian", 535) == ""


def test_nvswitch_host_on_debian_source_fails_with_what_to_set():
    result = plan(source="debian", branch=535)
    assert "no fabric manager package" in result.error
    assert "nvidia_driver_source: cuda" in result.error


def test_no_nvswitch_says_why_nothing_is_installed():
    result = plan(nvswitches=0)
    assert result.fabricmanager_package == ""
    assert any("no NVSwitch" in n for n in result.notes)


FABRIC_OK = """\
GPU 00000000:18:00.0
    Product Name                          : NVIDIA H100 80GB HBM3
    Persistence Mode                      : Enabled
    Fabric
        State                             : Completed
        Status                            : Success
        CliqueId                          : 0
GPU 00000000:2A:00.0
    Fabric
        State                             : Completed
        Status                            : Success
"""
FABRIC_IN_PROGRESS = """\
GPU 00000000:18:00.0
    Fabric
        State                                          : In Progress
        Status                                         : N/A
        CliqueId                                       : N/A
"""
FABRIC_A100 = """\
GPU 00000000:68:00.0
    Fabric
        State                             : N/A
        Status                            : N/A
"""


def test_fabric_state_completed_success_passes():
    assert check_fabric(FABRIC_OK) == (True, "2 GPUs: fabric State Completed, Status Success")


def test_fabric_in_progress_or_bad_status_fails():
    ok, message = check_fabric(FABRIC_IN_PROGRESS)
    assert not ok and "error 802" in message and "In Progress/N/A" in message
    insufficient = FABRIC_OK.replace(
        "Status                            : Success", "Status : Insufficient Resources", 1
    )
    assert not check_fabric(insufficient)[0]
    assert not check_fabric("")[0]


def test_pre_hopper_fabric_na_is_accepted():
    ok, message = check_fabric(FABRIC_A100)
    assert ok and "N/A" in message


# ------------------------------------------------ defect 6: kernel, Secure Boot, persistence


def test_headers_metapackage_follows_the_installed_image_metapackage():
    assert kernel_meta("Debian", "6.1.0-28-amd64", "x86_64", ["linux-image-amd64"]) == "amd64"
    assert kernel_meta("Debian", "6.1.0-28-arm64", "aarch64", []) == "arm64"
    assert (
        kernel_meta("Debian", "6.1.0-28-cloud-amd64", "x86_64", ["linux-image-cloud-amd64"])
        == "cloud-amd64"
    )
    hwe = ["linux-image-6.8.0-49-generic", "linux-image-generic-hwe-22.04"]
    assert kernel_meta("Ubuntu", "6.8.0-49-generic", "x86_64", hwe) == "generic-hwe-22.04"
    assert kernel_meta("Ubuntu", "6.8.0-1015-aws", "x86_64", []) == "aws"


def test_dkms_sources_install_headers_meta_and_running_kernel_headers():
    result = plan(headers_package="linux-headers-6.1.0-28-amd64")
    assert result.kernel_packages == ["linux-headers-6.1.0-28-amd64", "linux-headers-amd64"]


@pytest.mark.parametrize(
    ("rc", "stdout", "stderr", "state"),
    [
        (0, "SecureBoot enabled\n", "", "enabled"),
        (0, "SecureBoot disabled\n", "", "disabled"),
        (0, "SecureBoot enabled\nSecureBoot validation is disabled in shim\n", "", "disabled"),
        (255, "", "This system doesn't support Secure Boot\n", "disabled"),
        (1, "", "EFI variables are not supported on this system\n", "disabled"),
        (None, "", "", "unknown"),
    ],
)
def test_secure_boot_state_from_mokutil(rc, stdout, stderr, state):
    assert secure_boot_state(rc, stdout, stderr) == state


def test_secure_boot_on_ubuntu_uses_canonical_signed_modules():
    result = plan(
        distribution="Ubuntu",
        source="ubuntu",
        secure_boot="enabled",
        kernel="6.8.0-49-generic",
        installed_images=["linux-image-generic"],
    )
    assert result.error == ""
    assert result.fabricmanager_package == "nvidia-fabricmanager-580"
    assert result.kernel_packages == [
        "linux-modules-nvidia-580-server-open-6.8.0-49-generic",
        "linux-modules-nvidia-580-server-open-generic",
    ]


def test_secure_boot_with_dkms_fails_early_with_what_to_do():
    debian = plan(secure_boot="enabled")
    assert "enroll a Machine Owner Key" in debian.error and "disable Secure Boot" in debian.error
    assert "nvidia_driver_source: ubuntu" not in debian.error
    ubuntu = plan(distribution="Ubuntu", secure_boot="enabled", kernel="6.8.0-49-generic")
    assert "nvidia_driver_source: ubuntu" in ubuntu.error


def test_persistenced_drop_in_removes_no_persistence_mode():
    ubuntu_unit = (
        "[Service]\nType=forking\n"
        "ExecStart=/usr/bin/nvidia-persistenced --user nvidia-persistenced "
        "--no-persistence-mode --verbose\n"
    )
    assert persistenced_exec_start(ubuntu_unit) == (
        "/usr/bin/nvidia-persistenced --user nvidia-persistenced --verbose"
    )
    assert (
        persistenced_exec_start("[Service]\nExecStart=/usr/bin/nvidia-persistenced --user nvpd\n")
        == ""
    )


def test_persistence_csv():
    assert parse_persistence("0, Enabled\n1, Disabled\n") == {"0": "Enabled", "1": "Disabled"}


def test_proc_version_open_and_proprietary():
    open_text = (
        "NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  565.57.01  Release Build  "
        "(dvs-builder@U16-A24-9-2)  Thu Oct 10 12:15:00 UTC 2024\n"
        "GCC version:  gcc version 13.3.0 (Ubuntu 13.3.0-6ubuntu2~24.04)\n"
    )
    proprietary = (
        "NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.54.15  Tue Mar  5 22:23:56 UTC 2024\n"
    )
    assert parse_proc_version(open_text) == ("565.57.01", "open")
    assert parse_proc_version(proprietary) == ("550.54.15", "proprietary")
    assert parse_proc_version("") == ("", "")


# ------------------------------------------------------------ the CLI the role calls


def test_cli_resolve_and_check(capsys):
    assert (
        cli.main(
            [
                "driver",
                "resolve",
                "--madison",
                CUDA_UBUNTU_MADISON,
                "--branch",
                "580",
                "--package",
                "cuda-drivers-580",
                "--package",
                "nvidia-driver-580-open",
                "--pin-glob",
                "*nvidia*",
            ]
        )
        == 0
    )
    document = json.loads(capsys.readouterr().out)
    assert document["versions"]["nvidia-driver-580-open"] == "580.95.05-0ubuntu1"
    assert len(document["pins"]) == 4
    cli.main(
        [
            "driver",
            "check",
            "--driver-version",
            "565.57.01-1",
            "--proc-version",
            "NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  565.57.01  Release Build\n",
            "--persistence",
            "0, Enabled\n1, Enabled\n",
            "--smi-q",
            FABRIC_OK,
        ]
    )
    document = json.loads(capsys.readouterr().out)
    assert document["module_current"] and document["persistence_ok"] and document["fabric_ok"]


def test_cli_plan_reports_error_as_json(capsys):
    cli.main(
        [
            "driver",
            "plan",
            "--distribution",
            "Debian",
            "--source",
            "debian",
            "--branch",
            "535",
            "--gpu",
            "0000:1b:00.0 10de:2330",
            "--nvswitches",
            "4",
            "--ngc",
            "24.10",
            "--kernel",
            "6.1.0-28-amd64",
        ]
    )
    assert "nvidia_driver_source: cuda" in json.loads(capsys.readouterr().out)["error"]
