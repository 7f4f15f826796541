"""config.pbtxt rendering: one test per rule, each named and worded after the rule it pins.

These were survivors of mutation testing (issue 14): changing the rule in repo/config.py made no
test fail. The rendered text is read back with Triton's own ModelConfig protobuf.
"""

from __future__ import annotations

from pathlib import Path

from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2

from dltk.manifest.model import BatchRange, ModelSpec
from dltk.manifest.options import Warmup
from dltk.onnx_graph import TensorSpec
from dltk.repo.config import render_config, render_tensorrt_config

# A text model: `ids` has a variable length (-1), `scale` a fixed shape.
TEXT = ModelSpec(
    name="ranker",
    onnx=Path("ranker.onnx"),
    batch=BatchRange(1, 8, 8),
    runtimes=("onnxruntime", "tensorrt"),
    inputs=(TensorSpec("ids", "INT64", (-1,)), TensorSpec("scale", "FLOAT", (4,))),
    outputs=(TensorSpec("scores", "FLOAT", (1,)),),
    warmup=Warmup(batch_size=2, data="random", count=3, dims=(("ids", (16,)),)),
)


def warmup_dims(text: str) -> dict[str, list[int]]:
    config = model_config_pb2.ModelConfig()
    text_format.Parse(text, config)
    (warm,) = config.model_warmup
    return {name: list(value.dims) for name, value in warm.inputs.items()}


def test_warmup_dims_from_the_manifest_replace_the_variable_dims() -> None:
    """Rule: warmup `dims` given for an input are the dims of its warmup sample (Triton cannot
    warm up a -1 dim); inputs without an override keep their own fixed dims."""
    assert warmup_dims(render_config(TEXT, "onnxruntime")) == {"ids": [16], "scale": [4]}, (
        "warmup dims must come from the manifest's override for ids and from the model for scale"
    )


def test_warmup_dims_override_reaches_the_tensorrt_config_too() -> None:
    """Rule: the same warmup override applies to every deployment of the model (TensorRT
    engines included)."""
    text = render_tensorrt_config(TEXT, "tf32", ("8.6",))
    assert warmup_dims(text) == {"ids": [16], "scale": [4]}


def test_warmup_sample_name_batch_and_count_come_from_the_manifest() -> None:
    """Rule: the warmup sample is named `<data>_batch_<batch_size>` and repeats `count` times."""
    config = model_config_pb2.ModelConfig()
    text_format.Parse(render_config(TEXT, "onnxruntime"), config)
    (warm,) = config.model_warmup
    assert (warm.name, warm.batch_size, warm.count) == ("random_batch_2", 2, 3)
    assert all(value.random_data for value in warm.inputs.values())


def test_tensorrt_config_refusals_name_the_model_and_what_it_has() -> None:
    """Rule: a precision the model has no engine for lists its precisions; an empty list of
    compute capabilities is refused (no plan file to name)."""
    import pytest

    from dltk.errors import DltkError

    with pytest.raises(DltkError) as exc:
        render_tensorrt_config(TEXT, "fp16", ("8.6",))
    assert str(exc.value) == "model 'ranker' has no fp16 engine; its precisions: tf32"
    with pytest.raises(DltkError) as exc:
        render_tensorrt_config(TEXT, "tf32", ())
    assert str(exc.value) == "model 'ranker' tf32: no compute capability to render"


def test_manifest_lookup_of_an_unknown_model_lists_the_known_ones() -> None:
    """Rule: asking for a model the manifest lacks names every model it has, comma-separated."""
    import pytest

    from dltk.errors import DltkError
    from dltk.manifest.model import Manifest

    manifest = Manifest(Path("m.yml"), (TEXT, TEXT.__class__(**{**TEXT.__dict__, "name": "b"})))
    with pytest.raises(DltkError) as exc:
        manifest.model("x")
    assert str(exc.value) == "m.yml: no model named 'x'; the manifest has: ranker, b"


def test_pipeline_config_carries_softmax_off_and_batches_only_a_batching_model() -> None:
    """Rule: softmax: false reaches the BLS model as "false"; a fixed-batch model's pipeline has
    no dynamic batching even when asked (Triton needs max_batch_size > 0 for it)."""
    import json

    from dltk.manifest.options import DynamicBatching, PipelineSpec
    from dltk.repo.config import Target, render_pipeline_config

    model = ModelSpec(
        name="mnist",
        onnx=Path("mnist.onnx"),
        batch=BatchRange(0, 0, 0),
        runtimes=("onnxruntime",),
        inputs=(TensorSpec("input", "FLOAT", (1, 1, 28, 28)),),
        outputs=(TensorSpec("logits", "FLOAT", (1, 10)),),
    )
    pipeline = PipelineSpec("d", "mnist", softmax=False, dynamic_batching=DynamicBatching(5))
    config = model_config_pb2.ModelConfig()
    text = render_pipeline_config(pipeline, model, (Target("mnist", "TYPE_FP32"),))
    text_format.Parse(text, config)
    assert config.parameters["softmax"].string_value == "false"
    assert not config.HasField("dynamic_batching")
    assert [list(o.dims) for o in config.output] == [[1, 1], [1, 10], [1, 1]]
    assert json.loads(config.parameters["targets"].string_value) == [
        {"model": "mnist", "data_type": "TYPE_FP32"}
    ]


def test_pipeline_of_an_undeployed_model_and_tensorrt_via_render_config_are_refused() -> None:
    """Rule: a pipeline needs a deployed target; render_config refuses `tensorrt` and says which
    function renders engines."""
    import pytest

    from dltk.errors import DltkError
    from dltk.manifest.options import PipelineSpec
    from dltk.repo.config import render_pipeline_config

    with pytest.raises(DltkError) as exc:
        render_pipeline_config(PipelineSpec("d", "ranker"), TEXT, ())
    assert str(exc.value) == "pipeline 'd': model 'ranker' is not deployed"
    with pytest.raises(DltkError) as exc:
        render_config(TEXT, "tensorrt")
    assert str(exc.value) == (
        "unknown runtime 'tensorrt'; known runtimes: onnxruntime, python-onnxruntime; TensorRT "
        "engines render with render_tensorrt_config"
    )


def test_a_pbtxt_string_reads_back_as_the_same_text() -> None:
    """Rule: any text (backslashes, quotes, newlines) written with pbtxt_string parses back,
    with protobuf's own text format, to exactly that text."""
    from dltk.repo.config import pbtxt_string

    for text in ["C:\\models\\mnist", 'say "hi"', "two\nlines", '\\"\n mixed \\n']:
        config = model_config_pb2.ModelConfig()
        text_format.Parse(f'name: "{pbtxt_string(text)}"', config)
        assert config.name == text, f"{text!r} came back as {config.name!r}"
