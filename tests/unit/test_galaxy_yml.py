"""The collection dltk.deploy (galaxy.yml) is the project: same version as pyproject.toml, every
role and plugin inside it, and the checkout's collections path resolves to this very directory."""

from __future__ import annotations

import fnmatch
from pathlib import Path

import tomllib
import yaml

REPO = Path(__file__).resolve().parents[2]
GALAXY = yaml.safe_load((REPO / "galaxy.yml").read_text())


def ignored(relpath: str) -> bool:
    """Whether `ansible-galaxy collection build` leaves relpath out (it or a parent matches)."""
    parts = Path(relpath).parts
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    return any(fnmatch.fnmatch(p, pat) for p in prefixes for pat in GALAXY["build_ignore"])


def test_the_collection_version_is_the_projects() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert (GALAXY["namespace"], GALAXY["name"]) == ("dltk", "deploy")
    assert GALAXY["version"] == project["version"]


def test_roles_plugins_and_what_the_roles_read_are_in_the_collection() -> None:
    shipped = [
        "roles/triton_server/tasks/main.yml",
        "plugins/modules/nvidia_gpu_facts.py",
        "plugins/module_utils/daemon_json.py",
        "plugins/action/role_state.py",
        "plugins/modules/role_state.py",
        "meta/runtime.yml",
        "scripts/dltk/gpu_facts.py",  # plugins/module_utils/dltk_gpu_facts.py points at it
        "images/dltk/Dockerfile",
        "model_repo/models.yml",
        "pyproject.toml",
    ]
    assert [p for p in shipped if ignored(p) or not (REPO / p).exists()] == []


def test_the_development_checkout_stays_out() -> None:
    out = [".venv/bin/python", "build/collections", "tests/unit", "molecule/default/molecule.yml"]
    out += ["collections/ansible_collections/dltk/deploy", "scripts/ensure-docker.sh", ".git"]
    assert [p for p in out if not ignored(p)] == []


def test_the_checkout_is_its_own_collections_path() -> None:
    link = REPO / "collections/ansible_collections/dltk/deploy"
    assert link.is_symlink() and link.resolve() == REPO
    assert "collections_path = collections" in (REPO / "ansible.cfg").read_text().splitlines()
