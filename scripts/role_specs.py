#!/usr/bin/env python3
"""Role argument specs are the one home of a role's variables: this tool writes each role's
defaults/main.yml and the variables table of its README.md from meta/argument_specs.yml, and
with --check names every role, variable and file that drifted from the spec (exit 1).

    scripts/role_specs.py [--roles-dir roles] [--check] [ROLE ...]     (make role-docs)

Why the defaults file is generated rather than dropped: Ansible does not apply an argument spec's
`default`; it only documents it. Ansible's role guide ("Role argument validation", Specification
format, https://docs.ansible.com/ansible/latest/playbook_guide/playbooks_reuse_roles.html) asks
that the spec's default match the code and says the actual default always comes from the role's
defaults/main.yml; https://github.com/ansible/ansible/issues/77159 records that role specs,
unlike module specs, do not apply their defaults. Seen in ansible-core 2.19's code: the task a
spec adds (Role._prepend_validation_task) runs the validate_argument_spec action, which validates
the variables the play already has and returns errors, and sets no variable. So the spec is the
contract, defaults/main.yml is what the role runs with, and this tool keeps the second a pure
function of the first.

What is generated, per role:
- defaults/main.yml: every option that has a `default` (all entry points; `main` first), each with
  its description as a comment. Jinja-expression defaults stay strings. Options without a default
  (required ones, or ones the role computes) are not in it.
- README.md: the block between BEGIN and END markers (below): one table per entry point (name,
  type, default, description); a non-main entry point lists only the options `main` lacks.
An option listed by several entry points must have the same type and default in each.
Stdlib + PyYAML only, so the check runs anywhere the unit tests run.
"""

from __future__ import annotations

import argparse
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
BEGIN = "<!-- BEGIN role variables (generated from meta/argument_specs.yml: make role-docs) -->"
END = "<!-- END role variables -->"
HEADER = (
    "---\n"
    "# Generated from meta/argument_specs.yml by scripts/role_specs.py (make role-docs): edit the\n"
    "# spec, not this file (tests/unit/test_role_specs.py fails when the two differ).\n"
)
COMMENT_WIDTH = 100
FOLD_OVER = 80  # string defaults longer than this are written as folded (>-) scalars


@dataclass(frozen=True)
class Option:
    name: str
    spec: dict
    entry: str

    @property
    def has_default(self) -> bool:
        return "default" in self.spec

    @property
    def description(self) -> list[str]:
        text = self.spec.get("description", "")
        paragraphs = text if isinstance(text, list) else [text]
        return [" ".join(str(p).split()) for p in paragraphs if str(p).strip()]


def load_specs(role: Path) -> dict[str, dict]:
    """The role's entry points (`main` first) from meta/argument_specs.yml."""
    data = yaml.safe_load((role / "meta" / "argument_specs.yml").read_text()) or {}
    specs = data.get("argument_specs") or {}
    return dict(sorted(specs.items(), key=lambda item: item[0] != "main"))


def collect_options(specs: dict[str, dict]) -> tuple[dict[str, Option], list[str]]:
    """Every option once (its first entry point wins the order), and the conflicts: an option
    whose type or default differs between entry points."""
    options: dict[str, Option] = {}
    conflicts: list[str] = []
    for entry, spec in specs.items():
        for name, opt in (spec.get("options") or {}).items():
            opt = opt or {}
            if name not in options:
                options[name] = Option(name, opt, entry)
                continue
            first = options[name]
            for key in ("type", "default"):
                if first.spec.get(key) != opt.get(key):
                    conflicts.append(
                        f"{name}: {key} in entry point {entry!r} ({opt.get(key)!r}) differs "
                        f"from {first.entry!r} ({first.spec.get(key)!r})"
                    )
    return options, conflicts


def expected_defaults(options: dict[str, Option]) -> dict:
    return {o.name: o.spec["default"] for o in options.values() if o.has_default}


class _Dumper(yaml.SafeDumper):
    """Long strings folded; block sequences indented under their key (yamllint's default)."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        return super().increase_indent(flow, False)


def _represent_str(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    style = None
    if len(data) > FOLD_OVER and "\n" not in data and data == data.strip():
        style = ">"
    elif '"' not in data and "\\" not in data and "\n" not in data:
        # Double quotes where quoting helps a reader: Jinja (its '' arguments stay readable),
        # the empty string, and values a reader might take for numbers ("5:28.5.1", "1.17.8-1").
        if (
            not data
            or "{{" in data
            or "'" in data
            or (":" in data and "://" not in data)
            or data[0].isdigit()
        ):
            style = '"'
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_Dumper.add_representer(str, _represent_str)


def _flow_leaves(node: yaml.Node, top: bool = False) -> None:
    """Block style for the top mapping and any collection holding collections or too long for one
    line; flow style for short collections of scalars (`[a, b]`, `{atol: 1, rtol: 0}`)."""
    if isinstance(node, yaml.ScalarNode):
        return
    pairs = node.value if isinstance(node, yaml.MappingNode) else [(None, v) for v in node.value]
    children = [v for _, v in pairs]
    scalars = [n for pair in pairs for n in pair if n is not None]
    short = sum(len(str(n.value)) + 2 for n in scalars if isinstance(n, yaml.ScalarNode)) < 80
    node.flow_style = not top and short and all(isinstance(c, yaml.ScalarNode) for c in children)
    for child in children:
        _flow_leaves(child)


def dump_value(name: str, value: object) -> str:
    node = _Dumper(None).represent_data({name: value})
    _flow_leaves(node, top=True)
    return yaml.serialize(node, Dumper=_Dumper, width=88, allow_unicode=True)


def render_defaults(options: dict[str, Option]) -> str:
    parts = [HEADER]
    for option in options.values():
        if not option.has_default:
            continue
        for paragraph in option.description:
            for line in textwrap.wrap(paragraph, COMMENT_WIDTH - 2, break_long_words=False):
                parts.append(f"# {line}\n")
        parts.append(dump_value(option.name, option.spec["default"]))
    text = "".join(parts)
    # The generated text must load back to exactly the spec's defaults.
    assert (yaml.safe_load(text) or {}) == expected_defaults(options), "dump does not round-trip"
    return text


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _type(spec: dict) -> str:
    kind = spec.get("type", "str")
    if "elements" in spec:
        kind = f"{kind} of {spec['elements']}"
    if "choices" in spec:
        kind += ": " + ", ".join(f"`{c}`" if c != "" else '`""`' for c in spec["choices"])
    return kind


def _default(spec: dict) -> str:
    if "default" not in spec:
        return "required" if spec.get("required") else "(none)"
    value = spec["default"]
    if isinstance(value, str):
        shown = value if value else '""'
    else:
        shown = yaml.safe_dump(value, default_flow_style=True, width=10**6).strip()
        shown = shown.removesuffix("\n...").strip()
    return f"`{shown}`"


def render_table(specs: dict[str, dict]) -> str:
    options, _ = collect_options(specs)
    lines = [BEGIN]
    for entry, spec in specs.items():
        names = [n for n, o in options.items() if o.entry == entry]
        shared = [n for n in (spec.get("options") or {}) if options[n].entry != entry]
        if entry != "main":
            about = spec.get("short_description", "")
            lines += ["", f"Entry point `{entry}` (`tasks_from: {entry}`): {about}"]
            if shared:
                lines.append("It also reads " + ", ".join(f"`{n}`" for n in shared) + " (above).")
        if not names:
            continue
        lines += ["", "| variable | type | default | description |", "| --- | --- | --- | --- |"]
        for name in names:
            opt = options[name]
            cells = [_type(opt.spec), _default(opt.spec), " ".join(opt.description)]
            lines.append(f"| `{name}` | " + " | ".join(_cell(c) for c in cells) + " |")
    lines.append(END)
    return "\n".join(lines)


def replace_block(readme: str, block: str) -> str | None:
    """README text with the generated block replaced; None when the markers are missing."""
    start, end = readme.find(BEGIN), readme.find(END)
    if start < 0 or end < start:
        return None
    return readme[:start] + block + readme[end + len(END) :]


def _rows(block: str) -> dict[str, str]:
    rows = {}
    for line in block.splitlines():
        if line.startswith("| `"):
            rows[line.split("`")[1]] = line
    return rows


def check_role(role: Path) -> list[str]:
    """Every way the role's defaults and README drifted from its spec, one line each."""
    name = role.name
    specs = load_specs(role)
    options, conflicts = collect_options(specs)
    problems = [f"{name}: meta/argument_specs.yml: {c}" for c in conflicts]
    if "main" not in specs:
        problems.append(f"{name}: meta/argument_specs.yml: no `main` entry point")
    defaults_path = role / "defaults" / "main.yml"
    want = expected_defaults(options)
    text = defaults_path.read_text() if defaults_path.exists() else ""
    have = (yaml.safe_load(text) if text else None) or {}
    where = f"{name}: defaults/main.yml"
    for var in want:
        if var not in have:
            problems.append(f"{where}: {var} is missing (the spec's default is {want[var]!r})")
        elif have[var] != want[var]:
            problems.append(f"{where}: {var} is {have[var]!r}, the spec says {want[var]!r}")
    for var in have:
        if var not in want:
            why = "has no default in" if var in options else "is not in"
            problems.append(f"{where}: {var} {why} meta/argument_specs.yml")
    if have == want and text != render_defaults(options):
        problems.append(f"{where}: comments or layout differ from the generated text")
    readme_path = role / "README.md"
    readme = readme_path.read_text() if readme_path.exists() else ""
    block = render_table(specs)
    current = replace_block(readme, block)
    if current is None:
        problems.append(f"{name}: README.md: no generated variables table ({BEGIN} ... {END})")
    elif current != readme:
        old = readme[readme.find(BEGIN) : readme.find(END) + len(END)]
        old_rows, new_rows = _rows(old), _rows(block)
        changed = [v for v in new_rows if old_rows.get(v) != new_rows[v]]
        changed += [v for v in old_rows if v not in new_rows]
        detail = ", ".join(changed) if changed else "text around the rows"
        problems.append(f"{name}: README.md: variables table differs from the spec ({detail})")
    return problems


def write_role(role: Path) -> list[str]:
    """Regenerate the role's defaults and README table; the files it changed."""
    specs = load_specs(role)
    options, conflicts = collect_options(specs)
    if conflicts:
        raise SystemExit(f"{role.name}: meta/argument_specs.yml: " + "; ".join(conflicts))
    changed = []
    defaults_path = role / "defaults" / "main.yml"
    text = render_defaults(options)
    if not defaults_path.exists() or defaults_path.read_text() != text:
        defaults_path.parent.mkdir(parents=True, exist_ok=True)
        defaults_path.write_text(text)
        changed.append(str(defaults_path))
    readme_path = role / "README.md"
    readme = readme_path.read_text() if readme_path.exists() else f"# {role.name}\n"
    new = replace_block(readme, render_table(specs))
    if new is None:
        new = readme.rstrip("\n") + "\n\n" + render_table(specs) + "\n"
    if new != readme:
        readme_path.write_text(new)
        changed.append(str(readme_path))
    return changed


def roles_in(roles_dir: Path, names: list[str]) -> list[Path]:
    found = sorted(p.parent.parent for p in roles_dir.glob("*/meta/argument_specs.yml"))
    if names:
        found = [p for p in found if p.name in names]
        missing = set(names) - {p.name for p in found}
        if missing:
            raise SystemExit(f"no meta/argument_specs.yml for: {', '.join(sorted(missing))}")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("roles", nargs="*", help="role names (default: every role with a spec)")
    parser.add_argument("--roles-dir", type=Path, default=ROOT / "roles")
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 on drift")
    args = parser.parse_args(argv)
    roles = roles_in(args.roles_dir, args.roles)
    if args.check:
        problems = [p for role in roles for p in check_role(role)]
        for problem in problems:
            print(problem)
        if problems:
            print(f"{len(problems)} drift(s) from meta/argument_specs.yml: run `make role-docs`")
            return 1
        print(f"{len(roles)} roles: defaults and README tables match their argument specs")
        return 0
    for role in roles:
        for path in write_role(role):
            print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
