#!/usr/bin/python
# Copyright: DLTK Deploy contributors
# Apache-2.0
"""Ansible module: merge keys into the docker engine's daemon.json, write only on a difference.

The merge itself is plugins/module_utils/daemon_json.py of this collection (standard library
only), which scripts/ensure-docker.sh also runs as a script: one copy of the logic. This file
is the thin Ansible shell around it (arguments, check mode, diff, the error as fail_json).
"""

from __future__ import annotations

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.dltk.deploy.plugins.module_utils.daemon_json import (
    DaemonJsonError,
    update,
)

DOCUMENTATION = r"""
module: docker_daemon_json
short_description: Merge keys into the docker engine's daemon.json
description:
  - Reads daemon.json (a missing or empty file is an empty object), merges O(settings) into it
    recursively (nested maps keep their other keys, other values are replaced), drops the
    top-level keys whose merged value equals the one in O(remove_if), and writes the file only
    when the merged content differs. Equal content in another layout is left alone.
  - A file that is not a JSON object fails with one error naming it; nothing is changed.
  - Supports check mode and diff mode. Does not restart the engine (the caller's handler does).
options:
  path:
    description: The engine's configuration file.
    type: path
    default: /etc/docker/daemon.json
  settings:
    description: Keys to merge.
    type: dict
    required: true
  remove_if:
    description: Top-level keys dropped when their merged value equals the given one.
    type: dict
    default: {}
  backup:
    description: Keep the old file next to it (C(PATH.PID.DATE@TIME~)) before a write.
    type: bool
    default: true
  host:
    description: Host name shown in the error (the role passes inventory_hostname).
    type: str
    default: ""
author: DLTK Deploy
"""

EXAMPLES = r"""
- name: Register the nvidia runtime
  dltk.deploy.docker_daemon_json:
    settings: {runtimes: {nvidia: {path: nvidia-container-runtime, args: []}}}
    remove_if: {default-runtime: nvidia}
    host: "{{ inventory_hostname }}"
"""

RETURN = r"""
daemon_json:
  description: The content daemon.json has after the run (would have, in check mode).
  returned: success
  type: dict
backup_file:
  description: Where the old file was kept; empty when nothing was written or it did not exist.
  returned: success
  type: str
"""

ARGUMENT_SPEC = {
    "path": {"type": "path", "default": "/etc/docker/daemon.json"},
    "settings": {"type": "dict", "required": True},
    "remove_if": {"type": "dict", "default": {}},
    "backup": {"type": "bool", "default": True},
    "host": {"type": "str", "default": ""},
}


def main() -> None:
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    params = module.params
    try:
        result = update(
            params["path"],
            params["settings"],
            remove_if=params["remove_if"],
            check=module.check_mode,
            backup=params["backup"],
            host=params["host"],
        )
    except DaemonJsonError as exc:
        module.fail_json(msg=str(exc))
    except OSError as exc:
        module.fail_json(msg=f"cannot write {params['path']}: {exc}")
    module.exit_json(
        changed=result["changed"],
        path=params["path"],
        daemon_json=result["after"],
        backup_file=result["backup_file"],
        diff={
            "before": result["before_text"],
            "after": result["after_text"],
            "before_header": params["path"],
            "after_header": params["path"],
        },
    )


if __name__ == "__main__":
    main()
