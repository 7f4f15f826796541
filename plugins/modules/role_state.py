#!/usr/bin/python
# Copyright: DLTK Deploy contributors
# Apache-2.0
"""Ansible module: record what a role left on the host, or say whether the host still holds it.

The logic is plugins/module_utils/dltk_role_state.py (stdlib only, unit-tested in
tests/unit/test_role_state.py); the action plugin of the same name (plugins/action/role_state.py)
computes the digest of the role's inputs on the control node and runs this module on the host.
"""

from __future__ import annotations

DOCUMENTATION = r"""
module: role_state
short_description: Skip a role whose inputs and host state are what its last full run left
description:
  - With O(state=check), reads the record the role's last full run left at O(record) and observes
    the host as O(observe) says; returns C(converged=true) (and the recorded C(outputs)) when the
    inputs digest and every observation are the recorded ones. Read-only; runs in check mode.
  - With O(state=record), observes the host and writes the record (only when it differs; not in
    check mode). Never reports a change (the record is the roles' bookkeeping, not the host's state).
  - Use through the action plugin of the same name, which computes O(inputs) on the control node
    from the role's variables (C(<role>_*) and C(dltk_*)), a few facts, the collection's code and
    control-node files, and writes the record at C(<dltk_state_dir>/roles/<role>.json). The action
    also takes C(paths) (control-node files or directories, by size and mtime), C(manifest) (a
    model manifest, with its models' files), C(facts) (more fact names) and C(fast_path) (the
    role's own say, instead of C(dltk_fast_path)); with C(state=record), C(inputs) is the check's.
options:
  state:
    description: Check the host against the record, or write the record.
    type: str
    choices: [check, record]
    default: check
  record:
    description: The record's path on the host.
    type: path
    required: true
  inputs:
    description: Digest of the role's inputs (the action plugin computes it).
    type: str
    required: true
  observe:
    description: >-
      What to observe: files (checksum, mode, owner), trees (listing with sizes and mtimes),
      packages (Debian versions), services (active, enabled), containers (ID, image, running,
      start time), images (ID), networks (ID), groups (members); each a list of names.
    type: dict
    default: {}
  outputs:
    description: The facts the role published; a converged check returns them.
    type: dict
    default: {}
  docker_socket:
    description: The docker engine's API socket (containers, images, networks).
    type: path
    default: /var/run/docker.sock
author: DLTK Deploy
"""

EXAMPLES = r"""
- name: Skip the role when nothing changed
  dltk.deploy.role_state:
    observe: {files: [/etc/docker/daemon.json], packages: [docker.io], services: [docker]}
  register: __state
"""

RETURN = r"""
converged:
  description: Whether the inputs and the host are what the recorded run left (state=check).
  returned: always
  type: bool
why:
  description: Why the role runs in full, or since when nothing changed.
  returned: always
  type: str
recorded:
  description: Whether the record was written (state=record).
  returned: state=record
  type: bool
outputs:
  description: The recorded outputs (state=check and converged), else {}.
  returned: always
  type: dict
observed:
  description: What the check observed on the host, a mapping of kind to name to observation.
  returned: state=check
  type: dict
"""


def main() -> None:
    import datetime
    import json
    import os

    from ansible.module_utils.basic import AnsibleModule
    from ansible_collections.dltk.deploy.plugins.module_utils import dltk_role_state as rs

    module = AnsibleModule(
        argument_spec={
            "state": {"type": "str", "choices": ["check", "record"], "default": "check"},
            "record": {"type": "path", "required": True},
            "inputs": {"type": "str", "required": True},
            "observe": {"type": "dict", "default": {}},
            "outputs": {"type": "dict", "default": {}},
            "docker_socket": {"type": "path", "default": "/var/run/docker.sock"},
        },
        supports_check_mode=True,
    )
    p = module.params
    try:
        seen = rs.observe(p["observe"], api=rs.EngineAPI(p["docker_socket"]))
    except ValueError as exc:
        module.fail_json(msg=str(exc))
    old = rs.read_record(p["record"])
    if p["state"] == "check":
        converged, why = rs.compare(old, p["inputs"], seen)
        module.exit_json(
            changed=False,
            converged=converged,
            why=why,
            outputs=(old or {}).get("outputs", {}) if converged else {},
            observed=seen,
        )
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    new = {"inputs": p["inputs"], "observed": seen, "outputs": p["outputs"], "at": now}
    # The record is the roles' own bookkeeping, like a fact cache: writing it is not a change of
    # the host (a converged host stays changed=0 whether or not the record was current).
    if rs.same_record(old, new):
        module.exit_json(changed=False, recorded=False, why="the record was current", outputs={})
    if not module.check_mode:
        try:
            os.makedirs(os.path.dirname(p["record"]), mode=0o755, exist_ok=True)
            tmp = p["record"] + ".tmp"
            with open(tmp, "w", encoding="utf-8") as handle:
                handle.write(json.dumps(new, indent=2, sort_keys=True) + "\n")
            os.replace(tmp, p["record"])
        except OSError as exc:
            module.fail_json(msg=f"cannot write the role's record {p['record']}: {exc}")
    module.exit_json(changed=False, recorded=not module.check_mode, why="recorded", outputs={})


if __name__ == "__main__":
    main()
