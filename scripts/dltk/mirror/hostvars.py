"""The variables deploy.yml's roles would see on each host of an inventory, resolved by Ansible.

`dltk mirror plan` needs per host what Ansible itself would compute: inventory variables with
their precedence (group_vars/all < a group < host_vars), the roles' defaults under them, and
templated values ("{{ dltk_ngc_release }}", the roles' filters such as
dltk.deploy.nvidia_driver_packages). Rather than re-implementing precedence and rendering with
ansible's Python API (its Templar and variable manager are internal and changed shape in
ansible-core 2.19), this module asks ansible-playbook: it writes a throwaway role whose defaults
are the merged defaults of deploy.yml's roles (the lowest precedence, as in a real run) and whose
one task is a `debug` of the expressions in PLAN_VARS, runs it on every host of the inventory with
gather_facts off and the JSON stdout callback, and reads the answers. `debug` runs on the control
node: no host is contacted (an unreachable GPU server still gets its plan). Host facts are not
known without contacting the host: the distribution comes from facts Ansible already holds (a fact
cache), else from `distribution` (the CLI's --distribution).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from dltk.errors import DltkError

# deploy.yml's roles whose defaults the plan needs, dependencies first (dltk_ngc: the release
# file; dltk: the shared dltk_* settings). Later files win on a shared name, as in a play.
DEFAULTS_ROLES = (
    "dltk_ngc",
    "dltk",
    "apt_pinned_repo",
    "nvidia_driver",
    "docker_engine",
    "nvidia_container_toolkit",
    "nsight_systems",
    "dltk_image",
    "trt_engines",
    "triton_model_repo",
    "triton_server",
    "triton_verify",
)

_DISTRIBUTION = "ansible_facts['distribution'] | default(__dltk_plan_distribution)"

# What the plan reads per host: name -> Jinja expression, rendered by Ansible on each host.
PLAN_VARS: dict[str, str] = {
    "release": "dltk_ngc_release | default('') | string",
    "distribution": _DISTRIBUTION,
    "triton_image": "triton_server_image",
    "toolkit_image": "dltk_image_name ~ ':' ~ dltk_image_tag",
    "server_toolkit_image": "triton_server_toolkit_image",
    "verify_image": "triton_verify_image",
    "image_variant": "dltk_image_variant",
    "image_base": "dltk_image_base",
    "wheels_archive": "dltk_image_wheels_archive",
    "trt_image": "trt_engines_image",
    "trt_gpu": "trt_engines_gpu",
    "runtimes": "triton_model_repo_runtimes",
    "gpus": "dltk_gpus | string",
    "manifest": "triton_model_repo_manifest",
    "driver_force": "nvidia_driver_force_install | bool",
    "driver_version": "nvidia_driver_version | string",
    "driver_branch": "nvidia_driver_branch | string",
    "driver_source": (
        "{'source': nvidia_driver_source, 'distribution': " + _DISTRIBUTION + ", "
        "'branch': nvidia_driver_branch, 'version': nvidia_driver_version, "
        "'persistenced_service': nvidia_driver_persistenced_service} "
        "| dltk.deploy.nvidia_driver_names"
    ),
    "driver": (
        "{'source': nvidia_driver_source, 'distribution': " + _DISTRIBUTION + ", "
        "'branch': nvidia_driver_branch, 'kernel_modules': nvidia_driver_kernel_modules, "
        "'packages': nvidia_driver_packages, 'extra_packages': nvidia_driver_extra_packages} "
        "| dltk.deploy.nvidia_driver_packages"
    ),
    "docker_manage": "docker_engine_manage | bool",
    "docker_source": "docker_engine_source",
    "docker_package": "docker_engine_package",
    "docker_package_version": "docker_engine_package_version | string",
    "docker_python_packages": "docker_engine_python_packages",
    "docker_upstream_packages": "docker_engine_upstream_packages",
    "docker_upstream_pinned": "docker_engine_upstream_pinned_packages",
    "docker_upstream_version": "docker_engine_upstream_version | string",
    "toolkit_without_gpu": "nvidia_container_toolkit_install_without_gpu | bool",
    "toolkit_packages": "nvidia_container_toolkit_packages",
    "toolkit_version": "nvidia_container_toolkit_version | string",
    "nsight_force": "nsight_systems_force_install | bool",
    "nsight": (
        "{'source': nsight_systems_source, 'distribution': " + _DISTRIBUTION + ", "
        "'package': nsight_systems_package, 'version': nsight_systems_version} "
        "| dltk.deploy.nsight_systems_choice"
    ),
    "apt_python_packages": "apt_pinned_repo_python_packages",
}

Runner = Callable[..., subprocess.CompletedProcess]


def find_project(given: Path | None = None) -> Path:
    """The checkout whose roles/ and ansible.cfg the plan uses: given, else the current
    directory, else the checkout this package runs from (scripts/dltk/mirror/ -> three up)."""
    candidates = [given] if given else [Path.cwd(), Path(__file__).resolve().parents[3]]
    for candidate in candidates:
        if (candidate / "roles" / "dltk_ngc").is_dir():
            return candidate.resolve()
    where = ", ".join(str(c) for c in candidates)
    raise DltkError(f"no DLTK Deploy checkout (roles/dltk_ngc) at {where}: pass --project")


def merged_defaults(project: Path) -> dict[str, Any]:
    """deploy.yml's roles' defaults in one mapping; dltk_project_dir is the project itself (the
    role's own default derives it from role_path, which would name the throwaway role)."""
    merged: dict[str, Any] = {}
    for role in DEFAULTS_ROLES:
        defaults = project / "roles" / role / "defaults"
        path = defaults / "main.json" if role == "dltk_ngc" else defaults / "main.yml"
        try:
            text = path.read_text()
        except OSError as exc:
            raise DltkError(f"cannot read the role defaults {path}: {exc.strerror}") from exc
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
        merged.update(data or {})
    merged["dltk_project_dir"] = str(project)
    return merged


def plan_playbook(role_dir: Path) -> list[dict[str, Any]]:
    return [
        {
            "name": "Resolve what dltk mirror plan needs (no host is contacted)",
            "hosts": "all",
            "gather_facts": False,
            "roles": [{"role": str(role_dir)}],
        }
    ]


def plan_task() -> list[dict[str, Any]]:
    return [
        {
            "name": "Print the resolved variables",
            "ansible.builtin.debug": {
                "msg": {name: "{{ " + expr + " }}" for name, expr in PLAN_VARS.items()}
            },
        }
    ]


def parse_answers(stdout: str) -> dict[str, dict[str, Any]]:
    """{host: resolved variables} from the JSON callback's output; a host whose variables could
    not be rendered (an undefined variable, a bad value) is one error naming it."""
    try:
        document = json.loads(stdout[stdout.find("{") :])
    except ValueError as exc:
        raise DltkError(f"ansible-playbook printed no JSON result: {stdout[-300:]!r}") from exc
    hosts: dict[str, dict[str, Any]] = {}
    for play in document.get("plays", []):
        for task in play.get("tasks", []):
            for host, result in task.get("hosts", {}).items():
                if result.get("failed") or result.get("unreachable"):
                    message = " ".join(str(result.get("msg", "failed")).split())
                    raise DltkError(f"host {host}: its variables do not resolve: {message}")
                hosts[host] = dict(result["msg"])
    return hosts


def resolve_hosts(
    inventory: Path,
    project: Path,
    distribution: str = "Debian",
    run: Runner = subprocess.run,
    ansible_playbook: str = "",
) -> dict[str, dict[str, Any]]:
    """{host: PLAN_VARS resolved by Ansible} for every host of the inventory (ansible-playbook:
    the one next to this Python, as in the project's venv, else the first on PATH)."""
    beside = Path(sys.executable).parent / "ansible-playbook"
    ansible_playbook = ansible_playbook or (str(beside) if beside.exists() else "ansible-playbook")
    if not inventory.exists():
        raise DltkError(f"inventory {inventory} does not exist")
    with tempfile.TemporaryDirectory(prefix="dltk-mirror-plan-") as tmp:
        role = Path(tmp) / "dltk_mirror_plan"
        (role / "defaults").mkdir(parents=True)
        (role / "tasks").mkdir()
        (role / "defaults" / "main.yml").write_text(yaml.safe_dump(merged_defaults(project)))
        (role / "tasks" / "main.yml").write_text(yaml.safe_dump(plan_task(), width=10**6))
        playbook = Path(tmp) / "plan.yml"
        playbook.write_text(yaml.safe_dump(plan_playbook(role)))
        env = {
            **os.environ,
            "ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json",
            # the project's ansible.cfg enables profile_tasks, which would print into the JSON
            "ANSIBLE_CALLBACKS_ENABLED": "ansible.posix.json",
            "ANSIBLE_RETRY_FILES_ENABLED": "false",
        }
        if (project / "ansible.cfg").is_file():  # collections_path: the dltk.deploy filters
            env["ANSIBLE_CONFIG"] = str(project / "ansible.cfg")
        argv = [
            ansible_playbook,
            "-i",
            str(inventory.resolve()),
            "-e",
            json.dumps({"__dltk_plan_distribution": distribution}),
            str(playbook),
        ]
        try:
            done = run(argv, cwd=project, env=env, capture_output=True, text=True, check=False)
        except FileNotFoundError as exc:
            raise DltkError(f"{ansible_playbook} is not installed (make venv)") from exc
    if not done.stdout.strip():
        last = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise DltkError(f"ansible-playbook could not plan inventory {inventory}: {last}")
    hosts = parse_answers(done.stdout)
    if not hosts:
        # ansible-playbook only warns about an inventory it cannot parse: say so
        unparsed = [ln for ln in done.stderr.splitlines() if "Unable to parse" in ln]
        why = f" ({' '.join(unparsed[0].split())})" if unparsed else ""
        raise DltkError(f"inventory {inventory} lists no host{why}")
    return hosts
