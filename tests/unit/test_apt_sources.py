"""The repositories `dltk mirror apt` knows (scripts/dltk/mirror/apt_sources.py) are the roles'.

Each vendor record is compared with what the roles themselves compute: their defaults rendered
with their own filters (plugins/filter/) for the same host facts. A role default that moves and
a record that does not fails here. NVIDIA's and Docker's repositories are not reachable from this
machine, so nothing here (or anywhere in the tests) downloads from them.
"""

from __future__ import annotations

import json
import posixpath
from pathlib import Path
from typing import Any

import jinja2
import pytest
import yaml
from role_plugins import REPO, load_role_plugin

from dltk.driver_policy import fabricmanager_package
from dltk.errors import DltkError
from dltk.mirror.apt_sources import (
    CUDA_UNBRANCHED_FROM,
    DEBIAN_COMPONENTS,
    DRIVER_BRANCH,
    AptSource,
    archive_sources,
    cuda_driver_packages,
    known_sources,
    load_sources_file,
    select_sources,
    source_from_dict,
)

FILTERS = [
    "plugins/filter/nvidia_driver_names.py",
    "plugins/filter/nsight_systems_choice.py",
    "plugins/filter/nvidia_container_toolkit_settings.py",
]
# (distribution, release, version, Ansible architecture, Debian architecture)
HOSTS = [
    ("Debian", "bookworm", "12", "x86_64", "amd64"),
    ("Debian", "bookworm", "12", "aarch64", "arm64"),
    ("Ubuntu", "jammy", "22.04", "x86_64", "amd64"),
    ("Ubuntu", "noble", "24.04", "aarch64", "arm64"),
]


def _env() -> jinja2.Environment:
    env = jinja2.Environment()
    for path in FILTERS:
        for name, func in load_role_plugin(path).FilterModule().filters().items():
            env.filters[f"dltk.deploy.{name}"] = func
    return env


def role_defaults(role: str, host: tuple[str, str, str, str, str]) -> dict[str, Any]:
    """roles/<role>/defaults/main.yml with its templates rendered for the host's facts."""
    distribution, release, version, arch, _ = host
    facts = {
        "distribution": distribution,
        "distribution_release": release,
        "distribution_version": version,
        "distribution_major_version": version.split(".")[0],
        "architecture": arch,
    }
    raw = yaml.safe_load((REPO / "roles" / role / "defaults" / "main.yml").read_text())
    env, values = _env(), {}
    context: dict[str, Any] = {"ansible_facts": facts}
    for key, value in raw.items():  # defaults refer to earlier keys only
        if isinstance(value, str) and "{{" in value:
            try:
                value = env.from_string(value).render(**context, **values).strip()
            except jinja2.TemplateError:  # a default this test does not read (other filters)
                continue
        values[key] = value
    return values


def _key_path(source: AptSource, repo_url: str, key_url: str) -> str:
    """Where the role looks for the key once repo_url is the mirror's <root>/<prefix>."""
    relative = posixpath.relpath(key_url, repo_url.rstrip("/"))
    return posixpath.normpath(posixpath.join(source.prefix, relative))


@pytest.mark.parametrize("host", HOSTS, ids=lambda h: f"{h[0]}-{h[1]}-{h[3]}")
def test_vendor_records_are_the_roles_repositories(host: tuple[str, str, str, str, str]) -> None:
    sources = known_sources(host[0], host[1], host[4])
    pairs = {
        "cuda": ("nvidia_driver", "nvidia_driver_cuda_repo_url", "nvidia_driver_cuda_gpg_key_url"),
        "docker": (
            "docker_engine",
            "docker_engine_upstream_repo_url",
            "docker_engine_upstream_gpg_key_url",
        ),
        "libnvidia-container": (
            "nvidia_container_toolkit",
            "nvidia_container_toolkit_repo_url",
            "nvidia_container_toolkit_gpg_key_url",
        ),
        "nvidia-devtools": (
            "nsight_systems",
            "nsight_systems_nvidia_repo_url",
            "nsight_systems_nvidia_gpg_key_url",
        ),
    }
    for name, (role, url_var, key_var) in pairs.items():
        defaults = role_defaults(role, host)
        source = sources[name]
        assert source.url == defaults[url_var], name
        assert source.key_url == defaults[key_var], name
        # The mirror serves its key where the role's default key URL points once the repository
        # URL is the mirror's: overriding the URL alone is enough.
        assert _key_path(source, source.url, source.key_url) in source.key_paths, name
        assert source.vendor


def test_layouts_are_the_roles_layouts() -> None:
    host = HOSTS[0]
    sources = known_sources("Debian", "bookworm")
    toolkit = role_defaults("nvidia_container_toolkit", host)
    docker = role_defaults("docker_engine", host)
    # The roles write `Suites: /` for NVIDIA's three repositories (toolkit: its suite variable;
    # driver and Nsight: fixed in their tasks, checked below).
    assert toolkit["nvidia_container_toolkit_repo_suite"] == "/"
    for name in ("cuda", "libnvidia-container", "nvidia-devtools"):
        assert sources[name].flat and sources[name].components == ()
    for role in ("nvidia_driver", "nsight_systems"):
        tasks = (REPO / "roles" / role / "tasks" / "install.yml").read_text()
        assert "apt_pinned_repo_suites: [/]" in tasks, role
    # Docker: suite = the host's release (suite variable empty), component = the channel.
    assert docker["docker_engine_upstream_suite"] == ""
    assert sources["docker"].suites == ("bookworm",)
    assert sources["docker"].components == (docker["docker_engine_upstream_channel"],)


def test_vendor_packages_cover_what_the_roles_install() -> None:
    host = HOSTS[0]
    sources = known_sources("Debian", "bookworm")
    toolkit = role_defaults("nvidia_container_toolkit", host)
    assert set(sources["libnvidia-container"].packages) == set(
        toolkit["nvidia_container_toolkit_packages"]
    )
    docker = role_defaults("docker_engine", host)
    # install-upstream.yml installs with recommends (apt_pinned_repo's default).
    assert set(sources["docker"].recommends) == set(docker["docker_engine_upstream_packages"])
    nsight = load_role_plugin("plugins/filter/nsight_systems_choice.py")
    assert nsight.DEFAULT_PACKAGE["nvidia"] in sources["nvidia-devtools"].packages
    names = load_role_plugin("plugins/filter/nvidia_driver_names.py")
    driver = role_defaults("nvidia_driver", host)
    for modules in ("open", "proprietary"):
        chosen = names.nvidia_driver_packages(
            {
                "source": "cuda",
                "distribution": "Debian",
                "branch": driver["nvidia_driver_branch"],
                "kernel_modules": modules,
                "packages": [],
                "extra_packages": [],
            }
        )
        wanted = {*chosen["packages"], *chosen["extra_packages"]}
        wanted.add(fabricmanager_package("cuda", int(driver["nvidia_driver_branch"])))
        mirrored = {entry.partition("=")[0] for entry in sources["cuda"].packages}
        assert wanted <= mirrored, modules
    # Names NVIDIA keeps for every branch are limited to the branch's versions.
    assert "nvidia-driver=580.*" in sources["cuda"].packages


def test_cuda_record_follows_the_roles_branch_and_naming() -> None:
    driver = role_defaults("nvidia_driver", HOSTS[0])
    names = load_role_plugin("plugins/filter/nvidia_driver_names.py")
    assert int(driver["nvidia_driver_branch"]) == DRIVER_BRANCH
    assert names.CUDA_UNBRANCHED_FROM == CUDA_UNBRANCHED_FROM
    assert cuda_driver_packages("Debian", 595)[:2] == ("cuda-drivers=595.*", "nvidia-open=595.*")
    for branch in (570, 580, 595):
        fabric = fabricmanager_package("cuda", branch)
        assert fabric in {e.partition("=")[0] for e in cuda_driver_packages("Debian", branch)}


def test_debian_archive_keeps_suites_and_components() -> None:
    sources = known_sources("Debian", "bookworm")
    assert archive_sources("Debian") == ["debian", "debian-security"]
    debian, security = sources["debian"], sources["debian-security"]
    assert debian.suites == ("bookworm", "bookworm-updates")
    assert security.suites == ("bookworm-security",)
    assert debian.components == security.components == DEBIAN_COMPONENTS
    assert (debian.prefix, security.prefix) == ("debian", "debian-security")
    # The machine's own sources (Debian's apt mirror) name these archive roots.
    assert debian.url == "http://deb.debian.org/debian"
    assert security.url == "http://deb.debian.org/debian-security"
    assert not debian.vendor and not security.vendor


def test_ubuntu_archive_has_its_components() -> None:
    ubuntu = known_sources("Ubuntu", "noble")["ubuntu"]
    assert ubuntu.suites == ("noble", "noble-updates", "noble-security")
    assert ubuntu.components == ("main", "restricted", "universe", "multiverse")
    assert archive_sources("Ubuntu") == ["ubuntu"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("Debian", "sid"), "Debian release 'sid' is not one dltk mirrors"),
        (("Fedora", "40"), "distribution 'Fedora'"),
        (("Debian", "bookworm", "s390x"), "architecture 's390x'"),
    ],
)
def test_unknown_host_is_one_error(args: tuple[str, ...], message: str) -> None:
    with pytest.raises(DltkError, match=message):
        known_sources(*args)


def test_sources_file_adds_a_flat_repository(tmp_path: Path) -> None:
    path = tmp_path / "sources.json"
    record = {
        "name": "site-tools",
        "url": "http://127.0.0.1:8000/tools",
        "key_url": "/srv/key.asc",
        "prefix": "site/tools",
        "packages": ["hello"],
        "vendor": True,
    }
    path.write_text(json.dumps([record]))
    (source,) = load_sources_file(path)
    assert source.flat and source.packages == ("hello",) and source.suites == ()


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"prefix": "../outside"}, "not a relative path inside the mirror"),
        ({"key_paths": ["/etc/key"]}, "not a relative path inside the mirror"),
        ({"suites": ["stable"]}, "suites need components"),
        ({"packages": ["Bad Name"]}, "not Debian package names: Bad Name"),
        ({"colour": "red"}, "unknown fields colour"),
        ({"url": None}, "missing fields url"),
    ],
)
def test_bad_source_record_is_one_error(changes: dict[str, Any], message: str) -> None:
    record: dict[str, Any] = {"name": "x", "url": "http://h/x", "key_url": "/k", "prefix": "x"}
    record.update(changes)
    if record.get("url") is None:
        del record["url"]
    with pytest.raises(DltkError, match=message):
        source_from_dict(record)


def test_select_adds_the_command_line_packages_to_the_archive_only() -> None:
    known = known_sources("Debian", "bookworm")
    chosen = select_sources(known, ["debian", "docker"], [], ["nvidia-driver"], ["docker.io"])
    debian, docker = chosen
    assert debian.packages == ("nvidia-driver",) and debian.recommends == ("docker.io",)
    assert docker.packages == () and "docker-ce" in docker.recommends


def test_select_lets_a_sources_file_replace_a_known_record() -> None:
    known = known_sources("Debian", "bookworm")
    local = AptSource("cuda", "http://127.0.0.1:1/c", (), (), "/k", "cuda", packages=("tool",))
    (chosen,) = select_sources(known, [], [local], [], [])
    assert chosen.url == "http://127.0.0.1:1/c"


@pytest.mark.parametrize(
    ("names", "packages", "message"),
    [
        (["debian", "nvidia"], ["a1"], "unknown apt source\\(s\\) nvidia"),
        (["debian"], [], "no packages to mirror from debian"),
    ],
)
def test_bad_selection_is_one_error(names: list[str], packages: list[str], message: str) -> None:
    with pytest.raises(DltkError, match=message):
        select_sources(known_sources("Debian", "bookworm"), names, [], packages, [])


def test_two_sources_on_one_path_is_one_error() -> None:
    known = known_sources("Debian", "bookworm")
    other = AptSource("mine", "http://h/m", (), (), "/k", "debian", packages=("tl",), vendor=True)
    with pytest.raises(DltkError, match="two sources publish at the same path: debian"):
        select_sources(known, ["debian"], [other], ["a1"], [])
