"""`dltk driver`: the decisions of the nvidia_driver role, as pure functions.

The role gathers facts on the host (PCI ids, `apt-cache madison`, `mokutil --sb-state`,
`nvidia-smi`, the persistence daemon's unit) and asks these functions on the control node:

- plan: kernel module flavour (open / proprietary) per GPU architecture and source, branch x GPU
  combinations NVIDIA does not support, the Triton release's driver minimum or forward
  compatibility, the branch's end of life, Secure Boot, the fabric manager package, the kernel
  headers metapackage / Canonical's precompiled module packages.
- resolve: one driver release (upstream version) that every package offers, each package at ITS
  OWN version string (the CUDA repository gives `cuda-drivers-580 580.95.05-1` but
  `nvidia-driver-580-open 580.95.05-0ubuntu1`), and the apt preferences records that hold them.
- check: the loaded module (/proc/driver/nvidia/version), the NVLink fabric (`nvidia-smi -q`) and
  persistence mode (`nvidia-smi --query-gpu=index,persistence_mode`).

Sources (cited in roles/nvidia_driver/README.md): NVIDIA Driver Installation Guide (Ubuntu,
Debian, version locking), NVIDIA Fabric Manager User Guide, NVIDIA "Supported Drivers and CUDA
Toolkit Versions", the NVIDIA R560 open-modules announcement, Canonical's NVIDIA drivers
installation guide, mokutil's source (docs/gpu-interfaces.md 8b), nv-procfs.c (6).
"""

from __future__ import annotations

import argparse
import datetime
import json
import re
from dataclasses import asdict, dataclass, field

from dltk.driver_gpus import BLACKWELL, OPEN_ONLY, PROPRIETARY_ONLY, GpuModel, gpu_model
from dltk.errors import DltkError
from dltk.release import get_release

# NVIDIA's data-center branches ("Supported Drivers and CUDA Toolkit Versions", 2026 edition):
# branch -> (kind, end of life as (year, month)).
BRANCHES: dict[int, tuple[str, tuple[int, int]]] = {
    535: ("LTSB", (2026, 6)),
    580: ("LTSB", (2028, 6)),
    595: ("production branch", (2027, 3)),
    620: ("LTSB", (2029, 9)),
}
DEFAULT_BRANCH = 580
# Blackwell is supported from this branch on, with the open modules only.
BLACKWELL_MIN_BRANCH = 570
# R590 dropped Maxwell, Pascal and Volta: R580 is the last branch for them.
PROPRIETARY_ONLY_MAX_BRANCH = 580
# Open kernel modules exist from R515; NVIDIA's installers default to them from R560.
OPEN_MIN_BRANCH = 515
OPEN_DEFAULT_BRANCH = 560
# From R580 the CUDA repository names the fabric manager package without the branch (4h).
FABRICMANAGER_UNVERSIONED_BRANCH = 580
SOURCES = ("debian", "cuda", "ubuntu")
MODULES = ("auto", "open", "proprietary")

_MONTHS = "January February March April May June July August September October November December"
MONTHS = _MONTHS.split()


def upstream(version: str) -> str:
    """The driver release of a package version: '1:580.95.05-0ubuntu1' -> '580.95.05'."""
    match = re.match(r"^(?:\d+:)?(\d+(?:\.\d+)*)", version.strip())
    return match[1] if match else ""


# ---------------------------------------------------------------- plan (preflight)


@dataclass(frozen=True)
class Gpu:
    """One GPU the role found: PCI address + model."""

    address: str
    device_id: str
    model: GpuModel | None

    @property
    def label(self) -> str:
        if self.model is None:
            return f"{self.address} 10de:{self.device_id} (unknown architecture)"
        guess = ", by device id range" if self.model.by_range else ""
        return f"{self.address} {self.model.name} ({self.model.architecture}{guess})"


def parse_gpus(entries: list[str]) -> list[Gpu]:
    """nvidia_driver_gpus entries ("0000:3b:00.0 10de:2330") as Gpu records."""
    gpus = []
    for entry in entries:
        parts = entry.split()
        if len(parts) != 2 or not re.fullmatch(r"(10de:)?[0-9a-fA-F]{4}", parts[1]):
            raise DltkError(f"GPU entry {entry!r} must look like '0000:3b:00.0 10de:2330'")
        device = parts[1].lower().split(":")[-1]
        gpus.append(Gpu(parts[0], device, gpu_model(device)))
    return gpus


def secure_boot_state(rc: int | None, stdout: str, stderr: str = "") -> str:
    """enabled / disabled / unknown from `mokutil --sb-state` (docs/gpu-interfaces.md 8a, 8b).

    rc 0 prints 'SecureBoot enabled' or 'SecureBoot disabled' (stdout); 'SecureBoot validation is
    disabled in shim' means the shim does not enforce signatures (treated as disabled);
    rc 255 'This system doesn't support Secure Boot' and rc 1 'EFI variables are not supported'
    (legacy BIOS boot) mean no Secure Boot; a missing mokutil (rc None/127) is unknown.
    """
    text = f"{stdout}\n{stderr}"
    if "validation is disabled in shim" in text:
        return "disabled"
    if re.search(r"(?m)^SecureBoot enabled", stdout):
        return "enabled"
    if re.search(r"(?m)^SecureBoot disabled", stdout):
        return "disabled"
    if "doesn't support Secure Boot" in text or "EFI variables are not supported" in text:
        return "disabled"
    return "unknown"


def kernel_flavour(kernel: str) -> str:
    """Ubuntu's flavour of a kernel release: '6.8.0-49-generic' -> 'generic'."""
    match = re.match(r"^\d+\.\d+\.\d+-\d+-(.+)$", kernel)
    return match[1] if match else "generic"


def kernel_meta(distribution: str, kernel: str, arch: str, installed: list[str]) -> str:
    """The kernel image metapackage's flavour part, from the installed `linux-image-*` metapackages.

    Debian: linux-image-amd64 -> 'amd64' (linux-image-cloud-amd64 -> 'cloud-amd64'); Ubuntu:
    linux-image-generic -> 'generic', linux-image-generic-hwe-22.04 -> 'generic-hwe-22.04'.
    Without one installed: Debian's architecture, Ubuntu's flavour of the running kernel.
    """
    metas = sorted(
        name.removeprefix("linux-image-")
        for name in installed
        if name.startswith("linux-image-") and not re.match(r"linux-image-(unsigned-)?\d", name)
    )
    if distribution == "Ubuntu":
        flavour = kernel_flavour(kernel)
        matching = [m for m in metas if m == flavour or m.startswith(f"{flavour}-")]
        return matching[0] if matching else flavour
    debian_arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(arch, arch)
    matching = [m for m in metas if m.endswith(debian_arch)]
    return matching[0] if matching else debian_arch


def fabricmanager_package(source: str, branch: int) -> str:
    """The fabric manager package of a source (gpu-interfaces.md 4h); '' where there is none."""
    if source == "cuda":
        if branch >= FABRICMANAGER_UNVERSIONED_BRANCH:
            return "nvidia-fabricmanager"
        return f"nvidia-fabricmanager-{branch}"
    if source == "ubuntu":
        return f"nvidia-fabricmanager-{branch}"
    return ""


def branch_note(branch: int, today: datetime.date) -> tuple[str, str]:
    """(warning, note) about the branch's support by NVIDIA on `today`."""
    if branch not in BRANCHES:
        known = ", ".join(str(b) for b in BRANCHES)
        return (
            f"WARNING: driver branch {branch} is not one of NVIDIA's current data-center branches "
            f"({known}); check https://docs.nvidia.com/datacenter/tesla/drivers/ for its support",
            "",
        )
    kind, (year, month) = BRANCHES[branch]
    eol = f"{MONTHS[month - 1]} {year}"
    if (today.year, today.month) > (year, month):
        return (
            f"WARNING: driver branch {branch} ({kind}) reached end of life in {eol}: it gets no "
            f"more security fixes; move to {DEFAULT_BRANCH} (LTSB) with nvidia_driver_branch",
            "",
        )
    return "", f"driver branch {branch}: NVIDIA {kind}, supported until {eol}"


def release_check(branch: int, ngc: str, gpus: list[Gpu]) -> tuple[str, str]:
    """(error, note): does the branch run NGC release `ngc`, natively or forward-compatibly?"""
    release = get_release(ngc)
    need = release.min_driver_branch
    if branch >= need:
        return (
            "",
            f"driver branch {branch} meets NGC {ngc}'s minimum (R{need}, CUDA {release.cuda})",
        )
    compat = {int(v.split(".")[0]): v for v in release.forward_compat}
    if branch not in compat:
        return (
            f"driver branch {branch} is below NGC {ngc}'s minimum R{need} (CUDA {release.cuda}) "
            f"and not a forward-compatible branch ({', '.join(release.forward_compat)}): set "
            f"nvidia_driver_branch >= {need} (default {DEFAULT_BRANCH})",
            "",
        )
    how = (
        f"NGC {ngc} needs R{need} (CUDA {release.cuda}); branch {branch} (>= {compat[branch]}) "
        "runs it only through CUDA forward compatibility (cuda-compat in the NGC image), which "
        "works on data-center GPUs only"
    )
    if not gpus:
        return "", f"{how}: no GPU found to check"
    other = [g.label for g in gpus if g.model is None or not g.model.data_center]
    if other:
        return (
            f"{how}, and these are not data-center GPUs: {'; '.join(other)}. "
            f"Set nvidia_driver_branch >= {need} (default {DEFAULT_BRANCH})",
            "",
        )
    return "", f"{how}: this host relies on forward compatibility"


def choose_modules(requested: str, branch: int, gpus: list[Gpu]) -> tuple[bool, str, str]:
    """(open, why, error): the kernel module flavour for these GPUs on this branch."""
    archs = {g.model.architecture for g in gpus if g.model is not None}
    old = sorted(a for a in archs if a in PROPRIETARY_ONLY)
    new_only = sorted(a for a in archs if a in OPEN_ONLY)
    if old and new_only:
        return (
            False,
            "",
            f"{'/'.join(old)} GPUs need the proprietary kernel modules and {'/'.join(new_only)} "
            "GPUs the open ones: no driver serves both on one host; split them across hosts",
        )
    if BLACKWELL in archs and branch < BLACKWELL_MIN_BRANCH:
        return (
            False,
            "",
            f"Blackwell GPUs need driver branch >= {BLACKWELL_MIN_BRANCH} with the open kernel "
            f"modules; nvidia_driver_branch is {branch}: set it to {DEFAULT_BRANCH}",
        )
    if old and branch > PROPRIETARY_ONLY_MAX_BRANCH:
        return (
            False,
            "",
            f"{'/'.join(old)} GPUs are not supported after branch {PROPRIETARY_ONLY_MAX_BRANCH} "
            f"(nvidia_driver_branch is {branch}): set it to {PROPRIETARY_ONLY_MAX_BRANCH}",
        )
    if requested == "open":
        if old:
            return (
                True,
                "",
                f"nvidia_driver_kernel_modules=open, but {'/'.join(old)} GPUs work with the "
                "proprietary kernel modules only: set it to proprietary (or auto)",
            )
        if branch < OPEN_MIN_BRANCH:
            return True, "", f"branch {branch} has no open kernel modules (from {OPEN_MIN_BRANCH})"
        return True, "open kernel modules (nvidia_driver_kernel_modules=open)", ""
    if requested == "proprietary":
        if new_only:
            return (
                False,
                "",
                f"nvidia_driver_kernel_modules=proprietary, but {'/'.join(new_only)} GPUs need the "
                "open kernel modules: set it to open (or auto)",
            )
        return False, "proprietary kernel modules (nvidia_driver_kernel_modules=proprietary)", ""
    if requested != "auto":
        raise DltkError(f"kernel modules {requested!r} must be one of {', '.join(MODULES)}")
    if old:
        return False, f"proprietary kernel modules: {'/'.join(old)} GPUs support no other", ""
    if new_only:
        return True, f"open kernel modules: {'/'.join(new_only)} GPUs support no other", ""
    if archs:
        return (
            True,
            f"open kernel modules: NVIDIA's recommendation for {'/'.join(sorted(archs))}",
            "",
        )
    if branch >= OPEN_DEFAULT_BRANCH:
        return True, f"open kernel modules: NVIDIA's default from branch {OPEN_DEFAULT_BRANCH}", ""
    return (
        False,
        f"proprietary kernel modules: the default of branch {branch} (no GPU to check)",
        "",
    )


@dataclass
class Plan:
    """What the role does on one host, or the one-line error that stops it in preflight."""

    error: str = ""
    open_modules: bool = False
    modules_reason: str = ""
    gpus: list[str] = field(default_factory=list)
    fabricmanager_package: str = ""
    kernel_packages: list[str] = field(default_factory=list)
    secure_boot: str = "unknown"
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def plan_driver(
    *,
    distribution: str,
    source: str,
    branch: int,
    kernel_modules: str,
    gpus: list[Gpu],
    nvswitches: int,
    ngc: str,
    secure_boot: str,
    in_container: bool,
    kernel: str,
    arch: str,
    installed_images: list[str],
    headers_metapackage: str = "auto",
    headers_package: str = "",
    today: datetime.date | None = None,
) -> Plan:
    """The role's preflight decisions for one host (pure)."""
    if source not in SOURCES:
        raise DltkError(f"source {source!r} must be one of {', '.join(SOURCES)}")
    plan = Plan(gpus=[g.label for g in gpus], secure_boot=secure_boot)
    warning, note = branch_note(branch, today or datetime.date.today())
    plan.warnings += [warning] if warning else []
    plan.notes += [note] if note else []

    plan.open_modules, plan.modules_reason, error = choose_modules(kernel_modules, branch, gpus)
    if error:
        plan.error = error
        return plan

    error, note = release_check(branch, ngc, gpus) if ngc else ("", "")
    if error:
        plan.error = error
        return plan
    if note:
        plan.notes.append(note)

    if nvswitches:
        plan.fabricmanager_package = fabricmanager_package(source, branch)
        if not plan.fabricmanager_package:
            plan.error = (
                f"{nvswitches} NVSwitch(es) found: CUDA needs NVIDIA Fabric Manager at the "
                f"driver's exact version, and the {source} source has no fabric manager package. "
                "Set nvidia_driver_source: cuda (NVIDIA's repository; or ubuntu on Ubuntu)"
            )
            return plan
        plan.notes.append(
            f"{nvswitches} NVSwitch(es): {plan.fabricmanager_package} is installed at the driver's "
            "version, held, started, and the fabric state checked before any CUDA use"
        )
    else:
        plan.notes.append(
            "no NVSwitch (PCI vendor 0x10de, class 0x0680): no fabric manager (without NVSwitches "
            "NVIDIA's fabric manager only fails with NV_WARN_NOTHING_TO_DO)"
        )

    if in_container:
        plan.secure_boot = "not checked (a container)"
        plan.notes.append("a container: no kernel packages (no kernel of its own)")
        return plan

    suffix = "-open" if plan.open_modules else ""
    meta = kernel_meta(distribution, kernel, arch, installed_images)
    if source == "ubuntu":
        # Canonical's precompiled modules, signed by Canonical: they load under Secure Boot.
        prefix = f"linux-modules-nvidia-{branch}-server{suffix}"
        plan.kernel_packages = [f"{prefix}-{kernel}", f"{prefix}-{meta}"]
        plan.notes.append(
            f"kernel modules: Canonical's signed precompiled {prefix}-{meta} (Secure Boot "
            f"{secure_boot})"
        )
        return plan
    if secure_boot == "unknown":
        plan.warnings.append(
            "WARNING: the Secure Boot state is unknown (mokutil --sb-state gave no answer; install "
            "mokutil to check): if it is enabled, the kernel refuses the DKMS-built module"
        )
    if secure_boot == "enabled":
        fix = (
            "use nvidia_driver_source: ubuntu (Canonical's signed precompiled modules), or "
            if distribution == "Ubuntu"
            else ""
        )
        plan.error = (
            f"Secure Boot is enabled (mokutil --sb-state) and the {source} source builds unsigned "
            f"kernel modules with DKMS, which the kernel will refuse to load: {fix}enroll a "
            "Machine Owner Key that signs DKMS modules (mokutil --import, then confirm at the "
            "next boot) and sign them, or disable Secure Boot in the firmware"
        )
        return plan
    headers = f"linux-headers-{meta}" if headers_metapackage == "auto" else headers_metapackage
    plan.kernel_packages = [p for p in (headers_package, headers) if p]
    return plan


# ---------------------------------------------------------------- resolve (versions and pins)


def parse_madison(text: str) -> dict[str, list[str]]:
    """`apt-cache madison` output -> {package: [versions, newest first]} (binary packages only)."""
    offered: dict[str, list[str]] = {}
    for line in text.splitlines():
        parts = [p.strip() for p in line.split("|")]
        if len(parts) != 3 or not parts[2].endswith("Packages"):
            continue
        versions = offered.setdefault(parts[0], [])
        if parts[1] not in versions:
            versions.append(parts[1])
    return offered


@dataclass
class Resolution:
    """The driver release, each package's version of it, and the error when there is none."""

    driver_version: str = ""
    versions: dict[str, str] = field(default_factory=dict)
    error: str = ""
    offered: dict[str, list[str]] = field(default_factory=dict)


def pick_versions(
    offered: dict[str, list[str]], packages: list[str], branch: int, version: str = ""
) -> Resolution:
    """The newest driver release of `branch` (or the one of `version`) that EVERY package offers.

    Packages carry different version strings for one release (`580.95.05-1`,
    `580.95.05-0ubuntu1`): they are compared by release (upstream version), and each package gets
    its own string of that release (the exact `version` where a package offers it, else its
    newest). Order of `offered` lists: newest first, as apt-cache madison prints them.
    """
    result = Resolution(offered={p: offered.get(p, []) for p in packages})
    if not packages:
        result.error = "no driver packages to resolve"
        return result
    wanted = upstream(version) if version else ""
    candidates = [upstream(v) for v in offered.get(packages[0], [])]
    if wanted:
        candidates = [u for u in candidates if u == wanted]
    else:
        candidates = [u for u in candidates if u.split(".")[0] == str(branch)]
    for release in dict.fromkeys(candidates):
        versions = {}
        for package in packages:
            same = [v for v in offered.get(package, []) if upstream(v) == release]
            if not same:
                break
            versions[package] = version if version in same else same[0]
        else:
            result.driver_version, result.versions = release, versions
            return result
    asked = f"version {version}" if version else f"branch {branch}"
    listing = "; ".join(f"{p}: {', '.join(offered.get(p, [])) or 'nothing'}" for p in packages)
    result.error = (
        f"{asked[0].upper()}{asked[1:]} is not offered for all of {', '.join(packages)}. "
        f"Offered: {listing}"
    )
    return result


@dataclass(frozen=True)
class PinRecord:
    """One apt preferences record: these packages (names or globs) at this exact version."""

    packages: str
    version: str
    comment: str


def pin_records(versions: dict[str, str], globs: list[str]) -> list[PinRecord]:
    """Each driver package at its own version, then the packages they pull in (the globs) at the
    same version strings, so neither `apt upgrade` nor a dependency can move the driver."""
    records = [
        PinRecord(package, version, "driver package") for package, version in versions.items()
    ]
    if globs:
        for version in dict.fromkeys(versions.values()):
            records.append(PinRecord(" ".join(globs), version, "what the driver packages pull in"))
    return records


# ---------------------------------------------------------------- check (after the module loads)


def parse_proc_version(text: str) -> tuple[str, str]:
    """(version, 'open'|'proprietary'|'') from /proc/driver/nvidia/version (gpu-interfaces 6)."""
    line = next((li for li in text.splitlines() if li.startswith("NVRM version:")), "")
    match = re.search(r"Kernel Module(?: for \S+)?\s+(\d+\.\d+(?:\.\d+)?)\s", line + " ")
    if not match:
        return "", ""
    return match[1], "open" if "Open Kernel Module" in line else "proprietary"


def parse_fabric(smi_q: str) -> list[tuple[str, str, str]]:
    """[(GPU bus id, State, Status)] from the Fabric blocks of `nvidia-smi -q` (1f, 1g, 1h, 1i)."""
    gpus: list[tuple[str, str, str]] = []
    bus, in_fabric, state, status = "", False, "", ""
    for line in smi_q.splitlines():
        gpu = re.match(r"^GPU ([0-9A-Fa-f:.]+)\s*$", line)
        if gpu:
            bus, in_fabric = gpu[1], False
            continue
        if re.match(r"^\s+Fabric\s*$", line) or re.match(r"^Fabric\s*$", line):
            in_fabric, state, status = True, "", ""
            continue
        field_match = re.match(r"^\s*(State|Status)\s*:\s*(.*?)\s*$", line)
        if in_fabric and field_match:
            if field_match[1] == "State":
                state = field_match[2]
            else:
                status = field_match[2]
                gpus.append((bus, state, status))
                in_fabric = False
    return gpus


def check_fabric(smi_q: str) -> tuple[bool, str]:
    """(ok, message): every GPU's fabric registration Completed/Success, or N/A (pre-Hopper)."""
    gpus = parse_fabric(smi_q)
    if not gpus:
        return False, "nvidia-smi -q printed no Fabric block"
    bad = [
        f"{b}: {st}/{su}"
        for b, st, su in gpus
        if (st, su) not in (("Completed", "Success"), ("N/A", "N/A"))
    ]
    if bad:
        return False, (
            f"the NVLink fabric is not ready on {len(bad)} of {len(gpus)} GPUs ({'; '.join(bad)}): "
            "CUDA fails with error 802 (system not yet initialized) until nvidia-fabricmanager "
            "finishes; see journalctl -u nvidia-fabricmanager"
        )
    if all(st == "N/A" for _, st, _ in gpus):
        return True, (
            f"{len(gpus)} GPUs report no fabric state (N/A: pre-Hopper GPUs do not); the fabric "
            "manager service is running"
        )
    return True, f"{len(gpus)} GPUs: fabric State Completed, Status Success"


def parse_persistence(csv: str) -> dict[str, str]:
    """{index: 'Enabled'|'Disabled'} from `--query-gpu=index,persistence_mode` (csv,noheader)."""
    modes = {}
    for line in csv.splitlines():
        if "STAND-IN" in line or not line.strip():
            continue
        parts = [p.strip() for p in line.split(",")]
        if len(parts) == 2:
            modes[parts[0]] = parts[1]
    return modes


def persistenced_exec_start(unit_text: str) -> str:
    """The ExecStart without `--no-persistence-mode` (Ubuntu's unit starts the daemon with it, so
    persistence mode stays off); '' when the unit already enables it."""
    line = next((li for li in unit_text.splitlines() if re.match(r"^\s*ExecStart\s*=", li)), "")
    if "--no-persistence-mode" not in line:
        return ""
    command = line.split("=", 1)[1]
    return re.sub(r"\s+", " ", command.replace("--no-persistence-mode", "")).strip()


# ---------------------------------------------------------------- CLI


def _out(document: dict) -> int:
    print(json.dumps(document, sort_keys=True))
    return 0


def run_plan(args: argparse.Namespace) -> int:
    plan = plan_driver(
        distribution=args.distribution,
        source=args.source,
        branch=args.branch,
        kernel_modules=args.kernel_modules,
        gpus=parse_gpus(args.gpu),
        nvswitches=args.nvswitches,
        ngc=args.ngc,
        secure_boot=secure_boot_state(args.mokutil_rc, args.mokutil_stdout, args.mokutil_stderr),
        in_container=args.in_container,
        kernel=args.kernel,
        arch=args.arch,
        installed_images=args.installed_image,
        headers_metapackage=args.headers_metapackage,
        headers_package=args.headers_package,
    )
    return _out(asdict(plan))


def run_resolve(args: argparse.Namespace) -> int:
    result = pick_versions(parse_madison(args.madison), args.package, args.branch, args.version)
    document = asdict(result)
    document["pins"] = [asdict(r) for r in pin_records(result.versions, args.pin_glob)]
    return _out(document)


def run_check(args: argparse.Namespace) -> int:
    loaded, flavour = parse_proc_version(args.proc_version)
    wanted = upstream(args.driver_version)
    document: dict = {
        "module_version": loaded,
        "module_flavour": flavour,
        "module_current": bool(loaded) and loaded == wanted,
    }
    if args.smi_q is not None:
        document["fabric_ok"], document["fabric"] = check_fabric(args.smi_q)
    if args.persistence is not None:
        modes = parse_persistence(args.persistence)
        off = sorted(i for i, m in modes.items() if m != "Enabled")
        document["persistence_ok"] = bool(modes) and not off
        document["persistence"] = (
            f"persistence mode Enabled on all {len(modes)} GPUs"
            if document["persistence_ok"]
            else f"persistence mode not Enabled on GPU(s) {', '.join(off) or '(none listed)'}: "
            f"{modes}"
        )
    if args.persistenced_unit is not None:
        document["persistenced_exec_start"] = persistenced_exec_start(args.persistenced_unit)
    return _out(document)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "driver",
        help="NVIDIA driver decisions for the nvidia_driver role (JSON)",
        description="Branch/kernel-module policy, version picking and state checks of the "
        "nvidia_driver role, from facts the role gathered on a host. Prints JSON.",
    )
    verbs = parser.add_subparsers(dest="driver_command", metavar="VERB", required=True)

    plan = verbs.add_parser(
        "plan", help="preflight: modules, branch, release, Secure Boot, packages"
    )
    plan.add_argument("--distribution", required=True, help="Debian or Ubuntu")
    plan.add_argument("--source", required=True, choices=SOURCES)
    plan.add_argument("--branch", type=int, default=DEFAULT_BRANCH)
    plan.add_argument("--kernel-modules", default="auto", choices=MODULES)
    plan.add_argument("--gpu", action="append", default=[], help="'0000:3b:00.0 10de:2330'")
    plan.add_argument("--nvswitches", type=int, default=0, help="NVSwitches on the PCI bus")
    plan.add_argument("--ngc", default="", help="NGC release whose driver minimum to check")
    plan.add_argument("--mokutil-rc", type=int, default=None)
    plan.add_argument("--mokutil-stdout", default="")
    plan.add_argument("--mokutil-stderr", default="")
    plan.add_argument("--in-container", action="store_true")
    plan.add_argument("--kernel", default="", help="uname -r")
    plan.add_argument("--arch", default="x86_64")
    plan.add_argument(
        "--installed-image", action="append", default=[], help="linux-image-* installed"
    )
    plan.add_argument("--headers-metapackage", default="auto")
    plan.add_argument("--headers-package", default="")
    plan.set_defaults(func=run_plan)

    resolve = verbs.add_parser(
        "resolve", help="each package's version of one driver release + pins"
    )
    resolve.add_argument("--madison", required=True, help="apt-cache madison output")
    resolve.add_argument("--package", action="append", default=[], required=True)
    resolve.add_argument("--branch", type=int, required=True)
    resolve.add_argument("--version", default="", help="exact version or release (580.95.05)")
    resolve.add_argument("--pin-glob", action="append", default=[])
    resolve.set_defaults(func=run_resolve)

    check = verbs.add_parser("check", help="loaded module, NVLink fabric, persistence mode")
    check.add_argument("--driver-version", default="", help="the installed driver package version")
    check.add_argument("--proc-version", default="", help="/proc/driver/nvidia/version")
    check.add_argument("--smi-q", default=None, help="nvidia-smi -q output")
    check.add_argument("--persistence", default=None, help="index,persistence_mode CSV")
    check.add_argument("--persistenced-unit", default=None, help="the daemon's unit file")
    check.set_defaults(func=run_check)
