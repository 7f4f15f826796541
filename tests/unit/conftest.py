"""Shared fixtures for the unit tests of export/manifest/config/repo/validate."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from dltk.export.mnist import export_mnist
from dltk.export.onnx_io import ExportOptions, ExportResult

REPO_ROOT = Path(__file__).resolve().parents[2]

MANIFEST = """\
models:
  - name: mnist
    onnx: models/mnist.onnx
    export: mnist
    batch: {min: 1, opt: 16, max: 64}
    runtimes: [onnxruntime, python-onnxruntime]
    dynamic_batching: {max_queue_delay_microseconds: 100}
    instances: 1
"""


def build_tiny_onnx(
    path: Path,
    batch: int | str = "batch",
    seed: int = 0,
    input_name: str = "input",
    output_name: str = "logits",
    external_data: bool = False,
) -> Path:
    """mnist's interface (input [B,1,28,28] -> logits [B,10]) as one Flatten + MatMul + Add.

    `external_data` writes the weights to `<name>.data` next to the model.
    """
    rng = np.random.default_rng(seed)
    weight = numpy_helper.from_array(rng.normal(size=(784, 10)).astype(np.float32), "W")
    bias = numpy_helper.from_array(rng.normal(size=(10,)).astype(np.float32), "b")
    nodes = [
        helper.make_node("Flatten", [input_name], ["flat"], axis=1),
        helper.make_node("MatMul", ["flat", "W"], ["mm"]),
        helper.make_node("Add", ["mm", "b"], [output_name]),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, [batch, 1, 28, 28])],
        [helper.make_tensor_value_info(output_name, TensorProto.FLOAT, [batch, 10])],
        initializer=[weight, bias],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    if external_data:
        onnx.save_model(
            model,
            str(path),
            save_as_external_data=True,
            all_tensors_to_one_file=True,
            location=f"{path.name}.data",
            size_threshold=0,
        )
    else:
        onnx.save(model, str(path))
    return path


@pytest.fixture
def build_onnx() -> Callable[..., Path]:
    """build_tiny_onnx(path, batch="batch"): batch=1 makes a fixed-batch model."""
    return build_tiny_onnx


@pytest.fixture
def manifest_text() -> str:
    """A one-model manifest whose ONNX is tmp_path/models/mnist.onnx (see write_manifest)."""
    return MANIFEST


@pytest.fixture
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture
def tiny_onnx(tmp_path: Path) -> Path:
    return build_tiny_onnx(tmp_path / "models" / "mnist.onnx")


@pytest.fixture
def write_manifest(tmp_path: Path) -> Callable[[str], Path]:
    """Write a manifest (dedented) next to tmp_path/models/ and return its path."""

    def write(text: str) -> Path:
        path = tmp_path / "models.yml"
        path.write_text(textwrap.dedent(text))
        return path

    return write


@pytest.fixture(scope="session")
def exported_mnist(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, ExportResult]:
    """The real `dltk export --model mnist` (offline: sklearn digits), run once per session."""
    out = tmp_path_factory.mktemp("export")
    result = export_mnist(ExportOptions(out=out, seed=0, dataset="digits"))
    return out, result
