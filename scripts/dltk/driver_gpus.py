"""NVIDIA PCI device id -> GPU architecture, for the driver branch policy (nvidia_driver role).

Sources:
- pci.ids (pciutils/pciids), vendor 10de: the chip code before each product name tells the
  architecture (GM = Maxwell, GP = Pascal, GV = Volta, TU = Turing, GA = Ampere, AD = Ada Lovelace,
  GH = Hopper, GB = Blackwell), e.g. `2330  GH100 [H100 SXM5 80GB]`, `20b2  GA100 [A100 SXM4 80GB]`
  (docs/gpu-interfaces.md section 3e). https://pci-ids.ucw.cz/read/PC/10de
- NVIDIA, "NVIDIA Transitions Fully Towards Open-Source GPU Kernel Modules" (R560): Grace Hopper and
  Blackwell need the open kernel modules; Turing..Hopper: open recommended; Maxwell, Pascal, Volta:
  proprietary only; mixed old and new GPUs: proprietary.
  https://developer.nvidia.com/blog/nvidia-transitions-fully-towards-open-source-gpu-kernel-modules/
- NVIDIA open-gpu-kernel-modules README, "Compatible GPUs": Turing and later only.
  https://github.com/NVIDIA/open-gpu-kernel-modules#compatible-gpus

KNOWN lists the data-center boards by exact id. Any other id is mapped by its chip's id range
(NVIDIA allocates device ids per chip), marked `by_range`, and never counted as data-center.
"""

from __future__ import annotations

from dataclasses import dataclass

MAXWELL, PASCAL, VOLTA = "Maxwell", "Pascal", "Volta"
TURING, AMPERE, ADA, HOPPER = "Turing", "Ampere", "Ada Lovelace", "Hopper"
GRACE_HOPPER, BLACKWELL = "Grace Hopper", "Blackwell"

# Architectures the open modules do not support (NVIDIA: "Continue to use the proprietary driver").
PROPRIETARY_ONLY = (MAXWELL, PASCAL, VOLTA)
# Architectures the proprietary modules do not support ("you must use the open-source ... modules").
OPEN_ONLY = (GRACE_HOPPER, BLACKWELL)


@dataclass(frozen=True)
class GpuModel:
    """One NVIDIA PCI device id."""

    device_id: str  # 4 lower-case hex digits, e.g. "2330"
    name: str
    architecture: str
    data_center: bool
    by_range: bool = False


def _dc(device_id: str, name: str, architecture: str) -> GpuModel:
    return GpuModel(device_id, name, architecture, data_center=True)


# Data-center GPUs (pci.ids names).
KNOWN: dict[str, GpuModel] = {
    m.device_id: m
    for m in (
        _dc("13bd", "GM107GL [Tesla M10]", MAXWELL),
        _dc("13f2", "GM204GL [Tesla M60]", MAXWELL),
        _dc("17fd", "GM200GL [Tesla M40 24GB]", MAXWELL),
        _dc("15f7", "GP100GL [Tesla P100 PCIe 12GB]", PASCAL),
        _dc("15f8", "GP100GL [Tesla P100 PCIe 16GB]", PASCAL),
        _dc("15f9", "GP100GL [Tesla P100 SXM2 16GB]", PASCAL),
        _dc("1b38", "GP102GL [Tesla P40]", PASCAL),
        _dc("1bb3", "GP104GL [Tesla P4]", PASCAL),
        _dc("1db1", "GV100GL [Tesla V100 SXM2 16GB]", VOLTA),
        _dc("1db4", "GV100GL [Tesla V100 PCIe 16GB]", VOLTA),
        _dc("1db5", "GV100GL [Tesla V100 SXM2 32GB]", VOLTA),
        _dc("1db6", "GV100GL [Tesla V100 PCIe 32GB]", VOLTA),
        _dc("1df6", "GV100GL [Tesla V100S PCIe 32GB]", VOLTA),
        _dc("1eb8", "TU104GL [Tesla T4]", TURING),
        _dc("20b0", "GA100 [A100 SXM4 40GB]", AMPERE),
        _dc("20b2", "GA100 [A100 SXM4 80GB]", AMPERE),
        _dc("20b5", "GA100 [A100 PCIe 80GB]", AMPERE),
        _dc("20f1", "GA100 [A100 PCIe 40GB]", AMPERE),
        _dc("20b7", "GA100GL [A30 PCIe]", AMPERE),
        _dc("2235", "GA102GL [A40]", AMPERE),
        _dc("2236", "GA102GL [A10]", AMPERE),
        _dc("2237", "GA102GL [A10G]", AMPERE),
        _dc("25b6", "GA107GL [A2 / A16]", AMPERE),
        _dc("26b5", "AD102GL [L40]", ADA),
        _dc("26b9", "AD102GL [L40S]", ADA),
        _dc("27b8", "AD104GL [L4]", ADA),
        _dc("2321", "GH100 [H100 NVL]", HOPPER),
        _dc("2324", "GH100 [H800]", HOPPER),
        _dc("2330", "GH100 [H100 SXM5 80GB]", HOPPER),
        _dc("2331", "GH100 [H100 PCIe]", HOPPER),
        _dc("2335", "GH100 [H200 SXM 141GB]", HOPPER),
        _dc("2336", "GH100 [H100]", HOPPER),
        _dc("233b", "GH100 [H200 NVL]", HOPPER),
        _dc("2342", "GH100 [GH200 120GB / 480GB]", GRACE_HOPPER),
        _dc("2901", "GB100 [B200]", BLACKWELL),
        _dc("2941", "GB100 [GB200]", BLACKWELL),
    )
}

# (first id, last id, architecture) per chip family, for ids not in KNOWN.
RANGES: tuple[tuple[int, int, str], ...] = (
    (0x1340, 0x13FF, MAXWELL),
    (0x1400, 0x14FF, MAXWELL),
    (0x1500, 0x15FF, PASCAL),
    (0x1700, 0x17FF, MAXWELL),
    (0x1B00, 0x1CFF, PASCAL),
    (0x1D00, 0x1D7F, PASCAL),
    (0x1D80, 0x1DFF, VOLTA),
    (0x1E00, 0x1FFF, TURING),
    (0x2000, 0x20FF, AMPERE),
    (0x2100, 0x21FF, TURING),
    (0x2200, 0x229F, AMPERE),
    (0x2300, 0x233F, HOPPER),
    (0x2340, 0x234F, GRACE_HOPPER),
    (0x2400, 0x25FF, AMPERE),
    (0x2600, 0x28FF, ADA),
    (0x2900, 0x2FFF, BLACKWELL),
    (0x3100, 0x31FF, BLACKWELL),
)


def gpu_model(device_id: str) -> GpuModel | None:
    """The model of an NVIDIA device id ("2330", "0x2330", "10de:2330"); None when unknown."""
    key = device_id.lower().split(":")[-1].removeprefix("0x").zfill(4)
    if key in KNOWN:
        return KNOWN[key]
    try:
        number = int(key, 16)
    except ValueError:
        return None
    for first, last, architecture in RANGES:
        if first <= number <= last:
            return GpuModel(key, f"NVIDIA device {key}", architecture, False, by_range=True)
    return None
