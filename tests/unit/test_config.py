"""config.pbtxt rendering: golden files per template, dtype mapping, schema-valid output."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import onnx
import pytest
from google.protobuf import text_format
from onnx import helper
from tritonclient.grpc import model_config_pb2

from dltk.errors import DltkError
from dltk.manifest.model import BatchRange, ModelSpec
from dltk.manifest.options import (
    DynamicBatching,
    OrtTensorrt,
    PipelineSpec,
    TensorrtOptions,
    VersionPolicy,
    Warmup,
)
from dltk.onnx_graph import TensorSpec
from dltk.repo.config import (
    ONNX_TO_TRITON,
    pipeline_targets,
    render_config,
    render_pipeline_config,
    render_tensorrt_config,
    triton_dtype,
)
from dltk.repo.validate import check_config

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

PREFERRED = replace(MNIST, dynamic_batching=DynamicBatching(500, (16, 32)), instances=2)
FULL = replace(
    MNIST,
    runtimes=("tensorrt", "onnxruntime"),
    precisions=("fp16", "tf32"),
    tensorrt=TensorrtOptions(fp16_io=True),
    onnxruntime_tensorrt=OrtTensorrt("fp16", 2048, "/cache/ort-trt"),
    warmup=Warmup(batch_size=4, data="random", count=2),
    version_policy=VersionPolicy("latest", (2,)),
)
PIPELINE = PipelineSpec("digits", "mnist", mean=(0.1307,), std=(0.3081,))
ZOO = ModelSpec(
    name="squeezenet",
    onnx=Path("squeezenet.onnx"),
    batch=BatchRange(0, 0, 0),
    runtimes=("python-onnxruntime",),
    inputs=(TensorSpec("gpu_0/data:0", "FLOAT", (1, 3, 224, 224)),),
    outputs=(TensorSpec("gpu_0/softmax:1", "FLOAT", (1, 1000, 1, 1)),),
)
ZOO_PIPELINE = PipelineSpec("zoo", "squeezenet", layout="HWC", mean=(0.5, 0.5, 0.5), std=(0.25,))

# Every template, with the model whose interface validate compares it against.
CASES: dict[str, tuple[Callable[[], str], ModelSpec, str]] = {
    "onnxruntime": (lambda: render_config(MNIST, "onnxruntime", "cpu"), MNIST, "mnist"),
    "python_onnxruntime": (
        lambda: render_config(MNIST, "python-onnxruntime", "cpu"),
        MNIST,
        "mnist",
    ),
    "onnxruntime_gpu_preferred": (
        lambda: render_config(PREFERRED, "onnxruntime", "gpu"),
        PREFERRED,
        "mnist",
    ),
    "onnxruntime_fixed_batch": (
        lambda: render_config(MULTI, "onnxruntime", "cpu"),
        MULTI,
        "ranker",
    ),
    "onnxruntime_gpu_accelerator_warmup_versions": (
        lambda: render_config(FULL, "onnxruntime", "gpu"),
        FULL,
        "mnist",
    ),
    "python_onnxruntime_fixed_batch_names": (
        lambda: render_config(ZOO, "python-onnxruntime", "cpu"),
        ZOO,
        "squeezenet",
    ),
    "tensorrt_plan_fp16_io": (
        lambda: render_tensorrt_config(FULL, "fp16", ("9.0", "8.6")),
        FULL,
        "mnist_trt_fp16",
    ),
    "tensorrt_plan_tf32": (
        lambda: render_tensorrt_config(MNIST, "tf32", ("8.6",)),
        MNIST,
        "mnist_trt_tf32",
    ),
    "bls_pipeline": (
        lambda: render_pipeline_config(PIPELINE, FULL, pipeline_targets(FULL, ("fp16", "tf32"))),
        FULL,
        "digits",
    ),
    "bls_pipeline_fixed_batch_hwc": (
        lambda: render_pipeline_config(ZOO_PIPELINE, ZOO, pipeline_targets(ZOO, ())),
        ZOO,
        "zoo",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_rendered_config_matches_golden_file(case: str) -> None:
    text = CASES[case][0]()
    golden = GOLDEN / f"{case}.config.pbtxt"
    if UPDATE:
        golden.write_text(text)
    assert text == golden.read_text(), f"differs from {golden} (DLTK_UPDATE_GOLDEN=1 rewrites)"


@pytest.mark.parametrize("case", list(CASES))
def test_rendered_config_passes_tritons_schema_and_value_rules(case: str, tmp_path: Path) -> None:
    render, model, name = CASES[case]
    text = render()
    config = text_format.Parse(text, model_config_pb2.ModelConfig())
    assert config.name == name
    assert config.max_batch_size == model.batch.max
    model_dir = tmp_path / name
    (model_dir / "1").mkdir(parents=True)
    if config.platform == "tensorrt_plan":
        for filename in config.cc_model_filenames.values():
            (model_dir / "1" / filename).write_bytes(b"plan")
    elif name == model.name:  # the model's own ONNX deployment: validate compares its graph
        assert [i.name for i in config.input] == [t.name for t in model.inputs]
        assert [list(i.dims) for i in config.input] == [list(t.dims) for t in model.inputs]
        assert config.instance_group[0].count == model.instances
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
    first = [render() for render, _, _ in CASES.values()]
    second = [render() for render, _, _ in CASES.values()]
    assert first == second


def test_tensorrt_config_maps_each_compute_capability_to_its_plan() -> None:
    config = text_format.Parse(
        render_tensorrt_config(FULL, "fp16", ("8.6", "9.0", "8.6")), model_config_pb2.ModelConfig()
    )
    assert config.platform == "tensorrt_plan"
    assert dict(config.cc_model_filenames) == {"8.6": "model.sm86.plan", "9.0": "model.sm90.plan"}
    assert config.input[0].data_type == model_config_pb2.TYPE_FP16  # fp16_io
    assert config.instance_group[0].kind == model_config_pb2.ModelInstanceGroup.KIND_GPU
    tf32 = text_format.Parse(
        render_tensorrt_config(FULL, "tf32", ("8.6",)), model_config_pb2.ModelConfig()
    )
    assert tf32.input[0].data_type == model_config_pb2.TYPE_FP32
    with pytest.raises(DltkError, match="model 'mnist' has no fp16 engine; its precisions: tf32"):
        render_tensorrt_config(MNIST, "fp16", ("8.6",))


def test_accelerator_only_for_onnxruntime_on_gpu() -> None:
    assert "gpu_execution_accelerator" in render_config(FULL, "onnxruntime", "gpu")
    assert "gpu_execution_accelerator" not in render_config(FULL, "onnxruntime", "cpu")
    assert "gpu_execution_accelerator" not in render_config(FULL, "python-onnxruntime", "gpu")


def test_pipeline_targets_prefer_engines_in_manifest_order() -> None:
    targets = pipeline_targets(FULL, ("tf32", "fp16"))
    assert [(t.model, t.data_type) for t in targets] == [
        ("mnist_trt_fp16", "TYPE_FP16"),
        ("mnist_trt_tf32", "TYPE_FP32"),
        ("mnist", "TYPE_FP32"),
    ]
    assert [t.model for t in pipeline_targets(FULL, ())] == ["mnist"]


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


def test_manifest_cpu_threads_reach_each_onnx_runtimes_parameter() -> None:
    threaded = replace(MNIST, cpu_threads=3)
    python = text_format.Parse(
        render_config(threaded, "python-onnxruntime"), model_config_pb2.ModelConfig()
    )
    assert python.parameters["intra_op_num_threads"].string_value == "3"
    ort = text_format.Parse(render_config(threaded, "onnxruntime"), model_config_pb2.ModelConfig())
    assert ort.parameters["intra_op_thread_count"].string_value == "3"


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
        DltkError,
        match=r"unknown runtime 'tensorrt'; known runtimes: onnxruntime, "
        r"python-onnxruntime; TensorRT engines render with render_tensorrt_config",
    ):
        render_config(MNIST, "tensorrt")
    with pytest.raises(DltkError, match=r"unknown instance kind 'tpu'; use one of: cpu, gpu"):
        render_config(MNIST, "onnxruntime", "tpu")


def test_model_without_tensors_is_refused() -> None:
    with pytest.raises(DltkError, match="has no inputs/outputs"):
        render_config(replace(MNIST, inputs=()), "onnxruntime")


def test_pipeline_instances_and_batching_come_from_the_manifest(tmp_path: Path) -> None:
    targets = pipeline_targets(FULL, ("fp16",))
    default = render_pipeline_config(PIPELINE, FULL, targets)
    assert "max_batch_size: 64\n" in default and "dynamic_batching" not in default
    tuned = replace(
        PIPELINE, instances=4, max_batch_size=16, dynamic_batching=DynamicBatching(50, (8, 16))
    )
    text = render_pipeline_config(tuned, FULL, targets)
    assert "max_batch_size: 16\n" in text
    assert (
        "dynamic_batching {\n  preferred_batch_size: 8\n  preferred_batch_size: 16\n"
        "  max_queue_delay_microseconds: 50\n}\ninstance_group [\n  {\n    count: 4\n"
        "    kind: KIND_CPU\n" in text
    )
    assert (
        text.replace("max_batch_size: 16", "max_batch_size: 64")
        .replace("count: 4", "count: 1")
        .replace(
            "dynamic_batching {\n  preferred_batch_size: 8\n  preferred_batch_size: 16\n"
            "  max_queue_delay_microseconds: 50\n}\n",
            "",
        )
        == default
    )  # nothing else changes
    model_dir = tmp_path / "digits"
    (model_dir / "1").mkdir(parents=True)
    (model_dir / "1" / "model.py").write_bytes(b"")
    assert check_config(model_dir / "config.pbtxt", text, model_dir) == []
