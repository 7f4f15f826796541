"""`dltk mirror images`: the images of the bill of materials, into a local registry or archives.

The images are the ones `dltk mirror plan` lists for an inventory (plan.image_items: the Triton
image, the toolkit's base, the TensorRT image on GPU hosts; the toolkit itself is built on the
host and not carried). For each image the local docker engine holds:
- with --registry HOST:PORT: `docker tag` to HOST:PORT/<path>:<tag> (the source registry's host
  dropped: nvcr.io/nvidia/tritonserver:<tag> -> HOST:PORT/nvidia/tritonserver:<tag>) and
  `docker push`; the digest is the registry's answer to the manifest upload, which docker prints
  as `<tag>: digest: sha256:<hex> size: <n>`;
- with --archive-dir DIR: `docker save` to DIR/<name>.tar and a manifest DIR/images.json (file,
  bytes, sha256 of the archive, image id) for sites without a registry (`docker load` there).
The lock file (JSON) maps each image name to `<path>@sha256:<digest>` in the registry; roles pull
`{{ dltk_registry }}/<path>@sha256:<digest>` and tag it as the name they use (docs/air-gapped.md).
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dltk.errors import DltkError
from dltk.mirror.plan import ImageInfo, Inspector, Item, image_info, image_items

# docker push prints the registry's answer to the manifest upload on its last line.
_PUSH_DIGEST = re.compile(
    r"^(?P<tag>[\w][\w.-]*): digest: (?P<digest>sha256:[0-9a-f]{64}) size: \d+$"
)
# HOST:PORT, HOST (a name or an IPv4 address); no scheme, no path.
_REGISTRY = re.compile(r"^(?P<host>[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?)(:(?P<port>\d{1,5}))?$")
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
LOCK_FORMAT = 1

Docker = Callable[[list[str]], subprocess.CompletedProcess]


def docker_cli(argv: list[str]) -> subprocess.CompletedProcess:
    """Run `docker ARGV...` on the local engine (bounded: an image push or save of tens of GB on
    a slow disk is the longest step; 2 h)."""
    try:
        return subprocess.run(
            ["docker", *argv], capture_output=True, text=True, check=False, timeout=7200
        )
    except FileNotFoundError as exc:
        raise DltkError("docker is not installed here (make engine)") from exc
    except subprocess.TimeoutExpired as exc:
        raise DltkError(f"docker {' '.join(argv)} took more than 2 h: stopped") from exc


def docker_inspector_via(docker: Docker) -> Inspector:
    """plan's Inspector (`docker image inspect`) through a Docker runner."""

    def inspect(image: str) -> ImageInfo:
        return image_info(docker(["image", "inspect", "--format", "{{json .}}", image]))

    return inspect


@dataclass(frozen=True)
class ImageRef:
    """A docker reference split: [domain/]path[:tag][@digest]."""

    domain: str
    path: str
    tag: str
    digest: str


def parse_ref(ref: str) -> ImageRef:
    """Split a reference as docker does: the first component is a registry when it has a `.` or
    a `:`, or is `localhost`; a tag follows the last `:` after the last `/`."""
    name, _, digest = ref.partition("@")
    if digest and not _DIGEST.match(digest):
        raise DltkError(f"image {ref}: {digest} is not a sha256 digest")
    first, slash, rest = name.partition("/")
    domain = ""
    if slash and ("." in first or ":" in first or first == "localhost"):
        domain, name = first, rest
    path, tag = name, ""
    if ":" in name.rpartition("/")[2]:
        path, _, tag = name.rpartition(":")
    if not path or not re.match(r"^[a-z0-9]+([._/-][a-z0-9]+)*$", path):
        raise DltkError(f"image {ref}: {path!r} is not a docker repository name")
    return ImageRef(domain, path, tag, digest)


def check_registry(registry: str) -> str:
    """HOST[:PORT] as docker names a registry; a URL or a path is one error saying what to pass."""
    match = _REGISTRY.match(registry)
    if not match or ("." not in registry and ":" not in registry and registry != "localhost"):
        raise DltkError(
            f"registry {registry!r} is not HOST:PORT (e.g. 127.0.0.1:5000 or "
            "registry.example.internal:5000; no scheme, no path)"
        )
    port = match.group("port")
    if port is not None and not 0 < int(port) < 65536:
        raise DltkError(f"registry {registry!r}: port {port} is out of range")
    return registry


def target_tag(registry: str, ref: str) -> tuple[str, str]:
    """(path in the registry, REGISTRY/path:tag to push) of a local image reference; an image
    known by digest only gets the tag `digest-<12 hex>` (docker pushes tags)."""
    parsed = parse_ref(ref)
    tag = parsed.tag or (f"digest-{parsed.digest[7:19]}" if parsed.digest else "latest")
    return parsed.path, f"{registry}/{parsed.path}:{tag}"


def push_digest(output: str, tag: str) -> str:
    """The digest docker push reports for `tag` (the registry's answer to the manifest PUT)."""
    found = [
        m.group("digest")
        for m in (_PUSH_DIGEST.match(line.strip()) for line in output.splitlines())
        if m and m.group("tag") == tag
    ]
    if not found:
        raise DltkError(f"docker push printed no digest for tag {tag}: {output.strip()[-300:]!r}")
    return found[-1]


def carried_images(hostvars: dict[str, dict[str, Any]], inspect: Inspector) -> list[Item]:
    """The images of the bill of materials a site carries in (plan.image_items, carried only)."""
    return [item for item in image_items(hostvars, inspect) if item.carry]


def check_present(items: list[Item]) -> None:
    missing = [item.name for item in items if not item.extra.get("id")]
    if missing:
        raise DltkError(
            f"not on this docker engine: {', '.join(missing)} (build them with `make images`, "
            "or pull them where a registry is reachable, then run this again)"
        )


def _failed(what: str, done: subprocess.CompletedProcess) -> DltkError:
    last = (done.stderr or done.stdout or "").strip().splitlines()
    return DltkError(f"{what} failed: {last[-1] if last else f'exit status {done.returncode}'}")


def push_images(items: list[Item], registry: str, docker: Docker) -> dict[str, dict[str, Any]]:
    """Tag and push each image; {name: {path, tag, digest, pull, id, size, hosts}}."""
    pushed: dict[str, dict[str, Any]] = {}
    for item in items:
        path, target = target_tag(registry, item.name)
        tag = target.rpartition(":")[2]
        done = docker(["tag", item.name, target])
        if done.returncode != 0:
            raise _failed(f"docker tag {item.name} {target}", done)
        done = docker(["push", target])
        if done.returncode != 0:
            hint = (
                " (a registry on another address than loopback over plain HTTP must be in the "
                "engine's insecure-registries, or serve TLS: docs/air-gapped.md)"
                if "http: server gave HTTP response to HTTPS client" in (done.stderr or "")
                else ""
            )
            raise DltkError(str(_failed(f"docker push {target}", done)) + hint)
        digest = push_digest(done.stdout, tag)
        pushed[item.name] = {
            "path": path,
            "tag": target,
            "digest": digest,
            "pull": f"{registry}/{path}@{digest}",
            "id": item.extra.get("id", ""),
            "size": item.size,
            "hosts": list(item.hosts),
        }
    return pushed


def lock_document(registry: str, inventory: str, pushed: dict[str, dict[str, Any]]) -> dict:
    """The lock file: `images` maps each name to `<path>@sha256:<digest>` in the registry (what
    roles pull, behind dltk_registry); `details` keeps the tag pushed, image id, size, hosts."""
    return {
        "format": LOCK_FORMAT,
        "registry": registry,
        "inventory": inventory,
        "images": {name: f"{p['path']}@{p['digest']}" for name, p in sorted(pushed.items())},
        "details": dict(sorted(pushed.items())),
    }


def archive_name(ref: str) -> str:
    """A file name for an image's archive: dltk/triton-cpu:<tag> -> dltk_triton-cpu_<tag>.tar."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", ref.split("@")[0]).strip("_") + ".tar"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return f"sha256:{digest.hexdigest()}"


def save_images(items: list[Item], out: Path, docker: Docker) -> dict[str, Any]:
    """`docker save` each image to out/<name>.tar; the manifest out/images.json lists them."""
    out.mkdir(parents=True, exist_ok=True)
    names = [archive_name(item.name) for item in items]
    if len(set(names)) != len(names):
        raise DltkError(f"two images would share an archive name: {sorted(names)}")
    archives: dict[str, dict[str, Any]] = {}
    for item, name in zip(items, names, strict=True):
        path = out / name
        partial = out / (name + ".partial")
        done = docker(["save", "-o", str(partial), item.name])
        if done.returncode != 0:
            partial.unlink(missing_ok=True)
            raise _failed(f"docker save {item.name}", done)
        partial.replace(path)
        archives[item.name] = {
            "file": name,
            "bytes": path.stat().st_size,
            "sha256": _sha256(path),
            "id": item.extra.get("id", ""),
            "hosts": list(item.hosts),
        }
    manifest = {"format": LOCK_FORMAT, "archives": dict(sorted(archives.items()))}
    (out / "images.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest
