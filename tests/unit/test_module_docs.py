"""Every module of the collection documents itself the way ansible-doc reads it: DOCUMENTATION,
EXAMPLES and RETURN are YAML, DOCUMENTATION names the module and each option has a description
(ansible-lint only warns when ansible-doc cannot parse a module's documentation)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml

MODULES = sorted((Path(__file__).resolve().parents[2] / "plugins" / "modules").glob("*.py"))


def _docs(path: Path) -> dict[str, str]:
    tree = ast.parse(path.read_text())
    return {
        target.id: node.value.value
        for node in tree.body
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant)
        for target in node.targets
        if isinstance(target, ast.Name) and target.id in ("DOCUMENTATION", "EXAMPLES", "RETURN")
    }


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.stem)
def test_the_module_documentation_is_yaml_ansible_doc_reads(path: Path) -> None:
    docs = _docs(path)
    assert set(docs) == {"DOCUMENTATION", "EXAMPLES", "RETURN"}, path.name
    parsed = {name: yaml.safe_load(text) for name, text in docs.items()}
    documentation = parsed["DOCUMENTATION"]
    assert documentation["module"] == path.stem
    for option, spec in (documentation.get("options") or {}).items():
        assert spec.get("description"), f"{path.name}: option {option} has no description"
