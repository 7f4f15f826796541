"""A model whose batch max is 1 is a BATCHED model (max_batch_size 1), not a fixed-batch one (0).

Triton's rule (model_configuration.md, "Maximum Batch Size"): max_batch_size >= 1 means the first
dimension is the batch and is left out of `dims`; only max_batch_size 0 means the model takes
full shapes. Survivors of mutation testing (issue 14) turned `max > 0` into `max > 1` (or
`>= 0`) in repo/config.py, manifest/checks.py and repo/validate.py and no test failed: these pin
the boundary.
"""

from __future__ import annotations

from pathlib import Path

from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2

from dltk.manifest.model import BatchRange, ModelSpec
from dltk.manifest.options import DynamicBatching, PipelineSpec
from dltk.onnx_graph import TensorSpec
from dltk.repo.config import Target, render_config, render_pipeline_config


def mnist(batch_max: int) -> ModelSpec:
    """mnist's interface; batch max 0 means the ONNX shapes are full (batch dim included)."""
    lead = () if batch_max else (1,)
    return ModelSpec(
        name="mnist",
        onnx=Path("mnist.onnx"),
        batch=BatchRange(min(1, batch_max) or 1, batch_max or 1, batch_max),
        runtimes=("onnxruntime",),
        inputs=(TensorSpec("input", "FLOAT", (*lead, 1, 28, 28)),),
        outputs=(TensorSpec("logits", "FLOAT", (*lead, 10)),),
        dynamic_batching=DynamicBatching(max_queue_delay_microseconds=100),
    )


def parse(text: str) -> model_config_pb2.ModelConfig:
    return text_format.Parse(text, model_config_pb2.ModelConfig())


def test_batch_max_1_keeps_dynamic_batching_and_max_batch_size_1() -> None:
    """Rule: a batched model (max >= 1) gets the manifest's dynamic batching, max 1 included."""
    config = parse(render_config(mnist(1), "onnxruntime"))
    assert config.max_batch_size == 1
    assert config.HasField("dynamic_batching")
    assert config.dynamic_batching.max_queue_delay_microseconds == 100
    assert list(config.input[0].dims) == [1, 28, 28]


def test_a_fixed_batch_model_gets_no_dynamic_batching() -> None:
    """Rule: Triton refuses dynamic batching with max_batch_size 0: it is left out."""
    config = parse(render_config(mnist(0), "onnxruntime"))
    assert config.max_batch_size == 0
    assert not config.HasField("dynamic_batching")
    assert list(config.input[0].dims) == [1, 1, 28, 28]


def test_a_pipeline_of_a_batch_1_model_takes_batched_images() -> None:
    """Rule: the BLS model of a batched model (max 1 included) leaves the batch dim out of its
    image dims and counts its classes over the whole score dims."""
    pipeline = PipelineSpec("digits", "mnist")
    config = parse(render_pipeline_config(pipeline, mnist(1), (Target("mnist", "TYPE_FP32"),)))
    assert config.max_batch_size == 1
    assert list(config.input[0].dims) == [1, 28, 28]
    probabilities = next(o for o in config.output if o.name == "probabilities")
    assert list(probabilities.dims) == [10]


def test_a_pipeline_of_a_fixed_batch_model_keeps_its_rows_apart_from_the_classes() -> None:
    """Rule: for a fixed-batch model (max 0) the first dim is the model's rows, not part of the
    class count: scores [4, 10] are 4 rows of 10 classes."""
    fixed = ModelSpec(
        name="mnist4",
        onnx=Path("mnist4.onnx"),
        batch=BatchRange(1, 1, 0),
        runtimes=("onnxruntime",),
        inputs=(TensorSpec("input", "FLOAT", (4, 1, 28, 28)),),
        outputs=(TensorSpec("logits", "FLOAT", (4, 10)),),
    )
    pipeline = PipelineSpec("digits4", "mnist4")
    config = parse(render_pipeline_config(pipeline, fixed, (Target("mnist4", "TYPE_FP32"),)))
    assert config.max_batch_size == 0
    assert list(config.input[0].dims) == [4, 1, 28, 28]
    probabilities = next(o for o in config.output if o.name == "probabilities")
    assert list(probabilities.dims) == [4, 10]


def test_a_pipeline_counts_the_channels_of_a_batch_1_model_after_the_batch_dim() -> None:
    """Rule: for a batched model (max 1 included) the tensors have no batch dim, so an RGB
    model's [3, 32, 32] has 3 channels: a mean per channel is accepted."""
    from dataclasses import replace

    from dltk.manifest.checks import check_pipeline

    rgb = replace(mnist(1), inputs=(TensorSpec("input", "FLOAT", (3, 32, 32)),))
    assert (
        check_pipeline(PipelineSpec("photos", "mnist", mean=(0.5, 0.4, 0.3)), rgb, "m.yml") is None
    )
