"""apt_pinned_repo's derived values (issue 12 item 5: vars/ holds constants, Python computes): the
files a repository of this role owns on the host, named after the caller's settings.

Set as _apt_pinned_repo_files at the top of each entry point (tasks/main.yml, tasks/pin.yml):
    "{{ {'name': ..., 'keyrings_dir': ..., 'preferences_name': ...}
        | dltk.deploy.apt_pinned_repo_files }}"
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

SOURCES_DIR = "/etc/apt/sources.list.d"
PREFERENCES_DIR = "/etc/apt/preferences.d"


def apt_pinned_repo_files(inputs: Mapping[str, Any]) -> dict[str, str]:
    """{sources, keyring, preferences}: deb822_repository names the sources file after the
    repository (`<name>.sources`); the keyring is `<keyrings_dir>/<name>.asc`; the pins go to
    /etc/apt/preferences.d/<preferences_name>.

    inputs: name, keyrings_dir, preferences_name (apt_pinned_repo_*)."""
    name = str(inputs["name"])
    return {
        "sources": f"{SOURCES_DIR}/{name}.sources",
        "keyring": f"{inputs['keyrings_dir']}/{name}.asc",
        "preferences": f"{PREFERENCES_DIR}/{inputs['preferences_name']}",
    }


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"apt_pinned_repo_files": apt_pinned_repo_files}
