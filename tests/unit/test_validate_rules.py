"""`dltk validate`: one test per value rule, each named and worded after the rule it pins.

These were survivors of mutation testing (issue 14): changing the rule in repo/validate.py made no
test fail. Each test gives a config on each side of the rule's edge.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from dltk.repo.validate import validate_repo

# mnist's interface, batched: input [B,1,28,28] -> logits [B,10] (conftest's build_tiny_onnx).
CONFIG = """\
name: "mnist"
platform: "onnxruntime_onnx"
max_batch_size: 64
input [ {{ name: "input" data_type: TYPE_FP32 dims: [ {input_dims} ] }} ]
output [ {{ name: "logits" data_type: TYPE_FP32 dims: [ 10 ] }} ]
{extra}
"""


def config(input_dims: str = "1, 28, 28", extra: str = "") -> str:
    return CONFIG.format(input_dims=input_dims, extra=extra)


Repo = Callable[..., list[str]]


@pytest.fixture
def problems(tmp_path: Path, build_onnx: Callable[..., Path]) -> Repo:
    """problems(text, versions={1: {}}) -> validate_repo's messages for one model "mnist".

    `versions` maps a version number to build_onnx keyword arguments for its model.onnx.
    """

    def run(text: str, versions: dict[int, dict[str, object]] | None = None) -> list[str]:
        repo = tmp_path / "repo"
        model = repo / "mnist"
        model.mkdir(parents=True)
        (model / "config.pbtxt").write_text(text)
        for version, kwargs in (versions or {1: {}}).items():
            build_onnx(model / str(version) / "model.onnx", **kwargs)
        return [p.message for p in validate_repo(repo)]

    return run


def test_preferred_batch_size_may_equal_max_batch_size(problems: Repo) -> None:
    """Rule: preferred_batch_size must be in 1..max_batch_size, both ends included."""
    assert problems(config(extra="dynamic_batching { preferred_batch_size: [ 1, 64 ] }")) == [], (
        "preferred_batch_size 1 and 64 (= max_batch_size) are valid"
    )


def test_preferred_batch_size_above_max_or_zero_is_refused(problems: Repo) -> None:
    """Rule: a preferred size of 0 or of max_batch_size + 1 is outside 1..max_batch_size."""
    found = problems(config(extra="dynamic_batching { preferred_batch_size: [ 0, 65 ] }"))
    assert found == [
        "preferred_batch_size 0 is outside 1..max_batch_size (64)",
        "preferred_batch_size 65 is outside 1..max_batch_size (64)",
    ]


def test_variable_dim_in_the_config_matches_any_onnx_size(problems: Repo) -> None:
    """Rule: -1 (variable) in the config's dims matches whatever size the ONNX graph has."""
    assert problems(config(input_dims="1, -1, 28")) == [], "-1 matches the graph's 28"


def test_variable_dim_in_the_onnx_matches_any_config_size(
    problems: Repo, tmp_path: Path, build_onnx: Callable[..., Path]
) -> None:
    """Rule: a variable ONNX dim (-1) matches the config's fixed size; only rank and fixed sizes
    are compared."""
    # A graph whose input is [B, 1, 28, 28] but with a symbolic H: dims become [-1, 1, -1, 28].
    import onnx

    text = config(input_dims="1, 28, 28")
    assert problems(text) == []
    onnx_file = tmp_path / "repo" / "mnist" / "1" / "model.onnx"
    model = onnx.load(str(onnx_file))
    model.graph.input[0].type.tensor_type.shape.dim[2].dim_param = "height"
    onnx.save(model, str(onnx_file))
    assert [p.message for p in validate_repo(tmp_path / "repo")] == [], (
        "the graph's variable height matches the config's 28"
    )


def test_fixed_dims_still_must_match_next_to_a_variable_one(problems: Repo) -> None:
    """Rule: -1 is a wildcard for its own position only; the other dims are still compared."""
    assert problems(config(input_dims="1, -1, 27")) == [
        "input 'input' dims [1, -1, 27] do not match model.onnx's [1, 28, 28] (without the "
        "batch dim)"
    ]


def test_the_newest_version_onnx_is_compared(problems: Repo) -> None:
    """Rule: Triton serves the newest version by default, so the config is compared with the
    model.onnx of the highest-numbered version directory (10 beats 9: numbers, not text)."""
    old_name = {"input_name": "old_input"}
    assert problems(config(), versions={9: old_name, 10: {}}) == [], (
        "version 10 (newest) matches the config; version 9's different input is not compared"
    )


def test_an_older_version_is_not_what_is_compared(tmp_path: Path, problems: Repo) -> None:
    """Rule (the other side): a mismatch in the newest version is reported even when an older
    version matches."""
    found = problems(config(), versions={1: {}, 2: {"input_name": "new_input"}})
    assert found == [
        "input 'input' is not an input of {} (it has: new_input)".format(
            tmp_path / "repo" / "mnist" / "2" / "model.onnx"
        )
    ]


TRT = """\
name: "mnist_trt_fp16"
platform: "tensorrt_plan"
max_batch_size: 64
input [ { name: "input" data_type: TYPE_FP32 dims: [ 1, 28, 28 ] } ]
output [ { name: "logits" data_type: TYPE_FP32 dims: [ 10 ] } ]
cc_model_filenames { key: "8.6" value: "FILE" }
"""


@pytest.mark.parametrize("filename", ["sub/model.plan", ".model.plan", ""])
def test_cc_model_filename_must_be_a_plain_file_name(tmp_path: Path, filename: str) -> None:
    """Rule: a cc_model_filenames value is a file name in the version directory: not empty, no
    `/` (no sub-directory or escape), not hidden."""
    model = tmp_path / "repo" / "mnist_trt_fp16"
    (model / "1").mkdir(parents=True)
    (model / "1" / "model.plan").write_bytes(b"x")
    (model / "config.pbtxt").write_text(TRT.replace("FILE", filename))
    messages = [p.message for p in validate_repo(tmp_path / "repo")]
    assert (
        f"cc_model_filenames['8.6'] = {filename!r} must be a file name in the version directory"
        in messages
    )


def test_cc_model_filename_plain_name_is_accepted(tmp_path: Path) -> None:
    model = tmp_path / "repo" / "mnist_trt_fp16"
    (model / "1").mkdir(parents=True)
    (model / "1" / "model.sm86.plan").write_bytes(b"x")
    (model / "config.pbtxt").write_text(TRT.replace("FILE", "model.sm86.plan"))
    assert validate_repo(tmp_path / "repo") == []


@pytest.mark.parametrize(
    "platform, backend",
    [("onnxruntime_onnx", "onnxruntime"), ("tensorrt_plan", "tensorrt"), ("python", "python")],
)
def test_platform_and_backend_may_both_name_the_same_runtime(
    tmp_path: Path, platform: str, backend: str
) -> None:
    """Rule: platform onnxruntime_onnx is backend onnxruntime and tensorrt_plan is tensorrt;
    setting both is fine when they agree."""
    model = tmp_path / "repo" / "m"
    (model / "1").mkdir(parents=True)
    text = f'name: "m"\nplatform: "{platform}"\nbackend: "{backend}"\n'
    (model / "config.pbtxt").write_text(text)
    assert not [p for p in validate_repo(tmp_path / "repo") if "disagree" in p.message]


def test_platform_and_backend_that_disagree_are_reported_at_the_backend(tmp_path: Path) -> None:
    """Rule: platform and backend naming different runtimes is a problem, placed at backend."""
    model = tmp_path / "repo" / "m"
    (model / "1").mkdir(parents=True)
    (model / "1" / "model.plan").write_bytes(b"x")
    text = 'name: "m"\nplatform: "tensorrt_plan"\nbackend: "onnxruntime"\n'
    (model / "config.pbtxt").write_text(text)
    assert [str(p) for p in validate_repo(tmp_path / "repo")] == [
        f"{model / 'config.pbtxt'}:3:1: platform 'tensorrt_plan' and backend 'onnxruntime' "
        "disagree; set one of them",
        f"{model / '1'}: missing model.onnx (required by 'onnxruntime'); re-render the repository",
    ]


def test_a_parse_error_keeps_protobufs_message_without_the_quoted_line(tmp_path: Path) -> None:
    """Rule: a schema error is FILE:LINE:COL: protobuf's message, without protobuf's copy of
    the offending line; a ' : ' inside the message itself is kept."""
    model = tmp_path / "repo" / "m"
    model.mkdir(parents=True)
    (model / "config.pbtxt").write_text('name: "m"\nplatform: "x"\nbogus : 1\n')
    (problem,) = validate_repo(tmp_path / "repo")
    assert (problem.line, problem.column) == (3, 1)
    assert problem.message == 'Message type "inference.ModelConfig" has no field named "bogus".'


def test_a_problem_of_an_unwritten_field_is_placed_at_its_nearest_written_parent(
    tmp_path: Path,
) -> None:
    """Rule: a problem is placed at its field, else at the nearest enclosing field written in
    the file, else it has no position."""
    model = tmp_path / "repo" / "mnist"
    (model / "1").mkdir(parents=True)
    (model / "1" / "model.onnx").write_bytes(b"x")
    # The output has no data_type line: the problem is placed at the output's opening brace.
    text = config().replace("data_type: TYPE_FP32 dims: [ 10 ]", "dims: [ 10 ]")
    (model / "config.pbtxt").write_text(text)
    found = [p for p in validate_repo(tmp_path / "repo") if "needs a data_type" in p.message]
    assert [(p.line, p.column) for p in found] == [(5, 10)]


def test_every_model_is_checked_even_after_an_unreadable_or_missing_config(
    tmp_path: Path,
) -> None:
    """Rule: every problem of every model is reported: a config that is not UTF-8 or a missing
    config does not stop the check of the models after it; files and hidden directories at the
    repository's top are not models."""
    repo = tmp_path / "repo"
    (repo / "a").mkdir(parents=True)
    (repo / "a" / "config.pbtxt").write_bytes(b"name: \xff\n")
    (repo / "b").mkdir()
    (repo / "c").mkdir()
    (repo / ".git").mkdir()
    (repo / "README").write_text("not a model")
    found = [str(p) for p in validate_repo(repo)]
    assert len(found) == 3, found
    assert found[0].startswith(f"{repo / 'a' / 'config.pbtxt'}: cannot read: 'utf-8' codec")
    assert found[1:] == [
        f"{repo / 'b'}: no config.pbtxt; every model needs one",
        f"{repo / 'c'}: no config.pbtxt; every model needs one",
    ]


def test_unplaced_engines_list_every_plan_of_the_missing_model(tmp_path: Path) -> None:
    """Rule: engines listed for a model the repository lacks are named, all plans, sorted."""
    from dltk.repo.plan import EngineRef

    model = tmp_path / "repo" / "m"
    (model / "1").mkdir(parents=True)
    (model / "config.pbtxt").write_text('name: "m"\nbackend: "python"\n')
    (model / "1" / "model.py").write_text("")
    engines = [EngineRef("x", "fp16", "9.0"), EngineRef("x", "fp16", "8.6")]
    assert [p.message for p in validate_repo(tmp_path / "repo", engines)] == [
        "the engine list has model.sm86.plan, model.sm90.plan for x_trt_fp16, which is not in "
        "the repository; render it with the same --engines"
    ]


def test_max_batch_size_1_is_a_batched_model(problems: Repo) -> None:
    """Rule: max_batch_size 1 is batched like any max >= 1: the config's dims leave the batch dim
    out (compared with the ONNX graph's dims after the batch dim), and preferred_batch_size must
    be within 1..1."""
    text = config(extra="dynamic_batching { preferred_batch_size: [ 1, 2 ] }")
    found = problems(text.replace("max_batch_size: 64", "max_batch_size: 1"))
    assert found == ["preferred_batch_size 2 is outside 1..max_batch_size (1)"]


WARMUP = """model_warmup [ {{ name: "w" batch_size: 1 inputs {{ key: "{name}" value: {{
  data_type: TYPE_FP32 dims: [ {dims} ] zero_data: true }} }} }} ]"""


def test_warmup_dims_that_fit_the_input_are_accepted(problems: Repo) -> None:
    """Rule: a warmup shape equal to the input's dims loads (the other side of the next rule)."""
    assert problems(config(extra=WARMUP.format(name="input", dims="1, 28, 28"))) == []


@pytest.mark.parametrize("dims", ["1, 29, 29", "1, 28", "1, 28, 28, 1"])
def test_warmup_dims_must_fit_the_input(problems: Repo, dims: str) -> None:
    """Rule: Triton refuses to load a model whose warmup shape does not fit the input's dims
    (seen on 2.51: "unexpected shape for input 'input' ... Expected [-1,1,28,28], got
    [1,1,29,29]"): each fixed dim must be equal and the rank the same."""
    assert problems(config(extra=WARMUP.format(name="input", dims=dims))) == [
        f"model_warmup 'w': dims of input 'input' are [{dims}], the config's are "
        "[1, 28, 28] (-1: any size); Triton would not load the model"
    ]


@pytest.mark.parametrize(("dims", "fits"), [("1, 7, 28", True), ("1, 7, 7", False)])
def test_warmup_dims_fill_a_variable_dim_with_any_size(
    problems: Repo, dims: str, fits: bool
) -> None:
    """Rule: a -1 in the input's dims takes any warmup size at that position, only there."""
    found = problems(config(input_dims="1, -1, 28", extra=WARMUP.format(name="input", dims=dims)))
    assert (found == []) is fits, found


def test_warmup_input_must_be_a_config_input(problems: Repo) -> None:
    """Rule: a warmup names only inputs the config declares."""
    assert problems(config(extra=WARMUP.format(name="image", dims="1, 28, 28"))) == [
        "model_warmup 'w' gives input 'image', which the config does not have (inputs: input); "
        "Triton would not load it"
    ]
