#!/usr/bin/python
# Copyright: DLTK Deploy contributors
# Apache-2.0
"""Ansible module: pick the exact version of a package an apt source offers for a wanted version.

Runs `apt-cache madison PACKAGE` on the host (read-only; also in check mode), keeps the binary
package lines, and picks, newest first as apt lists them, the first version that matches:
exact (the string itself), prefix (`2022.4.*`: the newest starting with `2022.4.`) or upstream
(`5:28.5.1`: that upstream version with any Debian revision, `5:28.5.1-1~debian.12~bookworm`).
When none matches it fails with one line naming what was asked, where, and what is offered.
The logic is the pure functions below (tests/unit/test_apt_pinned_version.py); `main` is the
thin Ansible shell around them. Format of the madison lines: apt-cache(8),
https://manpages.debian.org/bookworm/apt/apt-cache.8.en.html ("madison").
"""

from __future__ import annotations

DOCUMENTATION = r"""
module: apt_pinned_version
short_description: Pick the exact version apt offers for a wanted version
description:
  - Reads C(apt-cache madison) for one package and returns the newest offered version that matches.
  - Fails, with one actionable line listing the offered versions, when none matches.
  - Read-only; runs in check mode too.
options:
  package:
    description: Package whose offered versions decide.
    type: str
    required: true
  version:
    description: Wanted version (exact, a prefix ending in C(*), or upstream; see O(match)).
    type: str
    required: true
  match:
    description:
      - How O(version) is compared. C(auto) is C(prefix) when it ends in C(*), else C(exact).
      - C(upstream) accepts the version itself or it followed by a Debian revision (C(-...)).
    type: str
    choices: [auto, exact, prefix, upstream]
    default: auto
  variable:
    description: The setting the user changes to fix a miss, named in the error.
    type: str
    default: version
  where:
    description: The source that was asked (URL, suite), named in the error.
    type: str
    default: the configured apt sources
  fail_msg:
    description:
      - Error text instead of the standard one; C({package}), C({version}), C({variable}),
        C({where}) and C({offered}) (comma-separated, or C(nothing)) are filled in.
    type: str
  madison:
    description: C(apt-cache madison) output to read instead of running it (tests).
    type: str
author: DLTK Deploy
"""

EXAMPLES = r"""
- name: Pick the docker-ce version of 5:28.5.1
  dltk.deploy.apt_pinned_version:
    package: docker-ce
    version: "5:28.5.1"
    match: upstream
    variable: docker_engine_upstream_version
    where: https://download.docker.com/linux/debian (suite bookworm)
"""

RETURN = r"""
version:
  description: The exact offered version picked.
  returned: success
  type: str
  sample: 5:28.5.1-1~debian.12~bookworm
offered:
  description: Every version offered for the package, newest first.
  returned: always
  type: list
  elements: str
"""

STANDARD_MSG = (
    "{variable}={version} is not in {where}; it offers {package} {offered}. "
    "Set {variable} to one of them. Nothing was installed."
)


def parse_offered(madison: str, package: str) -> list[str]:
    """Versions of `package` in `apt-cache madison` output, binary packages only, in apt's order."""
    offered: list[str] = []
    for line in madison.splitlines():
        parts = [part.strip() for part in line.split("|")]
        if len(parts) != 3 or parts[0] != package or not parts[2].endswith("Packages"):
            continue
        if parts[1] and parts[1] not in offered:
            offered.append(parts[1])
    return offered


def resolve_match(version: str, match: str) -> str:
    """The comparison `auto` stands for: prefix when the version ends in `*`, else exact."""
    if match != "auto":
        return match
    return "prefix" if version.endswith("*") else "exact"


def matches(candidate: str, version: str, match: str) -> bool:
    """Whether an offered `candidate` is the wanted `version` under `match`."""
    match = resolve_match(version, match)
    if match == "prefix":
        return candidate.startswith(version.rstrip("*"))
    if match == "upstream":
        return candidate == version or candidate.startswith(version + "-")
    return candidate == version


def pick(offered: list[str], version: str, match: str) -> str:
    """The first (newest) offered version matching; empty when none does."""
    return next((candidate for candidate in offered if matches(candidate, version, match)), "")


def miss_message(
    package: str, version: str, variable: str, where: str, offered: list[str], fail_msg: str = ""
) -> str:
    """One line: what was asked, where, what is offered, what to change."""
    listing = ", ".join(offered[:8]) + (", ..." if len(offered) > 8 else "") or "nothing"
    return (fail_msg or STANDARD_MSG).format(
        package=package, version=version, variable=variable, where=where, offered=listing
    )


def main() -> None:
    from ansible.module_utils.basic import AnsibleModule

    module = AnsibleModule(
        argument_spec={
            "package": {"type": "str", "required": True},
            "version": {"type": "str", "required": True},
            "match": {
                "type": "str",
                "default": "auto",
                "choices": ["auto", "exact", "prefix", "upstream"],
            },
            "variable": {"type": "str", "default": "version"},
            "where": {"type": "str", "default": "the configured apt sources"},
            "fail_msg": {"type": "str"},
            "madison": {"type": "str"},
        },
        supports_check_mode=True,
    )
    params = module.params
    madison = params["madison"]
    if madison is None:
        apt_cache = module.get_bin_path("apt-cache", required=True)
        rc, madison, err = module.run_command([apt_cache, "madison", params["package"]])
        if rc != 0:
            module.fail_json(msg=f"apt-cache madison {params['package']} failed: {err.strip()}")
    offered = parse_offered(madison, params["package"])
    version = pick(offered, params["version"], params["match"])
    if not version:
        module.fail_json(
            msg=miss_message(
                params["package"],
                params["version"],
                params["variable"],
                params["where"],
                offered,
                params["fail_msg"] or "",
            ),
            offered=offered,
        )
    module.exit_json(changed=False, version=version, offered=offered)


if __name__ == "__main__":
    main()
