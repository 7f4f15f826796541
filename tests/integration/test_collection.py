"""The roles as the installable collection dltk.deploy (issue 12, item 1), used from outside
the repository.

`ansible-galaxy collection build` makes the tarball from galaxy.yml into a tmp directory,
`ansible-galaxy collection install --offline` puts it into an EMPTY collections path, and
ansible-playbook runs from a directory outside the checkout with an empty ansible.cfg and an
empty roles path, so nothing of the checkout can stand in for the installed collection (the
pinned community.docker/general and ansible.posix come from the venv, as on any control node
that ran `make venv`):
- `--syntax-check` of a play that uses every role by FQCN, and of the collection's playbooks;
- the role dltk.deploy.nvidia_gpu_facts in check mode on localhost (connection local). Chosen
  because it is read-only by design (sysfs and nvidia-smi, supports_check_mode) and exercises
  what the collection must carry: a role, its module by FQCN and the module_utils symlinked to
  scripts/dltk/gpu_facts.py. Its answer must equal gather() of the dltk package on this machine.
  Then nvidia_driver's detect tasks (read-only too: setup, the same facts, set_fact, debug),
  which include nvidia_gpu_facts by its short name from inside the installed collection.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import yaml

from dltk.gpu_facts import gather

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
VERSION = yaml.safe_load((REPO / "galaxy.yml").read_text())["version"]
ROLE_TASK = "Read the NVIDIA GPU facts (PCI bus, NVSwitches, nvidia-smi)"
END_TASK = "End nvidia_gpu_facts, this run read them with the same settings"
ROLES = [p.name for p in sorted((REPO / "roles").iterdir()) if (p / "tasks/main.yml").is_file()]

FACTS_PLAY = """\
- name: GPU facts through the installed collection
  hosts: localhost
  gather_facts: false
  tasks:
    - name: The role
      ansible.builtin.include_role:
        name: dltk.deploy.nvidia_gpu_facts
    # a collection role that includes another (nvidia_gpu_facts) by its short name
    - name: nvidia_driver's detection
      ansible.builtin.include_role:
        name: dltk.deploy.nvidia_driver
        tasks_from: detect
"""


def run(cmd: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    out = subprocess.run(
        cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=300, check=False
    )
    assert out.returncode == 0, f"{cmd}\n{out.stdout[-4000:]}\n{out.stderr[-3000:]}"
    return out


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """(the tarball, the environment of a control node with only the installed collection)."""
    base = tmp_path_factory.mktemp("collection")
    dist, colpath, work, roles = base / "dist", base / "collections", base / "work", base / "roles"
    for d in (dist, colpath, work, roles):
        d.mkdir()
    (work / "ansible.cfg").write_text("[defaults]\n")
    env = {
        **os.environ,
        "ANSIBLE_CONFIG": str(work / "ansible.cfg"),
        "ANSIBLE_COLLECTIONS_PATH": str(colpath),
        "ANSIBLE_ROLES_PATH": str(roles),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_LOCALHOST_WARNING": "false",
        "ANSIBLE_INVENTORY_UNPARSED_WARNING": "false",
    }
    run([str(BIN / "ansible-galaxy"), "collection", "build", str(REPO), "--output-path", str(dist)],
        env, work)  # fmt: skip
    tarball = dist / f"dltk-deploy-{VERSION}.tar.gz"
    assert tarball.is_file(), sorted(dist.iterdir())
    assert list(colpath.iterdir()) == []
    run([str(BIN / "ansible-galaxy"), "collection", "install", "--offline", str(tarball),
         "-p", str(colpath)], env, work)  # fmt: skip
    return tarball, env


def test_the_tarball_is_the_collection_without_the_checkout(
    installed: tuple[Path, dict[str, str]],
) -> None:
    tarball, _ = installed
    with tarfile.open(tarball) as tar:
        members = {m.name: m for m in tar.getmembers()}
    for path in ["galaxy.yml", "meta/runtime.yml", "playbooks/serve.yml", "scripts/dltk/cli.py"]:
        assert path in members or path == "galaxy.yml" and "MANIFEST.json" in members, path
    for role in ROLES:
        assert f"roles/{role}/tasks/main.yml" in members, role
    plugins = [
        "modules/nvidia_gpu_facts.py",
        "modules/docker_daemon_json.py",
        "modules/apt_pinned_version.py",
        "module_utils/daemon_json.py",
        "filter/image_record.py",
        "filter/model_dirs.py",
        "modules/role_state.py",
        "module_utils/dltk_role_state.py",
        "action/role_state.py",
    ]
    for plugin in plugins:
        assert f"plugins/{plugin}" in members, plugin
    link = members["plugins/module_utils/dltk_gpu_facts.py"]
    assert link.issym() and link.linkname == "../../scripts/dltk/gpu_facts.py"
    top = {name.split("/")[0] for name in members}
    assert not top & {"tests", "molecule", "build", ".venv", "collections", "inventory", ".git"}
    assert "scripts/ensure-docker.sh" not in members


def test_only_the_installed_copy_is_found(installed: tuple[Path, dict[str, str]]) -> None:
    _, env = installed
    out = run([str(BIN / "ansible-galaxy"), "collection", "list", "dltk.deploy", "--format=json"],
              env, Path(env["ANSIBLE_COLLECTIONS_PATH"]))  # fmt: skip
    found = {path: names for path, names in json.loads(out.stdout).items() if names}
    colpath = env["ANSIBLE_COLLECTIONS_PATH"]
    assert found == {f"{colpath}/ansible_collections": {"dltk.deploy": {"version": VERSION}}}


def test_a_play_of_every_role_and_the_collection_playbooks_pass_syntax_check(
    installed: tuple[Path, dict[str, str]],
) -> None:
    _, env = installed
    work = Path(env["ANSIBLE_CONFIG"]).parent
    play = [{"name": "Every role of dltk.deploy", "hosts": "all", "gather_facts": False,
             "roles": [{"role": f"dltk.deploy.{role}"} for role in ROLES]}]  # fmt: skip
    (work / "site.yml").write_text(yaml.safe_dump(play, sort_keys=False))
    shipped = sorted((REPO / "playbooks").glob("*.yml"))
    books = ["site.yml"] + [f"dltk.deploy.{p.stem}" for p in shipped]
    for book in books:
        out = run([str(BIN / "ansible-playbook"), "--syntax-check", "-i", "localhost,", book],
                  env, work)  # fmt: skip
        assert "ERROR" not in out.stderr, (book, out.stderr)


def test_nvidia_gpu_facts_runs_in_check_mode_from_the_installed_collection(
    installed: tuple[Path, dict[str, str]],
) -> None:
    _, env = installed
    work = Path(env["ANSIBLE_CONFIG"]).parent
    (work / "facts.yml").write_text(FACTS_PLAY)
    out = run(
        [str(BIN / "ansible-playbook"), "--check", "-i", "localhost,", "-c", "local",
         "-e", f"ansible_python_interpreter={sys.executable}", "facts.yml"],
        {**env, "ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.json"}, work,
    )  # fmt: skip
    report = json.loads(out.stdout)
    assert report["stats"]["localhost"]["failures"] == 0
    assert report["stats"]["localhost"]["changed"] == 0
    played = report["plays"][0]["tasks"]
    # An ended role's meta task has no host result.
    tasks = {t["task"]["name"]: t["hosts"]["localhost"] for t in played if t["hosts"]}
    # the role's task, named after the role as the collection knows it: read by the first
    # include, reused by nvidia_driver's detection (same settings: once per run), where the role
    # ends in its meta task before the read
    role = "dltk.deploy.nvidia_gpu_facts : "
    reads = [t["hosts"]["localhost"] for t in played if t["task"]["name"] == role + ROLE_TASK]
    ends = [t["hosts"] for t in played if t["task"]["name"] == role + END_TASK]
    assert len(reads) == 1
    assert len(ends) == 2 and ends[0]["localhost"].get("skipped") is True and ends[1] == {}
    fact = reads[0]
    assert fact["changed"] is False
    answer = gather("/sys/bus/pci/devices", driver=True)
    assert fact["ansible_facts"]["nvidia_gpu_facts"] == answer
    detect = tasks["dltk.deploy.nvidia_driver : Show the GPUs found"]
    found = f"{len(answer['pci_gpus'])} NVIDIA GPU(s)" if answer["pci_gpus"] else "no NVIDIA GPU"
    assert found in detect["msg"], detect["msg"]
