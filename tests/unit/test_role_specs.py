"""A role's meta/argument_specs.yml is the one home of its variables: defaults/main.yml and the
README's variables table are generated from it (scripts/role_specs.py, `make role-docs`) and these
tests fail when either drifts from the spec."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
TOOL = ROOT / "scripts" / "role_specs.py"
_spec = importlib.util.spec_from_file_location("role_specs", TOOL)
role_specs = importlib.util.module_from_spec(_spec)
sys.modules["role_specs"] = role_specs
_spec.loader.exec_module(role_specs)

SPEC = """\
---
argument_specs:
  main:
    short_description: A fixture role.
    options:
      demo_port:
        type: int
        default: 8000
        description: Port the demo listens on.
      demo_image:
        type: str
        default: "registry/demo:{{ demo_release }}-py3"
        description:
          - Image of the release.
          - Pinned because the newer one needs a newer driver.
      demo_names:
        type: list
        elements: str
        default: [a, b]
        description: Names | with a pipe.
      demo_required:
        type: str
        required: true
        description: Must be set.
  extra:
    short_description: A second entry point.
    options:
      demo_port:
        type: int
        default: 8000
        description: Port the demo listens on.
      demo_only_extra:
        type: bool
        default: false
        description: Only the extra entry point reads it.
"""


def make_role(tmp_path: Path, spec: str = SPEC) -> Path:
    role = tmp_path / "roles" / "demo"
    (role / "meta").mkdir(parents=True)
    (role / "meta" / "argument_specs.yml").write_text(spec)
    (role / "README.md").write_text(
        f"# demo\n\nWhat it does.\n\n{role_specs.BEGIN}\n{role_specs.END}\n\nMore prose.\n"
    )
    return role


def test_the_real_roles_match_their_specs() -> None:
    """Fails when a role's defaults or README table differ from meta/argument_specs.yml."""
    run = subprocess.run(
        [sys.executable, str(TOOL), "--check"], capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stdout + run.stderr
    specs = list((ROOT / "roles").glob("*/meta/argument_specs.yml"))
    assert len(specs) >= 11
    assert f"{len(specs)} roles: defaults and README tables match" in run.stdout


def test_generated_defaults_hold_every_default_with_its_description(tmp_path: Path) -> None:
    role = make_role(tmp_path)
    assert role_specs.main(["--roles-dir", str(tmp_path / "roles")]) == 0
    text = (role / "defaults" / "main.yml").read_text()
    assert yaml.safe_load(text) == {
        "demo_port": 8000,
        "demo_image": "registry/demo:{{ demo_release }}-py3",
        "demo_names": ["a", "b"],
        "demo_only_extra": False,
    }
    # The reason a default is what it is travels with it, as a comment above the variable.
    assert "# Image of the release.\n# Pinned because the newer one needs a newer driver.\n" in text
    assert 'demo_image: "registry/demo:{{ demo_release }}-py3"\n' in text
    readme = (role / "README.md").read_text()
    assert readme.startswith("# demo\n\nWhat it does.\n\n" + role_specs.BEGIN)
    assert readme.endswith(role_specs.END + "\n\nMore prose.\n")
    assert "| `demo_port` | int | `8000` | Port the demo listens on. |" in readme
    assert "| `demo_required` | str | required | Must be set. |" in readme
    assert "Names \\| with a pipe." in readme  # a pipe would split the table cell
    assert "Entry point `extra` (`tasks_from: extra`): A second entry point." in readme
    assert "It also reads `demo_port` (above)." in readme
    assert "| `demo_only_extra` | bool | `false` |" in readme
    # A second run writes nothing and the check passes.
    assert role_specs.write_role(role) == []
    assert role_specs.check_role(role) == []


def test_a_drift_in_defaults_is_named_by_role_variable_and_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    role = make_role(tmp_path)
    role_specs.write_role(role)
    defaults = role / "defaults" / "main.yml"
    # What happened to *_stale_repo_files: someone edits the defaults and not the spec.
    defaults.write_text(
        defaults.read_text().replace("demo_names: [a, b]", "demo_names: [a, b, c]")
        + "demo_undocumented: 1\n"
    )
    code = role_specs.main(["--roles-dir", str(tmp_path / "roles"), "--check"])
    out = capsys.readouterr().out
    assert code == 1
    assert "demo: defaults/main.yml: demo_names is ['a', 'b', 'c'], the spec says ['a', 'b']" in out
    assert "demo: defaults/main.yml: demo_undocumented is not in meta/argument_specs.yml" in out
    assert "run `make role-docs`" in out


def test_a_changed_spec_default_flags_defaults_and_readme(tmp_path: Path) -> None:
    role = make_role(tmp_path)
    role_specs.write_role(role)
    spec = role / "meta" / "argument_specs.yml"
    spec.write_text(SPEC.replace("default: 8000", "default: 9000"))
    problems = role_specs.check_role(role)
    assert problems == [
        "demo: defaults/main.yml: demo_port is 8000, the spec says 9000",
        "demo: README.md: variables table differs from the spec (demo_port)",
    ]


def test_comment_only_and_missing_block_drifts(tmp_path: Path) -> None:
    role = make_role(tmp_path)
    role_specs.write_role(role)
    defaults = role / "defaults" / "main.yml"
    defaults.write_text(defaults.read_text().replace("# Port the demo listens on.\n", ""))
    (role / "README.md").write_text("# demo\n\n| variable | default |\n")
    assert role_specs.check_role(role) == [
        "demo: defaults/main.yml: comments or layout differ from the generated text",
        f"demo: README.md: no generated variables table ({role_specs.BEGIN} ... {role_specs.END})",
    ]


def test_entry_points_that_disagree_on_a_default_are_a_drift(tmp_path: Path) -> None:
    role = make_role(
        tmp_path,
        SPEC.replace(
            "      demo_port:\n        type: int\n        default: 8000\n"
            "        description: Port the demo listens on.\n      demo_only_extra",
            "      demo_port:\n        type: int\n        default: 8080\n"
            "        description: Port the demo listens on.\n      demo_only_extra",
        ),
    )
    problems = role_specs.check_role(role)
    assert problems[0] == (
        "demo: meta/argument_specs.yml: demo_port: default in entry point 'extra' (8080) "
        "differs from 'main' (8000)"
    )


def test_long_jinja_defaults_fold_and_load_back_unchanged(tmp_path: Path) -> None:
    long_expr = "{{ a | default('x') }}" + " ~ '/y'" * 30
    role = make_role(
        tmp_path,
        textwrap.dedent(
            f"""\
            ---
            argument_specs:
              main:
                options:
                  demo_path:
                    type: str
                    default: "{long_expr}"
                    description: A long expression.
                  demo_tolerance:
                    type: dict
                    default: {{fp32: {{atol: 1.0e-4, rtol: 0.0}}}}
                    description: Nested dict.
            """
        ),
    )
    role_specs.write_role(role)
    text = (role / "defaults" / "main.yml").read_text()
    assert yaml.safe_load(text) == {
        "demo_path": long_expr,
        "demo_tolerance": {"fp32": {"atol": 1.0e-4, "rtol": 0.0}},
    }
    assert "demo_path: >-\n" in text
    assert max(len(line) for line in text.splitlines()) <= 130  # yamllint's limit here
