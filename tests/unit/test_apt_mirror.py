"""`dltk mirror apt`: aptly's queries and answers, flat and STAND-IN repositories read by apt.

aptly against the real Debian mirror and a local flat repository: tests/integration/
test_mirror_apt.py; the whole provisioning from the mirror: molecule/mirror. The repositories
built here are read by apt itself (`apt-get update` in a private state directory, signatures
checked), not by code of ours.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from dltk.errors import DltkError
from dltk.mirror.apt_aptly import (
    apt_lines,
    aptly_config,
    exact_query,
    filter_query,
    index_totals,
    listed_packages,
    missing_names,
    provided_names,
    provides_query,
)
from dltk.mirror.apt_mirror import main
from dltk.mirror.apt_repo import apt_reads, build_spec_repo, export_key, throwaway_key
from dltk.mirror.apt_sources import known_sources

# Captured from aptly 1.5.0 on this machine, 2026-12-03: `aptly snapshot verify` of the
# bookworm-updates/main snapshot alone (tzdata; its Depends `debconf (>= 0.5) | debconf-2.0`
# comes out as one line per alternative), and `aptly mirror show -with-packages` of that suite's
# resolve mirror (the release file's fields shortened).
VERIFY_OUTPUT = """\
Loading packages...
Verifying...
Missing dependencies (3):
  debconf (>= 0.5) [amd64]
  debconf-2.0 [amd64]
  libc6 (>= 2.34) [amd64]
"""
SHOW_OUTPUT = """\
Name: r1-resolve-deps-debian-bookworm-updates
Archive Root URL: http://deb.debian.org/debian/
Distribution: bookworm-updates
Components: main, contrib, non-free, non-free-firmware
Architectures: amd64
Download Sources: no
Download .udebs: no
Filter: b43-fwcutter | hello | tzdata | unrar
Filter With Deps: yes
Last update: 2026-12-03 11:52:48 UTC
Number of packages: 2

Information from release file:
Codename: bookworm-updates
Components: main contrib non-free-firmware non-free
Label: Debian
Suite: oldstable-updates
Version: 12-updates
Packages:
  tzdata_2025b-0+deb12u1_all
  libc6_2.36-9+deb12u10_amd64
"""


def test_filter_query_is_sorted_unique_names() -> None:
    assert filter_query(["nvidia-smi", "docker.io", "nvidia-smi", "g++"]) == (
        "docker.io | g++ | nvidia-smi"
    )


def test_filter_query_turns_a_version_glob_into_aptlys_pattern() -> None:
    assert filter_query(["nvidia-driver=580.*", "cuda-drivers-580"]) == (
        "cuda-drivers-580 | nvidia-driver (% 580.*)"
    )


def test_exact_query_names_version_and_architecture() -> None:
    packages = [("libc6", "2.36-9+deb12u10", "amd64"), ("tzdata", "2025b-0+deb12u1", "all")]
    assert exact_query(packages) == (
        "libc6 (= 2.36-9+deb12u10) {amd64} | tzdata (= 2025b-0+deb12u1) {all}"
    )


def test_provides_query_finds_what_provides_a_name() -> None:
    # aptly 1.5 does not resolve versioned Provides; a glob over the field finds the provider.
    assert provides_query(["libjs-html5shiv", "libnet-perl"]) == (
        "Provides (% *libjs-html5shiv*) | Provides (% *libnet-perl*)"
    )


def test_provided_names_are_packages_and_what_they_provide() -> None:
    text = (
        "Package: node-html5shiv\nProvides: libjs-html5shiv (= 3.7.3+dfsg-5)\n\n"
        "Package: perl-modules-5.36\nProvides: libnet-perl (= 1:3.14), libversion-perl\n"
    )
    assert provided_names(text) == {
        "node-html5shiv",
        "libjs-html5shiv",
        "perl-modules-5.36",
        "libnet-perl",
        "libversion-perl",
    }


def test_filter_query_refuses_what_is_not_a_package_name() -> None:
    with pytest.raises(DltkError, match="not Debian package names: Docker, a;b"):
        filter_query(["docker.io", "Docker", "a;b"])


def test_missing_dependencies_are_read_by_name() -> None:
    assert missing_names(VERIFY_OUTPUT) == ["debconf", "debconf-2.0", "libc6"]
    assert missing_names("Missing dependencies (1):\n  aa (>= 1) | bb [amd64]\n") == ["aa"]
    assert (
        missing_names("Loading packages...\nVerifying...\nAll dependencies are satisfied.\n") == []
    )


def test_mirror_packages_are_read_with_version_and_architecture() -> None:
    assert listed_packages(SHOW_OUTPUT) == [
        ("libc6", "2.36-9+deb12u10", "amd64"),
        ("tzdata", "2025b-0+deb12u1", "all"),
    ]
    assert listed_packages("Name: x\nNumber of packages: 0\n") == []


def test_index_totals_count_packages_and_bytes() -> None:
    text = "Package: a\nSize: 10\n\nPackage: b\nInstalled-Size: 7\nSize: 5\n"
    assert index_totals(text) == (2, 15)
    assert index_totals("") == (0, 0)


def test_config_publishes_into_out_by_hard_link_on_one_filesystem(tmp_path: Path) -> None:
    (tmp_path / "root").mkdir()
    (tmp_path / "out").mkdir()
    config = aptly_config(tmp_path / "root", tmp_path / "out", "amd64")
    assert config["rootDir"] == str(tmp_path / "root")
    assert config["architectures"] == ["amd64"]
    assert config["FileSystemPublishEndpoints"] == {
        "dltk": {"rootDir": str(tmp_path / "out"), "linkMethod": "hardlink"}
    }


def test_apt_lines_name_every_suite_and_both_layouts_of_a_flat_source(tmp_path: Path) -> None:
    sources = known_sources("Debian", "bookworm")
    key = tmp_path / "k.asc"
    lines = apt_lines([sources["debian"], sources["cuda"]], tmp_path, key)
    head = f"deb [signed-by={key}] file:{tmp_path}"
    assert lines == [
        f"{head}/debian bookworm main contrib non-free non-free-firmware",
        f"{head}/debian bookworm-updates main contrib non-free non-free-firmware",
        f"{head}/cuda /",
        f"{head}/cuda flat main",
    ]


def _standin(name: str, depends: str = "") -> dict[str, object]:
    return {
        "name": name,
        "version": "1.0-1",
        "depends": depends,
        "description": f"{name} STAND-IN for tests\nnot a vendor package",
        "files": {f"/usr/share/doc/{name}/STAND-IN": "stand-in\n"},
    }


def test_flat_spec_repo_is_signed_labeled_and_read_by_apt(tmp_path: Path) -> None:
    spec = {"layout": "flat", "path": "tools/amd64", "arch": "amd64", "key_path": "tools/key"}
    spec["packages"] = [_standin("tool"), _standin("tool-libs")]
    home, out = tmp_path / "gnupg", tmp_path / "out"
    with throwaway_key(home):
        assert "2 STAND-IN package(s)" in build_spec_repo(spec, out, home)
    repo = out / "tools" / "amd64"
    index = (repo / "Packages").read_text()
    assert "Description: tool STAND-IN for tests" in index
    assert "Filename: ./tool_1.0-1_amd64.deb" in index
    assert "Label: STAND-IN test repository" in (repo / "Release").read_text()
    line = f"deb [signed-by={out / 'tools' / 'key'}] file:{repo} /"
    madison = apt_reads([line], tmp_path / "apt", "amd64", ["tool", "tool-libs"])
    offered = [[f.strip() for f in ln.split("|")] for ln in madison.splitlines()]
    assert sorted(offered) == [
        ["tool", "1.0-1", f"file:{repo}  Packages"],
        ["tool-libs", "1.0-1", f"file:{repo}  Packages"],
    ]


def test_dists_spec_repo_keeps_its_suite_and_component(tmp_path: Path) -> None:
    spec = {
        "layout": "dists",
        "path": "vendor",
        "suite": "bookworm",
        "component": "stable",
        "arch": "amd64",
        "key_path": "vendor/gpg",
        "packages": [_standin("engine", depends="engine-cli"), _standin("engine-cli")],
    }
    home, out = tmp_path / "gnupg", tmp_path / "out"
    with throwaway_key(home):
        build_spec_repo(spec, out, home)
    release = (out / "vendor" / "dists" / "bookworm" / "Release").read_text()
    assert "Suite: bookworm\n" in release and "Components: stable\n" in release
    assert "stable/binary-amd64/Packages" in release
    line = f"deb [signed-by={out / 'vendor' / 'gpg'}] file:{out / 'vendor'} bookworm stable"
    madison = apt_reads([line], tmp_path / "apt", "amd64", ["engine"])
    assert f"file:{out / 'vendor'} bookworm/stable amd64 Packages" in madison


def test_apt_refuses_a_repository_signed_by_another_key(tmp_path: Path) -> None:
    spec = {"layout": "flat", "path": "r", "arch": "amd64", "key_path": "r/key"}
    spec["packages"] = [_standin("tool")]
    with throwaway_key(tmp_path / "signer"):
        build_spec_repo(spec, tmp_path / "out", tmp_path / "signer")
    with throwaway_key(tmp_path / "other"):
        export_key(tmp_path / "other", tmp_path / "other.asc")
    line = f"deb [signed-by={tmp_path / 'other.asc'}] file:{tmp_path / 'out' / 'r'} /"
    with pytest.raises(DltkError, match="apt-get update failed: E: The repository .* not signed"):
        apt_reads([line], tmp_path / "apt", "amd64", ["tool"])


@pytest.mark.parametrize("action", ["apt", "build"])
def test_cli_without_packages_is_one_error(
    action: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [action, "--out", str(tmp_path / "o"), "--gnupghome", str(tmp_path / "g")]
    assert main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("dltk mirror: error: no packages to mirror from debian, debian-security")
    assert len(err.splitlines()) == 1
    assert not (tmp_path / "o").exists() and not (tmp_path / "g").exists()


def test_cli_unknown_source_is_one_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["apt", "--source", "nvidia", "--package", "hello"]
    argv += ["--out", str(tmp_path / "o"), "--gnupghome", str(tmp_path / "g")]
    assert main(argv) == 1
    assert "unknown apt source(s) nvidia (known: cuda, debian" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_cli_bad_spec_is_one_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = tmp_path / "spec.json"
    spec.write_text("{not json")
    assert main(["spec", str(spec), str(tmp_path / "o"), str(tmp_path / "g")]) == 1
    assert "cannot read the STAND-IN spec" in capsys.readouterr().err
    assert not (tmp_path / "g").exists()
