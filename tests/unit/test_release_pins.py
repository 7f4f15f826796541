"""The Triton release lives in one file, roles/dltk_ngc/defaults/main.json (the release file).

Places that cannot read it are held to it here: pip's constraints.txt (tritonclient and
nvidia-pytriton pins), pyproject.toml's version (the dltk/toolkit image tag), and the symlinks
through which Python and the project inventory read it. And no other file may spell the release's
version strings, except the ones listed in ALLOWED with the reason they may.
"""

from __future__ import annotations

import json
import re
import subprocess
from fnmatch import fnmatch
from pathlib import Path

import pytest
import tomllib

from dltk import release

ROOT = Path(__file__).resolve().parents[2]
RELEASE_FILE = ROOT / "roles" / "dltk_ngc" / "defaults" / "main.json"
DATA = json.loads(RELEASE_FILE.read_text())

# Files that may spell the release's versions, each with its reason.
ALLOWED: dict[str, str] = {
    "roles/dltk_ngc/defaults/main.json": "the release file",
    "scripts/dltk/release.py": "the release table's sources (release notes) and its format hint",
    "tests/unit/test_release.py": "tests of the release: the facts of each release",
    "tests/unit/test_release_pins.py": "tests of the release",
    "tests/unit/test_driver_policy.py": "tests of the release's driver needs (24.10 needs R560)",
    "tests/integration/test_deploy_preflight.py": "tests of the release check's messages",
    "README.md": "docs: recorded output of a run and the release's description",
    "docs/*.md": "docs: measured results and the contract's description of the images",
    "roles/*/README.md": "docs: the roles' prose on the release",
    "molecule/*/README.md": "docs: the scenario's description",
    "CHANGELOG*": "history",
    "constraints.txt": "pip pins: test_constraints_pin_the_release_file_s_versions holds them",
    # The release's YY.MM format, explained with the release everyone knows.
    "playbooks/preflight.yml": "format hint: an unquoted 24.10 is the number 24.1",
    "roles/trt_engines/tasks/preflight.yml": 'format hint: release "like 24.10"',
    "roles/dltk_image/tasks/preflight.yml": 'format hint: release "like 24.10"',
    "molecule/trt_engines/verify.yml": "asserts the format hint's message (and a removed option's)",
    # Test doubles: a stand-in behaves like one fixed real version, and tests replay what a real
    # tritonserver / trtexec / perf_analyzer of that version printed.
    "molecule/gpu_sim/files/tensorrt/*": "STAND-IN trtexec and tensorrt module: TensorRT 10.5.0",
    "molecule/trt_engines/files/tensorrt/Dockerfile": "STAND-IN TensorRT image label",
    "molecule/nvidia_driver/host_vars/*": "scenario input: a release below the driver's branch",
    "molecule/nvidia_driver/verify.yml": "asserts the driver check's message for 24.10",
    "molecule/nvidia_driver_bad_input/verify.yml": "asserts the driver check's message for 24.10",
    "tests/unit/test_engines.py": "trtexec banners and cache keys of TensorRT 10.5.0 (parser data)",
    "tests/unit/test_image_record.py": "an image reference as test data",
    "scripts/dltk/*engines*": "format examples of a TensorRT version (e.g. 100500 -> 10.5.0)",
    "tests/unit/test_verify.py": "replayed tritonserver 2.51 answers",
    "tests/unit/test_verify_models.py": "replayed tritonserver 2.51 answers",
    "tests/unit/test_metrics.py": "replayed tritonserver 2.51 metrics",
    "tests/unit/test_perf.py": "replayed perf_analyzer 2.51 output",
    "tests/unit/test_repo_sync.py": "replayed tritonserver 2.51 repository index",
    "tests/unit/test_validate_rules.py": "a tritonserver 2.51 error message",
    "tests/unit/fake_pb_utils.py": "mirrors python_backend r24.10 (the one in Triton 2.51)",
    "tests/unit/test_gpu_requirements.py": "tests the release's Python against NGC 24.10's",
    "tests/integration/test_serve.py": "the CPU tritonserver's reported version",
    "tests/integration/test_verify.py": "the CPU tritonserver's reported version",
    "tests/integration/test_role_bad_input.py": "a fixed, valid release for a bad-input case",
    "scripts/dltk/tritonbin.py": "perf_analyzer ships only in the tritonclient 2.51.0 wheel",
    "scripts/dltk/repo/sync.py": "behaviour seen with Triton 2.51",
    "scripts/dltk/drill/manifest.py": "a tritonserver 2.51 error message",
    "scripts/install-deps.sh": "why libb64 is needed (tritonclient 2.51's perf_analyzer)",
    "images/dltk/requirements-gpu.txt": "why a pin: the NGC 24.10 images ship Python 3.10",
}


def version_patterns(data: dict) -> dict[str, re.Pattern[str]]:
    """The release's version strings as a reader would spell them."""
    ngc = data["dltk_ngc_release"]
    facts = data["dltk_ngc_releases"][ngc]
    cpu = data["dltk_ngc_cpu_triton"]

    def version(v: str) -> str:  # 2.51.0 also written 2.51
        major_minor, _, patch = v.rpartition(".")
        return rf"(?<![\w.]){re.escape(major_minor)}(?:\.{re.escape(patch)})?(?![\w]|\.\d)"

    return {
        f"NGC {ngc}": re.compile(rf"(?<![\w.]){re.escape(ngc)}(?![\w]|\.\d)"),
        f"Triton {facts['triton']}": re.compile(version(facts["triton"])),
        f"CPU Triton {cpu['tritonserver']}": re.compile(version(cpu["tritonserver"])),
        f"tritonclient {cpu['tritonclient']}": re.compile(version(cpu["tritonclient"])),
        f"TensorRT {facts['tensorrt']}": re.compile(
            rf"(?<![\w.]){re.escape(facts['tensorrt'])}(?![\w]|\.\d)|TensorRT v?"
            + re.escape(facts["tensorrt"].rsplit(".", 1)[0])
            + r"\b"
        ),
        f"toolkit {data['dltk_ngc_toolkit_tag']}": re.compile(
            rf"toolkit[: ]v?{re.escape(data['dltk_ngc_toolkit_tag'])}(?![\w]|\.\d)"
        ),
        f"nvidia-pytriton {cpu['nvidia_pytriton']}": re.compile(
            rf"pytriton\W{{1,3}}{re.escape(cpu['nvidia_pytriton'])}(?![\w]|\.\d)"
        ),
    }


def tracked_files(root: Path) -> list[str]:
    out = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return sorted(set(out.splitlines()))


def spelled_outside(root: Path, data: dict, allowed: dict[str, str]) -> list[str]:
    """'file:line: what' for each version string of the release outside the allowed files."""
    patterns = version_patterns(data)
    found = []
    for name in tracked_files(root):
        path = root / name
        if path.is_symlink() or not path.is_file() or any(fnmatch(name, a) for a in allowed):
            continue
        try:
            text = path.read_text()
        except UnicodeDecodeError:
            continue
        for number, line in enumerate(text.splitlines(), 1):
            for what, pattern in patterns.items():
                if pattern.search(line):
                    found.append(f"{name}:{number}: {what}: {line.strip()[:100]}")
    return found


def test_the_release_is_spelled_only_in_the_release_file_and_allowed_files() -> None:
    found = spelled_outside(ROOT, DATA, ALLOWED)
    assert not found, (
        "the release's versions are spelled outside the release file "
        "(roles/dltk_ngc/defaults/main.json): read them from it, or add the file to ALLOWED "
        "with its reason:\n" + "\n".join(found)
    )


def test_the_grep_catches_a_spelled_version(tmp_path: Path) -> None:
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / "Dockerfile").write_text(
        "ARG TRITON=2.51\nFROM x:24.10-py3\nRUN echo 2.510 10.50\n"
    )
    (tmp_path / "ok.md").write_text("2.51.0\n")
    (tmp_path / "other.txt").write_text("lazy-importer==0.1.0 tensorrt 10.13.2 24.1 124.10\n")
    found = spelled_outside(tmp_path, DATA, {"ok.md": "docs"})
    assert found == [
        "Dockerfile:1: Triton 2.51.0: ARG TRITON=2.51",
        "Dockerfile:1: CPU Triton 2.51.0: ARG TRITON=2.51",
        "Dockerfile:1: tritonclient 2.51.0: ARG TRITON=2.51",
        "Dockerfile:2: NGC 24.10: FROM x:24.10-py3",
    ]


def _pins(text: str) -> dict[str, str]:
    pins = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" in line:
            name, _, version = line.partition("==")
            pins[name.strip().lower()] = version.strip()
    return pins


def test_constraints_pin_the_release_file_s_versions() -> None:
    pins = _pins((ROOT / "constraints.txt").read_text())
    cpu = DATA["dltk_ngc_cpu_triton"]
    assert pins["tritonclient"] == cpu["tritonclient"]
    assert pins["nvidia-pytriton"] == cpu["nvidia_pytriton"]


def test_constraints_that_disagree_are_caught() -> None:
    pins = _pins("numpy==2.0\ntritonclient==2.60.0  # moved\nnvidia-pytriton==0.7.0\n")
    assert pins["tritonclient"] != DATA["dltk_ngc_cpu_triton"]["tritonclient"]


def test_the_toolkit_tag_is_the_package_version() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert pyproject["project"]["version"] == DATA["dltk_ngc_toolkit_tag"]


def test_python_and_the_inventory_read_the_release_file_itself() -> None:
    for link in ("scripts/dltk/release.json", "inventory/group_vars/all/release.json"):
        assert (ROOT / link).resolve() == RELEASE_FILE.resolve(), link
    assert release.RELEASE_FILE.resolve() == RELEASE_FILE.resolve()
    assert release.DEFAULT_NGC_RELEASE == DATA["dltk_ngc_release"]
    assert release.build_args() == {
        "DLTK_NGC_RELEASE": DATA["dltk_ngc_release"],
        "TRITON_VERSION": DATA["dltk_ngc_cpu_triton"]["tritonserver"],
        "NVIDIA_PYTRITON_VERSION": DATA["dltk_ngc_cpu_triton"]["nvidia_pytriton"],
        "TRITONCLIENT_VERSION": DATA["dltk_ngc_cpu_triton"]["tritonclient"],
        "TRITON_CPU_IMAGE": f"dltk/triton-cpu:{DATA['dltk_ngc_cpu_triton']['tritonserver']}",
        "TOOLKIT_IMAGE": f"dltk/toolkit:{DATA['dltk_ngc_toolkit_tag']}",
    }


@pytest.mark.parametrize(
    "role", ["dltk_image", "nvidia_driver", "triton_server", "triton_verify", "trt_engines"]
)
def test_roles_that_use_the_release_depend_on_the_role_holding_it(role: str) -> None:
    """So they get it without the project's inventory (roles travel as a collection): directly
    or through the shared namespace role `dltk`, which depends on dltk_ngc."""
    from test_role_contracts import dependencies

    assert "dltk_ngc" in dependencies(ROOT / "roles", role)
