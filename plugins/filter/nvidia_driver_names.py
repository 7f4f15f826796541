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
  validated before any task): "<distro>/<arch>" of NVIDIA's CUDA repository.
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


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {
            "nvidia_driver_names": nvidia_driver_names,
            "nvidia_driver_packages": nvidia_driver_packages,
            "nvidia_driver_debian_missing": nvidia_driver_debian_missing,
            "nvidia_cuda_repo_dir": nvidia_cuda_repo_dir,
        }
