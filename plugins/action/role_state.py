# Copyright: DLTK Deploy contributors
# Apache-2.0
"""Action plugin dltk.deploy.role_state: the control-node half of a role's fast path.

It computes the digest of the role's inputs: the role's own variables and the shared dltk_*
namespace (templated, as the role sees them), a few host facts, the collection's code (roles,
plugins, the dltk package, the image sources, playbooks) and control-node files the role reads
(`paths`, by size and mtime). Then it runs the module dltk.deploy.role_state on the host, which
compares that digest and the host's state with the record the role's last full run left there
(plugins/module_utils/dltk_role_state.py), or writes the record. `dltk_fast_path: false` makes every
check answer "run in full" without asking the host.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ansible.errors import AnsibleActionFail
from ansible.module_utils.parsing.convert_bool import boolean
from ansible.plugins.action import ActionBase

# The collection's root (plugins/action/role_state.py -> ../..) and the code a role runs.
ROOT = Path(__file__).resolve().parents[2]
CODE = ("roles", "plugins", "scripts/dltk", "images", "playbooks", "galaxy.yml")
# Facts that change what a role does on the same host.
FACTS = ("distribution", "distribution_version", "distribution_release", "architecture")
# Outputs that say what THIS run changed (empty on a converged run): never inputs, else the run
# after a change would see other inputs than the change's run recorded. The roles that read
# them run in full when they are not empty.
PER_RUN = ("dltk_model_repo_changed", "dltk_model_repo_removed", "dltk_fast_path")
# A probe's answer (`<role>_converged`, tasks_from: probe: the rolling deploy asks it before the
# role runs) is this very check's output: set in the run that recorded, absent in the next.
PROBE_SUFFIX = "_converged"


def _files_under(top: Path) -> list[Path]:
    """`top` itself, or every file under it, sorted; bytecode caches are nobody's input."""
    files = [top] if top.is_file() else sorted(p for p in top.rglob("*") if p.is_file())
    return [p for p in files if "__pycache__" not in p.parts and p.suffix != ".pyc"]


def code_digest(root: Path = ROOT, parts: Iterable[str] = CODE) -> str:
    """sha256 over the collection's code files (relative path and content; caches left out)."""
    digest = hashlib.sha256()
    for part in parts:
        for path in _files_under(root / part):
            digest.update(str(path.relative_to(root)).encode() + b"\0")
            digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def paths_digest(paths: Iterable[str]) -> list[list[Any]]:
    """(path, size, mtime) of each control-node file, every file under a directory, 'absent'."""
    out: list[list[Any]] = []
    for given in paths:
        top = Path(given)
        if not top.exists():
            out.append([given, "absent"])
            continue
        for path in _files_under(top):
            info = path.stat()
            out.append([str(path), info.st_size, info.st_mtime_ns])
    return out


def manifest_paths(manifest: str) -> list[str]:
    """The manifest and the files of its models a role reads on the control node: each model's
    ONNX file with what sits beside it under the same name (external data `<name>.onnx.data`,
    `<name>.json`) and its samples. Not their whole directories: other files there (a bench's
    log beside its models) are not the models' inputs."""
    import yaml

    path = Path(manifest)
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError):
        return [manifest]
    found: set[str] = set()
    for model in doc.get("models") or [] if isinstance(doc, dict) else []:
        if not isinstance(model, dict):
            continue
        for key in ("onnx", "samples"):
            if isinstance(model.get(key), str):
                given = (path.parent / model[key]).resolve()
                found.add(str(given))
                stem = given.name.split(".")[0]
                if key == "onnx" and given.parent.is_dir():
                    found.update(str(p) for p in given.parent.glob(f"{stem}.*") if p.is_file())
    return [manifest, *sorted(found)]


def limited(task_vars: Mapping[str, Any], role: str) -> list[str]:
    """The --tags / --skip-tags that limit this role's run: its own tags (<role>_*) and `always`.
    A role that did not run whole is not recorded; other tags (molecule's --skip-tags notest, a
    play's tags) leave it whole."""
    given = [t for t in task_vars.get("ansible_run_tags") or [] if t != "all"]
    given += list(task_vars.get("ansible_skip_tags") or [])
    return [t for t in given if t.startswith(f"{role}_") or t == "always"]


def inputs_digest(
    variables: Mapping[str, Any], facts: Mapping[str, Any], code: str, files: list[list[Any]]
) -> str:
    """'<settings>:<files>': sha256 of the variables, facts and code, then of the control-node
    files. Two halves: the record keeps the settings the check saw before the role ran (the
    role's own outputs are variables too) but the files as the role left them (a file the role
    creates on the control node, an exported model or a generated key, is there afterwards)."""
    settings = {"vars": variables, "facts": facts, "code": code}
    return f"{_sha(settings)}:{_sha(files)}"


def with_files(digest: str, files: list[list[Any]]) -> str:
    """The digest with its files half taken again."""
    return f"{digest.split(':', 1)[0]}:{_sha(files)}"


def _sha(doc: Any) -> str:
    return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _supports_check_mode = True
    _VALID_ARGS = frozenset(
        ("state", "observe", "outputs", "paths", "manifest", "facts", "fast_path", "inputs")
    )

    def _template(self, value: Any) -> Any:
        return self._templar.template(value)

    def _value(self, value: Any) -> Any:
        """A variable as the role sees it; one that cannot be templated yet (it names a register of
        a later task) counts by its text."""
        try:
            return self._template(value)
        except Exception:  # noqa: BLE001 - any templating error: the raw text stands in
            return str(value)

    def _role_vars(self, task_vars: Mapping[str, Any], prefixes: list[str]) -> dict[str, Any]:
        wanted = re.compile("^(" + "|".join(re.escape(p) for p in prefixes) + ")_")
        return {
            name: self._value(task_vars[name])
            for name in sorted(task_vars)
            if wanted.match(name) and name not in PER_RUN and not name.endswith(PROBE_SUFFIX)
        }

    @staticmethod
    def _files(args: Mapping[str, Any]) -> list[list[Any]]:
        paths = [str(p) for p in args.get("paths") or []]
        if args.get("manifest"):
            paths += manifest_paths(str(args["manifest"]))
        return paths_digest(paths)

    def _digest(self, task_vars: Mapping[str, Any], args: Mapping[str, Any], role: str) -> str:
        facts = task_vars.get("ansible_facts") or {}
        return inputs_digest(
            self._role_vars(task_vars, [role, "dltk"]),
            {name: facts.get(name) for name in (*FACTS, *(args.get("facts") or []))},
            code_digest(),
            self._files(args),
        )

    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        args = self._task.args
        state = args.get("state", "check")
        if state not in ("check", "record"):
            raise AnsibleActionFail(f"state must be check or record, not {state!r}")
        # A role included by its path is named by the path: its directory's name is the role's.
        role = (
            os.path.basename(self._task._role.get_name(include_role_fqcn=False))
            if self._task._role
            else ""
        )
        if not role:
            raise AnsibleActionFail("dltk.deploy.role_state runs inside a role")
        if state == "record":
            why, tags = "", limited(task_vars, role)
            if tags:
                why = f"not recorded: {', '.join(tags)} limited this run"
            elif not args.get("inputs"):
                why = "not recorded: the role's check did not run"
            if why:
                result.update(
                    changed=False, recorded=False, why=why, outputs={}, msg=f"{role}: {why}"
                )
                return result
        state_dir = self._template(task_vars.get("dltk_state_dir", "/var/lib/dltk"))
        record = os.path.join(str(state_dir), "roles", f"{role}.json")
        # The record keeps the settings the check saw before the role ran (the role's own outputs,
        # dltk_models_loaded, ..., are variables too) and the control-node files as they are now.
        if state == "record":
            digest = with_files(str(args["inputs"]), self._files(args))
        else:
            digest = self._digest(task_vars, args, role)
        result.update(inputs=digest, record=record)
        # fast_path: the role says (triton_verify: not triton_verify_full), else dltk_fast_path.
        if "fast_path" in args:
            fast, off = args["fast_path"], "asked to run in full"
        else:
            fast = self._template(task_vars.get("dltk_fast_path", True))
            off = "dltk_fast_path is false: the role runs in full"
        if state == "check" and not boolean(fast, strict=False):
            result.update(converged=False, changed=False, outputs={}, why=off, msg=f"{role}: {off}")
            return result
        answer = self._execute_module(
            module_name="dltk.deploy.role_state",
            module_args={
                "state": state,
                "record": record,
                "inputs": digest,
                "observe": args.get("observe") or {},
                "outputs": args.get("outputs") or {},
            },
            task_vars=task_vars,
        )
        result.update(answer)
        if "why" in result and not result.get("failed"):
            result["msg"] = f"{role}: {result['why']}"
        return result
