"""dltk.tune.measure (pure parts): a variant's ModelSpec and the config JSON the repository
API's load takes, the same config `dltk repo render` writes."""

from __future__ import annotations

import json
from pathlib import Path

from dltk.manifest.model import BatchRange, ModelSpec
from dltk.manifest.options import DynamicBatching, Warmup
from dltk.onnx_graph import TensorSpec
from dltk.tune.measure import config_json, shapes_of, variant_spec
from dltk.tune.space import Variant

MODEL = ModelSpec(
    name="mnist",
    onnx=Path("mnist.onnx"),
    batch=BatchRange(1, 16, 64),
    runtimes=("python-onnxruntime",),
    dynamic_batching=DynamicBatching(100, (4, 32)),
    instances=1,
    cpu_threads=2,
    inputs=(TensorSpec("input", "FLOAT", (1, 28, 28)),),
    outputs=(TensorSpec("logits", "FLOAT", (10,)),),
    warmup=Warmup(batch_size=32),
)


def test_variant_spec_sets_the_three_settings_and_follows_a_smaller_max() -> None:
    spec = variant_spec(MODEL, Variant(3, 8, 0))
    assert spec.batch == BatchRange(1, 8, 8)
    assert spec.instances == 3 and spec.cpu_threads == 2
    assert spec.dynamic_batching == DynamicBatching(0, (4,))
    assert spec.warmup is None  # a warmup batch above the variant's max would not load


def test_config_json_is_the_rendered_config() -> None:
    config = json.loads(config_json(variant_spec(MODEL, Variant(2, 16, 500))))
    assert config["name"] == "mnist" and config["backend"] == "python"
    assert config["max_batch_size"] == 16
    assert config["instance_group"] == [{"count": 2, "kind": "KIND_CPU"}]
    assert config["dynamic_batching"] == {
        "preferred_batch_size": [4],
        "max_queue_delay_microseconds": "500",
    }
    assert config["parameters"]["intra_op_num_threads"] == {"string_value": "2"}


def test_shapes_only_for_variable_dims() -> None:
    assert shapes_of(MODEL) == ()
    text = ModelSpec(
        name="t", onnx=Path("t.onnx"), batch=BatchRange(1, 1, 8), runtimes=("onnxruntime",),
        inputs=(TensorSpec("ids", "INT64", (-1,)), TensorSpec("x", "FLOAT", (3,))),
    )  # fmt: skip
    assert shapes_of(text) == (("ids", (1,)),)
