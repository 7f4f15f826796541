"""`dltk mirror`: components, package names, cache keys, the download script, apt's index formats.

The download itself needs docker and the Debian archive: molecule/mirror runs it for real.
"""

from __future__ import annotations

import gzip
import hashlib
import subprocess
from pathlib import Path

import pytest

from dltk.errors import DltkError
from dltk.mirror.apt_mirror import (
    build_mirror,
    cache_key,
    check_package_names,
    component_of,
    download_script,
    main,
    suites_for,
)
from dltk.mirror.apt_repo import Suite, build_spec_repo, packages_entry, release_text, throwaway_key


@pytest.mark.parametrize(
    ("section", "component"),
    [
        ("libs", "main"),
        ("non-free/libs", "non-free"),
        ("contrib/devel", "contrib"),
        ("non-free-firmware/kernel", "non-free-firmware"),
        ("restricted/misc", "main"),
        ("", "main"),
    ],
)
def test_component_of_section(section: str, component: str) -> None:
    assert component_of(section) == component


def test_package_names_sorted_and_unique() -> None:
    assert check_package_names(["nvidia-smi", "docker.io", "nvidia-smi", "g++"]) == [
        "docker.io",
        "g++",
        "nvidia-smi",
    ]


def test_bad_package_name_is_one_error() -> None:
    with pytest.raises(DltkError, match="not Debian package names: Docker, a;b"):
        check_package_names(["docker.io", "Docker", "a;b"])


def test_suites_of_a_release() -> None:
    assert suites_for("bookworm") == [
        Suite("debian", "bookworm"),
        Suite("debian", "bookworm-updates"),
        Suite("debian-security", "bookworm-security"),
    ]
    with pytest.raises(DltkError, match="not a Debian codename"):
        suites_for("bookworm/../x")


def test_cache_key_follows_image_and_lists_not_order() -> None:
    key = cache_key("sha256:aa", "bookworm", ["b", "a"], ["docker.io"])
    assert key == cache_key("sha256:aa", "bookworm", ["a", "b"], ["docker.io"])
    assert key != cache_key("sha256:bb", "bookworm", ["a", "b"], ["docker.io"])
    assert key != cache_key("sha256:aa", "bookworm", ["a", "b", "docker.io"], [])
    assert len(key) == 16


def test_download_script_enables_all_components_and_splits_recommends() -> None:
    script = download_script("bookworm", ["nvidia-driver"], ["docker.io"])
    assert "Suites: bookworm bookworm-updates" in script
    assert "Suites: bookworm-security" in script
    assert script.count("Components: main contrib non-free non-free-firmware") == 2
    assert "--download-only --no-install-recommends nvidia-driver" in script
    assert "--download-only --install-recommends docker.io" in script
    assert "download-only --install-recommends" not in download_script("bookworm", ["a"], [])


def test_packages_entry_adds_location_and_checksums() -> None:
    data = b"deb bytes"
    entry = packages_entry("Package: x\nVersion: 1\n", "pool/main/x_1_amd64.deb", data)
    assert entry.startswith("Package: x\nVersion: 1\nFilename: pool/main/x_1_amd64.deb\n")
    assert f"Size: {len(data)}\n" in entry
    assert f"SHA256: {hashlib.sha256(data).hexdigest()}\n" in entry


def test_release_lists_components_and_index_hashes() -> None:
    indexes = {"non-free/binary-amd64/Packages": b"a", "main/binary-amd64/Packages": b""}
    text = release_text(
        indexes, "amd64", "L", "Sun, 22 Nov 2026 00:00:00 GMT", Suite("debian", "bookworm")
    )
    assert "Suite: bookworm\nCodename: bookworm\nComponents: main non-free\n" in text
    assert f" {hashlib.sha256(b'a').hexdigest()}          1 non-free/binary-amd64/Packages" in text
    assert "Suite:" not in release_text(indexes, "amd64", "L", "d")


def _standin(name: str) -> dict[str, object]:
    return {
        "name": name,
        "version": "1.0-1",
        "description": f"{name} STAND-IN for tests\nnot a vendor package",
        "files": {f"/usr/share/doc/{name}/STAND-IN": "stand-in\n"},
    }


def test_spec_repo_is_signed_and_labeled(tmp_path: Path) -> None:
    spec = {"layout": "flat", "path": "flat", "arch": "amd64", "key_path": "flat/key.asc"}
    spec["packages"] = [_standin("tool")]
    home = tmp_path / "gnupg"
    with throwaway_key(home):
        assert "1 STAND-IN package(s)" in build_spec_repo(spec, tmp_path / "out", home)
        repo = tmp_path / "out" / "flat"
        assert "Description: tool STAND-IN for tests" in (repo / "Packages").read_text()
        assert "Label: STAND-IN test repository" in (repo / "Release").read_text()
        gpg = ["gpg", "--homedir", str(home), "--verify", str(repo / "InRelease")]
        assert subprocess.run(gpg, capture_output=True, check=False).returncode == 0


def test_mirror_puts_debs_in_their_component(tmp_path: Path) -> None:
    home = tmp_path / "gnupg"
    spec = {"layout": "flat", "path": "debs", "arch": "amd64", "key_path": "k.asc"}
    spec["packages"] = [_standin("one"), _standin("two")]
    with throwaway_key(home):
        build_spec_repo(spec, tmp_path, home)
        debs = sorted((tmp_path / "debs").glob("*.deb"))
        counts = build_mirror(debs, "bookworm", "amd64", tmp_path / "out", home)
    assert {c: n for c, (n, _) in counts.items()} == {
        "main": 2,
        "contrib": 0,
        "non-free": 0,
        "non-free-firmware": 0,
    }
    assert counts["main"][1] == sum(d.stat().st_size for d in debs)
    dists = tmp_path / "out" / "debian" / "dists"
    main_index = dists / "bookworm" / "main" / "binary-amd64"
    assert (
        gzip.decompress((main_index / "Packages.gz").read_bytes())
        == (main_index / "Packages").read_bytes()
    )
    assert "Filename: pool/main/one_1.0-1_amd64.deb" in (main_index / "Packages").read_text()
    assert (dists / "bookworm-updates" / "main" / "binary-amd64" / "Packages").read_bytes() == b""
    security = tmp_path / "out" / "debian-security" / "dists" / "bookworm-security"
    assert (
        "Components: contrib main non-free non-free-firmware" in (security / "Release").read_text()
    )
    assert (security / "InRelease").exists()


def test_cli_without_packages_is_one_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["build", "--out", str(tmp_path / "o"), "--gnupghome", str(tmp_path / "g")]
    assert main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("dltk mirror: error: no packages given: pass --package")
    assert len(err.splitlines()) == 1
    assert not (tmp_path / "o").exists()


def test_cli_bad_spec_is_one_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = tmp_path / "spec.json"
    spec.write_text("{not json")
    assert main(["spec", str(spec), str(tmp_path / "o"), str(tmp_path / "g")]) == 1
    assert "cannot read the STAND-IN spec" in capsys.readouterr().err
    assert not (tmp_path / "g").exists()
