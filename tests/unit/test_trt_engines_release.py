"""The NGC release of an image reference (plugins/filter/trt_engines_release.py): trt_engines'
preflight refuses a TensorRT image of another release than Triton's (engines are not portable)."""

from __future__ import annotations

import pytest
from role_plugins import load_role_plugin

rel = load_role_plugin("plugins/filter/trt_engines_release.py")


@pytest.mark.parametrize(
    ("image", "release"),
    [
        ("nvcr.io/nvidia/tensorrt:23.12-py3", "23.12"),
        ("nvcr.io/nvidia/tritonserver:26.02-py3", "26.02"),
        ("registry.local:5000/nvidia/tensorrt:23.12-py3", "23.12"),
        ("dltk/triton-cpu:2.40.0", ""),
        ("dltk/tensorrt-standin", ""),
    ],
)
def test_the_release_of_an_image_reference(image: str, release: str) -> None:
    assert rel.ngc_release_of(image) == release
