"""collections/requirements.yml and scripts/install-collections.py: every collection the
collection dltk.deploy depends on (galaxy.yml) is pinned, within its range, and a pin that
disagrees with its tarball's name stops the install before anything is built."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest
import yaml
from packaging.specifiers import SpecifierSet

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts/install-collections.py"
_spec = importlib.util.spec_from_file_location("install_collections", SCRIPT)
assert _spec and _spec.loader
ic = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(ic)
PINS = {
    f"{e['ns']}.{e['name']}": e["version"]
    for e in ic.parse_requirements(REPO / "collections/requirements.yml")
}
FQCN = re.compile(r"\b(community|ansible)\.([a-z0-9_]+)\.[a-z0-9_]+")


def test_every_dependency_of_the_collection_is_pinned_within_its_range() -> None:
    ranges = yaml.safe_load((REPO / "galaxy.yml").read_text())["dependencies"]
    assert set(ranges) <= set(PINS), set(ranges) - set(PINS)
    for name, requirement in ranges.items():
        # (not ansible's own meets_requirements: importing ansible here patches sys.intern for
        # the whole test session, and torch's dynamo in later tests refuses that)
        assert PINS[name] in SpecifierSet(requirement), (name, PINS[name], requirement)


def test_every_collection_the_project_names_is_pinned() -> None:
    files = [REPO / "ansible.cfg", REPO / "deploy.yml"]
    for folder in ("roles", "playbooks", "molecule"):
        files += sorted((REPO / folder).rglob("*.yml"))
    used = {f"{ns}.{name}" for f in files for ns, name in FQCN.findall(f.read_text())}
    used -= {"ansible.builtin"}
    assert "ansible.posix" in used and "community.docker" in used
    assert used <= set(PINS), used - set(PINS)


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"name": "build/collections/a-b-1.0.0.tar.gz", "type": "file", "version": "1.0.1"},
         "version '1.0.1' is not the file's 1.0.0"),
        ({"name": "a.b", "version": "1.0.0"}, "want type: file"),
        ({"name": "build/collections/a-b.tar.gz", "type": "file", "version": "1.0.0"},
         "want type: file"),
    ],
)  # fmt: skip
def test_a_pin_that_disagrees_with_its_tarball_stops(
    tmp_path: Path, entry: dict, message: str
) -> None:
    req = tmp_path / "requirements.yml"
    req.write_text(yaml.safe_dump({"collections": [entry]}))
    with pytest.raises(ic.PinError, match=message):
        ic.parse_requirements(req)
