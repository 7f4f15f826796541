"""The pinned-apt-repository flow lives once, in roles/apt_pinned_repo (issue 12, item 2).

Guards against a fifth copy: no other role renders apt sources or preferences files itself, the
roles that install from a vendor repository include apt_pinned_repo, and its argument spec,
defaults and README table list the same variables with the same defaults.
"""

from __future__ import annotations

from pathlib import Path

import yaml

ROLES = Path(__file__).resolve().parents[2] / "roles"
SHARED = ROLES / "apt_pinned_repo"
USERS = ["docker_engine", "nvidia_container_toolkit", "nsight_systems", "nvidia_driver"]


def _task_files(role: str) -> list[Path]:
    return sorted((ROLES / role / "tasks").glob("*.yml"))


def test_no_other_role_writes_a_pinned_repository_or_pin_itself() -> None:
    offenders = []
    for role in sorted(p.name for p in ROLES.iterdir() if p.is_dir()):
        if role == "apt_pinned_repo":
            continue
        for path in _task_files(role):
            text = path.read_text()
            for needle in ("deb822_repository", "/etc/apt/preferences.d"):
                if needle in text:
                    offenders.append(f"{path.relative_to(ROLES)}: {needle}")
        for template in (ROLES / role / "templates").glob("*.j2"):
            # Debian's own components (per-suite lists, archive keyring): not a pinned repository.
            if template.name == "debian-nonfree.sources.j2":
                continue
            if template.name.endswith((".pref.j2", ".sources.j2")):
                offenders.append(str(template.relative_to(ROLES)))
    assert offenders == []


def test_the_four_roles_include_the_shared_role() -> None:
    for role in USERS:
        texts = "".join(path.read_text() for path in _task_files(role))
        assert "name: apt_pinned_repo" in texts, role


def test_argument_spec_defaults_and_readme_agree() -> None:
    defaults = yaml.safe_load((SHARED / "defaults/main.yml").read_text())
    spec = yaml.safe_load((SHARED / "meta/argument_specs.yml").read_text())["argument_specs"]
    options = spec["main"]["options"]
    assert set(options) == set(defaults)
    for name, option in options.items():
        assert option["default"] == defaults[name], name
    assert set(spec["pin"]["options"]) <= set(options)
    readme = (SHARED / "README.md").read_text()
    for name in defaults:
        assert f"| `{name}` |" in readme, name
