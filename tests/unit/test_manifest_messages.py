# ruff: noqa: E501 - each expected message is kept whole on one line, as the user sees it
"""Every refusal of models.yml is one whole line: `FILE:LINE:COL: what is wrong and what to do`.

Mutation testing (issue 14) left 100 survivors in manifest/load.py that changed the wording of a
message, dropped it (the error then reads `m.yml:3:5: None`) or moved its position (the key's
line and column replaced by its mapping's, or by none). The older tests compared the start of a
message or the part that names the field. Here each case is an input at the edge of one rule
(the case id says which), and the expected text is the whole message.

The position rule (module docstring of manifest/load.py and manifest/yaml_io.py): an error about a key's
value points at that key; an error about a mapping as a whole (a required key missing, min/opt/
max out of order) points at the mapping's first key; an error with no place in the YAML (a list
item that is not a mapping, the file itself) has no position. The base model below starts with
`cpu_threads`, so its mapping's position (2:5) differs from the position of every key a case
is about; a wrong `where(...)` shows.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from dltk.errors import DltkError
from dltk.manifest.load import load_manifest, parse_manifest, with_tensors
from dltk.manifest.model import BatchRange, ModelSpec
from dltk.manifest.options import TensorrtOptions
from dltk.names import RULE
from dltk.onnx_graph import TensorSpec

# Positions (line:column, 1-based): the model mapping 2:5 (cpu_threads), name 3:5, onnx 4:5,
# runtimes 5:5, batch 6:5, the batch mapping 7:7 (opt), max 8:7; a line appended is line 9.
BASE = """\
models:
  - cpu_threads: 2
    name: mnist
    onnx: models/mnist.onnx
    runtimes: [onnxruntime]
    batch:
      opt: 16
      max: 64
"""
RUNTIMES = "onnxruntime, python-onnxruntime, tensorrt"
MODEL_KEYS = "name, onnx, export, samples, batch, runtimes, precisions, tensorrt, onnxruntime_tensorrt, dynamic_batching, instances, cpu_threads, warmup, version_policy"
BATCH_TEXT = "    batch:\n      opt: 16\n      max: 64\n"


def batch(*lines: str) -> str:
    """BASE with its batch block replaced by `lines` (each one key, in this order)."""
    return BASE.replace(BATCH_TEXT, "    batch:\n" + "".join(f"      {ln}\n" for ln in lines))


REFUSED = {
    # --- the file as a whole: no position
    "top level is a list": (
        "- mnist\n",
        "m.yml: expected a mapping with a `models:` list (see docs/contract.md)",
    ),
    "top level has no models key": (
        "pipelines: []\n",
        "m.yml: expected a mapping with a `models:` list (see docs/contract.md)",
    ),
    "empty file": ("", "m.yml: expected a mapping with a `models:` list (see docs/contract.md)"),
    "unknown top-level key at its line": (
        "models: []\nversion: 2\n",
        "m.yml:2:1: manifest: unknown key 'version'; known keys: models, pipelines",
    ),
    "models empty, at the models key": (
        "pipelines: []\nmodels: []\n",
        "m.yml:2:1: `models:` must be a non-empty list",
    ),
    "models a mapping, at the models key": (
        "pipelines: []\nmodels: {name: a}\n",
        "m.yml:2:1: `models:` must be a non-empty list",
    ),
    # --- a models entry
    "entry not a mapping names its index": (
        BASE + "  - mnist\n",
        "m.yml: models[1] must be a mapping with name, onnx, batch, runtimes",
    ),
    "bad name at the name key": (
        BASE.replace("name: mnist", "name: a/b"),
        f"m.yml:3:5: models[0]: bad name: {RULE}; got 'a/b'",
    ),
    "name not a string": (
        BASE.replace("name: mnist", "name: 7"),
        f"m.yml:3:5: models[0]: bad name: {RULE}; got 7",
    ),
    "unknown key of an unnamed entry names its index": (
        "models:\n  - onnx: a.onnx\n    size: 3\n",
        f"m.yml:3:5: models[0]: unknown key 'size'; known keys: {MODEL_KEYS}",
    ),
    "unknown key of a named model names the model": (
        BASE + "    precision: fp16\n",
        f"m.yml:9:5: model 'mnist': unknown key 'precision'; known keys: {MODEL_KEYS}",
    ),
    "missing name, at the entry": (
        BASE.replace("    name: mnist\n", ""),
        "m.yml:2:5: models[0]: missing required key 'name'",
    ),
    "missing onnx, at the entry": (
        BASE.replace("    onnx: models/mnist.onnx\n", ""),
        "m.yml:2:5: model 'mnist': missing required key 'onnx'",
    ),
    "missing runtimes, at the entry": (
        BASE.replace("    runtimes: [onnxruntime]\n", ""),
        "m.yml:2:5: model 'mnist': missing required key 'runtimes'",
    ),
    "missing batch, at the entry": (
        BASE.replace(BATCH_TEXT, ""),
        "m.yml:2:5: model 'mnist': missing required key 'batch'",
    ),
    "onnx not a string": (
        BASE.replace("onnx: models/mnist.onnx", "onnx: 5"),
        "m.yml:4:5: model 'mnist': onnx must be a path relative to the manifest",
    ),
    "onnx empty": (
        BASE.replace("onnx: models/mnist.onnx", "onnx: ''"),
        "m.yml:4:5: model 'mnist': onnx must be a path relative to the manifest",
    ),
    "samples not a string": (
        BASE + "    samples: [a]\n",
        "m.yml:9:5: model 'mnist': samples must be a path relative to the manifest",
    ),
    "export empty": (
        BASE + "    export: ''\n",
        "m.yml:9:5: model 'mnist': export must be an exporter name",
    ),
    "export not a string": (
        BASE + "    export: 1\n",
        "m.yml:9:5: model 'mnist': export must be an exporter name",
    ),
    "precisions without the tensorrt runtime": (
        BASE + "    precisions: [fp16]\n",
        "m.yml:9:5: model 'mnist': precisions applies to TensorRT engines; add tensorrt to runtimes or remove precisions",
    ),
    "tensorrt options without the tensorrt runtime": (
        BASE + "    tensorrt: {fp16_io: true}\n",
        "m.yml:9:5: model 'mnist': tensorrt applies to TensorRT engines; add tensorrt to runtimes or remove tensorrt",
    ),
    "instances 0": (
        BASE + "    instances: 0\n",
        "m.yml:9:5: model 'mnist': instances must be >= 1, got 0",
    ),
    "cpu_threads 0": (
        BASE.replace("cpu_threads: 2", "cpu_threads: 0"),
        "m.yml:2:5: model 'mnist': cpu_threads must be >= 1, got 0",
    ),
    # --- batch
    "batch not a mapping, at the batch key": (
        BASE.replace(BATCH_TEXT, "    batch: 64\n"),
        "m.yml:6:5: model 'mnist': batch must be a mapping like {min: 1, opt: 16, max: 64} (max: 0 for a fixed-batch model)",
    ),
    "batch without max, at the batch key": (
        batch("opt: 16"),
        "m.yml:6:5: model 'mnist': batch must be a mapping like {min: 1, opt: 16, max: 64} (max: 0 for a fixed-batch model)",
    ),
    "unknown batch key": (
        batch("opt: 16", "max: 64", "best: 4"),
        "m.yml:9:7: model 'mnist' batch: unknown key 'best'; known keys: min, opt, max",
    ),
    "batch max -1": (
        batch("opt: 16", "max: -1"),
        "m.yml:8:7: model 'mnist' batch: max must be >= 0, got -1",
    ),
    "batch max a bool": (
        batch("opt: 16", "max: true"),
        "m.yml:8:7: model 'mnist' batch: max must be an integer, got True",
    ),
    "batch min 0": (
        batch("opt: 16", "max: 64", "min: 0"),
        "m.yml:9:7: model 'mnist' batch: min must be >= 1, got 0",
    ),
    "batch opt 0": (
        batch("max: 64", "opt: 0"),
        "m.yml:8:7: model 'mnist' batch: opt must be >= 1, got 0",
    ),
    "fixed batch with opt, at opt": (
        batch("max: 0", "opt: 16"),
        "m.yml:8:7: model 'mnist' batch: max is 0 (fixed-batch model), so opt does not apply; remove it",
    ),
    "fixed batch with min and opt names min": (
        batch("max: 0", "opt: 2", "min: 1"),
        "m.yml:9:7: model 'mnist' batch: max is 0 (fixed-batch model), so min does not apply; remove it",
    ),
    "batch min above opt, at the batch mapping": (
        batch("opt: 16", "max: 64", "min: 17"),
        "m.yml:7:7: model 'mnist' batch: need min <= opt <= max, got min=17 opt=16 max=64",
    ),
    "batch opt above max, at the batch mapping": (
        batch("opt: 65", "max: 64"),
        "m.yml:7:7: model 'mnist' batch: need min <= opt <= max, got min=1 opt=65 max=64",
    ),
    # --- runtimes (all at the runtimes key)
    "runtimes not a list": (
        BASE.replace("[onnxruntime]", "5"),
        f"m.yml:5:5: model 'mnist': runtimes must be a non-empty list of: {RUNTIMES}",
    ),
    "runtimes empty": (
        BASE.replace("[onnxruntime]", "[]"),
        f"m.yml:5:5: model 'mnist': runtimes must be a non-empty list of: {RUNTIMES}",
    ),
    "unknown runtime": (
        BASE.replace("[onnxruntime]", "[onnxruntime, trt]"),
        f"m.yml:5:5: model 'mnist': unknown runtime 'trt'; known runtimes: {RUNTIMES}",
    ),
    "runtime twice": (
        BASE.replace("[onnxruntime]", "[tensorrt, onnxruntime, tensorrt]"),
        "m.yml:5:5: model 'mnist': runtimes lists one twice",
    ),
    "tensorrt alone": (
        BASE.replace("[onnxruntime]", "tensorrt"),
        "m.yml:5:5: model 'mnist': runtimes needs one of onnxruntime, python-onnxruntime to serve the ONNX file where no TensorRT engine exists (hosts without a GPU)",
    ),
    # --- across models and pipelines
    "duplicate model name, at the second name, with the first's line": (
        BASE
        + "  - onnx: b.onnx\n    name: mnist\n    batch: {max: 0}\n    runtimes: [onnxruntime]\n",
        "m.yml:10:5: duplicate model name 'mnist' (first at line 3); names must be unique",
    ),
    "pipelines not a list, at the pipelines key": (
        BASE + "pipelines: 5\n",
        "m.yml:9:1: `pipelines:` must be a list",
    ),
    "pipeline named like a model, at the pipeline": (
        BASE + "pipelines:\n  - model: mnist\n    name: mnist\n",
        "m.yml:10:5: pipeline 'mnist': the name is already used by a model or another pipeline; pick another",
    ),
    "pipeline model not a string": (
        BASE + "pipelines:\n  - name: d\n    model: 5\n",
        "m.yml:10:5: pipeline 'd': model must name a model of `models:`",
    ),
    "pipeline input not a string": (
        BASE + "pipelines:\n  - name: d\n    model: mnist\n    input: 5\n",
        "m.yml:12:5: pipeline 'd': input must be a tensor name",
    ),
    "pipeline max_batch_size -1": (
        BASE + "pipelines:\n  - name: d\n    model: mnist\n    max_batch_size: -1\n",
        "m.yml:12:5: pipeline 'd': max_batch_size must be >= 0, got -1",
    ),
    "pipeline max_batch_size above a batch.max of 1": (
        batch("max: 1") + "pipelines:\n  - name: d\n    model: mnist\n    max_batch_size: 2\n",
        "m.yml:11:5: pipeline 'd': max_batch_size must be in 1..1 (model 'mnist''s batch.max: the pipeline sends a whole batch to it in one call), got 2",
    ),
}


@pytest.mark.parametrize("text, message", REFUSED.values(), ids=list(REFUSED))
def test_each_manifest_error_is_one_exact_line_at_its_key(text: str, message: str) -> None:
    """Rule: the case's id; the message is the one line the user sees, FILE:LINE:COL first."""
    with pytest.raises(DltkError) as exc:
        parse_manifest(text, Path("m.yml"))
    assert str(exc.value) == message


def test_base_manifest_is_valid() -> None:
    """The cases above differ from a valid manifest only in what their id says."""
    (model,) = parse_manifest(BASE, Path("m.yml")).models
    assert (model.name, model.batch, model.runtimes, model.cpu_threads) == (
        "mnist",
        BatchRange(1, 16, 64),
        ("onnxruntime",),
        2,
    )


def test_omitted_options_take_their_documented_defaults() -> None:
    """Rule: instances 1, no cpu_threads (the runtime's default), precisions [tf32], TensorRT
    options fp16_io false and workspace_mb None (TensorRT's default), no other option."""
    text = BASE.replace("  - cpu_threads: 2\n    name: mnist", "  - name: mnist")
    (model,) = parse_manifest(text, Path("m.yml")).models
    assert (model.instances, model.cpu_threads, model.precisions) == (1, None, ("tf32",))
    assert (model.export, model.samples, model.dynamic_batching, model.warmup) == (
        None,
        None,
        None,
        None,
    )


@pytest.mark.parametrize(
    "tensorrt, expected",
    [
        ("{fp16_io: true}", TensorrtOptions(fp16_io=True, workspace_mb=None)),
        ("{workspace_mb: 512}", TensorrtOptions(fp16_io=False, workspace_mb=512)),
        ("{}", TensorrtOptions(fp16_io=False, workspace_mb=None)),
    ],
)
def test_tensorrt_options_left_out_keep_their_defaults(
    tensorrt: str, expected: TensorrtOptions
) -> None:
    """Rule: a TensorRT option left out is fp16_io false / workspace_mb None (TensorRT's own
    default), whatever the other option says."""
    text = BASE.replace("[onnxruntime]", "[tensorrt, onnxruntime]") + f"    tensorrt: {tensorrt}\n"
    (model,) = parse_manifest(text, Path("m.yml")).models
    assert model.tensorrt == expected


def test_precisions_given_as_one_string_are_a_list_of_one() -> None:
    """Rule: `precisions: fp16` is the list [fp16] (like `runtimes: onnxruntime`)."""
    text = BASE.replace("[onnxruntime]", "[tensorrt, onnxruntime]") + "    precisions: fp16\n"
    (model,) = parse_manifest(text, Path("m.yml")).models
    assert model.precisions == ("fp16",)


def test_onnx_and_samples_paths_are_relative_to_the_manifest_unless_absolute(
    tmp_path: Path,
) -> None:
    """Rule: a relative onnx/samples path is relative to the manifest's directory; an absolute
    one is used as it is."""
    text = BASE.replace("onnx: models/mnist.onnx", "onnx: /srv/mnist.onnx") + "    samples: s.npz\n"
    (model,) = parse_manifest(text, tmp_path / "repo" / "models.yml").models
    assert (model.onnx, model.samples) == (Path("/srv/mnist.onnx"), tmp_path / "repo" / "s.npz")
    text = BASE + "    samples: /data/s.npz\n"
    (model,) = parse_manifest(text, tmp_path / "models.yml").models
    assert (model.onnx, model.samples) == (tmp_path / "models" / "mnist.onnx", Path("/data/s.npz"))


# --- what needs the ONNX file: load_manifest / with_tensors -----------------------------------


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "models.yml"
    path.write_text(text)
    return path


def load_error(path: Path) -> str:
    with pytest.raises(DltkError) as exc:
        load_manifest(path)
    return str(exc.value)


def test_missing_manifest_file_is_one_exact_line(tmp_path: Path) -> None:
    """Rule: a manifest that does not exist says so and how to pass one."""
    path = tmp_path / "nope.yml"
    assert (
        load_error(path) == f"manifest {path} does not exist; pass --manifest model_repo/models.yml"
    )


def test_unreadable_manifest_is_one_exact_line(tmp_path: Path) -> None:
    """Rule: a manifest that cannot be read (here a directory) says why, in the OS's words."""
    assert load_error(tmp_path) == f"cannot read manifest {tmp_path}: Is a directory"


def test_missing_onnx_names_the_exporter_or_the_path_to_fix(tmp_path: Path) -> None:
    """Rule: a missing ONNX file is one line FILE: model: ONNX file PATH does not exist; then
    the export command when the model has an exporter, else to fix the path."""
    path = write(tmp_path, BASE + "    export: mnist\n")
    onnx = tmp_path / "models" / "mnist.onnx"
    assert load_error(path) == (
        f"{path}: model 'mnist': ONNX file {onnx} does not exist; run `dltk export --model mnist`"
    )
    path = write(tmp_path, BASE)
    assert load_error(path) == (
        f"{path}: model 'mnist': ONNX file {onnx} does not exist; fix the `onnx:` path in the manifest"
    )


def test_with_tensors_without_a_place_starts_with_the_model(tmp_path: Path) -> None:
    """Rule: with_tensors called without a file name (where_ "") has no `: ` prefix."""
    model = ModelSpec("m", tmp_path / "none.onnx", BatchRange(0, 0, 0), ("onnxruntime",))
    with pytest.raises(DltkError) as exc:
        with_tensors(model)
    assert (
        str(exc.value)
        == f"model 'm': ONNX file {tmp_path / 'none.onnx'} does not exist; fix the `onnx:` path in the manifest"
    )


def test_batching_a_fixed_first_dim_is_one_exact_line(tmp_path: Path, build_onnx) -> None:  # noqa: ANN001 - conftest fixture
    """Rule: batch.max > 0 needs every tensor's first dim to be the dynamic batch axis; the
    error names the model, the tensor and its first dim. batch.max 1 is batching too."""
    build_onnx(tmp_path / "models" / "mnist.onnx", batch=4)
    path = write(tmp_path, batch("max: 1"))
    assert load_error(path) == (
        f"{path}: model 'mnist': batch.max is 1 but tensor 'input' has first dim 4; export it "
        "with a dynamic batch axis or use max batch size 0 (batch: {max: 0})"
    )


def test_a_batch_max_of_1_removes_the_batch_dim(tmp_path: Path, build_onnx) -> None:  # noqa: ANN001 - conftest fixture
    """Rule: with batch.max >= 1 the model's tensors are the ONNX ones without the batch dim."""
    build_onnx(tmp_path / "models" / "mnist.onnx")
    (model,) = load_manifest(write(tmp_path, batch("max: 1"))).models
    assert model.inputs == (TensorSpec("input", "FLOAT", (1, 28, 28)),)
    assert model.outputs == (TensorSpec("logits", "FLOAT", (10,)),)


WARMUP_REFUSED = {
    "dims for a tensor that is not an input": (
        "{dims: {pixels: [1, 28, 28]}}",
        "model 'mnist' warmup: dims name 'pixels', which is not an input (inputs: input)",
    ),
    "variable dims without warmup dims": (
        "{}",
        "model 'mnist' warmup: input 'input' has variable dims [-1, 1, 28, 28]; give them as warmup: {dims: {input: [...]}}",
    ),
    "warmup dims of the wrong rank": (
        "{dims: {input: [1, 28, 28]}}",
        "model 'mnist' warmup: dims of 'input' need 4 sizes like [-1, 1, 28, 28]",
    ),
}


@pytest.mark.parametrize("warmup, message", WARMUP_REFUSED.values(), ids=list(WARMUP_REFUSED))
def test_each_warmup_error_against_the_graph_is_one_exact_line(
    tmp_path: Path,
    build_onnx,  # noqa: ANN001 - conftest fixture
    warmup: str,
    message: str,
) -> None:
    """Rule: the case's id, for a fixed-batch model (batch.max 0) whose ONNX input has a
    variable first dim: the warmup must give it concrete dims of the input's rank."""
    build_onnx(tmp_path / "models" / "mnist.onnx", batch="N")
    path = write(tmp_path, batch("max: 0") + f"    warmup: {warmup}\n")
    assert load_error(path) == f"{path}: {message}"


@pytest.mark.parametrize("warmup", ["{}", "{dims: {input: [1, 28, 28]}}"])
def test_warmup_of_fixed_dims_needs_no_dims_and_may_repeat_them(
    tmp_path: Path,
    build_onnx,  # noqa: ANN001 - conftest fixture
    warmup: str,
) -> None:
    """Rule: an input whose dims are all fixed needs no warmup dims (and may state them)."""
    build_onnx(tmp_path / "models" / "mnist.onnx")
    (model,) = load_manifest(write(tmp_path, BASE + f"    warmup: {warmup}\n")).models
    assert model.warmup is not None and model.inputs[0].dims == (1, 28, 28)


def scalar_output_model(path: Path) -> Path:
    """input [N, 3] -> total = the sum of all its values, a scalar (no dims at all)."""
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("ReduceSum", ["input"], ["total"], keepdims=0)],
        "scalar",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3])],
        [helper.make_tensor_value_info("total", TensorProto.FLOAT, [])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


def test_batching_a_scalar_tensor_is_one_exact_line(tmp_path: Path) -> None:
    """Rule: a scalar tensor has no batch axis, so batch.max > 0 is refused for it, and the
    message says the tensor is a scalar."""
    scalar_output_model(tmp_path / "models" / "mnist.onnx")
    path = write(tmp_path, BASE)
    assert load_error(path) == (
        f"{path}: model 'mnist': batch.max is 64 but tensor 'total' has first dim none (a "
        "scalar); export it with a dynamic batch axis or use max batch size 0 (batch: {max: 0})"
    )


TRT_BASE = BASE.replace("[onnxruntime]", "[tensorrt, onnxruntime]")
AT_THEIR_MINIMUM = {
    "batch min and opt 1": (
        batch("opt: 1", "max: 64", "min: 1"),
        lambda m: (m.batch.min, m.batch.opt) == (1, 1),
    ),
    "cpu_threads 1": (
        BASE.replace("cpu_threads: 2", "cpu_threads: 1"),
        lambda m: m.cpu_threads == 1,
    ),
    "instances 1": (BASE + "    instances: 1\n", lambda m: m.instances == 1),
    "tensorrt workspace_mb 1": (
        TRT_BASE + "    tensorrt: {workspace_mb: 1}\n",
        lambda m: m.tensorrt.workspace_mb == 1,
    ),
    "onnxruntime_tensorrt workspace_mb 1": (
        BASE + "    onnxruntime_tensorrt: {workspace_mb: 1}\n",
        lambda m: m.onnxruntime_tensorrt.workspace_mb == 1,
    ),
    "warmup batch_size and count 1": (
        BASE + "    warmup: {count: 1, batch_size: 1}\n",
        lambda m: (m.warmup.batch_size, m.warmup.count) == (1, 1),
    ),
    "version_policy latest 1": (
        BASE + "    version_policy: {latest: 1}\n",
        lambda m: m.version_policy.versions == (1,),
    ),
    "dynamic_batching delay 0, preferred 1": (
        BASE
        + "    dynamic_batching: {max_queue_delay_microseconds: 0, preferred_batch_size: [1]}\n",
        lambda m: (
            (
                m.dynamic_batching.max_queue_delay_microseconds,
                m.dynamic_batching.preferred_batch_size,
            )
            == (0, (1,))
        ),
    ),
}


@pytest.mark.parametrize("text, holds", AT_THEIR_MINIMUM.values(), ids=list(AT_THEIR_MINIMUM))
def test_each_integer_option_accepts_its_minimum(text: str, holds) -> None:  # noqa: ANN001 - a predicate
    """Rule: the case's id; each bound is inclusive (the refusals below it are in REFUSED and
    in test_manifest_options_rules.py)."""
    (model,) = parse_manifest(text, Path("m.yml")).models
    assert holds(model), model


OPTION_AT_ITS_KEY = {
    "preferred size 0, at preferred_batch_size, not at dynamic_batching": (
        BASE
        + "    dynamic_batching: {max_queue_delay_microseconds: 1, preferred_batch_size: [0]}\n",
        "m.yml:9:57: model 'mnist' dynamic_batching: preferred_batch_size must be a list of sizes in 1..64 (batch.max), got [0]",
    ),
    "warmup batch_size above batch.max, at batch_size, not at warmup": (
        BASE + "    warmup: {count: 1, batch_size: 65}\n",
        "m.yml:9:24: model 'mnist' warmup: batch_size 65 exceeds the model's batch.max (64); lower it",
    ),
    "warmup dims of the second input, at that input": (
        BASE + "    warmup: {dims: {a: [1], b: [0]}}\n",
        "m.yml:9:29: model 'mnist' warmup: dims of 'b' must be a list of positive sizes, got [0]",
    ),
    "a relative engine cache path, at engine_cache_path": (
        BASE + "    onnxruntime_tensorrt: {precision: fp16, engine_cache_path: cache}\n",
        "m.yml:9:45: model 'mnist' onnxruntime_tensorrt: engine_cache_path must be an absolute path inside the Triton container",
    ),
}


@pytest.mark.parametrize("text, message", OPTION_AT_ITS_KEY.values(), ids=list(OPTION_AT_ITS_KEY))
def test_an_option_error_points_at_its_key_not_at_the_first_key(text: str, message: str) -> None:
    """Rule: the case's id; the key the error is about is not the first of its mapping here,
    so the position shows which one is meant."""
    with pytest.raises(DltkError) as exc:
        parse_manifest(text, Path("m.yml"))
    assert str(exc.value) == message


def test_a_warmup_dims_name_that_is_no_input_lists_every_input(tmp_path: Path) -> None:
    """Rule: warmup dims may name only the model's inputs; the error lists all of them, sorted."""
    from onnx_builders import two_input_model

    (tmp_path / "models").mkdir()
    two_input_model(tmp_path / "models" / "mnist.onnx")
    path = write(tmp_path, batch("max: 8") + "    warmup: {dims: {pixels: [3]}}\n")
    assert load_error(path) == (
        f"{path}: model 'mnist' warmup: dims name 'pixels', which is not an input (inputs: k, x)"
    )


def test_an_unknown_model_name_lists_the_manifests_models_and_its_file() -> None:
    """Rule: looking up a model the manifest lacks names the manifest file and its models."""
    text = BASE + "  - {name: digits, onnx: d.onnx, batch: {max: 0}, runtimes: onnxruntime}\n"
    manifest = parse_manifest(text, Path("m.yml"))
    with pytest.raises(DltkError) as exc:
        manifest.model("resnet")
    assert str(exc.value) == "m.yml: no model named 'resnet'; the manifest has: mnist, digits"


def test_a_pipeline_of_an_unknown_model_lists_every_model() -> None:
    """Rule: a pipeline must call a model of `models:`; the error lists all of them."""
    text = (
        BASE
        + "  - {name: digits, onnx: d.onnx, batch: {max: 0}, runtimes: onnxruntime}\n"
        + "pipelines:\n  - {name: p, model: resnet}\n"
    )
    with pytest.raises(DltkError) as exc:
        parse_manifest(text, Path("m.yml"))
    assert str(exc.value) == (
        "m.yml:11:5: pipeline 'p': model 'resnet' is not in `models:` (models: mnist, digits)"
    )


def test_a_pipelines_input_name_is_kept() -> None:
    """Rule: `input:` names the pipeline's image tensor (default `image`)."""
    text = BASE + "pipelines:\n  - {name: p, model: mnist, input: pixels}\n"
    (pipeline,) = parse_manifest(text, Path("m.yml")).pipelines
    assert pipeline.input == "pixels"
