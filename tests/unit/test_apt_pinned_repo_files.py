"""apt_pinned_repo's file names (plugins/filter/apt_pinned_repo_files.py, issue 12 item 5): what
vars/main.yml templated before. The sources name must be deb822_repository's (<name>.sources),
or the role would remove a file that is not the repository's."""

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


def test_the_filter_is_exported() -> None:
    assert set(ap.FilterModule().filters()) == {"apt_pinned_repo_files"}
