"""The air-gapped site example (inventory/air-gapped.example.yml) and the tested set of the same
variables (molecule/mirror/host_vars) name only variables a role declares: a typo or a renamed
variable would be silently ignored by Ansible and the site would reach out to the internet."""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
# The site's and the scenario's own names, and connection settings: not role variables.
OWN_PREFIXES = ("ansible_", "site_", "vault_", "dltk_mirror_")


def declared() -> set[str]:
    names: set[str] = set()
    for spec in ROOT.glob("roles/*/meta/argument_specs.yml"):
        for entry in yaml.safe_load(spec.read_text())["argument_specs"].values():
            names.update(entry.get("options", {}))
    return names


def group_vars(group: dict) -> dict:
    out = dict(group.get("vars") or {})
    for host in (group.get("hosts") or {}).values():
        out.update(host or {})
    for child in (group.get("children") or {}).values():
        out.update(group_vars(child or {}))
    return out


def undeclared(variables: dict) -> list[str]:
    known = declared()
    return sorted(k for k in variables if not k.startswith(OWN_PREFIXES) and k not in known)


def test_the_example_names_only_declared_variables():
    example = yaml.safe_load((ROOT / "inventory" / "air-gapped.example.yml").read_text())
    variables = group_vars(example["all"])
    assert undeclared(variables) == []
    # every kind of thing a site carries in is pointed at the site: apt, images, wheels
    assert {"nvidia_driver_cuda_repo_url", "dltk_registry", "dltk_image_wheel_index"} <= set(
        variables
    )
    assert all(
        str(v).startswith("{{ site_mirror }}") for k, v in variables.items() if k.endswith("_url")
    )


def test_the_tested_set_names_only_declared_variables():
    host_vars = yaml.safe_load((ROOT / "molecule/mirror/host_vars/dltk-mirror.yml").read_text())
    assert undeclared(host_vars) == []


def test_a_misspelt_variable_is_caught():
    assert undeclared({"dltk_registy": "x", "site_mirror": "y", "dltk_registry": "z"}) == [
        "dltk_registy"
    ]
