"""`dltk mirror plan`: the bill of materials an air-gapped site carries in for an inventory.

From each host's variables as Ansible resolves them (hostvars.py), this module lists what
deploy.yml needs on that host and cannot fetch without a network:
- images: the Triton image (triton_server), the toolkit image's base (dltk_image builds the toolkit
  ON the host from it: listed, not counted), the TensorRT image (trt_engines, GPU hosts), with the
  size, image id and registry digests the local docker engine knows, else "not present here";
- apt packages: what nvidia_driver, docker_engine, nvidia_container_toolkit and nsight_systems
  install, from the roles' filters, with the version or branch the inventory pins and the
  repository they come from (their closure and .deb sizes: `dltk mirror apt`);
- wheels: the sets of dltk.mirror.wheels: the CPU toolkit's wheel archive
  (dltk_image_wheels_archive) member by member, or its sets' requirements when it is not built;
  the GPU variant's wheelhouse (`dltk mirror wheels --variant gpu`) file by file, or its
  requirements when it is not built here;
- models: each manifest model's ONNX file, its external data files and its samples.

Which hosts count as GPU hosts: the roles detect GPUs at run time; before a run the plan takes a
host as a GPU host when its inventory says so: dltk_image_variant gpu, the tensorrt runtime,
dltk_gpus set, or trt_engines_gpu present. The force/without-GPU switches of the provisioning roles
add their packages to any host.
"""

from __future__ import annotations

import json
import subprocess
import tarfile
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rich.table import Table

from dltk.errors import DltkError
from dltk.manifest.load import parse_manifest
from dltk.mirror import wheels
from dltk.onnx_graph import external_data_files
from dltk.release import RELEASES, get_release

NOT_HERE = "not present here: size unknown"


@dataclass(frozen=True)
class ImageInfo:
    """What the local docker engine says about an image (or that it lacks it)."""

    present: bool
    size: int | None = None
    image_id: str = ""
    repo_digests: tuple[str, ...] = ()


Inspector = Callable[[str], ImageInfo]


@dataclass
class Item:
    """One line of the bill: an image, a package, a wheel or a model file."""

    kind: str  # image | package | wheel | model
    name: str
    detail: str  # version, tag purpose, file
    source: str  # where it comes from (registry, repository, wheel archive, manifest)
    size: int | None  # bytes; None: unknown here
    carry: bool = True  # False: built on the host from other items (not counted)
    hosts: list[str] = field(default_factory=list)
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def docker_inspector(image: str) -> ImageInfo:
    """`docker image inspect` on the local engine: Size, Id, RepoDigests (no registry query)."""
    argv = ["docker", "image", "inspect", "--format", "{{json .}}", image]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=60)
    except (FileNotFoundError, subprocess.TimeoutExpired):
        return ImageInfo(present=False)
    return image_info(done)


def image_info(done: subprocess.CompletedProcess[str]) -> ImageInfo:
    """What `docker image inspect --format '{{json .}}' IMAGE` answered (absent when it failed)."""
    if done.returncode != 0:
        return ImageInfo(present=False)
    data = json.loads(done.stdout)
    return ImageInfo(
        present=True,
        size=int(data.get("Size") or 0),
        image_id=str(data.get("Id", "")),
        repo_digests=tuple(data.get("RepoDigests") or ()),
    )


def is_gpu_host(hv: dict[str, Any]) -> bool:
    gpus = str(hv.get("gpus", "")).strip()
    return (
        hv.get("image_variant") == "gpu"
        or "tensorrt" in (hv.get("runtimes") or [])
        or gpus not in ("", "0", "None")
        or hv.get("trt_gpu") == "present"
    )


def check_release(host: str, hv: dict[str, Any]) -> None:
    ngc = str(hv.get("release") or "")
    if not ngc:
        known = ", ".join(sorted(RELEASES))
        raise DltkError(
            f"host {host} has no dltk_ngc_release: set it in the inventory (one of {known})"
        )
    try:
        get_release(ngc)
    except DltkError as exc:
        raise DltkError(f"host {host}: {exc}") from exc


# --- images ------------------------------------------------------------------------------------


def host_images(hv: dict[str, Any]) -> list[tuple[str, str, bool]]:
    """(reference, what it is for, carried in) of one host."""
    gpu = is_gpu_host(hv)
    images = [(hv["triton_image"], "triton_server", True)]
    variant = hv.get("image_variant", "cpu")
    images.append((hv["image_base"], f"dltk_image: {variant} toolkit base", True))
    toolkit = hv["toolkit_image"]
    images.append((toolkit, "dltk_image builds it on the host", False))
    for ref, why in ((hv["server_toolkit_image"], "triton_server"), (hv["verify_image"], "verify")):
        if ref != toolkit:
            images.append((ref, f"{why}: not the toolkit dltk_image builds", True))
    if gpu:
        images.append((hv["trt_image"], "trt_engines: trtexec", True))
    return images


def image_items(hosts: dict[str, dict[str, Any]], inspect: Inspector) -> list[Item]:
    items: dict[str, Item] = {}
    for host, hv in hosts.items():
        for ref, why, carry in host_images(hv):
            if ref not in items:
                # A tag built on the host is not carried: the local engine's image of that tag
                # may be another variant, so it is not inspected.
                info = inspect(ref) if carry else ImageInfo(present=False)
                note = "" if info.present else NOT_HERE if carry else "built on the host"
                if info.present and not info.repo_digests:
                    note = "no registry digest (built here, never pushed): id only"
                items[ref] = Item(
                    "image",
                    ref,
                    why,
                    "local docker engine" if info.present else "registry" if carry else "-",
                    info.size if info.present else None,
                    carry=carry,
                    note=note,
                    extra={"id": info.image_id, "repo_digests": list(info.repo_digests)},
                )
            items[ref].hosts.append(host)
    return list(items.values())


# --- apt packages ------------------------------------------------------------------------------

DRIVER_REPOS = {
    "debian": "Debian non-free",
    "ubuntu": "Ubuntu restricted",
    "cuda": "NVIDIA CUDA repository",
}


def host_packages(hv: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """(package, version or pin, repository, note) that the provisioning roles install."""
    gpu = is_gpu_host(hv)
    distro = str(hv.get("distribution", "Debian"))
    out: list[tuple[str, str, str, str]] = []
    vendor_repo = False
    if gpu or hv.get("driver_force"):
        source = hv["driver_source"]["source"]
        repo = DRIVER_REPOS.get(source, source)
        version = hv.get("driver_version") or ""
        pin = f"={version}" if version else f"branch {hv.get('driver_branch')} (newest)"
        for name in hv["driver"]["packages"]:
            out.append((name, pin, repo, "nvidia_driver"))
        for name in hv["driver"]["extra_packages"]:
            out.append((name, "", repo, "nvidia_driver"))
        if source != "ubuntu":
            out.append(
                (
                    "linux-headers-<each host's kernel> + metapackage",
                    "",
                    f"{distro} main",
                    "nvidia_driver (DKMS; the kernel is known at run time)",
                )
            )
        vendor_repo |= source == "cuda"
    if hv.get("docker_manage"):
        if hv.get("docker_source") == "upstream":
            pinned = set(hv.get("docker_upstream_pinned") or [])
            for name in hv.get("docker_upstream_packages") or []:
                pin = f"={hv['docker_upstream_version']}" if name in pinned else ""
                out.append((name, pin, "Docker repository", "docker_engine"))
            vendor_repo = True
        else:
            version = hv.get("docker_package_version") or ""
            pin = f"={version}" if version else ""
            out.append((hv["docker_package"], pin, f"{distro} main", "docker_engine, recommends"))
    for name in hv.get("docker_python_packages") or []:
        out.append((name, "", f"{distro} main", "docker_engine, recommends"))
    if gpu or hv.get("toolkit_without_gpu"):
        for name in hv.get("toolkit_packages") or []:
            pin = f"={hv['toolkit_version']}"
            out.append((name, pin, "NVIDIA libnvidia-container", "nvidia_container_toolkit"))
        vendor_repo = True
    if gpu or hv.get("nsight_force"):
        choice = hv["nsight"]
        repo = "NVIDIA devtools" if choice["source"] == "nvidia" else f"{distro} non-free"
        out.append((choice["package"], choice["version"], repo, "nsight_systems"))
        vendor_repo |= choice["source"] == "nvidia"
    if vendor_repo:
        for name in hv.get("apt_python_packages") or []:
            out.append((name, "", f"{distro} main", "apt_pinned_repo (deb822 sources)"))
    return out


def toolkit_packages(project: Path, hv: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """(package, pin, repository, note) of the toolkit build's apt step on the host
    (images/dltk/apt-packages*.txt; with dltk_image_apt_from_host from the host's own sources)."""
    gpu = hv.get("image_variant") == "gpu"
    files = ["apt-packages.txt"] + ([] if gpu else ["apt-packages-cpu.txt"])
    repo = "the NGC image's Ubuntu" if gpu else f"{hv.get('distribution', 'Debian')} main"
    out = []
    for name in files:
        for line in (project / "images" / "dltk" / name).read_text().splitlines():
            if line.strip() and not line.startswith("#"):
                out.append((line.strip(), "", repo, "dltk_image (the toolkit build's apt step)"))
    return out


def package_items(hosts: dict[str, dict[str, Any]], project: Path) -> list[Item]:
    items: dict[tuple[str, str, str], Item] = {}
    for host, hv in hosts.items():
        for name, pin, repo, note in host_packages(hv) + toolkit_packages(project, hv):
            key = (name, pin, repo)
            if key not in items:
                items[key] = Item(
                    "package", name, pin, repo, None, note=note, extra={"closure": "not sized"}
                )
            if host not in items[key].hosts:
                items[key].hosts.append(host)
    return list(items.values())


# --- wheels ------------------------------------------------------------------------------------
# Which wheels: dltk.mirror.wheels (the sets `dltk mirror wheels` and scripts/build-images.sh
# download). The CPU toolkit's archive is listed member by member; the GPU variant's wheelhouse
# (build/wheelhouse-gpu-pyX.Y of `dltk mirror wheels --variant gpu`) file by file when built here.


def archive_wheels(archive: Path) -> list[tuple[str, int]]:
    """(member, bytes) of every wheel in the toolkit's wheel archive."""
    with tarfile.open(archive) as tar:
        return [(m.name, m.size) for m in tar.getmembers() if m.isfile()]


def shown_path(path: Path, project: Path) -> str:
    """A path under the project relative to it (build/toolkit-wheels.tar), others as they are."""
    try:  # not resolved: build/toolkit-wheels.tar may be a link to another checkout's
        return str(path.relative_to(project))
    except ValueError:
        return str(path)


def _wheel_file_item(filename: str, folder: str, source: str, size: int, member: str) -> Item:
    dist, version = (filename.split("-") + ["", ""])[:2]
    return Item("wheel", f"{dist} {version}", folder, source, size, extra={"file": member})


def _requirement_items(
    wheel_set: wheels.WheelSet, project: Path, detail: str, note: str
) -> list[Item]:
    """A set's requirements, unsized (its wheelhouse is not built here), pinned as pip -c would."""
    pins = wheels.constraint_pins(project / wheels.CONSTRAINTS) if wheel_set.constraints else {}
    source = f"{wheel_set.name} set ({wheel_set.directory})"
    return [
        Item("wheel", wheels.pinned(line, pins), detail, source, None, note=note)
        for line in wheel_set.requirement_lines(project)
    ]


def wheel_items(
    hosts: dict[str, dict[str, Any]], project: Path, wheelhouses: Path | None = None
) -> list[Item]:
    """The wheels of each host's toolkit variant; `wheelhouses`: where the build/wheelhouse-*
    directories are looked for (default: the project)."""
    base = project if wheelhouses is None else wheelhouses
    items: dict[str, Item] = {}

    def add(key: str, item: Item, host: str) -> None:
        hosts_of = items.setdefault(key, item).hosts
        if host not in hosts_of:  # a requirement of two files of a set is one item
            hosts_of.append(host)

    for host, hv in hosts.items():
        if hv.get("image_variant") == "gpu":
            gpu = wheels.gpu_set(str(hv["release"]))
            found = wheels.wheel_files(base / gpu.directory)
            for path in found:
                item = _wheel_file_item(
                    path.name, f"Python {gpu.python}", gpu.directory, path.stat().st_size, path.name
                )
                add(f"gpu:{gpu.python}:{path.name}", item, host)
            if not found:
                note = (
                    f"{gpu.directory} not built here (dltk mirror wheels --variant gpu "
                    f"--ngc-release {hv['release']}): size unknown"
                )
                for item in _requirement_items(gpu, project, f"Python {gpu.python}", note):
                    add(f"gpu:{gpu.python}:{item.name}", item, host)
            continue
        archive = Path(hv["wheels_archive"])
        if archive.is_file():
            for member, size in archive_wheels(archive):
                folder, _, filename = member.rpartition("/")
                item = _wheel_file_item(
                    filename, folder, shown_path(archive, project), size, member
                )
                add(f"cpu:{member}", item, host)
        else:
            note = f"{archive} not built here (make images): size unknown"
            for wheel_set in wheels.cpu_sets(project):
                if wheel_set.name in wheels.TOOLKIT_SETS:
                    for item in _requirement_items(wheel_set, project, "", note):
                        add(f"cpu:{item.name}", item, host)
    return list(items.values())


# --- models ------------------------------------------------------------------------------------


def _file_item(model: str, what: str, path: Path, manifest: str) -> Item:
    size = path.stat().st_size if path.is_file() else None
    note = "" if size is not None else "not built here (dltk export): size unknown"
    return Item("model", f"{model}: {path.name}", what, manifest, size, note=note)


def model_items(hosts: dict[str, dict[str, Any]], project: Path) -> list[Item]:
    items: dict[str, Item] = {}
    for host, hv in hosts.items():
        manifest = Path(hv["manifest"])
        try:
            parsed = parse_manifest(manifest.read_text(), manifest)
        except OSError as exc:
            raise DltkError(f"host {host}: cannot read the manifest {manifest}: {exc}") from exc
        for model in parsed.models:
            files = [(model.onnx, "ONNX")]
            if model.onnx.is_file():
                for name in external_data_files(model.onnx):
                    files.append((model.onnx.parent / name, "ONNX external data"))
            if model.samples is not None:
                files.append((model.samples, "samples"))
            for path, what in files:
                key = str(path.resolve())
                if key not in items:
                    items[key] = _file_item(model.name, what, path, shown_path(manifest, project))
                items[key].hosts.append(host)
    return list(items.values())


# --- the bill ----------------------------------------------------------------------------------

KINDS = ("image", "package", "wheel", "model")


def totals(items: Iterable[Item]) -> dict[str, dict[str, int]]:
    """Per kind and overall: items carried in, bytes known, items of unknown size."""
    out = {kind: {"items": 0, "bytes": 0, "unknown": 0} for kind in (*KINDS, "all")}
    for item in items:
        if not item.carry:
            continue
        for kind in (item.kind, "all"):
            out[kind]["items"] += 1
            if item.size is None:
                out[kind]["unknown"] += 1
            else:
                out[kind]["bytes"] += item.size
    return out


@dataclass
class Bill:
    inventory: str
    hosts: dict[str, dict[str, Any]]
    items: list[Item]

    def as_dict(self) -> dict[str, Any]:
        return {
            "inventory": self.inventory,
            "hosts": self.hosts,
            **{f"{kind}s": [asdict(i) for i in self.items if i.kind == kind] for kind in KINDS},
            "totals": totals(self.items),
        }

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), indent=2, sort_keys=True)


def build_bill(
    inventory: str,
    hostvars: dict[str, dict[str, Any]],
    project: Path,
    inspect: Inspector = docker_inspector,
    wheelhouses: Path | None = None,
) -> Bill:
    """The bill of materials of the hosts' resolved variables."""
    for host, hv in hostvars.items():
        check_release(host, hv)
    hosts = {
        host: {
            "class": "gpu" if is_gpu_host(hv) else "cpu",
            "release": str(hv["release"]),
            "distribution": hv.get("distribution", ""),
            "image_variant": hv.get("image_variant", ""),
        }
        for host, hv in hostvars.items()
    }
    items = [
        *image_items(hostvars, inspect),
        *package_items(hostvars, project),
        *wheel_items(hostvars, project, wheelhouses),
        *model_items(hostvars, project),
    ]
    return Bill(inventory, hosts, items)


def human(size: int | None) -> str:
    if size is None:
        return "?"
    for unit, factor in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if size >= factor:
            return f"{size / factor:.1f} {unit}"
    return f"{size} B"


TITLES = {
    "image": "images",
    "package": "apt packages (closure and .deb sizes: dltk mirror apt)",
    "wheel": "wheels",
    "model": "models",
}


# The columns that give way first on a narrow console (rich shrinks them in proportion).
MAX_WIDTHS = {"version / use": 22, "from": 26, "hosts": 30, "note": 34}


def _shown(rows: list[Item], limit: int) -> tuple[list[Item], int]:
    """The rows a table shows: all, or the `limit` largest (unknown sizes first) when there are
    more; and how many were left out (the JSON lists every one)."""
    if len(rows) <= limit:
        return rows, 0
    ranked = sorted(rows, key=lambda i: -1 if i.size is None else i.size, reverse=True)
    ranked = [i for i in rows if i.size is None][:limit] + [i for i in ranked if i.size is not None]
    return ranked[:limit], len(rows) - limit


def _image_note(item: Item) -> str:
    if not item.extra.get("id"):
        return item.note
    digests = ", ".join(item.extra["repo_digests"]) or "no registry digest"
    return f"id {item.extra['id'].removeprefix('sha256:')[:12]}, {digests}"


def tables(bill: Bill, limit: int = 12) -> list[Table]:
    """One rich table per kind (of the wheels, the `limit` largest), then the totals."""
    out = []
    for kind in KINDS:
        rows = [i for i in bill.items if i.kind == kind]
        shown, left = _shown(rows, limit) if kind == "wheel" else (rows, 0)
        table = Table(title=f"{TITLES[kind]}: {len(rows)}", title_justify="left")
        for column in ("name", "version / use", "from", "size", "hosts", "note"):
            table.add_column(
                column,
                justify="right" if column == "size" else "left",
                overflow="fold" if column == "name" else "ellipsis",
                no_wrap=column == "size",
                max_width=MAX_WIDTHS.get(column),
            )
        for item in shown:
            note = _image_note(item) if kind == "image" else item.note
            size = human(item.size) if item.carry else "not carried"
            table.add_row(item.name, item.detail, item.source, size, ", ".join(item.hosts), note)
        if left:
            rest = [i for i in rows if i not in shown]
            known = sum(i.size or 0 for i in rest)
            table.add_row(f"... {left} more (the JSON lists them)", "", "", human(known), "", "")
        out.append(table)
    summary = Table(title="to carry in", title_justify="left")
    for column in ("kind", "items", "known size", "size unknown"):
        summary.add_column(column, justify="left" if column == "kind" else "right")
    for kind, total in totals(bill.items).items():
        known = "?" if total["unknown"] == total["items"] else human(total["bytes"])
        summary.add_row(kind, str(total["items"]), known, str(total["unknown"]))
    out.append(summary)
    return out
