"""The one GPU fact source: what a host's PCI bus and NVIDIA driver say about its GPUs.

Stdlib only, on purpose: the same file is the module_utils of the module nvidia_gpu_facts
(plugins/module_utils/dltk_gpu_facts.py of dltk.deploy is a symlink to it), run by the module on
the managed host, and imported by dltk (bench speed, profile, engines detect). Every role and
command that asks "which GPUs does this host have" gets the answer from `gather`.

Sources of the formats (docs/gpu-interfaces.md, real outputs of data-center servers):
- PCI (sysfs, /sys/bus/pci/devices/<address>/{vendor,device,class}, e.g. "0x10de", "0x2330",
  "0x030200"): NVIDIA = vendor 0x10de; GPUs are display controllers, PCI class 0x03xx (3D
  controller [0302], VGA [0300]), never their audio functions (0x0403); NVSwitches are class
  0x0680 (lspci "Bridge [0680]", 10de:22a3 on HGX H100, 10de:1af1 on HGX A100) (section 3).
- nvidia-smi --query-gpu=index,name,pci.bus_id,compute_cap --format=csv,noheader: one line per
  GPU, ", "-separated, bus id in the 8-hex-digit-domain upper-case form "00000000:1B:00.0",
  compute capability "9.0" (sections 1d, 1e). Without a loaded driver nvidia-smi exits non-zero;
  its first output line is kept as the reason.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Callable
from typing import Any

NVIDIA_VENDOR = "0x10de"
DISPLAY_CLASS = "0x03"  # PCI base class 03: display controller (VGA 0300, 3D 0302)
NVSWITCH_CLASS = "0x0680"  # PCI bridge, subclass "other": how NVSwitches show
PCI_DEVICES_DIR = "/sys/bus/pci/devices"
# One directory per GPU the loaded NVIDIA kernel module drives (named by its PCI address); what
# `nvidia-ctk cdi generate` needs (nvidia_container_toolkit's CDI step reads it from these facts).
PROC_GPUS_DIR = "/proc/driver/nvidia/gpus"
QUERY_FIELDS = ("index", "name", "pci.bus_id", "compute_cap")
SMI_ARGV = ("nvidia-smi", "--query-gpu=" + ",".join(QUERY_FIELDS), "--format=csv,noheader")
SMI_TIMEOUT_S = 15

_BUS_ID = re.compile(r"([0-9A-Fa-f]{4,8}):([0-9A-Fa-f]{2}):([0-9A-Fa-f]{2})\.([0-7])")
_CC = re.compile(r"\d{1,2}\.\d")


def _read_id(path: str) -> str:
    """A sysfs id file ("0x10de\\n") lower-cased; "" when it is missing or unreadable."""
    try:
        with open(path, encoding="ascii", errors="replace") as handle:
            return handle.read().strip().lower()
    except OSError:
        return ""


def read_pci_devices(root: str = PCI_DEVICES_DIR) -> list[dict[str, str]]:
    """[{address, vendor, device, class}] of every device directory under `root`, by address.

    A root that does not exist (a VM or container without a PCI bus) gives [].
    """
    try:
        names = sorted(os.listdir(root))
    except OSError:
        return []
    devices = []
    for name in names:
        path = os.path.join(root, name)
        devices.append(
            {
                "address": name,
                "vendor": _read_id(os.path.join(path, "vendor")),
                "device": _read_id(os.path.join(path, "device")),
                "class": _read_id(os.path.join(path, "class")),
            }
        )
    return devices


def _entry(device: dict[str, str]) -> dict[str, str]:
    device_id = device["device"].removeprefix("0x")
    return {
        "address": device["address"],
        "device_id": device_id,
        "class": device["class"],
        # how nvidia_driver and dltk driver plan name a device: "0000:3b:00.0 10de:2330"
        "entry": f"{device['address']} 10de:{device_id}",
    }


def classify_pci(devices: list[dict[str, str]]) -> dict[str, Any]:
    """NVIDIA GPUs (class 0x03xx) and NVSwitches (class 0x0680) among `devices` (pure)."""
    nvidia = [d for d in devices if d["vendor"] == NVIDIA_VENDOR]
    return {
        "pci_gpus": [_entry(d) for d in nvidia if d["class"].startswith(DISPLAY_CLASS)],
        "nvswitches": [_entry(d) for d in nvidia if d["class"].startswith(NVSWITCH_CLASS)],
        "nvidia_pci_devices": len(nvidia),
    }


def pci_address(bus_id: str) -> str:
    """nvidia-smi's "00000000:1B:00.0" as sysfs spells it, "0000:1b:00.0"; "" if not a bus id."""
    match = _BUS_ID.fullmatch(bus_id.strip())
    if not match:
        return ""
    domain, bus, slot, function = match.groups()
    return f"{domain[-4:]}:{bus}:{slot}.{function}".lower()


def parse_query_gpu(text: str) -> tuple[list[dict[str, Any]], list[str]]:
    """`nvidia-smi --query-gpu=index,name,pci.bus_id,compute_cap --format=csv,noheader` (pure).

    Returns the GPUs [{index, name, bus_id, pci_address, cc}] and the non-blank lines that are
    not such a row (a header, "No devices were found", a driver message), to be reported.
    """
    gpus: list[dict[str, Any]] = []
    other: list[str] = []
    for line in text.splitlines():
        cells = [cell.strip() for cell in line.split(",")]
        # The name is the only free text; rejoin it should it ever hold a comma.
        if len(cells) >= 4:
            index, name, bus_id, cc = cells[0], ", ".join(cells[1:-2]), cells[-2], cells[-1]
            if index.isdigit() and name and pci_address(bus_id) and _CC.fullmatch(cc):
                gpus.append(
                    {
                        "index": int(index),
                        "name": name,
                        "bus_id": bus_id,
                        "pci_address": pci_address(bus_id),
                        "cc": cc,
                    }
                )
                continue
        if line.strip():
            other.append(line.strip())
    return gpus, other


def _silent(rc: int | None, reason: str) -> dict[str, Any]:
    return {"answering": False, "rc": rc, "reason": reason, "gpus": []}


def query_driver(
    run: Callable[..., Any] | None = None,
    which: Callable[[str], str | None] | None = None,
) -> dict[str, Any]:
    """Ask nvidia-smi (bounded to SMI_TIMEOUT_S) which GPUs the loaded driver sees.

    {answering, rc, reason, gpus}: answering is True when nvidia-smi ran and exited 0; reason
    says in a few words what happened ("not found", "exit 9: NVIDIA-SMI has failed ...",
    "lists 8 GPU(s)", "lists no GPU"). run/which default to subprocess.run/shutil.which.
    """
    run = run or subprocess.run
    which = which or shutil.which
    if which(SMI_ARGV[0]) is None:
        return _silent(None, "not found")
    try:
        proc = run(list(SMI_ARGV), capture_output=True, text=True, timeout=SMI_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return _silent(None, f"timed out after {SMI_TIMEOUT_S} s")
    except OSError as exc:
        return _silent(None, f"failed: {exc}")
    if proc.returncode != 0:
        said = (proc.stdout.strip() or proc.stderr.strip()).splitlines()
        return _silent(
            proc.returncode, f"exit {proc.returncode}" + (f": {said[0]}" if said else "")
        )
    gpus, other = parse_query_gpu(proc.stdout)
    reason = f"lists {len(gpus)} GPU(s)" if gpus else "lists no GPU"
    if other:
        reason += f" (unread lines: {'; '.join(other[:3])})"
    return {"answering": True, "rc": 0, "reason": reason, "gpus": gpus}


def read_driver_gpu_dirs(root: str = PROC_GPUS_DIR) -> list[str]:
    """The GPUs the loaded NVIDIA kernel module lists (sorted directory names, PCI addresses);
    [] when the directory is absent (no driver loaded)."""
    try:
        return sorted(e.name for e in os.scandir(root) if e.is_dir())
    except OSError:
        return []


def gather(
    pci_devices_dir: str = PCI_DEVICES_DIR,
    driver: bool = True,
    run: Callable[..., Any] | None = None,
    which: Callable[[str], str | None] | None = None,
    proc_gpus_dir: str = PROC_GPUS_DIR,
) -> dict[str, Any]:
    """The single answer: PCI GPUs and NVSwitches, the GPUs the kernel module lists, and what
    the driver (nvidia-smi) says.

    {pci_devices_dir, pci_gpus: [{address, device_id, class, entry}], nvswitches: [...],
     nvidia_pci_devices, proc_gpus_dir, driver_gpu_dirs: [pci address], driver: {answering, rc,
     reason}, gpus: [{index, name, bus_id, pci_address, cc}]}; `driver=False` skips nvidia-smi
    (reason "not asked").
    """
    facts: dict[str, Any] = {"pci_devices_dir": pci_devices_dir}
    facts.update(classify_pci(read_pci_devices(pci_devices_dir)))
    facts["proc_gpus_dir"] = proc_gpus_dir
    facts["driver_gpu_dirs"] = read_driver_gpu_dirs(proc_gpus_dir)
    if driver:
        answer = query_driver(run=run, which=which)
    else:
        answer = _silent(None, "not asked")
    facts["gpus"] = answer.pop("gpus")
    facts["driver"] = answer
    return facts
