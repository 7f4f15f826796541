"""`dltk mirror images` and the role registry_image against a real registry.

The registry is the project's (scripts/registry.sh: Debian's docker-registry in images/registry),
started for this module under its own name, docker network and data volume, on a free loopback
port, with basic auth (htpasswd); the docker client's credentials live in a temporary HOME /
DOCKER_CONFIG, never in the user's. Checks:
- the images the bill of materials lists for inventory/sandbox.yml are pushed, and each digest in
  the lock file is the one the registry itself answers for the tag (Docker-Content-Digest of
  /v2/<path>/manifests/<tag>) and the sha256 of the manifest it serves by that digest;
- the registry refuses an unauthenticated client (401);
- with the local registry tags removed, the role registry_image pulls the image back by digest
  and tags it as the caller's name (same image id as pushed); a second run changes nothing; a lock
  that lacks the image stops the role with the command to run;
- triton_server with dltk_registry set (its install phase) pulls its image the same way;
- --archive-dir writes `docker save` archives that `docker load` reads back, with their sha256
  in images.json (on a small inventory: the debian base only).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import socket
import subprocess
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from .support import REPO_ROOT, changed_count, require_ok, run_dltk, run_playbook

pytestmark = pytest.mark.integration

USER = "dltk-test"
MANIFEST_TYPES = (
    "application/vnd.docker.distribution.manifest.v2+json, "
    "application/vnd.oci.image.manifest.v1+json, "
    "application/vnd.docker.distribution.manifest.list.v2+json, "
    "application/vnd.oci.image.index.v1+json"
)
BASE = "dltk/debian-base:bookworm"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _docker(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["docker", *args], input=stdin, capture_output=True, text=True, timeout=600, check=False
    )


class Registry:
    def __init__(self, name: str, port: int, password: str) -> None:
        self.name, self.port, self.password = name, port, password
        self.address = f"127.0.0.1:{port}"

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "REGISTRY_NAME": self.name,
            "REGISTRY_PORT": str(self.port),
            "REGISTRY_USER": USER,
            "REGISTRY_PASSWORD": self.password,
            "REGISTRY_AUTH_DIR": f"build/registry/{self.name}",
            "REGISTRY_PURGE": "1",
        }

    def request(self, path: str, method: str = "GET", auth: bool = True) -> tuple[int, dict, bytes]:
        req = urllib.request.Request(f"http://{self.address}{path}", method=method)
        req.add_header("Accept", MANIFEST_TYPES)
        if auth:
            token = base64.b64encode(f"{USER}:{self.password}".encode()).decode()
            req.add_header("Authorization", f"Basic {token}")
        try:
            with urllib.request.urlopen(req, timeout=30) as answer:
                return answer.status, dict(answer.headers), answer.read()
        except urllib.error.HTTPError as err:
            return err.code, dict(err.headers), err.read()


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    if _docker("image", "inspect", BASE).returncode != 0:
        pytest.skip(f"{BASE} is not built here: run `make images` first")
    reg = Registry(f"dltk-test-registry-{uuid.uuid4().hex[:8]}", _free_port(), uuid.uuid4().hex)
    home = tmp_path_factory.mktemp("home")
    with pytest.MonkeyPatch.context() as mp:
        # docker CLI (DOCKER_CONFIG), the docker SDK and docker_login (HOME) keep credentials here
        mp.setenv("HOME", str(home))
        mp.setenv("DOCKER_CONFIG", str(home / ".docker"))
        script = str(REPO_ROOT / "scripts" / "registry.sh")
        try:
            up = subprocess.run(
                [script, "up"], env=reg.env(), capture_output=True, text=True, timeout=600
            )
            require_ok(up)
            login = _docker(
                "login", "-u", USER, "--password-stdin", reg.address, stdin=reg.password
            )
            require_ok(login)
            yield reg
        finally:
            subprocess.run([script, "down"], env=reg.env(), capture_output=True, timeout=120)
            # this registry's tags and digest references (an image pulled by digest has no tag)
            listed = _docker(
                "image", "ls", "--digests", "--format", "{{.Repository}} {{.Tag}} {{.Digest}}"
            )
            for line in listed.stdout.splitlines():
                repo, tag, digest = line.split()
                if repo.startswith(reg.address + "/"):
                    _docker("rmi", f"{repo}:{tag}" if tag != "<none>" else f"{repo}@{digest}")
            shutil.rmtree(REPO_ROOT / "build" / "registry" / reg.name, ignore_errors=True)


@pytest.fixture(scope="module")
def lock(registry: Registry, tmp_path_factory: pytest.TempPathFactory) -> dict:
    path = tmp_path_factory.mktemp("lock") / "images.lock.json"
    done = run_dltk(
        "mirror", "images", "--registry", registry.address, "-i", "inventory/sandbox.yml",
        "--lock", str(path), timeout=900,
    )  # fmt: skip
    require_ok(done)
    return json.loads(path.read_text())


def test_the_registry_refuses_an_unauthenticated_client(registry: Registry) -> None:
    status, headers, _ = registry.request("/v2/", auth=False)
    assert status == 401
    assert headers.get("Www-Authenticate", "").startswith("Basic")
    assert registry.request("/v2/")[0] == 200


def test_lock_digests_are_the_registry_s_own(registry: Registry, lock: dict) -> None:
    plan = run_dltk("mirror", "plan", "-i", "inventory/sandbox.yml", "--json", "-")
    require_ok(plan)
    carried = {i["name"] for i in json.loads(plan.stdout)["images"] if i["carry"]}
    assert set(lock["images"]) == carried  # the bill's images, no more, no fewer
    assert lock["registry"] == registry.address
    for name, entry in lock["images"].items():
        path, _, digest = entry.partition("@")
        tag = lock["details"][name]["tag"].rpartition(":")[2]
        status, headers, _ = registry.request(f"/v2/{path}/manifests/{tag}", method="HEAD")
        assert status == 200, (name, status)
        assert headers["Docker-Content-Digest"] == digest
        status, _, body = registry.request(f"/v2/{path}/manifests/{digest}")
        assert status == 200
        assert "sha256:" + hashlib.sha256(body).hexdigest() == digest


PULL_PLAY = """\
- name: Pull by digest
  hosts: all
  gather_facts: false
  roles:
    - role: registry_image
"""


def test_role_pulls_by_digest_and_tags_the_caller_s_name(
    registry: Registry, lock: dict, tmp_path: Path
) -> None:
    pushed = lock["details"][BASE]
    # Only the registry's own tags go: the image stays under its project name.
    for ref in (pushed["tag"], pushed["pull"]):
        _docker("rmi", ref)
    assert _docker("image", "inspect", pushed["pull"]).returncode != 0
    name = f"dltk-test-pulled-{uuid.uuid4().hex[:8]}/base:pulled"
    test_lock = tmp_path / "lock.json"
    test_lock.write_text(json.dumps({"images": {name: lock["images"][BASE]}}))
    variables = {
        "registry_image_request": {
            "caller": "test",
            "name": name,
            "registry": registry.address,
            "lock": str(test_lock),
            "username": USER,
            "password": registry.password,
        }
    }
    try:
        first = run_playbook(tmp_path, PULL_PLAY, variables)
        require_ok(first)
        assert registry.password not in first.stdout + first.stderr
        assert changed_count(first.stdout) >= 2  # pulled and tagged (and logged in)
        pulled = _docker("image", "inspect", "-f", "{{.Id}}", pushed["pull"])
        require_ok(pulled)
        assert pulled.stdout.strip() == pushed["id"]
        tagged = _docker("image", "inspect", "-f", "{{.Id}}", name)
        assert tagged.stdout.strip() == pushed["id"]
        second = run_playbook(tmp_path, PULL_PLAY, variables)
        require_ok(second)
        assert changed_count(second.stdout) == 0, second.stdout[-3000:]
    finally:
        _docker("rmi", name)


SERVER_PLAY = """\
- name: triton_server's install phase only
  hosts: all
  gather_facts: false
  roles:
    - role: triton_server
"""


def test_triton_server_pulls_its_image_by_digest_when_dltk_registry_is_set(
    registry: Registry, lock: dict, tmp_path: Path
) -> None:
    """The real role, its install phase (--tags triton_server_install: the fast-path probe, then
    the image): dltk_registry and the credentials reach registry_image through triton_server."""
    pushed = lock["details"][BASE]
    name = f"dltk-test-server-{uuid.uuid4().hex[:8]}/triton:pulled"
    test_lock = tmp_path / "lock.json"
    test_lock.write_text(json.dumps({"images": {name: lock["images"][BASE]}}))
    tag = f"dltk-test-server-{uuid.uuid4().hex[:8]}"
    variables = {
        "dltk_registry": registry.address,
        "dltk_registry_lock": str(test_lock),
        "dltk_registry_username": USER,
        "dltk_registry_password": registry.password,
        "dltk_triton_image": name,
        "dltk_model_repo_dir": str(tmp_path / "model_repo"),
        "dltk_secrets_dir": str(tmp_path / "secrets"),
        "triton_server_container_name": tag,
        "triton_server_network": tag,
    }
    try:
        first = run_playbook(tmp_path, SERVER_PLAY, variables, "--tags", "triton_server_install")
        require_ok(first)
        assert registry.password not in first.stdout + first.stderr
        assert "Pull the image by digest" in first.stdout
        tagged = _docker("image", "inspect", "-f", "{{.Id}}", name)
        require_ok(tagged)
        assert tagged.stdout.strip() == pushed["id"]
        second = run_playbook(tmp_path, SERVER_PLAY, variables, "--tags", "triton_server_install")
        require_ok(second)
        assert changed_count(second.stdout) == 0, second.stdout[-3000:]
    finally:
        _docker("rmi", name)


def test_role_stops_when_the_lock_lacks_the_image(
    registry: Registry, lock: dict, tmp_path: Path
) -> None:
    other = tmp_path / "other.lock.json"
    other.write_text(json.dumps({"images": {"dltk/other:1": lock["images"][BASE]}}))
    name = f"dltk-test-absent-{uuid.uuid4().hex[:8]}/base:never"
    variables = {
        "registry_image_request": {
            "caller": "test",
            "name": name,
            "registry": registry.address,
            "lock": str(other),
        }
    }
    done = run_playbook(tmp_path, PULL_PLAY, variables)
    assert done.returncode != 0
    assert "does not list it with a sha256 digest" in done.stdout
    assert "dltk mirror images --registry HOST:PORT" in done.stdout
    assert _docker("image", "inspect", name).returncode != 0  # nothing tagged


def test_archives_load_back(tmp_path: Path) -> None:
    if _docker("image", "inspect", BASE).returncode != 0:
        pytest.skip(f"{BASE} is not built here: run `make images` first")
    inventory = tmp_path / "small.yml"
    # One host whose Triton image is the debian base: the bill then holds that one small image.
    inventory.write_text(
        "all:\n  hosts:\n    small-1:\n      docker_engine_manage: false\n"
        f"      dltk_triton_image: {BASE}\n"
        "      triton_model_repo_runtimes: [python-onnxruntime]\n"
    )
    out = tmp_path / "archives"
    done = run_dltk("mirror", "images", "-i", str(inventory), "--archive-dir", str(out))
    require_ok(done)
    manifest = json.loads((out / "images.json").read_text())
    assert list(manifest["archives"]) == [BASE]
    entry = manifest["archives"][BASE]
    archive = out / entry["file"]
    assert entry["sha256"] == "sha256:" + hashlib.sha256(archive.read_bytes()).hexdigest()
    loaded = _docker("load", "-i", str(archive))
    require_ok(loaded)
    assert BASE in loaded.stdout
    image_id = _docker("image", "inspect", "-f", "{{.Id}}", BASE).stdout.strip()
    assert image_id == entry["id"]
