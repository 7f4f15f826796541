"""The apt repositories `dltk mirror apt` knows: one record per upstream, in one place.

Each record says where the upstream is (an archive root with suites and components, or a FLAT
directory like NVIDIA's), which key signs it, which packages the provisioning roles install from
it, and where the mirror publishes it (a path under the mirror's root). The URLs and keys are the
roles' own defaults (tests/unit/test_apt_sources.py compares them with the roles' filters and
defaults), so pointing a role at the mirror only swaps the base URL: the mirror serves its own key
at the path the role derives from the repository URL (`<repo>/gpg`, `<repo>/3bf863cc.pub`, ...).

NVIDIA's and Docker's repositories are NOT reachable from the machine that tests this project;
their records are checked against the roles and NVIDIA's/Docker's install guides, never mirrored
for real here (docs/air-gapped.md).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, fields
from pathlib import Path

from dltk.errors import DltkError

DEBIAN_COMPONENTS = ("main", "contrib", "non-free", "non-free-firmware")
UBUNTU_COMPONENTS = ("main", "restricted", "universe", "multiverse")
DEBIAN_KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"
UBUNTU_KEYRING = "/usr/share/keyrings/ubuntu-archive-keyring.gpg"
# Debian release codename -> the version in NVIDIA's directory names (debian12).
DEBIAN_VERSIONS = {"bullseye": "11", "bookworm": "12", "trixie": "13"}
UBUNTU_VERSIONS = {"jammy": "2204", "noble": "2404"}
# Debian architecture -> NVIDIA's CUDA directory (plugins/filter/nvidia_driver_names.py CUDA_ARCH).
CUDA_ARCH = {"amd64": "x86_64", "arm64": "sbsa"}
# NVIDIA publishes devtools repositories for Ubuntu only; Debian hosts use the Ubuntu 22.04 build
# (plugins/filter/nsight_systems_choice.py FALLBACK_DISTRO).
DEVTOOLS_FALLBACK = "ubuntu2204"
# A package name, optionally "=VERSION-GLOB" (aptly's `name (% glob)`): nvidia-driver=580.*
_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9+.-]+(=[A-Za-z0-9.+~:*?-]+)?$")
# The driver branch the CUDA record mirrors: nvidia_driver_branch's default, and the first branch
# NVIDIA's CUDA repository names without a branch suffix (plugins/filter/nvidia_driver_names.py
# CUDA_UNBRANCHED_FROM); tests/unit/test_apt_sources.py checks both against the role.
DRIVER_BRANCH = 580
CUDA_UNBRANCHED_FROM = 590
_PATH_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]*$")


@dataclass(frozen=True)
class AptSource:
    """One upstream apt repository and where the mirror publishes it.

    suites empty: a FLAT repository (apt's `Suites: /`, Packages next to the .debs).
    """

    name: str
    url: str
    suites: tuple[str, ...]
    components: tuple[str, ...]
    key_url: str  # the upstream's signing key: https:// URL, file:// URL or a local path
    prefix: str  # published at <mirror root>/<prefix>
    key_paths: tuple[str, ...] = ()  # the mirror's key also served here (relative to the root)
    packages: tuple[str, ...] = ()  # mirrored with their dependencies, without recommends
    recommends: tuple[str, ...] = ()  # mirrored with dependencies and recommends
    vendor: bool = False  # not the distribution's own archive
    guide: str = ""  # the upstream's install guide this record follows

    @property
    def flat(self) -> bool:
        return not self.suites


def check_names(names: list[str] | tuple[str, ...]) -> list[str]:
    """Sorted, de-duplicated package names (each may carry `=VERSION-GLOB`); a name apt would
    not accept stops the run."""
    bad = [name for name in names if not _NAME_RE.match(name)]
    if bad:
        raise DltkError(
            f"not Debian package names: {', '.join(bad)} (use names like nvidia-driver)"
        )
    return sorted(set(names))


def cuda_driver_packages(distribution: str, branch: int) -> tuple[str, ...]:
    """What nvidia_driver installs from NVIDIA's CUDA repository at this branch (open and
    proprietary modules, the fabric manager), as aptly filter entries."""
    versions = f"={branch}.*"
    if distribution == "Ubuntu":
        names = [f"nvidia-driver-{branch}", f"nvidia-driver-{branch}-open"]
    else:
        names = [
            f"nvidia-driver{versions}",
            f"nvidia-kernel-dkms{versions}",
            f"nvidia-kernel-open-dkms{versions}",
            f"nvidia-persistenced{versions}",
        ]
    # Branch-named metapackages before the unbranched scheme; then one name for all branches.
    metas = [f"cuda-drivers-{branch}", f"nvidia-open-{branch}"]
    if branch >= CUDA_UNBRANCHED_FROM:
        metas = [f"cuda-drivers{versions}", f"nvidia-open{versions}"]
    # One fabric manager name for every branch from 580 (dltk.driver_policy.fabricmanager_package;
    # the test of the roles' packages checks that this covers it).
    fabric = "nvidia-fabricmanager" + (versions if branch >= 580 else f"-{branch}")
    return (*metas, *names, fabric)


def _codename_version(distribution: str, release: str) -> str:
    table = DEBIAN_VERSIONS if distribution == "Debian" else UBUNTU_VERSIONS
    if release not in table:
        raise DltkError(
            f"{distribution} release {release!r} is not one dltk mirrors "
            f"(known: {', '.join(sorted(table))})"
        )
    return table[release]


def known_sources(distribution: str, release: str, arch: str = "amd64") -> dict[str, AptSource]:
    """Every repository the roles may add for hosts of this distribution, release, architecture.

    The package filters are what the roles install from each (their defaults; the distribution's
    archive gets the lists the caller passes, e.g. from the roles' filters in molecule/mirror).
    """
    if distribution not in ("Debian", "Ubuntu"):
        raise DltkError(f"distribution {distribution!r}: dltk mirrors Debian or Ubuntu")
    if arch not in CUDA_ARCH:
        raise DltkError(f"architecture {arch!r}: dltk mirrors {', '.join(sorted(CUDA_ARCH))}")
    version = _codename_version(distribution, release)
    lower = distribution.lower()
    nvidia_dir = f"{lower}{version}"
    sources: list[AptSource] = []
    if distribution == "Debian":
        sources += [
            AptSource(
                "debian",
                "http://deb.debian.org/debian",
                (release, f"{release}-updates"),
                DEBIAN_COMPONENTS,
                DEBIAN_KEYRING,
                "debian",
            ),
            AptSource(
                "debian-security",
                "http://deb.debian.org/debian-security",
                (f"{release}-security",),
                DEBIAN_COMPONENTS,
                DEBIAN_KEYRING,
                "debian-security",
            ),
        ]
    else:
        # amd64 only: arm64 Ubuntu lives on ports.ubuntu.com (pass it with --sources-file).
        sources.append(
            AptSource(
                "ubuntu",
                "http://archive.ubuntu.com/ubuntu",
                (release, f"{release}-updates", f"{release}-security"),
                UBUNTU_COMPONENTS,
                UBUNTU_KEYRING,
                "ubuntu",
            )
        )
    docker = f"https://download.docker.com/linux/{lower}"
    cuda = (
        f"https://developer.download.nvidia.com/compute/cuda/repos/{nvidia_dir}/{CUDA_ARCH[arch]}"
    )
    devtools_dir = nvidia_dir if distribution == "Ubuntu" else DEVTOOLS_FALLBACK
    devtools = f"https://developer.download.nvidia.com/devtools/repos/{devtools_dir}/{arch}"
    sources += [
        # docker_engine (docker_engine_source: upstream): suite = release, channel stable; the
        # role installs docker_engine_upstream_packages with recommends.
        AptSource(
            "docker",
            docker,
            (release,),
            ("stable",),
            f"{docker}/gpg",
            "docker",
            key_paths=("docker/gpg",),
            recommends=(
                "docker-ce",
                "docker-ce-cli",
                "containerd.io",
                "docker-buildx-plugin",
                "docker-compose-plugin",
            ),
            vendor=True,
            guide=f"https://docs.docker.com/engine/install/{lower}/",
        ),
        # nvidia_driver (nvidia_driver_source: cuda) at DRIVER_BRANCH, both kernel-module
        # flavours: the branch's metapackages and, of the unversioned names NVIDIA's repository
        # keeps for every branch, only the branch's versions. Debian/Ubuntu deps: the archive.
        AptSource(
            "cuda",
            cuda,
            (),
            (),
            f"{cuda}/3bf863cc.pub",
            "cuda",
            key_paths=("cuda/3bf863cc.pub",),
            packages=cuda_driver_packages(distribution, DRIVER_BRANCH),
            vendor=True,
            guide="https://docs.nvidia.com/cuda/cuda-installation-guide-linux/"
            "#network-repo-installation-for-debian",
        ),
        # nvidia_container_toolkit: the packages it pins (nvidia_container_toolkit_packages).
        AptSource(
            "libnvidia-container",
            f"https://nvidia.github.io/libnvidia-container/stable/deb/{arch}",
            (),
            (),
            "https://nvidia.github.io/libnvidia-container/gpgkey",
            f"libnvidia-container/stable/deb/{arch}",
            key_paths=("libnvidia-container/gpgkey",),
            packages=(
                "nvidia-container-toolkit",
                "nvidia-container-toolkit-base",
                "libnvidia-container-tools",
                "libnvidia-container1",
            ),
            vendor=True,
            guide="https://docs.nvidia.com/datacenter/cloud-native/container-toolkit/latest/"
            "install-guide.html#installing-with-apt",
        ),
        # nsight_systems (nsight_systems_source: nvidia): the CLI package.
        AptSource(
            "nvidia-devtools",
            devtools,
            (),
            (),
            f"{devtools}/nvidia.pub",
            "nvidia-devtools",
            key_paths=("nvidia-devtools/nvidia.pub",),
            packages=("nsight-systems-cli",),
            vendor=True,
            guide="https://docs.nvidia.com/nsight-systems/InstallationGuide/index.html",
        ),
    ]
    return {source.name: source for source in sources}


def archive_sources(distribution: str) -> list[str]:
    """The distribution's own archive (what `--source` defaults to)."""
    return ["debian", "debian-security"] if distribution == "Debian" else ["ubuntu"]


def source_from_dict(data: dict[str, object]) -> AptSource:
    """A record of a --sources-file (JSON: a list of objects with AptSource's field names)."""
    allowed = {f.name for f in fields(AptSource)}
    unknown = sorted(set(data) - allowed)
    missing = sorted({"name", "url", "key_url", "prefix"} - set(data))
    if unknown or missing:
        raise DltkError(
            f"apt source {data.get('name', '?')!r}: "
            + "; ".join(
                part
                for part in (
                    f"unknown fields {', '.join(unknown)}" if unknown else "",
                    f"missing fields {', '.join(missing)}" if missing else "",
                )
                if part
            )
            + f" (fields: {', '.join(sorted(allowed))})"
        )
    values: dict[str, object] = dict(data)
    for key in ("suites", "components", "key_paths", "packages", "recommends"):
        values[key] = tuple(str(v) for v in list(data.get(key, [])))  # type: ignore[call-overload]
    source = AptSource(**values)  # type: ignore[arg-type]
    check_source(source)
    return source


def check_source(source: AptSource) -> None:
    """A record that would publish outside the mirror or name no component stops the run."""
    where = f"apt source {source.name!r}"
    for path in (source.prefix, *source.key_paths):
        if not _PATH_RE.match(path) or ".." in path.split("/"):
            raise DltkError(f"{where}: {path!r} is not a relative path inside the mirror")
    if not _PATH_RE.match(source.name) or "/" in source.name:
        raise DltkError(f"{where}: the name must be a word like cuda")
    if source.suites and not source.components:
        raise DltkError(f"{where}: suites need components (or no suites: a flat repository)")
    if not source.flat and any(s.endswith("/") for s in source.suites):
        raise DltkError(f"{where}: a flat repository has no suites (leave suites empty)")
    check_names([*source.packages, *source.recommends])


def load_sources_file(path: Path) -> list[AptSource]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise DltkError(f"cannot read the sources file {path}: {exc}") from exc
    if not isinstance(data, list):
        raise DltkError(f"{path}: a JSON list of apt sources expected")
    return [source_from_dict(dict(item)) for item in data]


def select_sources(
    known: dict[str, AptSource],
    names: list[str],
    extra: list[AptSource],
    packages: list[str],
    recommends: list[str],
) -> list[AptSource]:
    """The named sources (extra ones replace known ones of the same name), the command line's
    package lists added to every source that is not a vendor's (the distribution's archive)."""
    table = dict(known)
    for source in extra:
        table[source.name] = source
    wanted = list(dict.fromkeys([*names, *(s.name for s in extra)]))
    unknown = [name for name in wanted if name not in table]
    if unknown:
        raise DltkError(
            f"unknown apt source(s) {', '.join(unknown)} (known: {', '.join(sorted(table))})"
        )
    chosen: list[AptSource] = []
    for name in wanted:
        source = table[name]
        if not source.vendor:
            source = AptSource(
                **{
                    **{f.name: getattr(source, f.name) for f in fields(AptSource)},
                    "packages": tuple(check_names([*source.packages, *packages])),
                    "recommends": tuple(check_names([*source.recommends, *recommends])),
                }
            )
        chosen.append(source)
    prefixes = [s.prefix for s in chosen]
    clash = sorted({p for p in prefixes if prefixes.count(p) > 1})
    if clash:
        raise DltkError(f"two sources publish at the same path: {', '.join(clash)}")
    empty = [s.name for s in chosen if not s.packages and not s.recommends]
    if empty:
        raise DltkError(
            f"no packages to mirror from {', '.join(empty)}: pass --package/--packages-file "
            "or --with-recommends(-file)"
        )
    return chosen
