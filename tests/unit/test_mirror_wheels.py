"""`dltk mirror wheels` (scripts/dltk/mirror/wheels.py): which wheels, pip's arguments per variant,
the wheelhouses and the PEP 503 index.

pip is replaced by FakePip, a TEST DOUBLE of `pip download`: it records each command and writes an
empty file named like a wheel for each requirement it is given (reusing one a --find-links
directory has, as pip does). It resolves nothing. tests/integration/test_mirror_wheels.py serves an
index of real wheels and has the real pip install from it.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import zipfile
from html.parser import HTMLParser
from pathlib import Path

import pytest
import tomllib

from dltk.errors import DltkError
from dltk.mirror import apt_mirror
from dltk.mirror import wheels as mw
from dltk.release import DEFAULT_NGC_RELEASE, RELEASES, get_release

ROOT = Path(__file__).resolve().parents[2]
PIP = ["pip-test-double"]


class FakePip:
    """TEST DOUBLE of `pip download -d DIR ...`: records argv; for every requirement (arguments
    and -r files) writes DIR/<name>-1.0-py3-none-any.whl, copied from a --find-links directory
    when one has it. `fail` makes it exit 1 with pip-like stderr."""

    def __init__(self, fail: str = "") -> None:
        self.calls: list[list[str]] = []
        self.fail = fail

    def __call__(self, argv: list[str]) -> subprocess.CompletedProcess:
        self.calls.append(argv)
        noise = "WARNING: Location '/opt/none' is ignored: it is either a non-existing path\n"
        if self.fail:
            return subprocess.CompletedProcess(argv, 1, "", noise + self.fail)
        assert argv[: len(PIP)] == PIP and argv[len(PIP)] == "download"
        dest = Path(argv[argv.index("-d") + 1])
        links = [Path(argv[i + 1]) for i, a in enumerate(argv) if a == "--find-links"]
        reqs = []
        args = iter(argv[len(PIP) + 1 :])
        for arg in args:
            if arg in ("-d", "-c", "--find-links", "--python-version", "--implementation"):
                next(args)
            elif arg == "--platform":
                next(args)
            elif arg == "-r":
                reqs += mw.read_requirements(Path(next(args)))
            elif not arg.startswith("-"):
                reqs.append(arg)
        for req in reqs:
            name = mw.requirement_name(req).replace("-", "_") + "-1.0-py3-none-any.whl"
            found = [d / name for d in links if (d / name).is_file()]
            (dest / name).write_bytes(found[0].read_bytes() if found else req.encode())
        return subprocess.CompletedProcess(argv, 0, "", noise)


def _project(tmp_path: Path) -> Path:
    """A project with the real requirement files, pyproject.toml and Makefile."""
    for rel in (
        "pyproject.toml",
        "Makefile",
        "constraints.txt",
        "images/dltk/requirements.txt",
        "images/dltk/requirements-tools.txt",
        "images/dltk/requirements-gpu.txt",
        "images/triton-cpu/requirements.txt",
    ):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes((ROOT / rel).read_bytes())
    return tmp_path


# --- names -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "normalized"),
    [
        ("Jinja2", "jinja2"),
        ("ruamel.yaml", "ruamel-yaml"),
        ("typing_extensions", "typing-extensions"),
        ("Foo__Bar-._Baz", "foo-bar-baz"),
        ("nvidia-cuda-runtime-cu12", "nvidia-cuda-runtime-cu12"),
    ],
)
def test_names_are_normalized_as_pep_503_says(name: str, normalized: str) -> None:
    assert mw.normalize(name) == normalized


@pytest.mark.parametrize(
    ("filename", "project"),
    [
        ("markdown_it_py-4.3.0-py3-none-any.whl", "markdown-it-py"),
        ("torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl", "torch"),
        ("zope.interface-8.7-cp311-cp311-manylinux1_x86_64.whl", "zope-interface"),
        ("PyYAML-6.0.3.tar.gz", "pyyaml"),
        ("ruamel.yaml-0.19.1.zip", "ruamel-yaml"),
    ],
)
def test_the_project_of_a_file_name(filename: str, project: str) -> None:
    assert mw.dist_name(filename) == project


def test_a_file_that_is_no_distribution_is_refused() -> None:
    with pytest.raises(DltkError, match="notes.txt is neither a wheel nor an sdist"):
        mw.dist_name("notes.txt")


def test_requirement_names_and_pins_as_pip_c_picks_them() -> None:
    pins = mw.constraint_pins(ROOT / "constraints.txt")
    assert mw.requirement_name("tritonclient[http,grpc]==9.9") == "tritonclient"
    assert mw.requirement_name("setuptools>=68") == "setuptools"
    assert mw.pinned("torch", pins) == f"torch=={pins['torch']}"
    assert mw.pinned("PyYAML", pins) == f"PyYAML=={pins['pyyaml']}"
    assert mw.pinned("rich==1.0", pins) == "rich==1.0"
    assert mw.pinned("not-pinned-anywhere", pins) == "not-pinned-anywhere"


# --- the sets ----------------------------------------------------------------------------------


def test_the_cpu_sets_are_what_the_images_and_make_venv_install() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    toolkit, tools, venv = mw.cpu_sets(ROOT)
    assert [s.directory for s in (toolkit, tools, venv)] == [
        "build/wheelhouse",
        "build/wheelhouse-tools",
        "build/wheelhouse-venv",
    ]
    assert all(
        s.variant == "cpu" and s.constraints and not s.python for s in (toolkit, tools, venv)
    )
    # the toolkit set: the package's dependencies, both images' files, nvidia-pytriton alone
    assert toolkit.downloads[0].requirements == tuple(pyproject["dependencies"])
    assert set(toolkit.downloads[0].files) == {
        "images/dltk/requirements.txt",
        "images/triton-cpu/requirements.txt",
    }
    assert toolkit.downloads[1] == mw.Download(("nvidia-pytriton",), no_deps=True)
    assert tools.downloads[0].files == ("images/dltk/requirements-tools.txt",)
    # the venv: every extra (what make venv installs), the build backend, the ansible bundle wheel
    lines = venv.requirement_lines(ROOT)
    for extra in pyproject["optional-dependencies"].values():
        assert set(extra) <= set(lines)
    assert "setuptools>=68" in lines
    makefile = (ROOT / "Makefile").read_text()
    bundle = re.search(r"^ANSIBLE_BUNDLE := (\S+)$", makefile, re.MULTILINE)
    assert bundle and venv.downloads[1] == mw.Download((f"ansible=={bundle[1]}",), no_deps=True)
    installed = re.search(r"-e '\.\[([a-z,]+)\]'", makefile)
    assert installed, "make venv installs the package with its extras"
    assert sorted(installed[1].split(",")) == sorted(pyproject["optional-dependencies"])


@pytest.mark.parametrize("ngc", sorted(RELEASES))
def test_the_gpu_set_is_for_the_release_python_without_our_constraints(ngc: str) -> None:
    release = get_release(ngc)
    gpu = mw.gpu_set(ngc)
    assert (gpu.variant, gpu.python, gpu.constraints) == ("gpu", release.python, False)
    assert gpu.directory == f"build/wheelhouse-gpu-py{release.python}"
    lines = gpu.requirement_lines(ROOT)
    assert lines[-1] == f"tritonclient[http,grpc]=={release.tritonclient}"
    assert lines[:-1] == mw.read_requirements(ROOT / "images/dltk/requirements-gpu.txt")
    assert mw.variant_label(gpu) == f"gpu-py{release.python}"


def test_the_gpu_pip_arguments_name_the_images_python_and_platforms() -> None:
    gpu = mw.gpu_set(DEFAULT_NGC_RELEASE)
    python = get_release(DEFAULT_NGC_RELEASE).python
    argv = mw.download_argv(PIP, gpu, gpu.downloads[0], Path("/p"))
    assert argv[:6] == [*PIP, "download", "-q", "-d", "/p/" + gpu.directory, "--only-binary=:all:"]
    assert argv[argv.index("--python-version") + 1] == python
    assert argv[argv.index("--implementation") + 1] == "cp"
    platforms = [argv[i + 1] for i, a in enumerate(argv) if a == "--platform"]
    assert platforms[0] == "manylinux_2_28_x86_64" and platforms[-1] == "manylinux2014_x86_64"
    assert "manylinux_2_17_x86_64" in platforms and "manylinux_2_29_x86_64" not in platforms
    assert "-c" not in argv  # constraints.txt pins our Python's versions
    assert argv[-3:] == [
        "-r",
        "/p/images/dltk/requirements-gpu.txt",
        gpu.requirement_lines(ROOT)[-1],
    ]


def test_the_cpu_pip_arguments_are_this_python_s_with_the_constraints() -> None:
    toolkit = mw.cpu_sets(ROOT)[0]
    argv = mw.download_argv(PIP, toolkit, toolkit.downloads[1], Path("/p"), [Path("/w")])
    assert argv == [
        *PIP,
        "download",
        "-q",
        "-d",
        "/p/build/wheelhouse",
        "--only-binary=:all:",
        "-c",
        "/p/constraints.txt",
        "--no-deps",
        "--find-links",
        "/w",
        "nvidia-pytriton",
    ]


def test_sets_are_selected_by_variant_or_name() -> None:
    sets = mw.wheel_sets(ROOT)
    assert [s.name for s in mw.select_sets(sets, "all", [])] == ["toolkit", "tools", "venv", "gpu"]
    assert [s.name for s in mw.select_sets(sets, "gpu", [])] == ["gpu"]
    assert [s.name for s in mw.select_sets(sets, "all", ["tools", "toolkit"])] == [
        "toolkit",
        "tools",
    ]
    with pytest.raises(DltkError, match="unknown wheel set torch: choose from toolkit, tools"):
        mw.select_sets(sets, "all", ["torch"])


def test_a_makefile_without_the_bundle_version_is_one_clear_error(tmp_path: Path) -> None:
    project = _project(tmp_path)
    (project / "Makefile").write_text("venv:\n\ttrue\n")
    with pytest.raises(DltkError, match="sets no ANSIBLE_BUNDLE"):
        mw.cpu_sets(project)


# --- downloads (FakePip) -----------------------------------------------------------------------


def test_later_sets_reuse_and_leave_out_the_earlier_sets_wheels(tmp_path: Path) -> None:
    project = _project(tmp_path)
    pip = FakePip()
    logged: list[str] = []
    results = mw.download_sets(mw.wheel_sets(project), project, PIP, pip, logged.append)
    assert [r.name for r in results] == ["toolkit", "tools", "venv", "gpu"]
    toolkit = set(results[0].files)
    assert "nvidia_pytriton-1.0-py3-none-any.whl" in toolkit
    assert "numpy-1.0-py3-none-any.whl" in toolkit
    # tools and venv hold only what the sets before them lack
    assert "torch-1.0-py3-none-any.whl" in results[1].files
    assert not toolkit & set(results[1].files)
    assert "ansible-1.0-py3-none-any.whl" in results[2].files
    assert not (toolkit | set(results[1].files)) & set(results[2].files)
    assert results[2].left_out > 0  # numpy, onnx, ... came again through the extras
    # the GPU set is another Python: it neither finds nor leaves out the CPU wheels
    gpu_call = pip.calls[-1]
    assert "--find-links" not in gpu_call and "--python-version" in gpu_call
    assert "onnx-1.0-py3-none-any.whl" in results[3].files
    venv_calls = [c for c in pip.calls if c[c.index("-d") + 1].endswith("wheelhouse-venv")]
    assert all(c.count("--find-links") == 2 for c in venv_calls)
    assert sum(r.bytes for r in results) == sum(
        (project / r.directory / f).stat().st_size for r in results for f in r.files
    )
    # pip's notes about this machine's missing find-links locations are not passed on
    assert logged and not any("WARNING: Location" in line for line in logged)


def test_a_set_alone_still_leaves_out_the_earlier_sets_wheels(tmp_path: Path) -> None:
    project = _project(tmp_path)
    every = mw.wheel_sets(project)
    mw.download_sets(every[:1], project, PIP, FakePip(), lambda _: None)  # toolkit
    pip = FakePip()
    venv = mw.select_sets(every, "all", ["venv"])
    (result,) = mw.download_sets(venv, project, PIP, pip, lambda _: None, order=every)
    toolkit = {p.name for p in mw.wheel_files(project / "build/wheelhouse")}
    assert "numpy-1.0-py3-none-any.whl" in toolkit and result.left_out > 0
    assert not toolkit & set(result.files)
    # the tools wheelhouse does not exist yet: only the toolkit's is a find-links directory
    links = [c[i + 1] for c in pip.calls for i, a in enumerate(c) if a == "--find-links"]
    assert set(links) == {str(project / "build/wheelhouse")}


def test_a_failed_download_says_which_set_and_what_pip_said(tmp_path: Path) -> None:
    project = _project(tmp_path)
    pip = FakePip(fail="ERROR: No matching distribution found for onnxruntime-gpu==1.0\n")
    gpu = mw.select_sets(mw.wheel_sets(project), "gpu", [])
    with pytest.raises(DltkError) as caught:
        mw.download_sets(gpu, project, PIP, pip, print)
    message = str(caught.value)
    assert message.startswith("pip download of the gpu wheels failed")
    assert message.endswith("ERROR: No matching distribution found for onnxruntime-gpu==1.0")
    assert "WARNING: Location" not in message


# --- the index ---------------------------------------------------------------------------------


def _wheel(folder: Path, filename: str, requires_python: str = "") -> Path:
    """A small real wheel (a zip with a METADATA whose headers may name Requires-Python)."""
    dist = filename.split("-")[0]
    path = folder / filename
    with zipfile.ZipFile(path, "w") as zf:
        headers = f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n"
        if requires_python:
            headers += f"Requires-Python: {requires_python}\n"
        zf.writestr(f"{dist}-1.0.dist-info/METADATA", headers + "\nRequires-Python: <0 (body)\n")
        zf.writestr(f"{dist}/__init__.py", f"NAME = {filename!r}\n")
    return path


class Anchors(HTMLParser):
    """The anchors of a page: (href, attributes, text), as pip's index parser reads them."""

    def __init__(self) -> None:
        super().__init__()
        self.anchors: list[tuple[str, dict[str, str | None], str]] = []
        self._open: dict[str, str | None] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self._open = dict(attrs)

    def handle_data(self, data: str) -> None:
        if self._open is not None:
            self.anchors.append((self._open["href"] or "", self._open, data))
            self._open = None


def _anchors(page: Path) -> list[tuple[str, dict[str, str | None], str]]:
    parser = Anchors()
    parser.feed(page.read_text())
    return parser.anchors


def test_the_index_links_every_file_with_its_sha256(tmp_path: Path) -> None:
    house = tmp_path / "house"
    house.mkdir()
    files = [
        _wheel(house, "Typing_Extensions-1.0-py3-none-any.whl", ">=3.9"),
        _wheel(house, "zope.event-1.0-py3-none-any.whl"),
        _wheel(house, "zope_event-1.1-py3-none-any.whl", ">=3.10,<4"),
    ]
    out = tmp_path / "index"
    indexed = mw.write_index(files, out)
    assert [i.project for i in indexed] == ["typing-extensions", "zope-event", "zope-event"]
    root = _anchors(out / "simple" / "index.html")
    assert [(href, text) for href, _, text in root] == [
        ("typing-extensions/", "typing-extensions"),
        ("zope-event/", "zope-event"),
    ]
    page = out / "simple" / "zope-event" / "index.html"
    anchors = _anchors(page)
    assert [text for _, _, text in anchors] == [
        "zope.event-1.0-py3-none-any.whl",
        "zope_event-1.1-py3-none-any.whl",
    ]
    for href, attrs, text in anchors:
        url, _, fragment = href.partition("#")
        target = (page.parent / url).resolve()
        assert target == (out / "files" / text).resolve() and target.is_file()
        assert fragment == "sha256=" + hashlib.sha256((house / text).read_bytes()).hexdigest()
        assert os.stat(target).st_ino == os.stat(house / text).st_ino  # a hard link, no copy
        wanted = ">=3.10,<4" if text.startswith("zope_event") else None
        assert attrs.get("data-requires-python") == wanted
    assert "&gt;=3.10,&lt;4" in page.read_text()  # escaped in the HTML
    assert "pypi:repository-version" in page.read_text()
    document = (out / "wheels.json").read_text()
    assert '"sha256": "' + indexed[0].sha256 in document


def test_a_new_index_replaces_the_old_one(tmp_path: Path) -> None:
    house = tmp_path / "house"
    house.mkdir()
    old = _wheel(house, "gone-1.0-py3-none-any.whl")
    kept = _wheel(house, "kept-1.0-py3-none-any.whl")
    mw.write_index([old, kept], tmp_path / "index")
    mw.write_index([kept], tmp_path / "index")
    assert not (tmp_path / "index" / "simple" / "gone").exists()
    assert sorted(p.name for p in (tmp_path / "index" / "files").iterdir()) == [kept.name]
    assert [t for _, _, t in _anchors(tmp_path / "index" / "simple" / "index.html")] == ["kept"]


def test_two_different_files_of_one_name_are_refused(tmp_path: Path) -> None:
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
    one = _wheel(tmp_path / "a", "x-1.0-py3-none-any.whl")
    two = _wheel(tmp_path / "b", "x-1.0-py3-none-any.whl", ">=3.12")
    same = tmp_path / "c"
    same.mkdir()
    (same / one.name).write_bytes(one.read_bytes())
    assert len(mw.write_index([one, same / one.name], tmp_path / "ok")) == 1
    with pytest.raises(DltkError, match="two different files named x-1.0-py3-none-any.whl"):
        mw.write_index([one, two], tmp_path / "index")


def test_one_index_per_variant_over_its_sets(tmp_path: Path) -> None:
    project = _project(tmp_path)
    sets = mw.wheel_sets(project)
    mw.download_sets(sets, project, PIP, FakePip(), lambda _: None)
    # FakePip's files are not zips: give the index real wheels of the same names
    for s in sets:
        for path in mw.wheel_files(project / s.directory):
            path.unlink()
            _wheel(path.parent, path.name)
    written = mw.build_indexes(sets, project, tmp_path / "out", lambda _: None)
    python = get_release(DEFAULT_NGC_RELEASE).python
    cpu = f"cpu-py{sys.version_info.major}.{sys.version_info.minor}"
    assert sorted(written) == sorted([cpu, f"gpu-py{python}"])
    cpu_projects = {t for _, _, t in _anchors(written[cpu] / "index.html")}
    assert {"torch", "nvidia-pytriton", "ansible", "numpy"} <= cpu_projects
    gpu_projects = {t for _, _, t in _anchors(written[f"gpu-py{python}"] / "index.html")}
    assert "onnxruntime-gpu" in gpu_projects and "torch" not in gpu_projects


def test_the_command_is_an_action_of_dltk_mirror(tmp_path: Path, monkeypatch) -> None:
    project = _project(tmp_path)
    (project / "roles" / "dltk_ngc").mkdir(parents=True)  # what find_project looks for
    pip = FakePip()
    monkeypatch.setattr(mw, "download_sets", _download_with(pip))
    rc = apt_mirror.main(
        ["wheels", "--project", str(project), "--only", "tools", "--wheelhouse-only"]
    )
    assert rc == 0
    assert [c[c.index("-d") + 1] for c in pip.calls] == [str(project / "build/wheelhouse-tools")]
    assert not (project / mw.INDEX_DIR).exists()
    rc = apt_mirror.main(["wheels", "--project", str(project), "--only", "nope"])
    assert rc == 1


def _download_with(pip: FakePip):
    real = mw.download_sets

    def download(sets, project, pip_cmd, runner=None, log=print, order=None):
        return real(sets, project, PIP, pip, log, order)

    return download
