"""`dltk release`: what one NGC release of Triton brings (images, versions, driver needs).

The Triton release lives in ONE file, roles/dltk_ngc/defaults/main.json (the dltk_ngc role's
defaults, so the roles get it with no inventory): `dltk_ngc_release` (the release deployed),
`dltk_ngc_releases` (what each release brings), `dltk_ngc_cpu_triton` (the CPU Triton of the
sandbox: nvidia-pytriton's tritonserver) and `dltk_ngc_toolkit_tag` (the dltk/toolkit image tag).
This module reads it as scripts/dltk/release.json and inventory/group_vars/all/release.json is the
project inventory's view of it: both are symlinks to that file (packaging copies the content).
JSON, so the GPU toolkit build can read it with the NGC image's bare Python (no PyYAML).
Everything derived from the release is derived here: the NGC image tags (tritonserver, tensorrt,
pytorch), the Triton and tritonclient version, the Python of the NGC images (the GPU toolkit's
requirements must resolve for it), the CUDA version and the driver it needs.

Sources (NVIDIA's release notes, "Driver Requirements" and "GPU Requirements" sections):
- Triton Inference Server Release 24.10: CUDA 12.6.2, driver release 560 or later; on data-center
  GPUs 470.57+ (R470), 525.85+ (R525), 535.86+ (R535) or 545.23+ (R545) through forward
  compatibility; compute capability 6.0 and later.
  https://docs.nvidia.com/deeplearning/triton-inference-server/release-notes/rel-24-10.html
- Triton Inference Server Release 25.08: CUDA 13.0.0, driver release 575 or later; the same
  data-center forward-compatible branches; compute capability 7.5 and later.
  https://docs.nvidia.com/deeplearning/triton-inference-server/release-notes/rel-25-08.html
  Triton 2.60.0 (the server's 25.08 version update, triton-inference-server/server PR #8535; 2.59.0
  was 25.06, PR #8268; tritonclient 2.60.0 is on PyPI). Python 3.12: the 25.x NGC images are
  Ubuntu 24.04 with Python 3.12.3 (Triton's Release Compatibility Matrix,
  https://docs.nvidia.com/deeplearning/triton-inference-server/user-guide/docs/introduction/compatibility.html).
  TensorRT 10.13.2 is NOMINAL here: the first TensorRT with CUDA 13.0 (TensorRT 10.13.2 GA,
  2025-08-18, "Added support for CUDA 13.0", https://github.com/NVIDIA/TensorRT/releases), the CUDA
  25.08 is built on; the 25.08 support-matrix row itself was not in the stored docs. No engine key
  uses it: keys use the version trtexec reports in the image.
- NGC PyTorch 24.10: Python 3.10 (Ubuntu 22.04), the GPU toolkit's base; from 25.03 on the PyTorch
  images carry /etc/pip/constraint.txt that keeps pip from replacing their own packages.

The TensorRT version listed here is NVIDIA's nominal one, for documentation and planning without
the image; the engine cache key uses the version read from the TensorRT image itself.
"""

from __future__ import annotations

import argparse
import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path

from dltk.errors import DltkError

NGC_PATTERN = re.compile(r"^\d{2}\.\d{2}$")
RELEASE_FILE = Path(__file__).with_name("release.json")
HOME = "roles/dltk_ngc/defaults/main.json"


def load_release_file(path: Path = RELEASE_FILE) -> dict:
    """The release file's variables; one clear error when it is missing or not JSON."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise DltkError(f"cannot read the release file {path} ({HOME}): {exc}") from exc


_DATA = load_release_file()
DEFAULT_NGC_RELEASE: str = _DATA["dltk_ngc_release"]
TOOLKIT_TAG: str = _DATA["dltk_ngc_toolkit_tag"]
CPU_TRITON: dict[str, str] = dict(_DATA["dltk_ngc_cpu_triton"])


@dataclass(frozen=True)
class Release:
    """One NGC release of Triton and what it needs from the host."""

    ngc: str
    triton: str
    tensorrt: str
    cuda: str
    python: str
    min_driver_branch: int
    # Data-center GPUs may run older drivers of these branches through CUDA forward compatibility
    # (minimum full version per branch).
    forward_compat: tuple[str, ...]
    min_compute_capability: str

    @property
    def tritonserver_image(self) -> str:
        return f"nvcr.io/nvidia/tritonserver:{self.ngc}-py3"

    @property
    def tensorrt_image(self) -> str:
        return f"nvcr.io/nvidia/tensorrt:{self.ngc}-py3"

    @property
    def pytorch_image(self) -> str:
        return f"nvcr.io/nvidia/pytorch:{self.ngc}-py3"

    @property
    def tritonclient(self) -> str:
        """tritonclient of the same release (its perf_analyzer matches the server)."""
        return self.triton

    def as_dict(self) -> dict:
        data = asdict(self)
        data["forward_compat"] = list(self.forward_compat)
        for name in ("tritonserver_image", "tensorrt_image", "pytorch_image", "tritonclient"):
            data[name] = getattr(self, name)
        return data


RELEASES: dict[str, Release] = {
    ngc: Release(ngc=ngc, **{**facts, "forward_compat": tuple(facts["forward_compat"])})
    for ngc, facts in _DATA["dltk_ngc_releases"].items()
}


def build_args() -> dict[str, str]:
    """What scripts/build-images.sh passes to the image builds, from the release file."""
    release = get_release(DEFAULT_NGC_RELEASE)
    return {
        "DLTK_NGC_RELEASE": release.ngc,
        "TRITON_VERSION": CPU_TRITON["tritonserver"],
        "NVIDIA_PYTRITON_VERSION": CPU_TRITON["nvidia_pytriton"],
        "TRITONCLIENT_VERSION": CPU_TRITON["tritonclient"],
        "TRITON_CPU_IMAGE": f"dltk/triton-cpu:{CPU_TRITON['tritonserver']}",
        "TOOLKIT_IMAGE": f"dltk/toolkit:{TOOLKIT_TAG}",
    }


def get_release(ngc: str) -> Release:
    """The release record for an NGC tag like "24.10"; one clear error for anything else."""
    if not NGC_PATTERN.match(str(ngc)):
        raise DltkError(f"NGC release {ngc!r} must look like 24.10 (YY.MM)")
    if ngc not in RELEASES:
        known = ", ".join(sorted(RELEASES))
        raise DltkError(
            f"NGC release {ngc} is not in dltk's release table (known: {known}); "
            f"add it to {HOME} (dltk_ngc_releases) with its release notes' driver and CUDA facts"
        )
    return RELEASES[ngc]


def toolkit_requirement(ngc: str, python_version: str) -> str:
    """The release's tritonclient requirement for the GPU toolkit image, built FROM its NGC
    PyTorch image; refuses an image whose Python is not the release's (requirements-gpu.txt is
    checked for that Python: tests/unit/test_gpu_requirements.py)."""
    release = get_release(ngc)
    major_minor = ".".join(str(python_version).split(".")[:2])
    if major_minor != release.python:
        raise DltkError(
            f"the base image runs Python {python_version} but NGC {ngc} images ship Python "
            f"{release.python}: build FROM {release.pytorch_image} or fix the release table"
        )
    return f"tritonclient[http,grpc]=={release.tritonclient}"


def run(args: argparse.Namespace) -> int:
    if args.build_args:
        for key, value in build_args().items():
            print(f"{key}={value}")
        return 0
    release = get_release(args.ngc)
    if args.json:
        print(json.dumps(release.as_dict(), sort_keys=True))
    else:
        for key, value in sorted(release.as_dict().items()):
            print(f"{key}: {value}")
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "release",
        help="what an NGC release of Triton brings: image tags, versions, driver needs",
        description=f"Print what one NGC release brings (dltk_ngc_release in {HOME}).",
    )
    parser.add_argument("--ngc", default=DEFAULT_NGC_RELEASE, help="NGC release, e.g. 24.10")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.add_argument(
        "--build-args",
        action="store_true",
        help="print KEY=VALUE lines of the image builds (scripts/build-images.sh reads them)",
    )
    parser.set_defaults(func=run)
