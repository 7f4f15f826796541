"""`dltk mirror images`: the bill's images into a registry (lock file of digests) or archives.

The docker engine is replaced by FakeDocker, a TEST DOUBLE that keeps images in a dict and answers
`image inspect`, `tag`, `push` (a digest it derives from the pushed name, printed the way docker
prints the registry's answer) and `save` (writes a small file). It is not a docker engine: the
integration test tests/integration/test_mirror_images.py pushes to a real registry.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import pytest

from dltk.errors import DltkError
from dltk.mirror import apt_mirror, hostvars
from dltk.mirror import images as mi
from dltk.release import CPU_TRITON, DEFAULT_NGC_RELEASE, TOOLKIT_TAG

TRITON_CPU = f"dltk/triton-cpu:{CPU_TRITON['tritonserver']}"
NGC_TRITON = f"nvcr.io/nvidia/tritonserver:{DEFAULT_NGC_RELEASE}-py3"
NGC_TRT = f"nvcr.io/nvidia/tensorrt:{DEFAULT_NGC_RELEASE}-py3"
BASE = "dltk/debian-base:bookworm"
TOOLKIT = f"dltk/toolkit:{TOOLKIT_TAG}"
DIGEST = "sha256:" + "ab" * 32


def _done(
    argv: list[str], rc: int = 0, out: str = "", err: str = ""
) -> subprocess.CompletedProcess:
    return subprocess.CompletedProcess(["docker", *argv], rc, out, err)


class FakeDocker:
    """TEST DOUBLE of the docker CLI on a local engine (not an engine): `images` maps a name to
    an image id; `push` answers a digest derived from the pushed name; every call is recorded."""

    def __init__(self, images: dict[str, str], push_error: str = "") -> None:
        self.images = dict(images)
        self.calls: list[list[str]] = []
        self.push_error = push_error

    @staticmethod
    def digest_for(target: str) -> str:
        return "sha256:" + hashlib.sha256(target.encode()).hexdigest()

    def __call__(self, argv: list[str]) -> subprocess.CompletedProcess:
        self.calls.append(argv)
        if argv[:2] == ["image", "inspect"]:
            name = argv[-1]
            if name not in self.images:
                return _done(argv, 1, err=f"Error: No such image: {name}")
            info = {"Id": self.images[name], "Size": 1000 + len(name), "RepoDigests": []}
            return _done(argv, out=json.dumps(info))
        if argv[0] == "tag":
            if argv[1] not in self.images:
                return _done(argv, 1, err=f"Error response from daemon: No such image: {argv[1]}")
            self.images[argv[2]] = self.images[argv[1]]
            return _done(argv)
        if argv[0] == "push":
            target = argv[1]
            if self.push_error:
                return _done(argv, 1, err=self.push_error)
            tag = target.rpartition(":")[2]
            out = (
                f"The push refers to repository [{target.rpartition(':')[0]}]\n"
                "5f70bf18a086: Pushed\n"
                f"{tag}: digest: {self.digest_for(target)} size: 1570\n"
            )
            return _done(argv, out=out)
        if argv[0] == "save":
            Path(argv[2]).write_bytes(f"archive of {argv[3]}".encode())
            return _done(argv)
        raise AssertionError(f"FakeDocker does not know {argv}")


def _hv(triton: str, gpu: bool = False) -> dict[str, object]:
    """A host's resolved variables as hostvars.resolve_hosts returns them (the image keys)."""
    return {
        "release": DEFAULT_NGC_RELEASE,
        "triton_image": triton,
        "image_base": BASE,
        "toolkit_image": TOOLKIT,
        "server_toolkit_image": TOOLKIT,
        "verify_image": TOOLKIT,
        "image_variant": "gpu" if gpu else "cpu",
        "trt_image": NGC_TRT,
        "trt_gpu": "present" if gpu else "absent",
        "runtimes": ["tensorrt"] if gpu else ["python-onnxruntime"],
        "gpus": "all" if gpu else "",
    }


@pytest.mark.parametrize(
    ("ref", "parsed"),
    [
        (TRITON_CPU, ("", "dltk/triton-cpu", CPU_TRITON["tritonserver"], "")),
        (NGC_TRITON, ("nvcr.io", "nvidia/tritonserver", f"{DEFAULT_NGC_RELEASE}-py3", "")),
        ("localhost/app", ("localhost", "app", "", "")),
        ("127.0.0.1:5000/a/b:1", ("127.0.0.1:5000", "a/b", "1", "")),
        (f"reg.internal:5000/a@{DIGEST}", ("reg.internal:5000", "a", "", DIGEST)),
        ("debian", ("", "debian", "", "")),
    ],
)
def test_parse_ref_splits_like_docker(ref: str, parsed: tuple[str, str, str, str]) -> None:
    assert mi.parse_ref(ref) == mi.ImageRef(*parsed)


@pytest.mark.parametrize("ref", ["Dltk/Triton:1", "a@sha256:12", "reg.internal:5000/:1"])
def test_parse_ref_rejects_what_docker_rejects(ref: str) -> None:
    with pytest.raises(DltkError, match="image"):
        mi.parse_ref(ref)


@pytest.mark.parametrize("registry", ["127.0.0.1:5000", "localhost", "reg.example.internal:443"])
def test_check_registry_accepts_host_port(registry: str) -> None:
    assert mi.check_registry(registry) == registry


@pytest.mark.parametrize(
    "registry", ["http://127.0.0.1:5000", "127.0.0.1:5000/dltk", "registry", "reg.internal:70000"]
)
def test_check_registry_rejects_urls_paths_and_bare_names(registry: str) -> None:
    with pytest.raises(DltkError, match="registry"):
        mi.check_registry(registry)


def test_target_tag_drops_the_source_registry_and_keeps_the_tag() -> None:
    assert mi.target_tag("127.0.0.1:5000", NGC_TRITON) == (
        "nvidia/tritonserver",
        f"127.0.0.1:5000/nvidia/tritonserver:{DEFAULT_NGC_RELEASE}-py3",
    )
    assert mi.target_tag("r.internal:5000", TRITON_CPU)[1] == f"r.internal:5000/{TRITON_CPU}"
    assert mi.target_tag("r.internal", f"a/b@{DIGEST}") == (
        "a/b",
        "r.internal/a/b:digest-abababababab",
    )


def test_push_digest_reads_the_line_of_the_pushed_tag() -> None:
    out = f"x: digest: {'sha256:' + 'cd' * 32} size: 9\n2.0: digest: {DIGEST} size: 1570\n"
    assert mi.push_digest(out, "2.0") == DIGEST
    with pytest.raises(DltkError, match="no digest for tag 3.0"):
        mi.push_digest(out, "3.0")


def test_carried_images_are_the_bill_s_images_without_the_toolkit_built_on_the_host() -> None:
    docker = FakeDocker({TRITON_CPU: "sha256:" + "1" * 64, BASE: "sha256:" + "2" * 64})
    hosts = {"cpu-1": _hv(TRITON_CPU), "cpu-2": _hv(TRITON_CPU), "gpu-1": _hv(NGC_TRITON, True)}
    items = mi.carried_images(hosts, mi.docker_inspector_via(docker))
    assert [i.name for i in items] == [TRITON_CPU, BASE, NGC_TRITON, NGC_TRT]
    assert items[0].hosts == ["cpu-1", "cpu-2"]
    assert items[1].hosts == ["cpu-1", "cpu-2", "gpu-1"]
    with pytest.raises(DltkError, match=f"not on this docker engine: {NGC_TRITON}, {NGC_TRT}"):
        mi.check_present(items)
    mi.check_present(items[:2])  # both present: no error


def test_push_tags_pushes_and_locks_the_registry_s_digests() -> None:
    docker = FakeDocker({TRITON_CPU: "sha256:" + "1" * 64, BASE: "sha256:" + "2" * 64})
    items = mi.carried_images({"h": _hv(TRITON_CPU)}, mi.docker_inspector_via(docker))
    pushed = mi.push_images(items, "127.0.0.1:5000", docker)
    target = f"127.0.0.1:5000/{TRITON_CPU}"
    assert ["tag", TRITON_CPU, target] in docker.calls
    assert docker.calls.index(["tag", TRITON_CPU, target]) < docker.calls.index(["push", target])
    assert pushed[TRITON_CPU]["digest"] == FakeDocker.digest_for(target)
    assert pushed[TRITON_CPU]["id"] == "sha256:" + "1" * 64
    lock = mi.lock_document("127.0.0.1:5000", "inv.yml", pushed)
    assert lock["registry"] == "127.0.0.1:5000"
    assert lock["images"] == {
        BASE: f"dltk/debian-base@{FakeDocker.digest_for('127.0.0.1:5000/' + BASE)}",
        TRITON_CPU: f"dltk/triton-cpu@{FakeDocker.digest_for(target)}",
    }
    assert lock["details"][TRITON_CPU]["pull"] == (
        f"127.0.0.1:5000/dltk/triton-cpu@{FakeDocker.digest_for(target)}"
    )


def test_a_plain_http_registry_refused_by_the_engine_names_the_insecure_registries_setting() -> (
    None
):
    err = 'Get "https://10.0.0.5:5000/v2/": http: server gave HTTP response to HTTPS client'
    docker = FakeDocker({TRITON_CPU: "sha256:" + "1" * 64}, push_error=err)
    items = mi.carried_images({"h": _hv(TRITON_CPU)}, mi.docker_inspector_via(docker))[:1]
    with pytest.raises(DltkError, match="insecure-registries"):
        mi.push_images(items, "10.0.0.5:5000", docker)


def test_save_writes_archives_and_a_manifest_with_their_sha256(tmp_path: Path) -> None:
    docker = FakeDocker({TRITON_CPU: "sha256:" + "1" * 64, BASE: "sha256:" + "2" * 64})
    items = mi.carried_images({"h": _hv(TRITON_CPU)}, mi.docker_inspector_via(docker))
    manifest = mi.save_images(items, tmp_path / "out", docker)
    files = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert files == ["dltk_debian-base_bookworm.tar", mi.archive_name(TRITON_CPU), "images.json"]
    entry = manifest["archives"][TRITON_CPU]
    data = (tmp_path / "out" / entry["file"]).read_bytes()
    assert entry["sha256"] == "sha256:" + hashlib.sha256(data).hexdigest()
    assert entry["bytes"] == len(data)
    assert json.loads((tmp_path / "out" / "images.json").read_text()) == manifest


def test_a_failed_save_leaves_no_partial_archive(tmp_path: Path) -> None:
    class FailingSave(FakeDocker):
        """TEST DOUBLE: FakeDocker whose `save` writes part of the file, then fails."""

        def __call__(self, argv: list[str]) -> subprocess.CompletedProcess:
            if argv[0] == "save":
                Path(argv[2]).write_bytes(b"part")
                return _done(argv, 1, err="write /x: no space left on device")
            return super().__call__(argv)

    docker = FailingSave({TRITON_CPU: "sha256:" + "1" * 64})
    items = mi.carried_images({"h": _hv(TRITON_CPU)}, mi.docker_inspector_via(docker))[:1]
    with pytest.raises(DltkError, match="no space left on device"):
        mi.save_images(items, tmp_path, docker)
    assert list(tmp_path.iterdir()) == []


def test_command_pushes_and_writes_the_lock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    docker = FakeDocker({TRITON_CPU: "sha256:" + "1" * 64, BASE: "sha256:" + "2" * 64})
    monkeypatch.setattr(mi, "docker_cli", docker)
    monkeypatch.setattr(hostvars, "resolve_hosts", lambda *a, **k: {"h": _hv(TRITON_CPU)})
    lock = tmp_path / "lock.json"
    argv = ["images", "--registry", "127.0.0.1:5000", "--lock", str(lock)]
    argv += ["--archive-dir", str(tmp_path / "archives")]
    assert apt_mirror.main(argv) == 0
    written = json.loads(lock.read_text())
    assert set(written["images"]) == {TRITON_CPU, BASE}
    assert (tmp_path / "archives" / "images.json").is_file()
    assert "lock file written" in capsys.readouterr().out


def test_command_without_registry_or_archive_dir_is_one_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert apt_mirror.main(["images"]) == 1
    assert "pass --registry HOST:PORT and/or --archive-dir DIR" in capsys.readouterr().err


def test_command_with_a_bad_registry_stops_before_docker(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    docker = FakeDocker({})
    monkeypatch.setattr(mi, "docker_cli", docker)
    assert apt_mirror.main(["images", "--registry", "https://127.0.0.1:5000"]) == 1
    assert "is not HOST:PORT" in capsys.readouterr().err
    assert docker.calls == []
