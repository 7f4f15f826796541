"""dltk_image's record of its last build (plugins/filter/image_record.py): a
converged run skips the build context only when the tag still names the recorded build of these
inputs; every other case builds (issue 12 item 7). Loaded by path: the filter travels with the role.
"""

from __future__ import annotations

import base64
import json

import pytest
from role_plugins import load_role_plugin

ir = load_role_plugin("plugins/filter/image_record.py")

REF, BASE = "dltk/toolkit:0.1.0", "dltk/debian-base:bookworm"
INPUTS = {"sources": ["a" * 64, "b" * 64], "variant": "cpu", "release": ""}
IMAGES = [
    {"Id": "sha256:tool", "RepoTags": [REF]},
    {"Id": "sha256:base", "RepoTags": [BASE, "dltk/debian-base:latest"]},
]


def slurped(doc: object) -> dict:
    return {"content": base64.b64encode(json.dumps(doc).encode()).decode()}


RECORD = {"inputs": {**INPUTS, "base": "sha256:base"}, "image": "sha256:tool"}


def state(record: dict, images=IMAGES, inputs=INPUTS) -> dict:
    return ir.dltk_image_state(record, images, REF, BASE, inputs)


def test_the_recorded_build_of_these_inputs_is_current():
    got = state(slurped(RECORD))
    assert got["current"] is True
    assert got["present"] is True
    assert got["inputs"] == RECORD["inputs"]


@pytest.mark.parametrize(
    ("record", "images", "inputs", "why"),
    [
        (
            {"failed": True, "msg": "file not found"},
            IMAGES,
            INPUTS,
            "no record of an earlier build",
        ),
        ({"content": base64.b64encode(b"[1]").decode()}, IMAGES, INPUTS, "no record"),
        ({"content": "not base64!"}, IMAGES, INPUTS, "no record"),
        (slurped(RECORD), IMAGES[1:], INPUTS, "the image is absent"),
        (slurped(RECORD), IMAGES[:1], INPUTS, "the base image dltk/debian-base:bookworm is not"),
        (
            slurped(RECORD),
            [{"Id": "sha256:other", "RepoTags": [REF]}, IMAGES[1]],
            INPUTS,
            "the tag names another image than the recorded build",
        ),
        (slurped(RECORD), IMAGES, {**INPUTS, "sources": ["c" * 64]}, "sources changed"),
        (slurped(RECORD), IMAGES, {**INPUTS, "variant": "gpu"}, "variant changed"),
        (
            slurped(RECORD),
            [IMAGES[0], {"Id": "sha256:newbase", "RepoTags": [BASE]}],
            INPUTS,
            "base changed",
        ),
    ],
    ids=[
        "no record",
        "not an object",
        "unreadable",
        "image gone",
        "base gone",
        "tag moved",
        "sources",
        "arguments",
        "base rebuilt",
    ],
)
def test_anything_else_builds_and_says_why(record, images, inputs, why):
    got = state(record, images, inputs)
    assert got["current"] is False
    # present: the tag names an image (the check-mode prediction reads it).
    assert got["present"] is (why != "the image is absent")
    assert why in got["why"]
    assert got["why"].startswith("to be built: ")


def test_the_filter_is_registered_under_its_name():
    assert ir.FilterModule().filters()["dltk_image_state"] is ir.dltk_image_state


def test_the_builds_files_on_the_control_node_and_the_host() -> None:
    files = ir.dltk_image_files(
        {"build_dir": "/opt/dltk/image", "tmpdir": "", "host": "gpu-01", "project_dir": "/p",
         "sources": ["images/dltk/Dockerfile", "scripts/dltk"], "variant": "cpu",
         "wheels_archive": "/p/build/toolkit-wheels.tar"}
    )  # fmt: skip
    assert files == {
        "src_tar_local": "/tmp/dltk-image-gpu-01.tar",
        "src_tar": "/opt/dltk/image.src.tar",
        "wheels_tar": "/opt/dltk/image.wheels.tar",
        "record": "/opt/dltk/image.built.json",
        "inputs": ["/p/images/dltk/Dockerfile", "/p/scripts/dltk", "/p/build/toolkit-wheels.tar"],
    }
    gpu = ir.dltk_image_files(
        {"build_dir": "/b", "tmpdir": "/scratch", "host": "h", "project_dir": "/p",
         "sources": ["pyproject.toml"], "variant": "gpu", "wheels_archive": "/w.tar"}
    )  # fmt: skip
    assert gpu["src_tar_local"] == "/scratch/dltk-image-h.tar" and gpu["inputs"] == [
        "/p/pyproject.toml"
    ]


def test_package_files_the_project_no_longer_has_are_stale(tmp_path) -> None:
    package = tmp_path / "dltk"
    (package / "verify").mkdir(parents=True)
    (package / "cli.py").write_text("")
    (package / "verify" / "options.py").write_text("")
    (package / "__pycache__").mkdir()
    (package / "__pycache__" / "cli.cpython-311.pyc").write_text("")
    ctx = "/ctx/scripts/dltk"
    host = [f"{ctx}/cli.py", f"{ctx}/verify", f"{ctx}/verify/options.py", f"{ctx}/old.py",
            f"{ctx}/__pycache__", f"{ctx}/__pycache__/cli.cpython-311.pyc"]  # fmt: skip
    stale = [f"{ctx}/old.py", f"{ctx}/__pycache__", f"{ctx}/__pycache__/cli.cpython-311.pyc"]
    assert ir.dltk_image_stale(host, str(package), ctx) == stale


def test_build_arguments_of_each_variant_and_the_wheel_index() -> None:
    build_args = ir.FilterModule().filters()["dltk_image_build_args"]
    cpu = {"base": BASE, "variant": "cpu", "release": "", "wheel_index": "http://m:8080/simple"}
    # cpu: the two arguments build-images.sh passes; it installs from its wheel archive
    assert build_args(cpu) == {"BASE_IMAGE": BASE, "DLTK_VARIANT": "cpu"}
    gpu = {"base": "ngc/pytorch:x", "variant": "gpu", "release": "99.01", "wheel_index": ""}
    assert build_args(gpu) == {
        "BASE_IMAGE": "ngc/pytorch:x",
        "DLTK_VARIANT": "gpu",
        "DLTK_NGC_RELEASE": "99.01",
    }
    # a plain-http index is trusted by its HOST:PORT (pip ignores it otherwise), https is not
    plain = build_args({**gpu, "wheel_index": "http://user@mirror.internal:8080/gpu/simple"})
    assert plain["DLTK_WHEEL_INDEX"] == "http://user@mirror.internal:8080/gpu/simple"
    assert plain["DLTK_WHEEL_TRUSTED_HOST"] == "mirror.internal:8080"
    tls = build_args({**gpu, "wheel_index": "https://mirror.internal/simple"})
    assert tls["DLTK_WHEEL_INDEX"] == "https://mirror.internal/simple"
    assert "DLTK_WHEEL_TRUSTED_HOST" not in tls
