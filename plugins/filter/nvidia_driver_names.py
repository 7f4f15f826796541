"""nvidia_driver's derived values (issue 12 item 5: vars/ holds constants, Python computes): the
source and package names this host gets, the Debian components it lacks, where NVIDIA's CUDA
repository is for it.

The role calls them as plain filters over a dict of its inputs:
- `nvidia_driver_names` (tasks/main.yml, before preflight): _nvidia_driver_names {source, wanted,
  persistenced_unit, persistenced_dropin};
- `nvidia_driver_packages` (tasks/main.yml, after preflight, whose `dltk driver plan` decides the
  kernel modules and the fabric manager): _nvidia_driver_apt {packages, extra_packages,
  fabricmanager_package, resolve_packages};
- `nvidia_driver_debian_missing` (tasks/debian-nonfree.yml, after `apt-get indextargets`): the
  Debian suites and the components no other sources entry provides;
- `nvidia_cuda_repo_dir` (the default of nvidia_driver_cuda_repo_url: argument specs are
  validated before any task): "<distro>/<arch>" of NVIDIA's CUDA repository;
- `nvidia_driver_in_container` (tasks/detect.yml): whether the host is a container;
- `nvidia_driver_plan_argv` (tasks/plan.yml) and `nvidia_driver_resolve_argv`
  (tasks/resolve-version.yml): the command lines of `dltk driver plan` / `dltk driver resolve`;
- `nvidia_driver_kernel_missing` (tasks/kernel-headers.yml): the kernel packages apt does not offer;
- `nvidia_driver_versioned_packages` (tasks/install.yml): "<package>=<version>" for apt;
- `nvidia_driver_reboot_blockers` (tasks/reboot-policy.yml): every reason not to reboot the host.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

SYSTEMD_DIR = "/etc/systemd/system"
PERSISTENCE_DROPIN = "dltk-persistence-mode.conf"
# NVIDIA names the CUDA repository's packages without the branch from this branch on.
CUDA_UNBRANCHED_FROM = 590
# NVIDIA's architecture names of the CUDA repository directories (others are used as they are).
CUDA_ARCH = {"x86_64": "x86_64", "aarch64": "sbsa"}
# virtualization_type values that mean "this host is a container" (no kernel of its own).
CONTAINER_TYPES = (
    "docker", "podman", "container", "containerd", "lxc", "lxc-libvirt", "systemd-nspawn",
    "openvz", "wsl",
)  # fmt: skip


def _as_int(value: Any) -> int:
    """Jinja's `| int`: the number, or 0 for what is not one."""
    try:
        return int(str(value).strip())
    except ValueError:
        return 0


def nvidia_driver_source(source: str, distribution: str) -> str:
    """auto: the distribution's own packages (ubuntu on Ubuntu, debian elsewhere)."""
    if source != "auto":
        return source
    return "ubuntu" if distribution == "Ubuntu" else "debian"


def nvidia_driver_names(inputs: Mapping[str, Any]) -> dict[str, str]:
    """{source, wanted, persistenced_unit, persistenced_dropin}.

    inputs: source (nvidia_driver_source), distribution (ansible_facts), branch, version,
    persistenced_service. `wanted` is what this run asks for, in messages."""
    version = str(inputs.get("version") or "")
    unit = f"{inputs['persistenced_service']}.service"
    return {
        "source": nvidia_driver_source(str(inputs["source"]), str(inputs["distribution"])),
        "wanted": f"version {version}" if version else f"branch {inputs['branch']}",
        "persistenced_unit": unit,
        "persistenced_dropin": f"{SYSTEMD_DIR}/{unit}.d/{PERSISTENCE_DROPIN}",
    }


def source_packages(source: str, distribution: str, branch: Any, open_modules: bool) -> list[str]:
    """The driver packages of a source; each is installed and pinned at its own version string
    of ONE driver release (dltk driver resolve).

    debian: Debian's non-free packages (DKMS); ubuntu: Canonical's headless -server packages
    without DKMS (their signed precompiled modules come with the kernel packages of `dltk driver
    plan`); cuda: NVIDIA's metapackage (nvidia-open-<branch> for the open modules,
    cuda-drivers-<branch> for the proprietary ones) plus the driver package it pulls in, named as
    NVIDIA's repository names them on Ubuntu and on Debian."""
    open_suffix = "-open" if open_modules else ""
    if source == "debian":
        dkms = "nvidia-open-kernel-dkms" if open_modules else "nvidia-kernel-dkms"
        return ["nvidia-driver", "nvidia-smi", "libnvidia-cfg1", dkms]
    if source == "ubuntu":
        return [
            f"nvidia-headless-no-dkms-{branch}-server{open_suffix}",
            f"nvidia-utils-{branch}-server",
        ]
    if source == "cuda":
        branch_suffix = "" if _as_int(branch) >= CUDA_UNBRANCHED_FROM else f"-{branch}"
        meta = ("nvidia-open" if open_modules else "cuda-drivers") + branch_suffix
        if distribution == "Ubuntu":
            return [meta, f"nvidia-driver{branch_suffix}{open_suffix}"]
        dkms = "nvidia-kernel-open-dkms" if open_modules else "nvidia-kernel-dkms"
        return [meta, "nvidia-driver", dkms]
    raise ValueError(f"unknown nvidia_driver source {source!r} (debian, ubuntu or cuda)")


def source_extra_packages(source: str, distribution: str) -> list[str]:
    """Installed next to the driver at apt's own version: Debian's packaging (Debian's own
    packages, and NVIDIA's repository on Debian) ships nvidia-persistenced apart."""
    if source == "ubuntu" or (source == "cuda" and distribution == "Ubuntu"):
        return []
    return ["nvidia-persistenced"]


def nvidia_driver_packages(inputs: Mapping[str, Any]) -> dict[str, Any]:
    """{packages, extra_packages, fabricmanager_package, resolve_packages}.

    inputs: source (nvidia_driver_source; auto is resolved here too), distribution, branch,
    kernel_modules, plan (`dltk driver plan`'s result; {} before it ran, e.g. a play that only
    lists the packages: then nvidia_driver_kernel_modules decides the open modules), packages and
    extra_packages (nvidia_driver_packages / nvidia_driver_extra_packages: the user's). The fabric
    manager (NVSwitch hosts) is resolved and pinned with the driver: same release."""
    plan = inputs.get("plan") or {}
    distribution = str(inputs["distribution"])
    source = nvidia_driver_source(str(inputs["source"]), distribution)
    if plan:
        open_modules = bool(plan["open_modules"])
    else:
        open_modules = inputs["kernel_modules"] == "open"
    packages = list(inputs.get("packages") or []) or source_packages(
        source, distribution, inputs["branch"], open_modules
    )
    fabricmanager = str(plan.get("fabricmanager_package") or "")
    return {
        "packages": packages,
        "extra_packages": source_extra_packages(source, distribution)
        + list(inputs.get("extra_packages") or []),
        "fabricmanager_package": fabricmanager,
        "resolve_packages": packages + ([fabricmanager] if fabricmanager else []),
    }


def _present_components(lines: Iterable[str], own_sources: str) -> list[str]:
    """The "<release> <component>" of each `apt-get indextargets` line (format `$(RELEASE)
    $(COMPONENT) $(SOURCESENTRY)`), leaving out the entries of the role's own sources file."""
    own = re.compile(" " + re.escape(own_sources) + ":[0-9]+$")
    return [re.sub(r"^(\S+) (\S+) .*$", r"\1 \2", line) for line in lines if not own.search(line)]


def nvidia_driver_debian_missing(inputs: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The suites <release>, <release>-updates (mirror_url) and <release>-security (security_url)
    that lack some of the wanted components, each with the components (in the order asked) that no
    other sources entry of the host provides; [] when the host's own sources provide them all.

    inputs: indextargets (stdout lines), sources_file (the role's own file: its entries do not
    count), release (ansible_facts['distribution_release']), components, mirror_url,
    security_url."""
    present = _present_components(inputs.get("indextargets") or [], str(inputs["sources_file"]))
    release = str(inputs["release"])
    missing = []
    for url, suite in (
        (inputs["mirror_url"], release),
        (inputs["mirror_url"], f"{release}-updates"),
        (inputs["security_url"], f"{release}-security"),
    ):
        have = {line.split(" ", 1)[1] for line in present if line.startswith(suite + " ")}
        components = [c for c in inputs["components"] if c not in have]
        if components:
            missing.append({"url": url, "suite": suite, "components": components})
    return missing


def nvidia_cuda_repo_dir(facts: Mapping[str, Any]) -> str:
    """NVIDIA's directory of the CUDA repository for the host, e.g. "ubuntu2204/x86_64" or
    "debian12/sbsa" (facts: distribution, distribution_version, distribution_major_version,
    architecture)."""
    if facts["distribution"] == "Ubuntu":
        distro = "ubuntu" + str(facts["distribution_version"]).replace(".", "")
    else:
        distro = f"debian{facts['distribution_major_version']}"
    arch = str(facts["architecture"])
    return f"{distro}/{CUDA_ARCH.get(arch, arch)}"


def _looks_like_container(facts: Mapping[str, Any]) -> bool:
    """The virtualization facts say container: a guest of one of the CONTAINER_TYPES."""
    return (
        facts.get("virtualization_role", "") == "guest"
        and facts.get("virtualization_type", "") in CONTAINER_TYPES
    )


def nvidia_driver_in_container(inputs: Mapping[str, Any]) -> bool:
    """The host is a container (it has no kernel of its own): nvidia_driver_host_type=container,
    or auto and the facts say so; metal is never one, whatever the facts say.

    inputs: host_type (nvidia_driver_host_type), facts (ansible_facts, with the virtual subset)."""
    host_type = inputs["host_type"]
    return host_type == "container" or (
        host_type == "auto" and _looks_like_container(inputs.get("facts") or {})
    )


def nvidia_driver_plan_argv(inputs: Mapping[str, Any]) -> list[Any]:
    """The command line of `dltk driver plan` (run on the control node): the host's report.

    inputs: dltk (nvidia_driver_dltk), distribution, kernel, architecture (ansible_facts), source
    (_nvidia_driver_names.source), branch, kernel_modules, ngc_release, headers_metapackage,
    headers_package (the role's variables), gpus, nvswitches (tasks/detect.yml), in_container,
    mokutil (the register of `mokutil --sb-state`, skipped or not: its state is passed only when it
    speaks of Secure Boot or EFI), installed_images (`dpkg-query` lines "<status> <package>": the
    installed ones, status ii)."""
    argv: list[Any] = [
        inputs["dltk"], "driver", "plan",
        "--distribution", inputs["distribution"], "--source", inputs["source"],
        "--branch", str(inputs["branch"]), "--kernel-modules", inputs["kernel_modules"],
        "--nvswitches", str(len(inputs["nvswitches"])), "--ngc", str(inputs["ngc_release"]),
        "--kernel", inputs["kernel"], "--arch", inputs["architecture"],
        "--headers-metapackage", inputs["headers_metapackage"],
        "--headers-package", inputs["headers_package"],
    ]  # fmt: skip
    argv += [f"--gpu={gpu}" for gpu in inputs["gpus"]]
    if inputs["in_container"]:
        argv.append("--in-container")
    mokutil = inputs.get("mokutil") or {}
    stdout, stderr = mokutil.get("stdout", ""), mokutil.get("stderr", "")
    if re.search("Secure|EFI", f"{stdout}{stderr}"):
        argv += [
            "--mokutil-rc", str(mokutil["rc"]),
            "--mokutil-stdout", stdout,
            "--mokutil-stderr", stderr,
        ]  # fmt: skip
    argv += [
        re.sub(r"^ii\s+", "--installed-image=", line)
        for line in inputs.get("installed_images") or []
        if re.match("ii ", line)
    ]
    return argv


def nvidia_driver_resolve_argv(inputs: Mapping[str, Any]) -> list[Any]:
    """The command line of `dltk driver resolve` (run on the control node).

    inputs: dltk (nvidia_driver_dltk), madison (`apt-cache madison` stdout), branch, version,
    packages (_nvidia_driver_apt.resolve_packages), pin_globs (nvidia_driver_pin_packages)."""
    argv: list[Any] = [
        inputs["dltk"], "driver", "resolve", "--madison", inputs["madison"],
        "--branch", str(inputs["branch"]), "--version", inputs["version"],
    ]  # fmt: skip
    argv += [f"--package={package}" for package in inputs["packages"]]
    return argv + [f"--pin-glob={glob}" for glob in inputs["pin_globs"]]


def nvidia_driver_kernel_missing(inputs: Mapping[str, Any]) -> list[str]:
    """The kernel packages (in the plan's order) that no `apt-cache madison` line offers.

    inputs: madison (stdout lines: " <package> | <version> | <url> <suite> Packages", its source
    lines end otherwise), packages (_nvidia_driver_plan.kernel_packages)."""
    offered = {
        re.sub(r"^\s*(\S+)\s.*$", r"\1", line)
        for line in inputs["madison"]
        if re.search("Packages$", line)
    }
    return [package for package in inputs["packages"] if package not in offered]


def nvidia_driver_versioned_packages(inputs: Mapping[str, Any]) -> list[str]:
    """apt's names for the install: each resolved "<package>=<version>" (in the resolver's order),
    then the extra packages at apt's own version.

    inputs: versions (_nvidia_driver_versions), extra_packages (_nvidia_driver_apt)."""
    pinned = [f"{package}={version}" for package, version in inputs["versions"].items()]
    return pinned + list(inputs["extra_packages"])


def nvidia_driver_reboot_blockers(inputs: Mapping[str, Any]) -> list[str]:
    """Every reason not to reboot the host, in this order; [] when it may reboot.

    inputs: reboot (nvidia_driver_reboot), connection (ansible_connection), host_id (the host's
    /etc/machine-id, '' when unread), controller_id (the control node's), in_container,
    host_type (nvidia_driver_host_type), facts (ansible_facts), check_mode (ansible_check_mode).
    A container is never rebooted, even one the role treats as metal (the simulated GPU host)."""
    facts = inputs.get("facts") or {}
    blockers = []
    if not inputs["reboot"]:
        blockers.append("nvidia_driver_reboot is false")
    if inputs["connection"] == "local":
        blockers.append(
            "the connection is local (a reboot would take down the control node running Ansible)"
        )
    host_id = inputs["host_id"]
    if host_id and host_id == inputs["controller_id"]:
        blockers.append("it is the control node (same machine id as the machine running Ansible)")
    if inputs["in_container"]:
        blockers.append(f"it is a container ({facts.get('virtualization_type', '?')})")
    elif inputs["host_type"] == "metal" and _looks_like_container(facts):
        vtype = facts["virtualization_type"]
        blockers.append(f"it is a container ({vtype}) run as nvidia_driver_host_type=metal")
    if inputs["check_mode"]:
        blockers.append("check mode")
    return blockers


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {
            "nvidia_driver_names": nvidia_driver_names,
            "nvidia_driver_packages": nvidia_driver_packages,
            "nvidia_driver_debian_missing": nvidia_driver_debian_missing,
            "nvidia_cuda_repo_dir": nvidia_cuda_repo_dir,
            "nvidia_driver_in_container": nvidia_driver_in_container,
            "nvidia_driver_plan_argv": nvidia_driver_plan_argv,
            "nvidia_driver_resolve_argv": nvidia_driver_resolve_argv,
            "nvidia_driver_kernel_missing": nvidia_driver_kernel_missing,
            "nvidia_driver_versioned_packages": nvidia_driver_versioned_packages,
            "nvidia_driver_reboot_blockers": nvidia_driver_reboot_blockers,
        }
