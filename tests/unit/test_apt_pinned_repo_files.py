"""apt_pinned_repo's file names (plugins/filter/apt_pinned_repo_files.py, issue 12 item 5): what
vars/main.yml templated before. The sources name must be deb822_repository's (<name>.sources),
or the role would remove a file that is not the repository's. And the pin records and the
install's package names, which tasks/pin.yml and tasks/main.yml computed in Jinja before."""

from __future__ import annotations

from role_plugins import load_role_plugin

ap = load_role_plugin("plugins/filter/apt_pinned_repo_files.py")


def test_the_files_of_a_repository_and_its_pins() -> None:
    inputs = {"name": "dltk-docker", "keyrings_dir": "/etc/apt/keyrings"}
    got = ap.apt_pinned_repo_files({**inputs, "preferences_name": "dltk-docker-engine"})
    assert got == {
        "sources": "/etc/apt/sources.list.d/dltk-docker.sources",
        "keyring": "/etc/apt/keyrings/dltk-docker.asc",
        "preferences": "/etc/apt/preferences.d/dltk-docker-engine",
    }


def test_the_keyrings_dir_is_the_callers() -> None:
    got = ap.apt_pinned_repo_files(
        {"name": "r", "keyrings_dir": "/srv/keys", "preferences_name": ""}
    )
    assert got["keyring"] == "/srv/keys/r.asc"


# --- the pin records (tasks/pin.yml) ---

OWN = [{"packages": ["nvidia-driver"], "version": "580.95.05-1", "comment": "driver"}]


def records(**over: object) -> list:
    inputs = {"pins": [], "packages": ["nsight-systems*"], "version": "", "picked_version": ""}
    return ap.apt_pinned_repo_pin_records({**inputs, **over})


def test_the_callers_own_records_win() -> None:
    assert records(pins=OWN, version="1.0", picked_version="2.0") == OWN
    assert records(pins=OWN, packages=[]) == OWN


def test_one_record_of_the_pin_packages_at_the_pin_version() -> None:
    assert records(version="5:28.5.1-*", picked_version="5:28.5.1-1") == [
        {"packages": ["nsight-systems*"], "version": "5:28.5.1-*", "comment": ""}
    ]


def test_the_picked_version_when_no_pin_version_is_given() -> None:
    assert records(picked_version="2022.4.2.1~11.8.0-5~deb12u1") == [
        {"packages": ["nsight-systems*"], "version": "2022.4.2.1~11.8.0-5~deb12u1", "comment": ""}
    ]


def test_nothing_to_pin_without_a_version_or_packages() -> None:
    assert records() == []
    assert records(packages=[], version="1.0") == []
    assert records(packages="", picked_version="1.0") == []
    # A single pattern as a string is a package list too (preferences.j2 writes it as it is).
    assert records(packages="docker-ce", version="1.0")[0]["packages"] == "docker-ce"


# --- the install's package names (tasks/main.yml) ---


def install_names(**over: object) -> list:
    inputs = {
        "packages": ["docker-ce", "docker-ce-cli"],
        "extra_packages": [],
        "install_version": "",
        "picked_version": "5:28.5.1-1~debian.12~bookworm",
    }
    return ap.apt_pinned_repo_install_names({**inputs, **over})


def test_each_package_at_the_picked_version() -> None:
    assert install_names() == [
        "docker-ce=5:28.5.1-1~debian.12~bookworm",
        "docker-ce-cli=5:28.5.1-1~debian.12~bookworm",
    ]


def test_the_install_version_wins_and_extras_have_none() -> None:
    got = install_names(install_version="5:28.5.1-*", extra_packages=["docker-buildx-plugin"])
    assert got == ["docker-ce=5:28.5.1-*", "docker-ce-cli=5:28.5.1-*", "docker-buildx-plugin"]
    assert install_names(packages=[], extra_packages=["python3-docker"]) == ["python3-docker"]


def test_the_filters_are_exported() -> None:
    assert set(ap.FilterModule().filters()) == {
        "apt_pinned_repo_files",
        "apt_pinned_repo_pin_records",
        "apt_pinned_repo_install_names",
    }
