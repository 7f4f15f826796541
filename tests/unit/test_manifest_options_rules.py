# ruff: noqa: E501 - each expected message is kept whole on one line, as the user sees it
"""The manifest's options and pipelines: every refusal is one exact line at its YAML position.

Mutation testing (issue 14) found these rules of manifest/options.py unpinned: a test only
checked part of a message, or no test reached the branch. The rule each case pins is its id;
the expected text is the whole message (after `m.yml`), so a wrong position, a wrong name in
the message, or a check that no longer fires all fail.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from dltk.errors import DltkError
from dltk.manifest.load import parse_manifest
from dltk.manifest.options import DynamicBatching, OrtTensorrt, PipelineSpec, VersionPolicy, Warmup

BASE = """\
models:
  - name: mnist
    onnx: models/mnist.onnx
    batch: {min: 1, opt: 16, max: 64}
    runtimes: [tensorrt, onnxruntime]
"""
FIXED = BASE.replace("{min: 1, opt: 16, max: 64}", "{max: 0}")

REFUSED = {
    "version_policy not a mapping": (
        BASE + "    version_policy: latest\n",
        ":6:5: model 'mnist': version_policy must be a mapping like {latest: 1}, {all: true} or {specific: [1, 2]}",
    ),
    "version_policy unknown key": (
        BASE + "    version_policy: {newest: 1}\n",
        ":6:22: model 'mnist' version_policy: unknown key 'newest'; known keys: latest, all, specific",
    ),
    "version_policy latest 0": (
        BASE + "    version_policy: {latest: 0}\n",
        ":6:22: model 'mnist' version_policy: latest must be >= 1, got 0",
    ),
    "version_policy all false": (
        BASE + "    version_policy: {all: false}\n",
        ":6:22: model 'mnist' version_policy: write `all: true`",
    ),
    "version_policy specific empty": (
        BASE + "    version_policy: {specific: []}\n",
        ":6:22: model 'mnist' version_policy: specific must be a list of versions >= 1",
    ),
    "version_policy specific zero": (
        BASE + "    version_policy: {specific: [1, 0]}\n",
        ":6:22: model 'mnist' version_policy: specific must be a list of versions >= 1",
    ),
    "version_policy specific bool": (
        BASE + "    version_policy: {specific: [true]}\n",
        ":6:22: model 'mnist' version_policy: specific must be a list of versions >= 1",
    ),
    "version_policy specific not list": (
        BASE + "    version_policy: {specific: 2}\n",
        ":6:22: model 'mnist' version_policy: specific must be a list of versions >= 1",
    ),
    "warmup not a mapping": (
        BASE + "    warmup: [1]\n",
        ":6:5: model 'mnist': warmup must be a mapping like {batch_size: 1, data: zero, count: 1}",
    ),
    "warmup unknown key": (
        BASE + "    warmup: {size: 1}\n",
        ":6:14: model 'mnist' warmup: unknown key 'size'; known keys: batch_size, data, count, dims",
    ),
    "warmup batch 0": (
        BASE + "    warmup: {batch_size: 0}\n",
        ":6:14: model 'mnist' warmup: batch_size must be >= 1, got 0",
    ),
    "warmup batch 2 on fixed": (
        FIXED + "    warmup: {batch_size: 2}\n",
        ":6:14: model 'mnist' warmup: batch_size 2 exceeds the model's batch.max (0); use 1 for a fixed-batch model",
    ),
    "warmup count 0": (
        BASE + "    warmup: {count: 0}\n",
        ":6:14: model 'mnist' warmup: count must be >= 1, got 0",
    ),
    "warmup dims not mapping": (
        BASE + "    warmup: {dims: [1]}\n",
        ":6:14: model 'mnist' warmup: dims must be a mapping like {input: [3, 224, 224]}",
    ),
    "warmup dims zero": (
        BASE + "    warmup: {dims: {input: [1, 0]}}\n",
        ":6:21: model 'mnist' warmup: dims of 'input' must be a list of positive sizes, got [1, 0]",
    ),
    "warmup dims empty": (
        BASE + "    warmup: {dims: {input: []}}\n",
        ":6:21: model 'mnist' warmup: dims of 'input' must be a list of positive sizes, got []",
    ),
    "warmup dims bool": (
        BASE + "    warmup: {dims: {input: [true]}}\n",
        ":6:21: model 'mnist' warmup: dims of 'input' must be a list of positive sizes, got [True]",
    ),
    "warmup dims not list": (
        BASE + "    warmup: {dims: {input: 3}}\n",
        ":6:21: model 'mnist' warmup: dims of 'input' must be a list of positive sizes, got 3",
    ),
    "ort not mapping": (
        BASE + "    onnxruntime_tensorrt: fp16\n",
        ":6:5: model 'mnist': onnxruntime_tensorrt must be a mapping like {precision: fp16, workspace_mb: 1024}",
    ),
    "ort unknown key": (
        BASE + "    onnxruntime_tensorrt: {fp16: true}\n",
        ":6:28: model 'mnist' onnxruntime_tensorrt: unknown key 'fp16'; known keys: precision, workspace_mb, engine_cache_path",
    ),
    "ort precision": (
        BASE + "    onnxruntime_tensorrt: {precision: int8}\n",
        ":6:28: model 'mnist' onnxruntime_tensorrt: precision must be one of fp32, fp16, got 'int8'",
    ),
    "ort workspace 0": (
        BASE + "    onnxruntime_tensorrt: {workspace_mb: 0}\n",
        ":6:28: model 'mnist' onnxruntime_tensorrt: workspace_mb must be >= 1, got 0",
    ),
    "ort cache not str": (
        BASE + "    onnxruntime_tensorrt: {engine_cache_path: 3}\n",
        ":6:28: model 'mnist' onnxruntime_tensorrt: engine_cache_path must be an absolute path inside the Triton container",
    ),
    "tensorrt not mapping": (
        BASE + "    tensorrt: fast\n",
        ":6:5: model 'mnist': tensorrt must be a mapping like {fp16_io: true, workspace_mb: 2048}",
    ),
    "tensorrt fp16_io not bool": (
        BASE + "    tensorrt: {fp16_io: 1}\n",
        ":6:16: model 'mnist' tensorrt: fp16_io must be true or false, got 1",
    ),
    "tensorrt workspace 0": (
        BASE + "    tensorrt: {workspace_mb: 0}\n",
        ":6:16: model 'mnist' tensorrt: workspace_mb must be >= 1, got 0",
    ),
    "precisions dup": (
        BASE + "    precisions: [fp16, fp16]\n",
        ":6:5: model 'mnist': precisions must be a list of distinct values of tf32, fp16, got ['fp16', 'fp16']",
    ),
    "precisions empty": (
        BASE + "    precisions: []\n",
        ":6:5: model 'mnist': precisions must be a list of distinct values of tf32, fp16, got []",
    ),
    "db not mapping": (
        BASE + "    dynamic_batching: 100\n",
        ":6:5: model 'mnist': dynamic_batching must be a mapping like {max_queue_delay_microseconds: 100}",
    ),
    "db on fixed": (
        FIXED + "    dynamic_batching: {}\n",
        ":6:5: model 'mnist': dynamic_batching needs batch.max > 0; remove it for a fixed-batch model",
    ),
    "db unknown key": (
        BASE + "    dynamic_batching: {delay: 1}\n",
        ":6:24: model 'mnist' dynamic_batching: unknown key 'delay'; known keys: max_queue_delay_microseconds, preferred_batch_size",
    ),
    "db delay negative": (
        BASE + "    dynamic_batching: {max_queue_delay_microseconds: -1}\n",
        ":6:24: model 'mnist' dynamic_batching: max_queue_delay_microseconds must be >= 0, got -1",
    ),
    "db preferred not list": (
        BASE + "    dynamic_batching: {preferred_batch_size: 4}\n",
        ":6:24: model 'mnist' dynamic_batching: preferred_batch_size must be a list of sizes in 1..64 (batch.max), got 4",
    ),
    "db preferred bool": (
        BASE + "    dynamic_batching: {preferred_batch_size: [true]}\n",
        ":6:24: model 'mnist' dynamic_batching: preferred_batch_size must be a list of sizes in 1..64 (batch.max), got [True]",
    ),
    "db preferred 65": (
        BASE + "    dynamic_batching: {preferred_batch_size: [65]}\n",
        ":6:24: model 'mnist' dynamic_batching: preferred_batch_size must be a list of sizes in 1..64 (batch.max), got [65]",
    ),
    "pipeline not mapping": (
        BASE + "pipelines:\n  - digits\n",
        ": pipelines[0] must be a mapping with name and model",
    ),
    "pipelines not list": (
        BASE + "pipelines: {name: digits}\n",
        ":6:1: `pipelines:` must be a list",
    ),
    "pipeline no name": (
        BASE + "pipelines:\n  - {model: mnist}\n",
        ":7:5: pipelines[0]: bad name: use ASCII letters, digits, '_', '.' or '-' (not first: '.' or '-'), at most 128 characters: it is a directory, a URL path segment and a command-line argument; got None",
    ),
    "pipeline slash name": (
        BASE + "pipelines:\n  - {name: a/b, model: mnist}\n",
        ":7:5: pipelines[0]: bad name: use ASCII letters, digits, '_', '.' or '-' (not first: '.' or '-'), at most 128 characters: it is a directory, a URL path segment and a command-line argument; got 'a/b'",
    ),
    "pipeline dot name": (
        BASE + "pipelines:\n  - {name: .a, model: mnist}\n",
        ":7:5: pipelines[0]: bad name: use ASCII letters, digits, '_', '.' or '-' (not first: '.' or '-'), at most 128 characters: it is a directory, a URL path segment and a command-line argument; got '.a'",
    ),
    "pipeline unknown key": (
        BASE + "pipelines:\n  - {name: d, model: mnist, scale: 2}\n",
        ":7:29: pipeline 'd': unknown key 'scale'; known keys: name, model, input, layout, mean, std, softmax, instances, max_batch_size, dynamic_batching",
    ),
    "pipeline no model": (
        BASE + "pipelines:\n  - {name: d}\n",
        ":7:5: pipeline 'd': model must name a model of `models:`",
    ),
    "pipeline input empty": (
        BASE + "pipelines:\n  - {name: d, model: mnist, input: ''}\n",
        ":7:29: pipeline 'd': input must be a tensor name",
    ),
    "pipeline layout": (
        BASE + "pipelines:\n  - {name: d, model: mnist, layout: NCHW}\n",
        ":7:29: pipeline 'd': layout must be one of CHW, HWC, got 'NCHW'",
    ),
    "pipeline mean str": (
        BASE + "pipelines:\n  - {name: d, model: mnist, mean: a}\n",
        ":7:29: pipeline 'd': mean must be a number or a list of numbers per channel",
    ),
    "pipeline mean empty": (
        BASE + "pipelines:\n  - {name: d, model: mnist, mean: []}\n",
        ":7:29: pipeline 'd': mean must be a number or a list of numbers per channel",
    ),
    "pipeline mean bool": (
        BASE + "pipelines:\n  - {name: d, model: mnist, mean: [true]}\n",
        ":7:29: pipeline 'd': mean must be a number or a list of numbers per channel",
    ),
    "pipeline std zero": (
        BASE + "pipelines:\n  - {name: d, model: mnist, std: [1, 0]}\n",
        ":7:29: pipeline 'd': std values must be > 0",
    ),
    "pipeline softmax": (
        BASE + "pipelines:\n  - {name: d, model: mnist, softmax: 1}\n",
        ":7:29: pipeline 'd': softmax must be true or false, got 1",
    ),
    "pipeline instances 0": (
        BASE + "pipelines:\n  - {name: d, model: mnist, instances: 0}\n",
        ":7:29: pipeline 'd': instances must be >= 1, got 0",
    ),
    "pipeline twice": (
        BASE + "pipelines:\n  - {name: d, model: mnist}\n  - {name: d, model: mnist}\n",
        ":8:5: pipeline 'd': the name is already used by a model or another pipeline; pick another",
    ),
    "pipeline named like engine": (
        BASE + "pipelines:\n  - {name: mnist_trt_tf32, model: mnist}\n",
        ":7:5: pipeline 'mnist_trt_tf32': the name is already used by a model or another pipeline; pick another",
    ),
    "pipeline db above its max": (
        BASE
        + "pipelines:\n  - {name: d, model: mnist, max_batch_size: 8, dynamic_batching: {preferred_batch_size: [16]}}\n",
        ":7:67: pipeline 'd' dynamic_batching: preferred_batch_size must be a list of sizes in 1..8 (max_batch_size), got [16]",
    ),
    "pipeline db fixed": (
        FIXED + "pipelines:\n  - {name: d, model: mnist, dynamic_batching: {}}\n",
        ":7:29: pipeline 'd': dynamic_batching needs max_batch_size > 0; remove it for a fixed-batch model",
    ),
}


@pytest.mark.parametrize("text, message", REFUSED.values(), ids=list(REFUSED))
def test_each_bad_option_is_one_exact_error_at_its_position(text: str, message: str) -> None:
    """Rule: the case's id; its message is the one line a user sees, FILE:LINE:COL first."""
    with pytest.raises(DltkError) as exc:
        parse_manifest(text, Path("m.yml"))
    assert str(exc.value) == "m.yml" + message


def parse(text: str):  # noqa: ANN201 - the Manifest
    return parse_manifest(text, Path("m.yml"))


@pytest.mark.parametrize(
    "policy, expected",
    [
        ("{latest: 2}", VersionPolicy("latest", (2,))),
        ("{all: true}", VersionPolicy("all")),
        ("{specific: [3, 1, 3]}", VersionPolicy("specific", (1, 3))),
    ],
)
def test_version_policy_latest_all_and_specific(policy: str, expected: VersionPolicy) -> None:
    """Rule: latest N keeps N, all takes no versions, specific is sorted and deduplicated."""
    (model,) = parse(BASE + f"    version_policy: {policy}\n").models
    assert model.version_policy == expected


def test_warmup_defaults_and_sorted_dims() -> None:
    """Rule: warmup defaults to one zero sample of batch 1; dims are kept per input, sorted."""
    (model,) = parse(BASE + "    warmup: {dims: {b: [2], a: [1, 3]}}\n").models
    assert model.warmup == Warmup(1, "zero", 1, (("a", (1, 3)), ("b", (2,))))
    (model,) = parse(BASE + "    warmup:\n").models
    assert model.warmup == Warmup()


def test_warmup_batch_may_equal_batch_max_and_is_1_on_a_fixed_batch_model() -> None:
    """Rule: warmup batch_size is 1..batch.max, and exactly 1 when batch.max is 0."""
    (model,) = parse(BASE + "    warmup: {batch_size: 64, data: random, count: 3}\n").models
    assert model.warmup == Warmup(64, "random", 3)
    (model,) = parse(FIXED + "    warmup: {batch_size: 1}\n").models
    assert model.warmup == Warmup(1)


def test_onnxruntime_tensorrt_defaults() -> None:
    """Rule: the accelerator defaults to fp16, a 1024 MB workspace and no engine cache."""
    (model,) = parse(BASE + "    onnxruntime_tensorrt: {}\n").models
    assert model.onnxruntime_tensorrt == OrtTensorrt("fp16", 1024, "")
    (model,) = parse(
        BASE + "    onnxruntime_tensorrt: {workspace_mb: 512, precision: fp32}\n"
    ).models
    assert model.onnxruntime_tensorrt == OrtTensorrt("fp32", 512, "")


@pytest.mark.parametrize("spec", ["", " {}", " {max_queue_delay_microseconds: 0}"])
def test_dynamic_batching_defaults_to_no_delay_and_no_preferred_size(spec: str) -> None:
    """Rule: an empty dynamic_batching means delay 0 and Triton's own preferred sizes."""
    (model,) = parse(BASE + f"    dynamic_batching:{spec}\n").models
    assert model.dynamic_batching == DynamicBatching(0, ())


def test_pipeline_defaults() -> None:
    """Rule: a pipeline reads `image` in CHW, does not normalize (mean 0, std 1), applies
    softmax, runs one instance and batches like its model (max_batch_size None)."""
    (pipeline,) = parse(BASE + "pipelines:\n  - {name: d, model: mnist}\n").pipelines
    assert pipeline == PipelineSpec("d", "mnist")
    assert pipeline.where == (7, 5)


def test_pipeline_on_a_fixed_batch_model_may_say_max_batch_size_0() -> None:
    """Rule: on a fixed-batch model (batch.max 0) max_batch_size may be 0 or left out."""
    (pipeline,) = parse(
        FIXED + "pipelines:\n  - {name: d, model: mnist, max_batch_size: 0}\n"
    ).pipelines
    assert pipeline.max_batch_size == 0


def test_pipeline_max_batch_size_may_equal_the_models_batch_max() -> None:
    """Rule: a pipeline's max_batch_size is 1..the model's batch.max, both ends included."""
    for size in (1, 64):
        text = BASE + f"pipelines:\n  - {{name: d, model: mnist, max_batch_size: {size}}}\n"
        (pipeline,) = parse(text).pipelines
        assert pipeline.max_batch_size == size


def test_pipeline_dynamic_batching_is_bounded_by_its_own_max_batch_size() -> None:
    """Rule: a pipeline's preferred sizes may reach its max_batch_size (not the model's)."""
    text = BASE + (
        "pipelines:\n  - {name: d, model: mnist, max_batch_size: 8, "
        "dynamic_batching: {preferred_batch_size: [8]}}\n"
    )
    (pipeline,) = parse(text).pipelines
    assert pipeline.dynamic_batching == DynamicBatching(0, (8,))


def test_pipeline_mean_and_std_per_channel() -> None:
    """Rule: mean/std are a number or a list of numbers; ints become floats."""
    text = BASE + "pipelines:\n  - {name: d, model: mnist, mean: 1, std: [0.5, 2]}\n"
    (pipeline,) = parse(text).pipelines
    assert (pipeline.mean, pipeline.std) == ((1.0,), (0.5, 2.0))
    assert isinstance(pipeline.mean[0], float)
