"""Role contracts (docs/role-contracts.md): roles exchange values only through the shared `dltk_*`
namespace of the role `dltk` (roles/dltk), or through the interface of a role they include.

Checked over the real roles/ and, to show each rule can fail, over small fixture roles:
- no role reads another role's variables (`<role>_*`, `_<role>_*`, `__<role>_*`), except the public
  names (parameters and documented results) of a role it runs with include_role/import_role or
  depends on (meta/main.yml, directly or through another dependency: dltk_ngc, the release file);
- no role notifies a handler it does not define;
- `role_path` reaches outside a role (`role_path ~ '/../..'`) only in dltk;
- every shared name a role reads is declared in dltk's argument spec, and the role lists
  dltk as a dependency;
- an output of the namespace is set only by the role its spec names ("Output of <role>").
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
ROLE_DIRS = ("tasks", "handlers", "defaults", "vars", "templates", "meta")
# A setting of the inventory, not of a role: the hosts a playbook targets.
INVENTORY_SETTINGS = {"dltk_hosts"}
SHARED_ROLE = "dltk"
COMMENT = re.compile(r"^[ \t]*#[^\n]*|\{#.*?#\}", re.MULTILINE | re.DOTALL)


def role_names(roles: Path) -> list[str]:
    return sorted(p.name for p in roles.iterdir() if (p / "meta" / "main.yml").is_file())


def role_texts(roles: Path, role: str) -> dict[Path, str]:
    """The role's YAML and template files, comments removed."""
    files = sorted(
        f for d in ROLE_DIRS if (roles / role / d).is_dir() for f in (roles / role / d).rglob("*")
    )
    return {f: COMMENT.sub("", f.read_text()) for f in files if f.is_file()}


def included_roles(texts: dict[Path, str]) -> set[str]:
    found: set[str] = set()
    for text in texts.values():
        found |= set(re.findall(r"(?:include_role|import_role):\s*\n\s*name:\s*([a-z0-9_]+)", text))
    return found


def direct_dependencies(roles: Path, role: str) -> set[str]:
    """The roles ROLE's meta/main.yml lists as dependencies."""
    meta = yaml.safe_load((roles / role / "meta" / "main.yml").read_text()) or {}
    return {d["role"] if isinstance(d, dict) else d for d in meta.get("dependencies") or []}


def dependencies(roles: Path, role: str) -> set[str]:
    """The roles ROLE depends on (meta/main.yml), directly or through another dependency."""
    found: set[str] = set()
    todo = [role]
    while todo:
        for name in direct_dependencies(roles, todo.pop()) - found:
            found.add(name)
            todo.append(name)
    return found


def owner(name: str, roles: list[str]) -> str | None:
    """The role whose prefix a variable name carries (the longest match), or None for the shared
    namespace: the shared role's public names (`dltk_*` not claimed by a longer role name)."""
    bare = name.lstrip("_")
    matches = [r for r in roles if bare.startswith(r + "_")]
    found = max(matches, key=len) if matches else None
    return None if found == SHARED_ROLE and not name.startswith("_") else found


def foreign_reads(roles: Path) -> list[str]:
    names = role_names(roles)
    problems = []
    for role in names:
        texts = role_texts(roles, role)
        includes = included_roles(texts) | dependencies(roles, role)
        for path, text in texts.items():
            for match in re.finditer(r"(?<![\w./-])_{0,2}[a-z][a-z0-9]*(?:_[a-z0-9]+)+", text):
                name = match.group(0)
                other = owner(name, names)
                if other is None or other == role:
                    continue
                if other in includes and not name.startswith("_"):
                    continue  # the public interface of a role this role runs or depends on
                line = text.count("\n", 0, match.start()) + 1
                problems.append(f"{path.relative_to(roles)}:{line}: {role} reads {other}'s {name}")
    return problems


def foreign_notifies(roles: Path) -> list[str]:
    problems = []
    for role in role_names(roles):
        texts = role_texts(roles, role)
        handlers = "\n".join(
            t for p, t in texts.items() if p.parts[-2] == "handlers" or "handlers" in p.parts
        )
        own = set(re.findall(r"^\s*(?:- )?(?:name|listen):\s*(.+?)\s*$", handlers, re.MULTILINE))
        for path, text in texts.items():
            for topic in re.findall(r"^\s*notify:\s*(.+?)\s*$", text, re.MULTILINE):
                if topic not in own:
                    problems.append(
                        f"{path.relative_to(roles)}: {role} notifies '{topic}', not its own handler"
                    )
    return problems


def outside_role_path(roles: Path) -> list[str]:
    return [
        f"{path.relative_to(roles)}: role_path reaches outside the role"
        for role in role_names(roles)
        if role != SHARED_ROLE
        for path, text in role_texts(roles, role).items()
        if re.search(r"role_path[^\n]*\.\.", text)
    ]


def shared_spec(roles: Path) -> dict[str, dict]:
    spec = yaml.safe_load((roles / SHARED_ROLE / "meta" / "argument_specs.yml").read_text())
    return spec["argument_specs"]["main"]["options"]


def undeclared_shared(roles: Path) -> list[str]:
    """Declared: in the shared role's argument spec (its defaults file is generated from it)."""
    names = role_names(roles)
    declared = set(shared_spec(roles)) | INVENTORY_SETTINGS
    problems = []
    for role in names:
        texts = role_texts(roles, role)
        used = {
            m
            for text in texts.values()
            for m in re.findall(r"(?<![\w./-])dltk_[a-z0-9_]+", text)
            if owner(m, names) is None and m not in names
        }
        for name in sorted(used - declared):
            problems.append(f"{role} reads {name}, which dltk's argument spec does not declare")
        dep_names = direct_dependencies(roles, role)
        if role != SHARED_ROLE and used - INVENTORY_SETTINGS and SHARED_ROLE not in dep_names:
            read = sorted(used - INVENTORY_SETTINGS)
            problems.append(f"{role} reads {read} without depending on {SHARED_ROLE}")
    return problems


def misplaced_outputs(roles: Path) -> list[str]:
    """A shared output is set only by the role(s) its description names: "Output of <a> and <b>"."""
    spec = shared_spec(roles)
    publishers = {
        name: set(re.findall(r"[a-z][a-z0-9_]+", m.group(1)))
        for name, option in spec.items()
        if (
            m := re.match(r"Output of ([a-z_, ]+(?: and [a-z_]+)?):", option.get("description", ""))
        )
    }
    problems = []
    for role in role_names(roles):
        for path, text in role_texts(roles, role).items():
            for name in re.findall(r"^\s+(dltk_[a-z0-9_]+):", text, re.MULTILINE):
                if (
                    name in publishers
                    and role not in publishers[name]
                    and path.parts[-2] == "tasks"
                ):
                    where = path.relative_to(roles)
                    problems.append(
                        f"{where}: {role} sets {name} (output of {sorted(publishers[name])})"
                    )
    return problems


CHECKS = (foreign_reads, foreign_notifies, outside_role_path, undeclared_shared, misplaced_outputs)


@pytest.mark.parametrize("check", CHECKS, ids=[c.__name__ for c in CHECKS])
def test_the_real_roles_keep_their_contracts(check) -> None:
    assert check(ROOT / "roles") == []


def test_every_role_is_seen() -> None:
    names = role_names(ROOT / "roles")
    assert {"dltk", "triton_server", "triton_verify", "trt_engines", "dltk_profile"} <= set(names)


# --- fixture roles: each rule catches its breach ---


def make_role(roles: Path, name: str, files: dict[str, str], deps: tuple[str, ...] = ()) -> None:
    meta = {"galaxy_info": {"role_name": name}, "dependencies": [{"role": d} for d in deps]}
    (roles / name / "meta").mkdir(parents=True)
    (roles / name / "meta" / "main.yml").write_text(yaml.safe_dump(meta))
    for rel, text in files.items():
        (roles / name / rel).parent.mkdir(parents=True, exist_ok=True)
        (roles / name / rel).write_text(text)


@pytest.fixture
def roles(tmp_path: Path) -> Path:
    spec = {
        "argument_specs": {
            "main": {
                "options": {
                    "dltk_project_dir": {"type": "path", "description": "Project."},
                    "dltk_manifest": {"type": "path", "description": "Manifest."},
                    "dltk_gpu_count": {"type": "int", "description": "Output of alpha: GPUs."},
                }
            }
        }
    }
    make_role(
        tmp_path,
        SHARED_ROLE,
        {
            "meta/argument_specs.yml": yaml.safe_dump(spec),
            "defaults/main.yml": 'dltk_project_dir: "{{ role_path }}/../.."\n',
        },
    )
    make_role(
        tmp_path,
        "alpha",
        {
            "defaults/main.yml": "alpha_dir: /x\nalpha_result: 1\n",
            "handlers/main.yml": "- name: Alpha changed\n  debug: {}\n",
            "tasks/main.yml": "- set_fact:\n    dltk_gpu_count: 1\n",
        },
        deps=(SHARED_ROLE,),
    )
    return tmp_path


def test_fixture_roles_pass(roles: Path) -> None:
    make_role(
        roles,
        "beta",
        {
            "tasks/main.yml": "- include_role:\n    name: alpha\n  vars:\n    alpha_dir: /y\n"
            "- debug: msg={{ alpha_result }} {{ dltk_manifest }}\n"
        },
        deps=(SHARED_ROLE,),
    )
    assert [problem for check in CHECKS for problem in check(roles)] == []


def test_reading_another_roles_variable_is_caught(roles: Path) -> None:
    make_role(
        roles, "beta", {"defaults/main.yml": "beta_dir: \"{{ alpha_dir | default('/x') }}\"\n"}
    )
    assert foreign_reads(roles) == ["beta/defaults/main.yml:1: beta reads alpha's alpha_dir"]


def test_an_included_roles_private_register_is_caught(roles: Path) -> None:
    make_role(
        roles,
        "beta",
        {"tasks/main.yml": "- include_role:\n    name: alpha\n- debug: var=__alpha_repo\n"},
    )
    assert foreign_reads(roles) == ["beta/tasks/main.yml:3: beta reads alpha's __alpha_repo"]


def test_notifying_another_roles_handler_is_caught(roles: Path) -> None:
    make_role(
        roles, "beta", {"tasks/main.yml": "- copy: {src: a, dest: b}\n  notify: Alpha changed\n"}
    )
    assert foreign_notifies(roles) == [
        "beta/tasks/main.yml: beta notifies 'Alpha changed', not its own handler"
    ]


def test_role_path_outside_the_role_is_caught(roles: Path) -> None:
    make_role(roles, "beta", {"defaults/main.yml": 'beta_dir: "{{ role_path }}/../../reports"\n'})
    assert outside_role_path(roles) == [
        "beta/defaults/main.yml: role_path reaches outside the role"
    ]


def test_an_undeclared_shared_name_and_a_missing_dependency_are_caught(roles: Path) -> None:
    make_role(
        roles,
        "beta",
        {"defaults/main.yml": 'beta_dir: "{{ dltk_stage }}"\nbeta_m: "{{ dltk_manifest }}"\n'},
    )
    assert undeclared_shared(roles) == [
        "beta reads dltk_stage, which dltk's argument spec does not declare",
        "beta reads ['dltk_manifest', 'dltk_stage'] without depending on dltk",
    ]


def test_an_output_set_by_the_wrong_role_is_caught(roles: Path) -> None:
    make_role(
        roles,
        "beta",
        {"tasks/main.yml": "- set_fact:\n    dltk_gpu_count: 2\n"},
        deps=(SHARED_ROLE,),
    )
    assert misplaced_outputs(roles) == [
        "beta/tasks/main.yml: beta sets dltk_gpu_count (output of ['alpha'])"
    ]
