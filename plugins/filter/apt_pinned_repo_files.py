"""apt_pinned_repo's derived values (issue 12 item 5: vars/ holds constants, Python computes): the
files a repository of this role owns on the host, named after the caller's settings; the pin
records; apt's names of the packages to install.

- `apt_pinned_repo_files`: set as _apt_pinned_repo_files at the top of each entry point
  (tasks/main.yml, tasks/pin.yml):
    "{{ {'name': ..., 'keyrings_dir': ..., 'preferences_name': ...}
        | dltk.deploy.apt_pinned_repo_files }}"
- `apt_pinned_repo_pin_records` (tasks/pin.yml): _apt_pinned_repo_records, what preferences.j2
  writes;
- `apt_pinned_repo_install_names` (tasks/main.yml): the `name` of the install.
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


def apt_pinned_repo_pin_records(inputs: Mapping[str, Any]) -> list[Any]:
    """[{packages, version, comment}]: the caller's own records (apt_pinned_repo_pins) when it
    gives any, else one record of the pin packages at the pin version (the picked version when
    that is empty), else none (no version or no packages: nothing to pin).

    inputs: pins, packages, version (apt_pinned_repo_pins, _pin_packages, _pin_version),
    picked_version (_apt_pinned_repo_version: what tasks/main.yml picked, '' without it)."""
    if inputs["pins"]:
        return list(inputs["pins"])
    version = inputs["version"] or inputs["picked_version"]
    if version and inputs["packages"]:
        return [{"packages": inputs["packages"], "version": version, "comment": ""}]
    return []


def apt_pinned_repo_install_names(inputs: Mapping[str, Any]) -> list[Any]:
    """What apt installs: each of the packages as "<package>=<version>" at the install version
    (the picked version when that is empty), then the extra packages as they are.

    inputs: packages, extra_packages, install_version (apt_pinned_repo_*), picked_version
    (_apt_pinned_repo_version)."""
    version = inputs["install_version"] or inputs["picked_version"]
    return [f"{package}={version}" for package in inputs["packages"]] + list(
        inputs["extra_packages"]
    )


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {
            "apt_pinned_repo_files": apt_pinned_repo_files,
            "apt_pinned_repo_pin_records": apt_pinned_repo_pin_records,
            "apt_pinned_repo_install_names": apt_pinned_repo_install_names,
        }
