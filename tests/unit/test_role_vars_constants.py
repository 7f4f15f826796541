"""Every role's vars/ holds constants only (issue 12 item 5): values derived from variables, facts
or registers come from a tested filter in plugins/filter/, set once per role with set_fact
(docs/role-contracts.md, "vars/ holds constants"). A Jinja expression in a vars file is the
algorithm in the wrong place: this test names it.

Roles not converted yet are listed below with the reason; the list only shrinks (an entry whose role
holds no Jinja any more fails too, so it is removed when the role is done).
"""

from __future__ import annotations

from pathlib import Path

import yaml

ROLES = Path(__file__).resolve().parents[2] / "roles"

# Every role is converted (issue 12 item 5); a role added later that derives values in its vars/
# goes here with its reason until it is.
NOT_YET_CONVERTED: dict[str, str] = {}


def _strings(node: object, where: str):
    """(path, string) of every string in a loaded YAML document, keys included."""
    if isinstance(node, str):
        yield where, node
    elif isinstance(node, dict):
        for key, value in node.items():
            yield from _strings(key, f"{where}.{key}")
            yield from _strings(value, f"{where}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _strings(value, f"{where}[{i}]")


def jinja_in_vars(roles: Path) -> dict[str, list[str]]:
    """{role: ["vars/main.yml: <key path>", ...]} for every value of a role's vars/ files that holds
    a Jinja expression or statement (comments do not count: they are not loaded)."""
    found: dict[str, list[str]] = {}
    for path in sorted(roles.glob("*/vars/*.y*ml")):
        role = path.parts[-3]
        doc = yaml.safe_load(path.read_text())
        for where, text in _strings(doc, path.name):
            if "{{" in text or "{%" in text:
                found.setdefault(role, []).append(f"vars/{where}")
    return found


def test_vars_hold_constants_except_the_roles_not_converted_yet() -> None:
    offenders = {r: w for r, w in jinja_in_vars(ROLES).items() if r not in NOT_YET_CONVERTED}
    assert offenders == {}, (
        f"derive these in a filter (plugins/filter/) and set them once with set_fact: {offenders}"
    )


def test_the_list_of_roles_not_converted_only_names_roles_that_still_need_it() -> None:
    converted = sorted(set(NOT_YET_CONVERTED) - set(jinja_in_vars(ROLES)))
    assert converted == [], f"remove {converted} from NOT_YET_CONVERTED: their vars/ hold constants"


def test_the_roles_converted_here_stay_converted() -> None:
    done = {"nvidia_driver", "nsight_systems", "nvidia_container_toolkit", "docker_engine"}
    done |= {"apt_pinned_repo", "dltk_image", "trt_engines", "triton_model_repo", "triton_server"}
    done |= {"triton_verify"}
    assert done.isdisjoint(NOT_YET_CONVERTED)
    assert done.isdisjoint(jinja_in_vars(ROLES))


def test_a_jinja_value_is_found_and_a_comment_or_constant_is_not(tmp_path: Path) -> None:
    (tmp_path / "alpha" / "vars").mkdir(parents=True)
    (tmp_path / "alpha" / "vars" / "main.yml").write_text(
        "---\n# {{ a comment }} is not a value\n_alpha_dir: /etc/alpha\n"
        "_alpha_map: {x86_64: amd64}\n"
        '_alpha_list:\n  - plain\n  - "{{ alpha_name }}.conf"\n'
        '_alpha_when: "{% if alpha_on %}on{% endif %}"\n'
    )
    (tmp_path / "beta" / "vars").mkdir(parents=True)
    (tmp_path / "beta" / "vars" / "main.yml").write_text("---\n_beta_paths: [/a, /b]\n")
    assert jinja_in_vars(tmp_path) == {
        "alpha": ["vars/main.yml._alpha_list[1]", "vars/main.yml._alpha_when"]
    }
