"""gpu_facts.py, the one GPU fact source (pure tests; the Ansible module that ships it:
test_gpu_facts_module.py).

The PCI trees are STAND-IN sysfs trees (TEST DOUBLES) written into tmp_path with the ids and
classes of real HGX boards (docs/gpu-interfaces.md 3a, 3c); the nvidia-smi outputs are TEST
DOUBLES of the subprocess call whose cells are real ones (1d, 1e, 1f).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from dltk import gpu_facts
from dltk.gpu_facts import (
    SMI_ARGV,
    classify_pci,
    gather,
    parse_query_gpu,
    pci_address,
    query_driver,
    read_pci_devices,
)

# gpu-interfaces.md 3a: HGX H100, `lspci -Dnn` (the BMC's ASPEED VGA, 4 NVSwitches, 8 GPUs).
H100_GPU_BUSES = ("1b", "43", "52", "61", "9d", "c3", "d1", "df")
H100_BOARD = (
    [("0000:04:00.0", "0x1a03", "0x2000", "0x030000")]
    + [(f"0000:{b}:00.0", "0x10de", "0x22a3", "0x068000") for b in ("07", "08", "09", "0a")]
    + [(f"0000:{b}:00.0", "0x10de", "0x2330", "0x030200") for b in H100_GPU_BUSES]
)
# 3c: HGX A100 8-GPU, 8 x 10de:20b2 + 6 NVSwitches 10de:1af1 (the host printed no domain).
A100_BOARD = [
    (f"0000:{b}:00.0", "0x10de", "0x20b2", "0x030200")
    for b in ("10", "16", "49", "4d", "8a", "8f", "c6", "ca")
] + [
    (f"0000:{b}:00.0", "0x10de", "0x1af1", "0x068000") for b in ("54", "55", "56", "57", "58", "59")
]

# `--query-gpu=index,name,pci.bus_id,compute_cap --format=csv,noheader` on 8x H100: this exact
# field list was not found captured (gpu-interfaces.md "Not found"); the rows are built from real
# cells: the name and compute_cap of 1d, the bus ids of the 1e/1f host (00000000:18:00.0,
# 00000000:2A:00.0, 8-hex-digit domain, upper case), ", "-separated as every 1d CSV.
SMI_H100 = (
    "0, NVIDIA H100 80GB HBM3, 00000000:18:00.0, 9.0\n"
    "1, NVIDIA H100 80GB HBM3, 00000000:2A:00.0, 9.0\n"
)
# What nvidia-smi prints when it cannot reach the driver, exit 9: not captured in
# gpu-interfaces.md; the text molecule/gpu_sim's STAND-IN nvidia-smi prints.
NO_DRIVER = (
    "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. "
    "Make sure that the latest NVIDIA driver is installed and running.\n"
)


def stand_in_sysfs(root: Path, devices: list[tuple[str, ...]]) -> Path:
    """A STAND-IN /sys/bus/pci/devices: one directory per device with vendor, device, class."""
    for address, vendor, device, pci_class in devices:
        (root / address).mkdir(parents=True)
        for name, value in (("vendor", vendor), ("device", device), ("class", pci_class)):
            (root / address / name).write_text(value + "\n")
    return root


def smi_double(rc: int, stdout: str = "", stderr: str = ""):
    """A TEST DOUBLE of subprocess.run for nvidia-smi: checks the query, returns a fixed result."""

    def run(cmd: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
        assert cmd == list(SMI_ARGV) and kwargs["timeout"] == gpu_facts.SMI_TIMEOUT_S
        return subprocess.CompletedProcess(cmd, rc, stdout, stderr)

    return run


def found(_name: str) -> str:
    return "/usr/bin/nvidia-smi"


def test_hgx_h100_board_gives_8_gpus_and_4_nvswitches(tmp_path: Path) -> None:
    root = stand_in_sysfs(tmp_path / "pci", H100_BOARD)
    facts = classify_pci(read_pci_devices(str(root)))
    assert [g["entry"] for g in facts["pci_gpus"]] == [
        f"0000:{b}:00.0 10de:2330" for b in H100_GPU_BUSES
    ]
    assert [s["entry"] for s in facts["nvswitches"]] == [
        f"0000:{b}:00.0 10de:22a3" for b in ("07", "08", "09", "0a")
    ]
    assert facts["pci_gpus"][0] == {
        "address": "0000:1b:00.0",
        "device_id": "2330",
        "class": "0x030200",
        "entry": "0000:1b:00.0 10de:2330",
    }
    # The ASPEED VGA is a display controller of another vendor: not a GPU of ours.
    assert facts["nvidia_pci_devices"] == 12


def test_hgx_a100_board_gives_8_gpus_and_6_nvswitches(tmp_path: Path) -> None:
    facts = classify_pci(read_pci_devices(str(stand_in_sysfs(tmp_path / "pci", A100_BOARD))))
    assert len(facts["pci_gpus"]) == 8 and {g["device_id"] for g in facts["pci_gpus"]} == {"20b2"}
    assert len(facts["nvswitches"]) == 6 and {s["device_id"] for s in facts["nvswitches"]} == {
        "1af1"
    }


def test_a_gpu_s_audio_function_and_upper_case_ids(tmp_path: Path) -> None:
    root = stand_in_sysfs(
        tmp_path / "pci",
        [
            ("0000:af:00.0", "0x10DE", "0x2204", "0x030000"),  # VGA controller (RTX 3090)
            ("0000:af:00.1", "0x10de", "0x1aef", "0x040300"),  # its HD audio function
            # An NVIDIA PCI-to-PCI bridge (class 0604): not an NVSwitch, which is 0680 on every
            # captured HGX listing (gpu-interfaces.md 3a-3c; the 0604 how-to looks hand-edited).
            ("0000:ae:00.0", "0x10de", "0x22b1", "0x060400"),
        ],
    )
    facts = classify_pci(read_pci_devices(str(root)))
    assert [g["entry"] for g in facts["pci_gpus"]] == ["0000:af:00.0 10de:2204"]
    assert facts["nvswitches"] == [] and facts["nvidia_pci_devices"] == 3


def test_no_pci_bus_and_unreadable_devices(tmp_path: Path) -> None:
    assert read_pci_devices(str(tmp_path / "absent")) == []
    (tmp_path / "pci" / "0000:01:00.0").mkdir(parents=True)
    (tmp_path / "pci" / "0000:01:00.0" / "vendor").write_text("0x10de\n")  # no class, no device
    devices = read_pci_devices(str(tmp_path / "pci"))
    assert devices == [{"address": "0000:01:00.0", "vendor": "0x10de", "device": "", "class": ""}]
    assert classify_pci(devices)["pci_gpus"] == []


def test_pci_address_of_nvidia_smi_bus_ids() -> None:
    assert pci_address("00000000:2A:00.0") == "0000:2a:00.0"
    assert pci_address("0000:1b:00.0") == "0000:1b:00.0"
    assert pci_address("00000009:01:00.0") == "0009:01:00.0"
    assert pci_address("2A:00.0") == "" and pci_address("N/A") == ""


def test_parse_query_gpu_rows() -> None:
    gpus, other = parse_query_gpu(SMI_H100)
    assert other == []
    assert gpus == [
        {
            "index": 0,
            "name": "NVIDIA H100 80GB HBM3",
            "bus_id": "00000000:18:00.0",
            "pci_address": "0000:18:00.0",
            "cc": "9.0",
        },
        {
            "index": 1,
            "name": "NVIDIA H100 80GB HBM3",
            "bus_id": "00000000:2A:00.0",
            "pci_address": "0000:2a:00.0",
            "cc": "9.0",
        },
    ]


def test_parse_query_gpu_keeps_what_it_cannot_read() -> None:
    text = (
        "index, name, pci.bus_id, compute_cap\n"  # a header (format=csv without noheader)
        "0, NVIDIA A100-SXM4-80GB, 00000000:68:00.0, 8.0\n"
        "1, NVIDIA TITAN V, 00000000:18:00.0, [N/A]\n"
        "\n"
        "No devices were found\n"
    )
    gpus, other = parse_query_gpu(text)
    assert [(g["index"], g["name"], g["cc"]) for g in gpus] == [(0, "NVIDIA A100-SXM4-80GB", "8.0")]
    assert other == [
        "index, name, pci.bus_id, compute_cap",
        "1, NVIDIA TITAN V, 00000000:18:00.0, [N/A]",
        "No devices were found",
    ]
    # A name with a comma stays one name.
    assert parse_query_gpu("3, Board, rev 2, 0000:01:00.0, 12.0")[0][0]["name"] == "Board, rev 2"


def test_driver_answers() -> None:
    answer = query_driver(run=smi_double(0, SMI_H100), which=found)
    assert answer["answering"] and answer["rc"] == 0 and answer["reason"] == "lists 2 GPU(s)"
    assert [g["index"] for g in answer["gpus"]] == [0, 1]
    empty = query_driver(run=smi_double(0, "No devices were found\n"), which=found)
    assert empty["answering"] and empty["gpus"] == []
    assert empty["reason"] == "lists no GPU (unread lines: No devices were found)"


def test_driver_does_not_answer_and_says_why() -> None:
    assert query_driver(run=smi_double(0, SMI_H100), which=lambda _n: None) == {
        "answering": False,
        "rc": None,
        "reason": "not found",
        "gpus": [],
    }
    no_driver = query_driver(run=smi_double(9, NO_DRIVER), which=found)
    assert not no_driver["answering"] and no_driver["rc"] == 9 and no_driver["gpus"] == []
    assert no_driver["reason"] == "exit 9: " + NO_DRIVER.strip()
    bad_field = query_driver(
        run=smi_double(2, "", 'Field "compute_cap" is not a valid field.'), which=found
    )
    assert bad_field["reason"] == 'exit 2: Field "compute_cap" is not a valid field.'
    assert query_driver(run=smi_double(4), which=found)["reason"] == "exit 4"

    def hangs(cmd: list[str], **kwargs: object) -> None:
        raise subprocess.TimeoutExpired(cmd, 15)

    def vanished(cmd: list[str], **kwargs: object) -> None:
        raise FileNotFoundError(2, "No such file or directory")

    assert query_driver(run=hangs, which=found)["reason"] == "timed out after 15 s"
    assert query_driver(run=vanished, which=found)["reason"].startswith("failed: [Errno 2]")


def test_gather_is_the_single_answer(tmp_path: Path) -> None:
    root = str(stand_in_sysfs(tmp_path / "pci", H100_BOARD))
    proc = tmp_path / "proc-driver-nvidia-gpus"  # STAND-IN of /proc/driver/nvidia/gpus
    for address in ("0000:18:00.0", "0000:2a:00.0"):
        (proc / address).mkdir(parents=True)
    facts = gather(root, run=smi_double(0, SMI_H100), which=found, proc_gpus_dir=str(proc))
    assert set(facts) == {
        "pci_devices_dir",
        "pci_gpus",
        "nvswitches",
        "nvidia_pci_devices",
        "proc_gpus_dir",
        "driver_gpu_dirs",
        "gpus",
        "driver",
    }
    assert facts["driver_gpu_dirs"] == ["0000:18:00.0", "0000:2a:00.0"]
    assert gather(root, driver=False, proc_gpus_dir=str(tmp_path / "none"))["driver_gpu_dirs"] == []
    assert facts["driver"] == {"answering": True, "rc": 0, "reason": "lists 2 GPU(s)"}
    assert len(facts["pci_gpus"]) == 8 and len(facts["nvswitches"]) == 4 and len(facts["gpus"]) == 2
    unasked = gather(root, driver=False, run=smi_double(0, SMI_H100), which=found)
    assert unasked["driver"]["reason"] == "not asked" and unasked["gpus"] == []
    json.dumps(facts)  # an Ansible fact: plain JSON


@pytest.mark.parametrize("text", ["", "0, 9.0\n", "0, NVIDIA H100 80GB HBM3, 18:00.0, 9.0\n"])
def test_rows_without_every_field_are_no_gpu(text: str) -> None:
    assert parse_query_gpu(text)[0] == []
