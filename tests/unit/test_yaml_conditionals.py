"""Every conditional in the project's playbooks, roles and scenarios is a string.

An unquoted condition holding `: ` (e.g. `- out is search('^commit: X')`) is a YAML mapping, not
a string; ansible-lint and `--syntax-check` accept it and the play fails only when the task runs
("Conditional expressions must be strings"), which in molecule can be deep in a scenario's verify.
"""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
KEYS = ("that", "when", "failed_when", "changed_when", "until")
DIRS = ("roles", "molecule", "playbooks")


def non_string_conditions(node: object, found: list[str], where: str) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in KEYS:
                for item in value if isinstance(value, list) else [value]:
                    if isinstance(item, dict | list):
                        found.append(f"{where}: {key}: {item!r}")
            non_string_conditions(value, found, where)
    elif isinstance(node, list):
        for item in node:
            non_string_conditions(item, found, where)


def yaml_files() -> list[Path]:
    files = [p for d in DIRS for p in (ROOT / d).rglob("*.yml")] + list(ROOT.glob("*.yml"))
    return sorted(p for p in files if "templates" not in p.parts)


def test_the_scan_finds_an_unquoted_condition_with_a_colon() -> None:
    found: list[str] = []
    doc = yaml.safe_load("- assert:\n    that:\n      - out is search('^commit: X')\n")
    non_string_conditions(doc, found, "example")
    assert len(found) == 1 and "commit" in found[0]


def test_every_condition_is_a_string() -> None:
    found: list[str] = []
    for path in yaml_files():
        for doc in yaml.safe_load_all(path.read_text()):
            non_string_conditions(doc, found, str(path.relative_to(ROOT)))
    assert found == [], "quote these conditions:\n" + "\n".join(found)
