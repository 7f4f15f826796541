"""The GPU toolkit image's Python requirements resolve for the Python of every NGC release.

Defect 2: requirements-gpu.txt pinned matplotlib==3.11.2, which has no wheel for Python 3.10 (the
NGC 24.10 images), so the GPU image could not build. pip resolves the file here exactly as the
Dockerfile's gpu branch installs it (plus the release's tritonclient) for the release's Python,
without installing anything: `pip install --dry-run --ignore-installed --target T
--only-binary=:all: --python-version X.Y --platform manylinux...`. This needs PyPI (reachable on
the developer machines and in CI); without it the test fails with pip's message, it never skips.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from dltk.errors import DltkError
from dltk.release import RELEASES, get_release, toolkit_requirement

ROOT = Path(__file__).resolve().parents[2]
GPU_REQUIREMENTS = ROOT / "images" / "dltk" / "requirements-gpu.txt"
# x86_64 GPU servers; wheels tagged manylinux2014 (= manylinux_2_17) count too.
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64")
# What the NGC PyTorch images already have: kept at the image's versions, so not pinned.
KEPT_FROM_THE_BASE = {"setuptools", "wheel", "pyyaml", "jinja2", "onnx"}


def requirement_lines(path: Path) -> list[str]:
    return [
        line.split("#")[0].strip()
        for line in path.read_text().splitlines()
        if line.split("#")[0].strip()
    ]


def pip_resolve(python: str, requirements: Path, extra: list[str], target: Path) -> str:
    """pip's resolution of the requirements for another Python; raises with pip's message."""
    argv = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--dry-run",
        "--ignore-installed",
        "--disable-pip-version-check",
        "--target",
        str(target),
        "--only-binary=:all:",
        "--python-version",
        python,
        "--implementation",
        "cp",
    ]
    for platform in PLATFORMS:
        argv += ["--platform", platform]
    run = subprocess.run(
        [*argv, "-r", str(requirements), *extra], capture_output=True, text=True, timeout=600
    )
    errors = [line for line in run.stderr.splitlines() if not line.startswith("WARNING: Location")]
    assert run.returncode == 0, f"pip cannot resolve {requirements.name} for Python {python}:\n" + (
        "\n".join(errors[-15:])
    )
    return run.stdout


def test_every_gpu_pin_is_exact_and_tritonclient_comes_from_the_release() -> None:
    for line in requirement_lines(GPU_REQUIREMENTS):
        name = re.split(r"[\[=<>!~ ]", line)[0].lower()
        assert name != "tritonclient", "tritonclient comes from the release, not this file"
        assert "==" in line or name in KEPT_FROM_THE_BASE, f"{line!r} must be pinned with =="


@pytest.mark.parametrize("ngc", sorted(RELEASES))
def test_gpu_requirements_resolve_for_the_release_python(ngc: str, tmp_path: Path) -> None:
    release = get_release(ngc)
    tritonclient = toolkit_requirement(ngc, release.python)
    assert tritonclient == f"tritonclient[http,grpc]=={release.triton}"
    out = pip_resolve(release.python, GPU_REQUIREMENTS, [tritonclient], tmp_path / "t")
    would_install = out.splitlines()[-1]
    assert would_install.startswith("Would install ")
    assert f"tritonclient-{release.triton}" in would_install
    assert "matplotlib-3.10.9" in would_install


def test_the_old_pin_does_not_resolve_for_python_3_10(tmp_path: Path) -> None:
    """What the image had before: matplotlib==3.11.2 has no wheel for the NGC 24.10 Python."""
    old = tmp_path / "old.txt"
    old.write_text("matplotlib==3.11.2\n")
    with pytest.raises(AssertionError, match="pip cannot resolve old.txt for Python 3.10"):
        pip_resolve("3.10", old, [], tmp_path / "t")


def test_the_toolkit_refuses_a_base_of_another_python() -> None:
    with pytest.raises(
        DltkError, match=r"runs Python 3\.12\.3 but NGC 24\.10 images ship Python 3\.10"
    ):
        toolkit_requirement("24.10", "3.12.3")
    assert toolkit_requirement("25.08", "3.12.3") == "tritonclient[http,grpc]==2.60.0"
