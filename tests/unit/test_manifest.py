"""model_repo/models.yml: structure, values and tensors inferred from the ONNX graph."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from dltk.errors import DltkError
from dltk.manifest.load import load_manifest, parse_manifest
from dltk.manifest.model import BatchRange
from dltk.manifest.options import (
    DynamicBatching,
    OrtTensorrt,
    PipelineSpec,
    TensorrtOptions,
    VersionPolicy,
    Warmup,
)
from dltk.onnx_graph import TensorSpec

WriteManifest = Callable[[str], Path]


def load_error(path: Path) -> str:
    """The one-line DltkError load_manifest(path) raises, after its `FILE: ` prefix."""
    with pytest.raises(DltkError) as exc:
        load_manifest(path)
    message = str(exc.value)
    assert message.startswith(f"{path}: ") and "\n" not in message, message
    return message.removeprefix(f"{path}: ")


def fixed_batch(
    text: str, drop: str = "    dynamic_batching: {max_queue_delay_microseconds: 100}\n"
) -> str:
    """`text` with max batch size 0 and without `drop`, a line that needs batching."""
    return text.replace("{min: 1, opt: 16, max: 64}", "{max: 0}").replace(drop, "")


def test_project_manifest_declares_mnist_engines_and_its_pipeline(repo_root: Path) -> None:
    path = repo_root / "model_repo" / "models.yml"
    manifest = load_manifest(path, read_onnx=False)
    (mnist,) = manifest.models
    assert mnist.name == "mnist"
    assert mnist.export == "mnist"
    assert mnist.onnx == path.parent / "../build/models/mnist.onnx"
    assert mnist.samples == path.parent / "../build/models/mnist.samples.npz"
    assert mnist.batch == BatchRange(1, 16, 64)
    assert mnist.runtimes == ("tensorrt", "onnxruntime", "python-onnxruntime")
    assert mnist.precisions == ("fp16", "tf32")
    assert mnist.dynamic_batching == DynamicBatching(100, ())
    assert mnist.instances == 1
    (pipeline,) = manifest.pipelines
    assert (pipeline.name, pipeline.model, pipeline.input) == ("mnist_classifier", "mnist", "image")
    assert (pipeline.mean, pipeline.std, pipeline.softmax) == ((0.1307,), (0.3081,), True)


def test_tensors_are_inferred_from_the_onnx_graph_without_the_batch_dim(
    tiny_onnx: Path, write_manifest: WriteManifest, manifest_text: str
) -> None:
    manifest = load_manifest(write_manifest(manifest_text))
    (mnist,) = manifest.models
    assert mnist.onnx == tiny_onnx
    assert mnist.inputs == (TensorSpec("input", "FLOAT", (1, 28, 28)),)
    assert mnist.outputs == (TensorSpec("logits", "FLOAT", (10,)),)


@pytest.mark.parametrize(
    "first_dim, input_dims, output_dims",
    [(1, (1, 1, 28, 28), (1, 10)), ("N", (-1, 1, 28, 28), (-1, 10))],
    ids=["fixed batch model keeps every dim", "symbolic non-batch dims become minus one"],
)
def test_fixed_batch_model_keeps_the_first_dim(
    tmp_path: Path,
    write_manifest: WriteManifest,
    manifest_text: str,
    build_onnx: Callable[..., Path],
    first_dim: int | str,
    input_dims: tuple[int, ...],
    output_dims: tuple[int, ...],
) -> None:
    build_onnx(tmp_path / "models" / "mnist.onnx", batch=first_dim)
    (mnist,) = load_manifest(write_manifest(fixed_batch(manifest_text))).models
    assert mnist.batch == BatchRange(0, 0, 0)
    assert mnist.dynamic_batching is None
    assert mnist.inputs == (TensorSpec("input", "FLOAT", input_dims),)
    assert mnist.outputs == (TensorSpec("logits", "FLOAT", output_dims),)


def test_batching_a_model_with_a_fixed_first_dim_is_refused(
    tmp_path: Path,
    write_manifest: WriteManifest,
    manifest_text: str,
    build_onnx: Callable[..., Path],
) -> None:
    build_onnx(tmp_path / "models" / "mnist.onnx", batch=1)
    assert load_error(write_manifest(manifest_text)) == (
        "model 'mnist': batch.max is 64 but tensor 'input' has first dim 1; export it "
        "with a dynamic batch axis or use max batch size 0 (batch: {max: 0})"
    )


def test_missing_onnx_names_the_model_the_path_and_the_export_command(
    tmp_path: Path, write_manifest: WriteManifest, manifest_text: str
) -> None:
    assert load_error(write_manifest(manifest_text)) == (
        f"model 'mnist': ONNX file {tmp_path / 'models/mnist.onnx'} does not exist; "
        "run `dltk export --model mnist`"
    )


def test_missing_onnx_without_exporter_asks_to_fix_the_path(
    tmp_path: Path, write_manifest: WriteManifest, manifest_text: str
) -> None:
    path = write_manifest(manifest_text.replace("    export: mnist\n", ""))
    with pytest.raises(DltkError, match=r"does not exist; fix the `onnx:` path in the manifest$"):
        load_manifest(path)


def test_manifest_file_missing(tmp_path: Path) -> None:
    with pytest.raises(DltkError, match=r"manifest .*nope.yml does not exist; pass --manifest"):
        load_manifest(tmp_path / "nope.yml")


# Each bad manifest -> the exact one-line error (after the `FILE:` prefix).
BAD = {
    "unknown runtime": (
        lambda m: m.replace("[onnxruntime, python-onnxruntime]", "[onnxruntime, tensorrt-x]"),
        "6:5: model 'mnist': unknown runtime 'tensorrt-x'; known runtimes: onnxruntime, "
        "python-onnxruntime, tensorrt",
    ),
    "unknown model key": (
        lambda m: m + "    precision: fp16\n",
        "9:5: model 'mnist': unknown key 'precision'; known keys: name, onnx, export, samples, "
        "batch, runtimes, precisions, tensorrt, onnxruntime_tensorrt, dynamic_batching, "
        "instances, cpu_threads, warmup, version_policy",
    ),
    "tensorrt only": (
        lambda m: m.replace("[onnxruntime, python-onnxruntime]", "[tensorrt]"),
        "6:5: model 'mnist': runtimes needs one of onnxruntime, python-onnxruntime to serve the "
        "ONNX file where no TensorRT engine exists (hosts without a GPU)",
    ),
    "precisions without tensorrt": (
        lambda m: m + "    precisions: [fp16]\n",
        "9:5: model 'mnist': precisions applies to TensorRT engines; add tensorrt to runtimes or "
        "remove precisions",
    ),
    "unknown precision": (
        lambda m: (
            m.replace("[onnxruntime,", "[tensorrt, onnxruntime,") + "    precisions: [int8]\n"
        ),
        "9:5: model 'mnist': precisions must be a list of distinct values of tf32, fp16, got "
        "['int8']",
    ),
    "unknown tensorrt key": (
        lambda m: (
            m.replace("[onnxruntime,", "[tensorrt, onnxruntime,") + "    tensorrt: {fp16io: true}\n"
        ),
        "9:16: model 'mnist' tensorrt: unknown key 'fp16io'; known keys: fp16_io, workspace_mb",
    ),
    "relative engine cache path": (
        lambda m: m + "    onnxruntime_tensorrt: {engine_cache_path: cache}\n",
        "9:28: model 'mnist' onnxruntime_tensorrt: engine_cache_path must be an absolute path "
        "inside the Triton container",
    ),
    "warmup batch above max": (
        lambda m: m + "    warmup: {batch_size: 65}\n",
        "9:14: model 'mnist' warmup: batch_size 65 exceeds the model's batch.max (64); lower it",
    ),
    "warmup data": (
        lambda m: m + "    warmup: {data: ones}\n",
        "9:14: model 'mnist' warmup: data must be one of zero, random, got 'ones'",
    ),
    "two version policies": (
        lambda m: m + "    version_policy: {latest: 1, all: true}\n",
        "9:5: model 'mnist' version_policy: give exactly one of {latest: 1}, {all: true} or "
        "{specific: [1, 2]}",
    ),
    "pipeline of an unknown model": (
        lambda m: m + "pipelines:\n  - {name: digits, model: resnet}\n",
        "10:5: pipeline 'digits': model 'resnet' is not in `models:` (models: mnist)",
    ),
    "pipeline named like a model": (
        lambda m: m + "pipelines:\n  - {name: mnist, model: mnist}\n",
        "10:5: pipeline 'mnist': the name is already used by a model or another pipeline",
    ),
    "pipeline batch above the model's": (
        lambda m: m + "pipelines:\n  - {name: digits, model: mnist, max_batch_size: 128}\n",
        "10:34: pipeline 'digits': max_batch_size must be in 1..64 (model 'mnist''s batch.max: "
        "the pipeline sends a whole batch to it in one call), got 128",
    ),
    "pipeline batch zero on a batching model": (
        lambda m: m + "pipelines:\n  - {name: digits, model: mnist, max_batch_size: 0}\n",
        "10:34: pipeline 'digits': max_batch_size must be in 1..64 (model 'mnist''s batch.max: "
        "the pipeline sends a whole batch to it in one call), got 0",
    ),
    "pipeline batch on a fixed-batch model": (
        lambda m: (
            fixed_batch(m) + "pipelines:\n  - {name: digits, model: mnist, max_batch_size: 8}\n"
        ),
        "9:34: pipeline 'digits': model 'mnist' is a fixed-batch model (batch.max 0), so "
        "max_batch_size must be 0 or left out",
    ),
    "pipeline dynamic batching on a fixed-batch model": (
        lambda m: (
            fixed_batch(m) + "pipelines:\n  - {name: digits, model: mnist, dynamic_batching: {}}\n"
        ),
        "9:34: pipeline 'digits': dynamic_batching needs max_batch_size > 0; remove it for a "
        "fixed-batch model",
    ),
    "pipeline preferred size above its max_batch_size": (
        lambda m: (
            m
            + "pipelines:\n  - name: digits\n    model: mnist\n    max_batch_size: 16\n"
            + "    dynamic_batching: {preferred_batch_size: [8, 32]}\n"
        ),
        "13:24: pipeline 'digits' dynamic_batching: preferred_batch_size must be a list of sizes "
        "in 1..16 (max_batch_size), got [8, 32]",
    ),
    "pipeline instances zero": (
        lambda m: m + "pipelines:\n  - {name: digits, model: mnist, instances: 0}\n",
        "10:34: pipeline 'digits': instances must be >= 1, got 0",
    ),
    "pipeline std zero": (
        lambda m: m + "pipelines:\n  - {name: digits, model: mnist, std: 0}\n",
        "10:34: pipeline 'digits': std values must be > 0",
    ),
    "unknown batch key": (
        lambda m: m.replace("opt: 16", "optimal: 16"),
        "5:21: model 'mnist' batch: unknown key 'optimal'; known keys: min, opt, max",
    ),
    "unknown top-level key": (
        lambda m: "version: 2\n" + m,
        "1:1: manifest: unknown key 'version'; known keys: models, pipelines",
    ),
    "min above opt": (
        lambda m: m.replace("min: 1", "min: 32"),
        "5:12: model 'mnist' batch: need min <= opt <= max, got min=32 opt=16 max=64",
    ),
    "opt above max": (
        lambda m: m.replace("opt: 16", "opt: 128"),
        "5:12: model 'mnist' batch: need min <= opt <= max, got min=1 opt=128 max=64",
    ),
    "negative max": (
        lambda m: m.replace("max: 64", "max: -1"),
        "5:30: model 'mnist' batch: max must be >= 0, got -1",
    ),
    "max not an integer": (
        lambda m: m.replace("max: 64", "max: many"),
        "5:30: model 'mnist' batch: max must be an integer, got 'many'",
    ),
    "min with fixed batch": (
        lambda m: m.replace("{min: 1, opt: 16, max: 64}", "{min: 1, max: 0}"),
        "5:13: model 'mnist' batch: max is 0 (fixed-batch model), so min does not apply; remove it",
    ),
    "dynamic batching with fixed batch": (
        lambda m: m.replace("{min: 1, opt: 16, max: 64}", "{max: 0}"),
        "7:5: model 'mnist': dynamic_batching needs batch.max > 0; remove it for a fixed-batch "
        "model",
    ),
    "preferred size above max": (
        lambda m: m.replace(
            "{max_queue_delay_microseconds: 100}", "{preferred_batch_size: [8, 65]}"
        ),
        "7:24: model 'mnist' dynamic_batching: preferred_batch_size must be a list of sizes in "
        "1..64 (batch.max), got [8, 65]",
    ),
    "unknown dynamic batching key": (
        lambda m: m.replace("max_queue_delay_microseconds", "max_queue_delay_us"),
        "7:24: model 'mnist' dynamic_batching: unknown key 'max_queue_delay_us'; known keys: "
        "max_queue_delay_microseconds, preferred_batch_size",
    ),
    "zero instances": (
        lambda m: m.replace("instances: 1", "instances: 0"),
        "8:5: model 'mnist': instances must be >= 1, got 0",
    ),
    "zero cpu threads": (
        lambda m: m.replace("instances: 1", "instances: 1\n    cpu_threads: 0"),
        "9:5: model 'mnist': cpu_threads must be >= 1, got 0",
    ),
    "duplicate model names": (
        lambda m: m + m.split("\n", 1)[1],
        "9:5: duplicate model name 'mnist' (first at line 2); names must be unique",
    ),
    "duplicate yaml key": (
        lambda m: m + "    instances: 2\n",
        "9:5: duplicate key 'instances'",
    ),
    "missing required key": (
        lambda m: m.replace("    runtimes: [onnxruntime, python-onnxruntime]\n", ""),
        "2:5: model 'mnist': missing required key 'runtimes'",
    ),
    "bad name": (
        lambda m: m.replace("name: mnist", "name: ../mnist"),
        "2:5: models[0]: bad name: use ASCII letters, digits, '_', '.' or '-' (not first: '.' "
        "or '-'), at most 128 characters: it is a directory, a URL path segment and a "
        "command-line argument; got '../mnist'",
    ),
    "empty models": (lambda m: "models: []\n", "1:1: `models:` must be a non-empty list"),
    "invalid yaml": (
        lambda m: "models: [\n",
        "2:1: not valid YAML: expected the node content, but found '<stream end>'",
    ),
}


@pytest.mark.parametrize("edit, message", BAD.values(), ids=list(BAD))
def test_bad_manifest_is_one_exact_error_with_its_position(
    edit: Callable[[str], str], message: str, manifest_text: str
) -> None:
    path = Path("model_repo/models.yml")
    with pytest.raises(DltkError) as exc:
        parse_manifest(edit(manifest_text), path)
    assert str(exc.value).startswith(f"{path}:{message}")
    assert "\n" not in str(exc.value)


def test_manifest_model_lookup_lists_known_names(manifest_text: str) -> None:
    manifest = parse_manifest(manifest_text, Path("m.yml"))
    assert manifest.model("mnist").name == "mnist"
    with pytest.raises(DltkError, match=r"no model named 'resnet50'; the manifest has: mnist"):
        manifest.model("resnet50")


ALL_OPTIONS = """\
models:
  - name: mnist
    onnx: models/mnist.onnx
    batch: {min: 1, opt: 16, max: 64}
    runtimes: [tensorrt, onnxruntime]
    precisions: [fp16, tf32]
    tensorrt: {fp16_io: true, workspace_mb: 2048}
    onnxruntime_tensorrt: {precision: fp32, engine_cache_path: /cache}
    warmup: {batch_size: 4, data: random, count: 2}
    version_policy: {specific: [2, 1]}
pipelines:
  - name: digits
    model: mnist
    layout: CHW
    mean: 0.5
    std: [0.25]
    softmax: false
    instances: 2
    max_batch_size: 32
    dynamic_batching: {max_queue_delay_microseconds: 200, preferred_batch_size: [16, 32]}
"""


def test_every_option_is_parsed(tiny_onnx: Path, write_manifest: WriteManifest) -> None:
    manifest = load_manifest(write_manifest(ALL_OPTIONS))
    (mnist,) = manifest.models
    assert mnist.tensorrt == TensorrtOptions(fp16_io=True, workspace_mb=2048)
    assert mnist.onnxruntime_tensorrt == OrtTensorrt("fp32", 1024, "/cache")
    assert mnist.warmup == Warmup(batch_size=4, data="random", count=2)
    assert mnist.version_policy == VersionPolicy("specific", (1, 2))
    (digits,) = manifest.pipelines
    assert digits == PipelineSpec(
        "digits",
        "mnist",
        "image",
        "CHW",
        (0.5,),
        (0.25,),
        False,
        2,
        max_batch_size=32,
        dynamic_batching=DynamicBatching(200, (16, 32)),
    )


def test_defaults_of_the_options(tiny_onnx: Path, write_manifest: WriteManifest) -> None:
    text = (
        "models:\n  - {name: m, onnx: models/mnist.onnx, batch: {max: 8}, runtimes: onnxruntime}\n"
    )
    (model,) = load_manifest(write_manifest(text)).models
    assert model.precisions == ("tf32",)
    assert model.tensorrt == TensorrtOptions()
    assert (model.onnxruntime_tensorrt, model.warmup, model.version_policy) == (None, None, None)


@pytest.mark.parametrize(
    "edit, message",
    [
        (
            lambda t: t.replace("count: 2}", "count: 2, dims: {pixels: [1, 28, 28]}}"),
            "model 'mnist' warmup: dims name 'pixels', which is not an input (inputs: input)",
        ),
        (
            lambda t: t.replace("mean: 0.5", "mean: [0.5, 0.5]"),
            "pipeline 'digits': mean has 2 values; give 1 or 1 (one per channel of 'mnist')",
        ),
        (
            lambda t: t.replace("layout: CHW", "layout: HWC").replace("[1, 28, 28]", "[28, 28]"),
            "",
        ),
    ],
)
def test_options_checked_against_the_graph(
    tiny_onnx: Path, write_manifest: WriteManifest, edit: Callable[[str], str], message: str
) -> None:
    path = write_manifest(edit(ALL_OPTIONS))
    if not message:  # HWC on a [1,28,28] model is fine: C=1
        assert load_manifest(path).pipelines[0].layout == "HWC"
        return
    assert load_error(path) == message


def test_pipeline_needs_a_classifier(
    tmp_path: Path, write_manifest: WriteManifest, build_onnx: Callable[..., Path]
) -> None:
    build_onnx(tmp_path / "models" / "mnist.onnx", batch="N")
    text = fixed_batch(ALL_OPTIONS, drop="    warmup: {batch_size: 4, data: random, count: 2}\n")
    text = text[: text.index("    max_batch_size: 32\n")]  # the pipeline's batching needs one
    assert load_error(write_manifest(text)) == (
        "pipeline 'digits': model 'mnist' input dims [-1, 1, 28, 28] must be fixed "
        "[C,H,W] or [H,W] after the batch dim"
    )


def test_warmup_needs_concrete_dims(
    tmp_path: Path, write_manifest: WriteManifest, build_onnx: Callable[..., Path]
) -> None:
    build_onnx(tmp_path / "models" / "mnist.onnx", batch="N")
    text = (
        "models:\n  - {name: m, onnx: models/mnist.onnx, batch: {max: 0}, runtimes: onnxruntime,"
        " warmup: {}}\n"
    )
    assert load_error(write_manifest(text)) == (
        "model 'm' warmup: input 'input' has variable dims [-1, 1, 28, 28]; give them "
        "as warmup: {dims: {input: [...]}}"
    )
    fixed = text.replace("warmup: {}", "warmup: {dims: {input: [1, 1, 28, 28]}}")
    (model,) = load_manifest(write_manifest(fixed)).models
    assert model.warmup == Warmup(dims=(("input", (1, 1, 28, 28)),))
