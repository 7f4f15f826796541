"""config.pbtxt rendering: golden files per template, dtype mapping, schema-valid output."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import onnx
import pytest
from google.protobuf import text_format
from onnx import helper
from tritonclient.grpc import model_config_pb2

from dltk.config import ONNX_TO_TRITON, render_config, triton_dtype
from dltk.errors import DltkError
from dltk.manifest import BatchRange, DynamicBatching, ModelSpec, TensorSpec
from dltk.validate import check_config

GOLDEN = Path(__file__).parent / "golden"
# DLTK_UPDATE_GOLDEN=1 rewrites the golden files; review the diff before committing.
UPDATE = os.environ.get("DLTK_UPDATE_GOLDEN") == "1"

MNIST = ModelSpec(
    name="mnist",
    onnx=Path("mnist.onnx"),
    batch=BatchRange(1, 16, 64),
    runtimes=("onnxruntime", "python-onnxruntime"),
    dynamic_batching=DynamicBatching(100),
    instances=1,
    inputs=(TensorSpec("input", "FLOAT", (1, 28, 28)),),
    outputs=(TensorSpec("logits", "FLOAT", (10,)),),
)
MULTI = ModelSpec(
    name="ranker",
    onnx=Path("ranker.onnx"),
    batch=BatchRange(0, 0, 0),
    runtimes=("onnxruntime",),
    instances=2,
    inputs=(TensorSpec("ids", "INT64", (1, -1)), TensorSpec("mask", "BOOL", (1, -1))),
    outputs=(TensorSpec("scores", "FLOAT16", (1, -1)),),
)

CASES = {
    "onnxruntime": (MNIST, "onnxruntime", "cpu"),
    "python_onnxruntime": (MNIST, "python-onnxruntime", "cpu"),
    "onnxruntime_gpu_preferred": (
        replace(MNIST, dynamic_batching=DynamicBatching(500, (16, 32)), instances=2),
        "onnxruntime",
        "gpu",
    ),
    "onnxruntime_fixed_batch": (MULTI, "onnxruntime", "cpu"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_rendered_config_matches_golden_file(case: str) -> None:
    model, runtime, kind = CASES[case]
    text = render_config(model, runtime, kind)
    golden = GOLDEN / f"{case}.config.pbtxt"
    if UPDATE:
        golden.write_text(text)
    assert text == golden.read_text(), f"differs from {golden} (DLTK_UPDATE_GOLDEN=1 rewrites)"


@pytest.mark.parametrize("case", list(CASES))
def test_rendered_config_passes_tritons_schema_and_value_rules(case: str, tmp_path: Path) -> None:
    model, runtime, kind = CASES[case]
    text = render_config(model, runtime, kind)
    config = text_format.Parse(text, model_config_pb2.ModelConfig())
    assert config.name == model.name
    assert config.max_batch_size == model.batch.max
    assert [i.name for i in config.input] == [t.name for t in model.inputs]
    assert [list(i.dims) for i in config.input] == [list(t.dims) for t in model.inputs]
    assert config.instance_group[0].count == model.instances
    model_dir = tmp_path / model.name
    (model_dir / "1").mkdir(parents=True)
    onnx.save(onnx_declaring(model), str(model_dir / "1" / "model.onnx"))
    (model_dir / "1" / "model.py").write_bytes(b"")
    assert check_config(model_dir / "config.pbtxt", text, model_dir) == []


def onnx_declaring(model: ModelSpec) -> onnx.ModelProto:
    """An ONNX graph whose inputs/outputs are exactly `model`'s (what validate compares)."""
    batch = ["batch"] if model.batch.max > 0 else []

    def info(t: TensorSpec) -> onnx.ValueInfoProto:
        dims = [*batch, *(d if d > 0 else f"{t.name}_{i}" for i, d in enumerate(t.dims))]
        elem = onnx.TensorProto.DataType.Value(t.dtype)
        return helper.make_tensor_value_info(t.name, elem, dims)

    nodes = [
        helper.make_node(
            "Cast", [model.inputs[0].name], [t.name], to=onnx.TensorProto.DataType.Value(t.dtype)
        )
        for t in model.outputs
    ]
    graph = helper.make_graph(
        nodes, "declared", [info(t) for t in model.inputs], [info(t) for t in model.outputs]
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_rendering_is_deterministic() -> None:
    first = [render_config(*args) for args in CASES.values()]
    second = [render_config(*args) for args in CASES.values()]
    assert first == second


def test_preferred_batch_size_only_when_set() -> None:
    assert "preferred_batch_size" not in render_config(MNIST, "onnxruntime")
    with_sizes = replace(MNIST, dynamic_batching=DynamicBatching(100, (8, 16)))
    text = render_config(with_sizes, "onnxruntime")
    assert "  preferred_batch_size: 8\n  preferred_batch_size: 16\n" in text


def test_no_dynamic_batching_block_without_dynamic_batching() -> None:
    assert "dynamic_batching" not in render_config(
        replace(MNIST, dynamic_batching=None), "onnxruntime"
    )


def test_python_runtime_sets_backend_and_thread_parameter() -> None:
    config = text_format.Parse(
        render_config(MNIST, "python-onnxruntime"), model_config_pb2.ModelConfig()
    )
    assert config.backend == "python"
    assert config.platform == ""
    assert config.parameters["intra_op_num_threads"].string_value == "1"
    ort = text_format.Parse(render_config(MNIST, "onnxruntime"), model_config_pb2.ModelConfig())
    assert ort.platform == "onnxruntime_onnx"
    assert len(ort.parameters) == 0


def test_every_onnx_dtype_maps_to_a_triton_data_type() -> None:
    triton_types = set(model_config_pb2.DataType.keys())
    assert set(ONNX_TO_TRITON.values()) <= triton_types
    assert triton_dtype("FLOAT") == "TYPE_FP32"
    assert triton_dtype("FLOAT16") == "TYPE_FP16"
    assert triton_dtype("INT64") == "TYPE_INT64"


def test_unsupported_dtype_names_model_and_tensor() -> None:
    model = replace(MNIST, inputs=(TensorSpec("input", "COMPLEX64", (2,)),))
    with pytest.raises(
        DltkError, match=r"^model 'mnist' tensor 'input': ONNX type COMPLEX64 has no "
    ):
        render_config(model, "onnxruntime")


def test_unknown_runtime_and_instance_kind_are_refused() -> None:
    with pytest.raises(
        DltkError, match=r"unknown runtime 'tensorrt'; known runtimes: onnxruntime, "
    ):
        render_config(MNIST, "tensorrt")
    with pytest.raises(DltkError, match=r"unknown instance kind 'tpu'; use one of: cpu, gpu"):
        render_config(MNIST, "onnxruntime", "tpu")


def test_model_without_tensors_is_refused() -> None:
    with pytest.raises(DltkError, match="has no inputs/outputs"):
        render_config(replace(MNIST, inputs=()), "onnxruntime")
