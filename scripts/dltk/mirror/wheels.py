"""`dltk mirror wheels`: the project's Python wheels in local wheelhouses and a PEP 503 index.

This module is the one place that says which wheels the project installs; scripts/build-images.sh
(the CPU toolkit's and the Triton image's wheelhouses), `dltk mirror plan` (the bill's wheels) and
the docs read it. Two variants:

- cpu: this machine's Python (the Debian bookworm images and the control node run the same 3.11),
  pinned by constraints.txt, three sets each in a flat wheelhouse:
  - toolkit  build/wheelhouse: the dltk package's runtime dependencies (pyproject.toml), the
    toolkit image's requirements.txt and the Triton image's, and nvidia-pytriton without its
    dependencies (only its tritonserver is used); the Triton CPU image copies this wheelhouse.
  - tools    build/wheelhouse-tools: requirements-tools.txt (torch, matplotlib), the wheels the
    toolkit set already has left out.
  - venv     build/wheelhouse-venv: the control node's venv (`make venv`: the package with every
    extra, the build backend, the `ansible` bundle wheel the collections come from), the wheels
    of the two sets above left out.
- gpu: the GPU toolkit's packages (requirements-gpu.txt and the release's tritonclient, what the
  Dockerfile's gpu branch installs) for the Python of the NGC release's images, downloaded with
  `--only-binary=:all: --python-version X.Y --implementation cp --platform manylinux...` into
  build/wheelhouse-gpu-pyX.Y. Not pinned by constraints.txt (that file is for our Python).

Then each variant's wheels get a PEP 503 "simple" index, servable by any static web server or as
a file:// URL: OUT/<variant>-pyX.Y/simple/<normalized name>/index.html linking to
../../files/<wheel>#sha256=<hex> (the files are hard links to the wheelhouses' files), and
OUT/<variant>-pyX.Y/wheels.json listing each file with its bytes and sha256.
"""

from __future__ import annotations

import argparse
import hashlib
import html
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import quote

from dltk.errors import DltkError
from dltk.release import DEFAULT_NGC_RELEASE, get_release, toolkit_requirement

CONSTRAINTS = "constraints.txt"
GPU_REQUIREMENTS = "images/dltk/requirements-gpu.txt"
INDEX_DIR = "build/wheel-index"
# The GPU servers' platform: x86_64 with glibc 2.28 or newer (the NGC images are Ubuntu). pip does
# not widen a manylinux_2_X platform to older ones itself: every accepted tag is listed, from
# manylinux_2_28 down to manylinux_2_17, and manylinux2014 (pip adds manylinux2010 and manylinux1).
GPU_GLIBC_MINOR = 28
GPU_PLATFORMS = tuple(f"manylinux_2_{m}_x86_64" for m in range(GPU_GLIBC_MINOR, 16, -1)) + (
    "manylinux2014_x86_64",
)
VARIANTS = ("cpu", "gpu")
# The CPU sets whose wheelhouses scripts/build-images.sh packs into the toolkit's wheel archive.
TOOLKIT_SETS = ("toolkit", "tools")
# pip's notes about find-links/index locations this machine's pip config names but lacks.
_PIP_NOISE = ("WARNING: Location '",)


def normalize(name: str) -> str:
    """A project name as PEP 503 normalizes it (runs of -_. to one -, lower case)."""
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(frozen=True)
class Download:
    """One `pip download`: requirement strings and requirement files (relative to the project)."""

    requirements: tuple[str, ...] = ()
    files: tuple[str, ...] = ()
    no_deps: bool = False


@dataclass(frozen=True)
class WheelSet:
    """Wheels downloaded into one flat wheelhouse directory (relative to the project)."""

    name: str
    variant: str  # cpu | gpu
    directory: str
    downloads: tuple[Download, ...]
    purpose: str
    python: str = ""  # X.Y for another Python than this one ("": this interpreter's)
    constraints: bool = True  # pip -c constraints.txt

    def requirement_lines(self, project: Path) -> list[str]:
        """Every requirement of the set: the strings and the lines of its files (no comments)."""
        out: list[str] = []
        for download in self.downloads:
            for path in download.files:
                out += read_requirements(project / path)
            out += download.requirements
        return out


def read_requirements(path: Path) -> list[str]:
    """The requirement lines of a requirements file, comments and blank lines dropped."""
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise DltkError(f"cannot read the requirements file {path}: {exc}") from exc
    return [ln.split("#", 1)[0].strip() for ln in lines if ln.split("#", 1)[0].strip()]


def constraint_pins(path: Path) -> dict[str, str]:
    """{normalized name: version} of the `name==version` lines of constraints.txt."""
    pins = {}
    for line in read_requirements(path):
        name, sep, version = line.partition("==")
        if sep:
            pins[normalize(name.strip())] = version.strip()
    return pins


def requirement_name(requirement: str) -> str:
    """The project name of a requirement string (`tritonclient[http,grpc]==X` -> tritonclient)."""
    return normalize(re.split(r"[\[=<>!~ ;@]", requirement.strip(), maxsplit=1)[0])


def pinned(requirement: str, pins: dict[str, str]) -> str:
    """The requirement as `pip -c constraints.txt` resolves its version (unchanged if pinned)."""
    if "==" in requirement:
        return requirement
    name = requirement_name(requirement)
    return f"{requirement}=={pins[name]}" if name in pins else requirement


def _pyproject(project: Path) -> dict:
    import tomllib  # Python 3.11+ (the CPU variant's Python; the GPU image's 3.10 never runs this)

    try:
        return tomllib.loads((project / "pyproject.toml").read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise DltkError(f"cannot read {project / 'pyproject.toml'}: {exc}") from exc


def ansible_bundle_version(project: Path) -> str:
    """The `ansible` bundle wheel `make venv` builds the collections from (ANSIBLE_BUNDLE)."""
    try:
        text = (project / "Makefile").read_text()
    except OSError as exc:
        raise DltkError(f"cannot read {project / 'Makefile'}: {exc}") from exc
    match = re.search(r"^ANSIBLE_BUNDLE\s*:?=\s*(\S+)\s*$", text, re.MULTILINE)
    if not match:
        raise DltkError(f"{project / 'Makefile'} sets no ANSIBLE_BUNDLE (the ansible bundle wheel)")
    return match.group(1)


def cpu_sets(project: Path) -> list[WheelSet]:
    """The CPU variant's sets in download order (a later set leaves out earlier sets' wheels)."""
    pyproject = _pyproject(project)
    deps = tuple(pyproject["project"]["dependencies"])
    extras = pyproject["project"].get("optional-dependencies", {})
    extra_deps = tuple(req for name in sorted(extras) for req in extras[name])
    build_requires = tuple(pyproject.get("build-system", {}).get("requires", ()))
    return [
        WheelSet(
            "toolkit",
            "cpu",
            "build/wheelhouse",
            (
                Download(
                    deps,
                    ("images/dltk/requirements.txt", "images/triton-cpu/requirements.txt"),
                ),
                Download(("nvidia-pytriton",), no_deps=True),
            ),
            "the dltk package in the toolkit image and the Triton CPU image",
        ),
        WheelSet(
            "tools",
            "cpu",
            "build/wheelhouse-tools",
            (Download(files=("images/dltk/requirements-tools.txt",)),),
            "torch and matplotlib in the toolkit image",
        ),
        WheelSet(
            "venv",
            "cpu",
            "build/wheelhouse-venv",
            (
                Download(build_requires + deps + extra_deps),
                Download((f"ansible=={ansible_bundle_version(project)}",), no_deps=True),
            ),
            "the control node's venv (make venv: every extra, collections from the ansible wheel)",
        ),
    ]


def gpu_set(ngc: str = DEFAULT_NGC_RELEASE) -> WheelSet:
    """The GPU toolkit's packages for the Python of the NGC release's images."""
    release = get_release(ngc)
    tritonclient = toolkit_requirement(ngc, release.python)
    return WheelSet(
        "gpu",
        "gpu",
        f"build/wheelhouse-gpu-py{release.python}",
        (Download((tritonclient,), (GPU_REQUIREMENTS,)),),
        f"the GPU toolkit image (NGC {ngc}, Python {release.python})",
        python=release.python,
        constraints=False,
    )


def wheel_sets(project: Path, ngc: str = DEFAULT_NGC_RELEASE) -> list[WheelSet]:
    return [*cpu_sets(project), gpu_set(ngc)]


def select_sets(sets: Sequence[WheelSet], variant: str, only: Sequence[str]) -> list[WheelSet]:
    """The sets of a variant (cpu, gpu, all), or those named by --only."""
    if variant not in (*VARIANTS, "all"):
        raise DltkError(f"--variant must be cpu, gpu or all, not {variant!r}")
    known = [s.name for s in sets]
    unknown = [name for name in only if name not in known]
    if unknown:
        raise DltkError(f"unknown wheel set {', '.join(unknown)}: choose from {', '.join(known)}")
    if only:
        return [s for s in sets if s.name in only]
    return [s for s in sets if variant in ("all", s.variant)]


def variant_label(wheel_set: WheelSet) -> str:
    """The index directory of a set's variant: cpu-py3.11, gpu-pyX.Y."""
    python = wheel_set.python or f"{sys.version_info.major}.{sys.version_info.minor}"
    return f"{wheel_set.variant}-py{python}"


def target_args(wheel_set: WheelSet) -> list[str]:
    """pip's options that download for another Python and platform (GPU variant)."""
    if not wheel_set.python:
        return []
    args = ["--python-version", wheel_set.python, "--implementation", "cp"]
    for platform in GPU_PLATFORMS:
        args += ["--platform", platform]
    return args


def download_argv(
    pip: Sequence[str],
    wheel_set: WheelSet,
    download: Download,
    project: Path,
    find_links: Sequence[Path] = (),
) -> list[str]:
    """The `pip download` command of one download of a set (pure: tests read it)."""
    argv = [*pip, "download", "-q", "-d", str(project / wheel_set.directory)]
    argv += ["--only-binary=:all:", *target_args(wheel_set)]
    if wheel_set.constraints:
        argv += ["-c", str(project / CONSTRAINTS)]
    if download.no_deps:
        argv.append("--no-deps")
    for path in find_links:
        argv += ["--find-links", str(path)]
    for path in download.files:
        argv += ["-r", str(project / path)]
    return argv + list(download.requirements)


Runner = Callable[[list[str]], subprocess.CompletedProcess]


def run_pip(argv: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, check=False, timeout=3600)


def _pip_errors(stderr: str) -> list[str]:
    return [ln for ln in stderr.splitlines() if ln.strip() and not ln.startswith(_PIP_NOISE)]


@dataclass
class SetResult:
    name: str
    variant: str
    directory: str
    files: list[str] = field(default_factory=list)
    bytes: int = 0
    seconds: float = 0.0
    left_out: int = 0  # files an earlier set of the variant already has


def wheel_files(directory: Path) -> list[Path]:
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.iterdir() if p.is_file() and p.name.endswith(".whl"))


def download_sets(
    sets: Sequence[WheelSet],
    project: Path,
    pip: Sequence[str],
    runner: Runner = run_pip,
    log: Callable[[str], None] = print,
    order: Sequence[WheelSet] | None = None,
) -> list[SetResult]:
    """Download each set into its wheelhouse; a set finds the wheels of the sets before it in
    `order` (all sets; default `sets`) of its variant in their wheelhouses (--find-links: no second
    download), selected or not, and leaves those wheels out of its own directory."""
    results = []
    order = list(sets if order is None else order)
    for wheel_set in sets:
        start = time.monotonic()
        dest = project / wheel_set.directory
        dest.mkdir(parents=True, exist_ok=True)
        before = [
            project / s.directory
            for s in order[: order.index(wheel_set)]
            if s.variant == wheel_set.variant and (project / s.directory).is_dir()
        ]
        for download in wheel_set.downloads:
            argv = download_argv(pip, wheel_set, download, project, before)
            done = runner(argv)
            errors = _pip_errors(done.stderr or "")
            if done.returncode != 0:
                raise DltkError(
                    f"pip download of the {wheel_set.name} wheels failed "
                    f"({shlex.join(argv[:6])} ...): " + " / ".join(errors[-6:])
                )
            for line in errors:
                log(f"[wheels] pip: {line}")
        have = {p.name for d in before for p in wheel_files(d)}
        left_out = 0
        for wheel in wheel_files(dest):
            if wheel.name in have:
                wheel.unlink()
                left_out += 1
        files = wheel_files(dest)
        result = SetResult(
            wheel_set.name,
            wheel_set.variant,
            wheel_set.directory,
            [p.name for p in files],
            sum(p.stat().st_size for p in files),
            round(time.monotonic() - start, 1),
            left_out,
        )
        log(
            f"[wheels] {wheel_set.name} ({variant_label(wheel_set)}): {len(files)} wheels, "
            f"{result.bytes / 1e6:.1f} MB in {wheel_set.directory} ({result.seconds} s)"
        )
        results.append(result)
    return results


# --- the PEP 503 index ----------------------------------------------------------------------


def dist_name(filename: str) -> str:
    """The normalized project name of a wheel or sdist file name."""
    if filename.endswith(".whl"):
        return normalize(filename.split("-", 1)[0])
    for suffix in (".tar.gz", ".zip", ".tar.bz2"):
        if filename.endswith(suffix):
            return normalize(filename[: -len(suffix)].rpartition("-")[0])
    raise DltkError(f"{filename} is neither a wheel nor an sdist")


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def requires_python(path: Path) -> str:
    """A wheel's Requires-Python (its METADATA), '' when it has none or is not a wheel."""
    if not path.name.endswith(".whl"):
        return ""
    try:
        with zipfile.ZipFile(path) as wheel:
            names = [n for n in wheel.namelist() if n.endswith(".dist-info/METADATA")]
            if not names:
                return ""
            metadata = wheel.read(names[0]).decode("utf-8", "replace")
    except (OSError, zipfile.BadZipFile) as exc:
        raise DltkError(f"{path} is not a readable wheel: {exc}") from exc
    for line in metadata.splitlines():
        if not line.strip():
            break  # the headers end at the first blank line
        key, _, value = line.partition(":")
        if key.lower() == "requires-python":
            return value.strip()
    return ""


@dataclass(frozen=True)
class IndexedFile:
    file: str
    project: str
    sha256: str
    size: int
    requires_python: str = ""


HEAD = '<!DOCTYPE html>\n<html>\n<head>\n<meta name="pypi:repository-version" content="1.0">\n'


def project_page(project: str, files: Iterable[IndexedFile]) -> str:
    """simple/<project>/index.html: one anchor per file, text = file name, href with #sha256."""
    lines = [HEAD + f"<title>Links for {html.escape(project)}</title>\n</head>\n<body>"]
    lines.append(f"<h1>Links for {html.escape(project)}</h1>")
    for item in sorted(files, key=lambda f: f.file):
        href = f"../../files/{quote(item.file)}#sha256={item.sha256}"
        attrs = f'href="{html.escape(href)}"'
        if item.requires_python:
            attrs += f' data-requires-python="{html.escape(item.requires_python)}"'
        lines.append(f"<a {attrs}>{html.escape(item.file)}</a><br>")
    return "\n".join(lines) + "\n</body>\n</html>\n"


def root_page(projects: Iterable[str]) -> str:
    """simple/index.html: one anchor per project."""
    lines = [HEAD + "<title>Simple index</title>\n</head>\n<body>"]
    for project in sorted(projects):
        lines.append(f'<a href="{quote(project)}/">{html.escape(project)}</a><br>')
    return "\n".join(lines) + "\n</body>\n</html>\n"


def _place(src: Path, dest: Path) -> None:
    """A hard link (no second copy on one file system), else a copy."""
    try:
        os.link(src, dest)
    except OSError:
        shutil.copy2(src, dest)


def write_index(files: Iterable[Path], out: Path) -> list[IndexedFile]:
    """OUT/files/ (the files) and OUT/simple/ (PEP 503) for `files`, replacing what OUT had.
    Two files of one name must be the same bytes (the same wheel in two wheelhouses)."""
    indexed: dict[str, IndexedFile] = {}
    sources: dict[str, Path] = {}
    for path in files:
        item = IndexedFile(
            path.name, dist_name(path.name), sha256_of(path), path.stat().st_size,
            requires_python(path),
        )  # fmt: skip
        if path.name in indexed and indexed[path.name].sha256 != item.sha256:
            raise DltkError(f"two different files named {path.name}: {sources[path.name]}, {path}")
        indexed[path.name] = item
        sources[path.name] = path
    for sub in ("files", "simple"):
        shutil.rmtree(out / sub, ignore_errors=True)
        (out / sub).mkdir(parents=True)
    by_project: dict[str, list[IndexedFile]] = {}
    for name, item in sorted(indexed.items()):
        _place(sources[name], out / "files" / name)
        by_project.setdefault(item.project, []).append(item)
    for project, items in by_project.items():
        (out / "simple" / project).mkdir()
        (out / "simple" / project / "index.html").write_text(project_page(project, items))
    (out / "simple" / "index.html").write_text(root_page(by_project))
    listing = [asdict(i) for i in sorted(indexed.values(), key=lambda i: i.file)]
    (out / "wheels.json").write_text(json.dumps({"files": listing}, indent=2) + "\n")
    return sorted(indexed.values(), key=lambda i: i.file)


def build_indexes(
    sets: Sequence[WheelSet], project: Path, out: Path, log: Callable[[str], None] = print
) -> dict[str, Path]:
    """One index per variant of `sets`, over every wheel of its sets' wheelhouses."""
    by_label: dict[str, list[Path]] = {}
    for wheel_set in sets:
        by_label.setdefault(variant_label(wheel_set), [])
        by_label[variant_label(wheel_set)] += wheel_files(project / wheel_set.directory)
    written = {}
    for label, files in by_label.items():
        start = time.monotonic()
        indexed = write_index(files, out / label)
        size = sum(i.size for i in indexed) / 1e6
        log(
            f"[wheels] index {out / label}/simple: {len(indexed)} files, "
            f"{len({i.project for i in indexed})} projects, {size:.1f} MB "
            f"({time.monotonic() - start:.1f} s)"
        )
        written[label] = out / label / "simple"
    return written


# --- the command ----------------------------------------------------------------------------


def run_wheels(args: argparse.Namespace) -> int:
    from dltk.mirror.hostvars import find_project

    project = find_project(args.project)
    every = wheel_sets(project, args.ngc_release)
    sets = select_sets(every, args.variant, args.only)
    pip = shlex.split(args.pip) if args.pip else [sys.executable, "-m", "pip"]
    results = download_sets(sets, project, pip, order=every)
    indexes = {} if args.wheelhouse_only else build_indexes(sets, project, project / args.out)
    if args.json:
        doc = {
            "sets": [asdict(r) for r in results],
            "indexes": {label: str(path) for label, path in indexes.items()},
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(doc, indent=2) + "\n")
    for label, path in indexes.items():
        print(
            f"[wheels] {label}: serve {path.parent} (python3 -m http.server -b 127.0.0.1 8080 "
            f"--directory {path.parent}) and use http://127.0.0.1:8080/simple, or file://{path}"
        )
    return 0


def add_action(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """`dltk mirror wheels` (added to `dltk mirror`'s actions)."""
    parser = sub.add_parser(
        "wheels",
        help="download the project's pinned wheels into wheelhouses and write a PEP 503 index "
        "(CPU: this Python; GPU: the NGC release's Python)",
    )
    parser.add_argument(
        "--variant", default="all", choices=(*VARIANTS, "all"), help="which variant (all)"
    )
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="SET",
        help="only this set (toolkit, tools, venv, gpu; repeat for more)",
    )
    parser.add_argument(
        "--ngc-release",
        default=DEFAULT_NGC_RELEASE,
        help="NGC release whose images' Python the GPU set is for (default: the release file's)",
    )
    parser.add_argument(
        "--out", type=Path, default=Path(INDEX_DIR), help=f"index directory ({INDEX_DIR})"
    )
    parser.add_argument(
        "--wheelhouse-only", action="store_true", help="download only, write no index"
    )
    parser.add_argument("--pip", default="", help="pip command (default: this Python's pip)")
    parser.add_argument("--json", type=Path, help="write what was downloaded to FILE (JSON)")
    parser.add_argument("--project", type=Path, help="project checkout (default: found)")
    parser.set_defaults(func=run_wheels)
