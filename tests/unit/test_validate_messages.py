# ruff: noqa: E501 - each expected problem is kept whole on one line, as `dltk validate` prints it
"""Every problem `dltk validate` reports is one whole line: `FILE:LINE:COL: message`.

Mutation testing (issue 14) left survivors in repo/validate.py that dropped a message, changed its
wording, placed it at another field, numbered an unnamed tensor wrongly or stopped comparing
after the first unknown tensor. Each case here is one config.pbtxt at the edge of a rule (the
case id says which) and the expected value is the whole list of problems, in order.

The position rule (repo/validate.py's `_Checker`): a problem is placed at the field it is about; a
field not written in the file (a missing data_type) at its nearest written parent (the tensor's
opening brace); a problem of the whole model or of a file other than config.pbtxt has no
position. Columns are 1-based, counted on the config lines below.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from dltk.cli import main
from dltk.errors import DltkError
from dltk.repo.plan import EngineRef
from dltk.repo.validate import Problem, _Checker, validate_repo

# A TensorRT config: validate checks its tensors and values but has no ONNX to compare them
# with, so each case shows one rule alone. Lines 5-7 hold the tensors, 8.. what a case adds.
PLAN = """\
name: "m"
platform: "tensorrt_plan"
max_batch_size: 64
input [
  { name: "input" data_type: TYPE_FP32 dims: [ 1, 28, 28 ] }
]
output [ { name: "logits" data_type: TYPE_FP32 dims: [ 10 ] } ]
"""
INPUT = '  { name: "input" data_type: TYPE_FP32 dims: [ 1, 28, 28 ] }\n'
OUTPUT = 'output [ { name: "logits" data_type: TYPE_FP32 dims: [ 10 ] } ]\n'


def inputs(*lines: str) -> str:
    """PLAN with these input lines (line 5, 6, ...) instead of its one input."""
    return PLAN.replace(INPUT, "".join(f"  {line}\n" for line in lines))


PLAN_CASES = {
    "valid": (PLAN, []),
    "an unnamed tensor is numbered from 1 and placed at its brace": (
        inputs(INPUT.strip() + ",", "{ dims: [ 0 ] }"),
        [
            "{config}:6:3: input #2 has no name",
            "{config}:6:3: input #2 needs a data_type (TYPE_FP32, ...)",
            "{config}:6:13: input #2 dim 0 is 0; each dim must be -1 (variable) or > 0",
        ],
    ),
    "a name used twice, at the second tensor's name": (
        inputs(INPUT.strip() + ",", '{ name: "input" data_type: TYPE_FP32 dims: [ 4 ] }'),
        ["{config}:6:5: input name 'input' is used twice"],
    ),
    "data_type TYPE_INVALID written, at the data_type": (
        inputs('{ name: "input" data_type: TYPE_INVALID dims: [ 1 ] }'),
        ["{config}:5:19: input 'input' needs a data_type (TYPE_FP32, ...)"],
    ),
    "empty input dims of a batching model, at the input": (
        inputs('{ name: "input" data_type: TYPE_FP32 }'),
        ["{config}:5:3: input 'input' has empty dims; list its shape without the batch dim"],
    ),
    "dim -1 is variable, -2 is not": (
        inputs('{ name: "input" data_type: TYPE_FP32 dims: [ -1, -2 ] }'),
        ["{config}:5:52: input 'input' dim 1 is -2; each dim must be -1 (variable) or > 0"],
    ),
    "empty dims of a batching model (max_batch_size 1) leave out the batch dim": (
        PLAN.replace("max_batch_size: 64", "max_batch_size: 1").replace(" dims: [ 10 ]", ""),
        ["{config}:7:10: output 'logits' has empty dims; list its shape without the batch dim"],
    ),
    "empty dims of a non-batching model": (
        PLAN.replace("max_batch_size: 64", "max_batch_size: 0").replace(" dims: [ 10 ]", ""),
        ["{config}:7:10: output 'logits' has empty dims; list its shape"],
    ),
    "unnamed warmups are numbered from 1 and placed at their entry; all inputs listed": (
        inputs(
            '{ name: "a" data_type: TYPE_FP32 dims: [ 2 ] },',
            '{ name: "b" data_type: TYPE_FP32 dims: [ 3 ] }',
        )
        + "model_warmup [\n"
        + '  { name: "w" batch_size: 1 inputs { key: "a" value: { data_type: TYPE_FP32 dims: [ 2 ] zero_data: true } } },\n'
        + '  { batch_size: 1 inputs { key: "c" value: { data_type: TYPE_FP32 dims: [ 2 ] zero_data: true } } },\n'
        + '  { batch_size: 1 inputs { key: "b" value: { data_type: TYPE_FP32 dims: [ 4 ] zero_data: true } } }\n'
        + "]\n",
        [
            "{config}:11:3: model_warmup #2 gives input 'c', which the config does not have (inputs: a, b); Triton would not load it",
            "{config}:12:3: model_warmup #3: dims of input 'b' are [4], the config's are [3] (-1: any size); Triton would not load the model",
        ],
    ),
    "a warmup of a config without inputs says none": (
        PLAN.replace(INPUT, "")
        + 'model_warmup [ { name: "w" batch_size: 1 inputs { key: "x" value: { data_type: TYPE_FP32 dims: [ 1 ] zero_data: true } } } ]\n',
        [
            "{config}:7:16: model_warmup 'w' gives input 'x', which the config does not have (inputs: none); Triton would not load it"
        ],
    ),
    "negative max_batch_size": (
        PLAN.replace("max_batch_size: 64", "max_batch_size: -1"),
        ["{config}:3:1: max_batch_size is -1; use 0 (no batching) or > 0"],
    ),
    "dynamic batching without batching is one problem, not one per preferred size": (
        PLAN.replace("max_batch_size: 64", "max_batch_size: 0")
        + "dynamic_batching { preferred_batch_size: [ 4 ] }\n",
        [
            "{config}:8:1: dynamic_batching needs max_batch_size > 0; remove it or set max_batch_size"
        ],
    ),
    "preferred batch size 0, at that size": (
        PLAN + "dynamic_batching { preferred_batch_size: [ 64, 0 ] }\n",
        ["{config}:8:48: preferred_batch_size 0 is outside 1..max_batch_size (64)"],
    ),
    "instance count left out is Triton's default; 0 written or negative is refused": (
        PLAN
        + "instance_group [\n  { kind: KIND_CPU },\n  { count: 0 kind: KIND_CPU },\n  { count: -1 }\n]\n",
        [
            "{config}:10:5: instance_group count is 0; it must be >= 1",
            "{config}:11:5: instance_group count is -1; it must be >= 1",
        ],
    ),
    "name differs from the directory": (
        PLAN.replace('name: "m"', 'name: "other"'),
        [
            "{config}:1:1: name 'other' differs from the directory name 'm'; Triton requires them to match"
        ],
    ),
    "platform and backend disagree, at the backend": (
        PLAN + 'backend: "onnxruntime"\n',
        [
            "{config}:8:1: platform 'tensorrt_plan' and backend 'onnxruntime' disagree; set one of them",
            "{model}/1: missing model.onnx (required by 'onnxruntime'); re-render the repository",
        ],
    ),
    "neither platform nor backend: the whole file": (
        PLAN.replace('platform: "tensorrt_plan"\n', ""),
        [
            "{config}: neither platform nor backend is set; Triton cannot tell which backend runs this model"
        ],
    ),
    # protobuf's schema errors: its message without its copy of the offending line.
    "a schema error on the first line": (
        'bogus: 1\nname: "m"\n',
        ['{config}:1:1: Message type "inference.ModelConfig" has no field named "bogus".'],
    ),
    "a schema error quoting the first of several lines": (
        'max_batch_size: "x"\nname: "m"\n',
        ['{config}:1:17: Couldn\'t parse integer: "x"'],
    ),
    "a schema error whose message has ' : ' in it keeps it": (
        'name: "m"\nmax_batch_size: "a : b"\n',
        ['{config}:2:17: Couldn\'t parse integer: "a : b"'],
    ),
    "a schema error at the end of the text": (
        'name: "m"\ninput [\n',
        ['{config}:3:1: Expected "{".'],
    ),
    "a schema error in a file with CRLF line ends": (
        'name: "m"\r\nmax_batch_size: "x"\r\n',
        ['{config}:2:17: Couldn\'t parse integer: "x"'],
    ),
}


@pytest.fixture
def repo_problems(tmp_path: Path) -> Callable[..., list[str]]:
    """repo_problems(config, files) -> validate_repo's problems of model "m" as strings, with
    {config} and {model} standing for its config.pbtxt and its directory."""

    def run(
        config: str,
        files: dict[str, bytes],
        engines: tuple[EngineRef, ...] = (),
        name: str = "m",
    ) -> list[str]:
        model = tmp_path / "repo" / name
        model.mkdir(parents=True)
        (model / "config.pbtxt").write_bytes(config.encode())
        for rel, data in files.items():
            (model / rel).parent.mkdir(parents=True, exist_ok=True)
            (model / rel).write_bytes(data)
        found = [str(p) for p in validate_repo(tmp_path / "repo", engines)]
        return [
            p.replace(str(model / "config.pbtxt"), "{config}").replace(str(model), "{model}")
            for p in found
        ]

    return run


@pytest.mark.parametrize("config, expected", PLAN_CASES.values(), ids=list(PLAN_CASES))
def test_each_config_problem_is_one_exact_line_at_its_field(
    repo_problems: Callable[..., list[str]], config: str, expected: list[str]
) -> None:
    """Rule: the case's id; every problem is reported, each at the field it is about."""
    assert repo_problems(config, {"1/model.plan": b"plan"}) == expected


VERSION_CASES = {
    "a missing model file is reported per version, in version order (2, 9, 10)": (
        PLAN,
        {"1/model.plan": b"p", "2/x": b"", "9/x": b"", "10/x": b"", "old/x": b""},
        [
            "{model}/2: missing model.plan (required by 'tensorrt_plan'); re-render the repository",
            "{model}/9: missing model.plan (required by 'tensorrt_plan'); re-render the repository",
            "{model}/10: missing model.plan (required by 'tensorrt_plan'); re-render the repository",
        ],
    ),
    "no numeric version directory": (
        PLAN,
        {"old/model.plan": b"p"},
        ["{model}: no numeric version directory (e.g. 1/) with the model file"],
    ),
    "an ensemble needs no model file": (
        PLAN.replace('platform: "tensorrt_plan"', 'platform: "ensemble"'),
        {"1/.keep": b""},
        [],
    ),
    "a custom backend's file is its own business": (
        PLAN.replace('platform: "tensorrt_plan"', 'backend: "mine"'),
        {"1/.keep": b""},
        [],
    ),
}


@pytest.mark.parametrize("config, files, expected", VERSION_CASES.values(), ids=list(VERSION_CASES))
def test_each_version_directory_problem_is_one_exact_line(
    repo_problems: Callable[..., list[str]],
    config: str,
    files: dict[str, bytes],
    expected: list[str],
) -> None:
    """Rule: the case's id; a version-directory problem is placed at that directory."""
    assert repo_problems(config, files) == expected


CC = (
    'cc_model_filenames { key: "8.6" value: "model.sm86.plan" }\n'
    'cc_model_filenames { key: "9.0" value: "model.sm90.plan" }\n'
)


def test_a_listed_engine_the_config_does_not_name_is_reported_at_version_1(
    repo_problems: Callable[..., list[str]],
) -> None:
    """Rule: every plan the engine list places in 1/ must be named by cc_model_filenames; the
    problem names the plan and lists the names the config has."""
    config = PLAN.replace('name: "m"', 'name: "x_trt_fp16"') + CC
    engines = (
        EngineRef("x", "fp16", "8.6"),
        EngineRef("x", "fp16", "7.5"),
        EngineRef("x", "fp16", "8.0"),
    )
    assert repo_problems(config, {}, engines, name="x_trt_fp16") == [
        "{model}/1: model.sm75.plan is in the engine list but cc_model_filenames names only model.sm86.plan, model.sm90.plan; render the repository with the same --engines",
        "{model}/1: model.sm80.plan is in the engine list but cc_model_filenames names only model.sm86.plan, model.sm90.plan; render the repository with the same --engines",
    ]


# --- the config against the newest version's model.onnx ---------------------------------------

# mnist's interface (conftest's build_tiny_onnx): input [B,1,28,28] -> logits [B,10].
ONNX = """\
name: "m"
platform: "onnxruntime_onnx"
max_batch_size: 64
input [ { name: "input" data_type: TYPE_FP32 dims: [ 1, 28, 28 ] } ]
output [
  { name: "logits" data_type: TYPE_FP32 dims: [ 10 ] }
]
"""
LOGITS = '  { name: "logits" data_type: TYPE_FP32 dims: [ 10 ] }\n'


def onnx_problems(
    tmp_path: Path, build_onnx: Callable[..., Path], config: str, versions: dict[str, dict]
) -> list[str]:
    model = tmp_path / "repo" / "m"
    model.mkdir(parents=True)
    (model / "config.pbtxt").write_text(config)
    for version, kwargs in versions.items():
        build_onnx(model / version / "model.onnx", **kwargs)
    return [
        str(p).replace(str(model / "config.pbtxt"), "{config}").replace(str(model), "{model}")
        for p in validate_repo(tmp_path / "repo")
    ]


ONNX_CASES = {
    "valid": (ONNX, {"1": {}}, []),
    "an unknown tensor does not stop the comparison of the next ones": (
        ONNX.replace(
            LOGITS,
            '  { name: "probs" data_type: TYPE_FP32 dims: [ 10 ] },\n'
            + LOGITS.replace("[ 10 ]", "[ 11 ]"),
        ),
        {"1": {}},
        [
            "{config}:6:5: output 'probs' is not an output of {model}/1/model.onnx (it has: logits)",
            "{config}:7:49: output 'logits' dims [11] do not match model.onnx's [10] (without the batch dim)",
        ],
    ),
    "dims of a non-batching model are compared whole, without a batch-dim note": (
        ONNX.replace("max_batch_size: 64", "max_batch_size: 0")
        .replace("[ 1, 28, 28 ]", "[ 1, 1, 28, 29 ]")
        .replace("[ 10 ]", "[ 1, 10 ]"),
        {"1": {"batch": 1}},
        [
            "{config}:4:54: input 'input' dims [1, 1, 28, 29] do not match model.onnx's [1, 1, 28, 28]"
        ],
    ),
    "dims already refused are not compared again": (
        ONNX.replace("[ 1, 28, 28 ]", "[ 0, 28, 28 ]").replace(" dims: [ 10 ]", ""),
        {"1": {}},
        [
            "{config}:4:54: input 'input' dim 0 is 0; each dim must be -1 (variable) or > 0",
            "{config}:6:3: output 'logits' has empty dims; list its shape without the batch dim",
        ],
    ),
    "a negative max_batch_size is reported once, the dims not compared": (
        ONNX.replace("max_batch_size: 64", "max_batch_size: -1"),
        {"1": {}},
        ["{config}:3:1: max_batch_size is -1; use 0 (no batching) or > 0"],
    ),
    "the newest version by number (10, not 9) is compared": (
        ONNX,
        {"9": {}, "10": {"batch": 1}},
        [
            "{config}:3:1: max_batch_size > 0 but input 'input' of model.onnx has a fixed first dim 1; use max_batch_size 0",
            "{config}:3:1: max_batch_size > 0 but output 'logits' of model.onnx has a fixed first dim 1; use max_batch_size 0",
        ],
    ),
    "a config naming its own model file is not compared with model.onnx": (
        ONNX.replace("[ 10 ]", "[ 11 ]") + 'default_model_filename: "net.onnx"\n',
        {"1": {}, "2": {}},
        [
            "{model}/1: missing net.onnx (required by 'onnxruntime_onnx'); re-render the repository",
            "{model}/2: missing net.onnx (required by 'onnxruntime_onnx'); re-render the repository",
        ],
    ),
}


@pytest.mark.parametrize("config, versions, expected", ONNX_CASES.values(), ids=list(ONNX_CASES))
def test_each_onnx_mismatch_is_one_exact_line(
    tmp_path: Path,
    build_onnx: Callable[..., Path],
    config: str,
    versions: dict[str, dict],
    expected: list[str],
) -> None:
    """Rule: the case's id; the config's tensors must be the newest model.onnx's (names, types,
    dims; -1 matches any size; the batch dim left out when max_batch_size > 0)."""
    assert onnx_problems(tmp_path, build_onnx, config, versions) == expected


def test_an_unreadable_onnx_is_named_once_even_in_a_path_with_spaces(tmp_path: Path) -> None:
    """Rule: an ONNX file that cannot be read is one problem at that file; its message does not
    repeat the path (the problem's FILE says it), whatever characters the path has."""
    model = tmp_path / "my repo" / "m"
    (model / "1").mkdir(parents=True)
    (model / "config.pbtxt").write_text(ONNX)
    (model / "1" / "model.onnx").write_bytes(b"not a protobuf")
    (problem,) = validate_repo(tmp_path / "my repo")
    assert problem.file == model / "1" / "model.onnx"
    assert (problem.line, problem.column) == (None, None)
    assert problem.message.startswith("not a readable ONNX model (")
    assert problem.message.endswith("); re-export it")


# --- the repository and the CLI ---------------------------------------------------------------


def test_a_problem_with_no_written_field_has_no_position() -> None:
    """Rule: a problem whose field and every parent of it are absent from the file is placed
    at the file alone (FILE: message)."""
    check = _Checker(Path("m/config.pbtxt"), 'name: "m"\n')
    check.add(("input", 0, "dims", 1), "the message")
    check.add(("name",), "at the name")
    assert check.problems == [
        Problem(Path("m/config.pbtxt"), "the message"),
        Problem(Path("m/config.pbtxt"), "at the name", 1, 1),
    ]


def test_a_repository_that_is_not_a_directory_is_one_exact_line(tmp_path: Path) -> None:
    """Rule: validate needs a directory; the error says how to make one."""
    with pytest.raises(DltkError) as exc:
        validate_repo(tmp_path / "missing")
    assert str(exc.value) == (
        f"model repository {tmp_path / 'missing'} is not a directory; render one with `dltk repo render`"
    )


def test_the_cli_prints_each_problem_whole_then_the_count(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Rule: `dltk validate DIR` prints every problem on its own line (not wrapped, no markup
    read from the text) to stderr and ends with `N problem(s) in DIR`, exit 1."""
    model = tmp_path / "repo" / "m"
    (model / "1").mkdir(parents=True)
    (model / "1" / "model.plan").write_bytes(b"p")
    long_name = "[bold]" + "x" * 150
    (model / "config.pbtxt").write_text(
        PLAN.replace('name: "m"', f'name: "{long_name}"') + "max_batch_size: 1\n"
    )
    assert main(["validate", str(tmp_path / "repo")]) == 1
    captured = capsys.readouterr()
    assert captured.err.splitlines() == [
        f'{model / "config.pbtxt"}:8:17: Message type "inference.ModelConfig" should not have multiple "max_batch_size" fields.',
        f"dltk validate: error: 1 problem(s) in {tmp_path / 'repo'}",
    ]
    (model / "config.pbtxt").write_text(PLAN.replace('name: "m"', f'name: "{long_name}"'))
    assert main(["validate", str(tmp_path / "repo")]) == 1
    assert capsys.readouterr().err.splitlines() == [
        f"{model / 'config.pbtxt'}:1:1: name '{long_name}' differs from the directory name 'm'; Triton requires them to match",
        f"dltk validate: error: 1 problem(s) in {tmp_path / 'repo'}",
    ]


def test_the_cli_counts_the_valid_models(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Rule: a valid repository prints `DIR: N model(s) valid` on stdout as one line (DIR as
    it is, however long, brackets and all), exit 0."""
    repo = tmp_path / ("[b]" + "r" * 80)
    for name in ("a", "b"):
        (repo / name / "1").mkdir(parents=True)
        (repo / name / "1" / "model.plan").write_bytes(b"p")
        (repo / name / "config.pbtxt").write_text(PLAN.replace('name: "m"', f'name: "{name}"'))
    assert main(["validate", str(repo)]) == 0
    assert capsys.readouterr().out == f"{repo}: 2 model(s) valid\n"


def test_a_config_input_a_graph_without_inputs_lacks_says_it_has_none(tmp_path: Path) -> None:
    """Rule: a config tensor the graph lacks is named with the graph's tensors of that kind,
    `none` when it has none (a graph of constants)."""
    import onnx
    from onnx import TensorProto, helper

    model = tmp_path / "repo" / "m"
    (model / "1").mkdir(parents=True)
    graph = helper.make_graph(
        [helper.make_node("Constant", [], ["logits"], value_floats=[0.0] * 10)],
        "constant",
        [],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [10])],
    )
    onnx_model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx_model.ir_version = 8
    onnx.save(onnx_model, str(model / "1" / "model.onnx"))
    (model / "config.pbtxt").write_text(ONNX.replace("max_batch_size: 64", "max_batch_size: 0"))
    assert [str(p) for p in validate_repo(tmp_path / "repo")] == [
        f"{model / 'config.pbtxt'}:4:11: input 'input' is not an input of {model / '1' / 'model.onnx'} (it has: none)"
    ]


def test_a_config_tensor_the_graph_lacks_lists_every_graph_tensor(tmp_path: Path) -> None:
    """Rule: the problem names the graph's tensors of that kind, all of them, in graph order."""
    from onnx_builders import two_input_model

    model = tmp_path / "repo" / "m"
    (model / "1").mkdir(parents=True)
    two_input_model(model / "1" / "model.onnx")
    (model / "config.pbtxt").write_text(
        'name: "m"\nplatform: "onnxruntime_onnx"\nmax_batch_size: 8\n'
        'input [ { name: "y" data_type: TYPE_FP32 dims: [ 3 ] } ]\n'
        'output [ { name: "scaled" data_type: TYPE_FP32 dims: [ 3 ] } ]\n'
    )
    assert [str(p) for p in validate_repo(tmp_path / "repo")] == [
        f"{model / 'config.pbtxt'}:4:11: input 'y' is not an input of {model / '1' / 'model.onnx'} (it has: x, k)"
    ]


def test_a_file_named_like_a_version_is_not_a_version(
    tmp_path: Path, build_onnx: Callable[..., Path]
) -> None:
    """Rule: versions are numeric directories; a file named `2` next to `1/` is not the newest
    version, so `1/model.onnx` is still compared."""
    found = onnx_problems(tmp_path, build_onnx, ONNX, {"1": {"batch": 1}})
    (tmp_path / "repo" / "m" / "2").write_text("not a version")
    assert [
        str(p).replace(str(tmp_path / "repo" / "m" / "config.pbtxt"), "{config}")
        for p in validate_repo(tmp_path / "repo")
    ] == found
    assert found == [
        "{config}:3:1: max_batch_size > 0 but input 'input' of model.onnx has a fixed first dim 1; use max_batch_size 0",
        "{config}:3:1: max_batch_size > 0 but output 'logits' of model.onnx has a fixed first dim 1; use max_batch_size 0",
    ]


def test_external_data_outside_the_version_directory_is_one_problem_at_the_onnx(
    tmp_path: Path, build_onnx: Callable[..., Path]
) -> None:
    """Rule: external data must sit next to the model; the problem is placed at the ONNX file
    and its message is the whole reason (it has a ': ' inside), without the path again."""
    import onnx

    model = tmp_path / "repo" / "m"
    (model).mkdir(parents=True)
    (model / "config.pbtxt").write_text(ONNX)
    onnx_file = build_onnx(model / "1" / "model.onnx", external_data=True)
    proto = onnx.load(str(onnx_file), load_external_data=False)
    for tensor in proto.graph.initializer:
        for entry in tensor.external_data:
            if entry.key == "location":
                entry.value = "../w.data"
    onnx.save(proto, str(onnx_file))
    (problem,) = validate_repo(tmp_path / "repo")
    assert (problem.file, problem.line) == (onnx_file, None)
    assert problem.message == (
        "tensor 'W' keeps its data at '../w.data'; external data must sit next to the model (a "
        "relative path without '..'): re-save it with onnx.save_model(..., "
        "save_as_external_data=True, location='NAME.onnx.data')"
    )
