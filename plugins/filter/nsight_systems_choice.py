"""nsight_systems' derived values (issue 12 item 5: vars/ holds constants, Python computes): which
source, package and version this host gets, and where NVIDIA's devtools repository is for it.

- `nsight_systems_choice`: set once as _nsight_systems_choice in tasks/main.yml.
- `nvidia_devtools_repo_dir`: "<distro>/<arch>" of the repository, from ansible_facts (the role's
  default nsight_systems_nvidia_repo_url calls it; argument specs are validated before any task).
- `nsight_systems_nsys_check` (tasks/run.yml): whether `nsys --version` is the resolved version.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

# The package each source ships, and the tested default version: Debian 12 non-free ships 2022.4;
# NVIDIA's repository keeps many releases (a prefix ending in * picks the newest match).
DEFAULT_PACKAGE = {"distribution": "nsight-systems", "nvidia": "nsight-systems-cli"}
DEFAULT_VERSION = {"distribution": "2022.4.*", "nvidia": "2025.3.*"}
# NVIDIA publishes devtools repositories for Ubuntu only; other distributions (Debian 12) use the
# Ubuntu 22.04 build (same glibc generation).
FALLBACK_DISTRO = "ubuntu2204"
DEB_ARCH = {"x86_64": "amd64", "aarch64": "arm64"}
# The upstream part of a package version, which nsys prints: 2022.4.2.1~11.8.0-5~deb12u1 (Debian)
# or 2025.3.1.90-3582212 (NVIDIA) -> 2022.4.2.1 / 2025.3.1.90.
UPSTREAM = re.compile(r"^(\d+(\.\d+)+).*$")


def nsight_systems_source(source: str, distribution: str) -> str:
    """auto: NVIDIA's repository on Ubuntu, the distribution's package elsewhere (Debian)."""
    if source != "auto":
        return source
    return "nvidia" if distribution == "Ubuntu" else "distribution"


def nsight_systems_choice(inputs: Mapping[str, Any]) -> dict[str, str]:
    """{source, package, version}: an empty nsight_systems_package / nsight_systems_version means
    the source's own.

    inputs: source (nsight_systems_source), distribution (ansible_facts), package, version."""
    source = nsight_systems_source(str(inputs["source"]), str(inputs["distribution"]))
    return {
        "source": source,
        "package": str(inputs.get("package") or DEFAULT_PACKAGE.get(source, "")),
        "version": str(inputs.get("version") or DEFAULT_VERSION.get(source, "")),
    }


def nvidia_devtools_repo_dir(facts: Mapping[str, Any]) -> str:
    """The "ubuntu2404/amd64"-style path of NVIDIA's devtools repository for the host (facts:
    distribution, distribution_version, architecture)."""
    if facts["distribution"] == "Ubuntu":
        distro = "ubuntu" + str(facts["distribution_version"]).replace(".", "")
    else:
        distro = FALLBACK_DISTRO
    arch = str(facts["architecture"])
    return f"{distro}/{DEB_ARCH.get(arch, arch)}"


def nsight_systems_nsys_check(inputs: Mapping[str, Any]) -> dict[str, Any]:
    """{upstream, pinned}: the version nsys prints for the resolved package version (the version
    as it is when it does not start with dotted numbers), and whether `nsys --version` says
    "version <upstream>" with no further digit or dot (2025.3.1 is not 2025.3.10).

    inputs: resolved (_nsight_systems_resolved), stdout (`nsys --version`)."""
    upstream = UPSTREAM.sub(r"\1", str(inputs["resolved"]))
    pattern = "version " + re.escape(upstream) + "([^0-9.]|$)"
    return {"upstream": upstream, "pinned": bool(re.search(pattern, str(inputs["stdout"])))}


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {
            "nsight_systems_choice": nsight_systems_choice,
            "nvidia_devtools_repo_dir": nvidia_devtools_repo_dir,
            "nsight_systems_nsys_check": nsight_systems_nsys_check,
        }
