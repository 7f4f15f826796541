"""`dltk validate`: Triton's schema (with line:column) plus value rules, every problem reported."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from dltk.cli import main
from dltk.errors import DltkError
from dltk.repo.plan import EngineRef
from dltk.repo.validate import Problem, field_locations, validate_repo

GOOD = """\
name: "mnist"
platform: "onnxruntime_onnx"
max_batch_size: 64
input [
  {
    name: "input"
    data_type: TYPE_FP32
    dims: [ 1, 28, 28 ]
  }
]
output [
  {
    name: "logits"
    data_type: TYPE_FP32
    dims: [ 10 ]
  }
]
dynamic_batching {
  preferred_batch_size: 16
  max_queue_delay_microseconds: 100
}
instance_group [
  {
    count: 1
    kind: KIND_CPU
  }
]
"""


MakeModel = Callable[..., Path]
ProblemsOf = Callable[..., tuple[Path, list[str]]]


@pytest.fixture
def make_model(tmp_path: Path, build_onnx: Callable[..., Path]) -> MakeModel:
    """make(repo, config, name="mnist", files=("1/model.onnx",)) -> the config.pbtxt path.

    model.onnx files get mnist's interface (input [B,1,28,28] -> logits [B,10]); other files
    are placeholders (only their presence is checked).
    """
    onnx_bytes = build_onnx(tmp_path / "tiny.onnx").read_bytes()

    def make(
        repo: Path, config: str, name: str = "mnist", files: tuple[str, ...] = ("1/model.onnx",)
    ) -> Path:
        model_dir = repo / name
        model_dir.mkdir(parents=True)
        (model_dir / "config.pbtxt").write_text(config)
        for rel in files:
            (model_dir / rel).parent.mkdir(parents=True, exist_ok=True)
            (model_dir / rel).write_bytes(onnx_bytes if rel.endswith(".onnx") else b"x")
        return model_dir / "config.pbtxt"

    return make


@pytest.fixture
def problems_of(tmp_path: Path, make_model: MakeModel) -> ProblemsOf:
    """problems_of(config, **make_model_kwargs) -> (config file, problems as strings)."""

    def problems(config: str, **kwargs: object) -> tuple[Path, list[str]]:
        config_file = make_model(tmp_path / "repo", config, **kwargs)
        return config_file, [str(p) for p in validate_repo(tmp_path / "repo")]

    return problems


def test_good_repository_has_no_problems(tmp_path: Path, problems_of: ProblemsOf) -> None:
    assert problems_of(GOOD)[1] == []


# One model's config.pbtxt -> its problems, each FILE:LINE:COL: message (FILE: message
# where there is no position); {onnx} stands for the model's model.onnx.
ONE_MODEL = {
    # Schema errors from Triton's own protobuf.
    "unknown field": (
        GOOD.replace("max_batch_size: 64", "max_batch_size: 64\nmax_batch: 8"),
        ['4:1: Message type "inference.ModelConfig" has no field named "max_batch".'],
    ),
    "unknown nested field": (
        GOOD.replace('    name: "input"', '    name: "input"\n    shape: [ 1 ]'),
        ['7:5: Message type "inference.ModelInput" has no field named "shape".'],
    ),
    "unknown enum": (
        GOOD.replace("TYPE_FP32\n    dims: [ 1", "TYPE_FLOAT32\n    dims: [ 1"),
        ['7:16: Enum type "inference.DataType" has no value named TYPE_FLOAT32.'],
    ),
    "wrong type": (
        GOOD.replace("max_batch_size: 64", 'max_batch_size: "64"'),
        ['3:17: Couldn\'t parse integer: "64"'],
    ),
    # Value rules that protobuf does not check: the offending field.
    "negative max_batch_size": (
        GOOD.replace("max_batch_size: 64", "max_batch_size: -3").replace(
            "  preferred_batch_size: 16\n", ""
        ),
        ["3:1: max_batch_size is -3; use 0 (no batching) or > 0"],
    ),
    "zero and negative dims": (
        GOOD.replace("dims: [ 1, 28, 28 ]", "dims: [ 0, 28, -2 ]"),
        [
            "8:13: input 'input' dim 0 is 0; each dim must be -1 (variable) or > 0",
            "8:20: input 'input' dim 2 is -2; each dim must be -1 (variable) or > 0",
        ],
    ),
    "empty dims": (
        GOOD.replace("    dims: [ 10 ]\n", ""),
        ["12:3: output 'logits' has empty dims; list its shape without the batch dim"],
    ),
    "preferred batch size above max": (
        GOOD.replace("preferred_batch_size: 16", "preferred_batch_size: 128"),
        ["19:3: preferred_batch_size 128 is outside 1..max_batch_size (64)"],
    ),
    "dynamic batching without batching": (
        GOOD.replace("max_batch_size: 64", "max_batch_size: 0")
        .replace("  preferred_batch_size: 16\n", "")
        .replace("dims: [ 1, 28, 28 ]", "dims: [ -1, 1, 28, 28 ]")
        .replace("dims: [ 10 ]", "dims: [ -1, 10 ]"),
        ["18:1: dynamic_batching needs max_batch_size > 0; remove it or set max_batch_size"],
    ),
    "instance count zero": (
        GOOD.replace("count: 1", "count: 0"),
        ["24:5: instance_group count is 0; it must be >= 1"],
    ),
    "name differs from directory": (
        GOOD.replace('name: "mnist"', 'name: "digits"'),
        [
            "1:1: name 'digits' differs from the directory name 'mnist'; Triton requires them to "
            "match"
        ],
    ),
    "duplicate input names": (
        GOOD.replace(
            "input [\n  {",
            'input [\n  {\n    name: "input"\n    data_type: TYPE_FP32\n'
            "    dims: [ 1, 28, 28 ]\n  },\n  {",
        ),
        ["11:5: input name 'input' is used twice"],
    ),
    "missing data_type": (
        GOOD.replace("    data_type: TYPE_FP32\n    dims: [ 10 ]", "    dims: [ 10 ]"),
        ["12:3: output 'logits' needs a data_type (TYPE_FP32, ...)"],
    ),
    "no platform or backend": (
        GOOD.replace('platform: "onnxruntime_onnx"\n', ""),
        ["neither platform nor backend is set; Triton cannot tell which backend runs this model"],
    ),
    # The config must describe the model.onnx it serves (onnxruntime, python-onnxruntime).
    "dims differ": (
        GOOD.replace("dims: [ 1, 28, 28 ]", "dims: [ 1, 28, 29 ]"),
        [
            "8:13: input 'input' dims [1, 28, 29] do not match model.onnx's [1, 28, 28] (without "
            "the batch dim)"
        ],
    ),
    "rank differs": (
        GOOD.replace("dims: [ 10 ]", "dims: [ 1, 10 ]"),
        [
            "15:13: output 'logits' dims [1, 10] do not match model.onnx's [10] (without the batch "
            "dim)"
        ],
    ),
    "name not in graph": (
        GOOD.replace('name: "logits"', 'name: "probs"'),
        ["13:5: output 'probs' is not an output of {onnx} (it has: logits)"],
    ),
    "type differs": (
        GOOD.replace("TYPE_FP32\n    dims: [ 10 ]", "TYPE_FP16\n    dims: [ 10 ]"),
        ["14:5: output 'logits' is TYPE_FP16 but model.onnx has FLOAT (TYPE_FP32)"],
    ),
}


@pytest.mark.parametrize("config, messages", ONE_MODEL.values(), ids=list(ONE_MODEL))
def test_each_problem_points_at_the_field(
    config: str, messages: list[str], problems_of: ProblemsOf
) -> None:
    config_file, problems = problems_of(config)
    onnx_file = str(config_file.parent / "1" / "model.onnx")
    assert problems == [
        (f"{config_file}:{m}" if m[0].isdigit() else f"{config_file}: {m}").replace(
            "{onnx}", onnx_file
        )
        for m in messages
    ]


def test_every_problem_is_reported_not_just_the_first(
    tmp_path: Path, problems_of: ProblemsOf
) -> None:
    config = (
        GOOD.replace("max_batch_size: 64", "max_batch_size: 8")
        .replace("count: 1", "count: 0")
        .replace("dims: [ 10 ]", "dims: [ 0 ]")
    )
    _, problems = problems_of(config)
    assert len(problems) == 3, problems
    assert [p.split(": ", 1)[1].split(" ")[0] for p in problems] == [
        "output",
        "preferred_batch_size",
        "instance_group",
    ]


def test_version_directory_and_model_file_are_required(
    tmp_path: Path, make_model: MakeModel
) -> None:
    repo = tmp_path / "repo"
    make_model(repo, GOOD, files=())
    python = GOOD.replace('name: "mnist"', 'name: "py"').replace(
        'platform: "onnxruntime_onnx"', 'backend: "python"'
    )
    make_model(repo, python, name="py", files=("1/model.onnx", "2/model.py"))
    assert [str(p) for p in validate_repo(repo)] == [
        f"{repo / 'mnist'}: no numeric version directory (e.g. 1/) with the model file",
        f"{repo / 'py' / '1'}: missing model.py (required by 'python'); re-render the repository",
    ]


def test_default_model_filename_overrides_the_expected_file(
    tmp_path: Path, problems_of: ProblemsOf
) -> None:
    config = GOOD + 'default_model_filename: "net.onnx"\n'
    _, problems = problems_of(config)
    assert problems == [
        f"{tmp_path / 'repo/mnist/1'}: missing net.onnx (required by 'onnxruntime_onnx'); "
        "re-render the repository"
    ]


def test_missing_config_and_empty_repo(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    assert [str(p) for p in validate_repo(repo)] == [
        f"{repo}: no model directories; render some with `dltk repo render`"
    ]
    (repo / "orphan" / "1").mkdir(parents=True)
    assert [str(p) for p in validate_repo(repo)] == [
        f"{repo / 'orphan'}: no config.pbtxt; every model needs one"
    ]


def test_not_a_directory_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(DltkError, match="is not a directory; render one with `dltk repo render`"):
        validate_repo(tmp_path / "missing")


def test_problem_formats_with_and_without_position() -> None:
    assert str(Problem(Path("a/config.pbtxt"), "bad", 3, 7)) == "a/config.pbtxt:3:7: bad"
    assert str(Problem(Path("a/config.pbtxt"), "bad", 3)) == "a/config.pbtxt:3: bad"
    assert str(Problem(Path("a"), "bad")) == "a: bad"


def test_field_locations_follow_lists_and_nesting() -> None:
    where = field_locations(GOOD)
    assert where[("max_batch_size", 0)] == (3, 1)
    assert where[("input", 0)] == (5, 3)
    assert where[("input", 0, "dims", 2)] == (8, 20)
    assert where[("instance_group", 0, "kind", 0)] == (25, 5)


def test_cli_prints_every_problem_and_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], make_model: MakeModel
) -> None:
    config_file = make_model(tmp_path / "repo", GOOD.replace("count: 1", "count: 0"))
    assert main(["validate", str(tmp_path / "repo")]) == 1
    err = capsys.readouterr().err
    assert f"{config_file}:24:5: instance_group count is 0; it must be >= 1" in err
    assert f"dltk validate: error: 1 problem(s) in {tmp_path / 'repo'}" in err


def test_cli_accepts_a_valid_repo(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], make_model: MakeModel
) -> None:
    make_model(tmp_path / "repo", GOOD)
    assert main(["validate", str(tmp_path / "repo")]) == 0
    assert "1 model(s) valid" in capsys.readouterr().out


def test_python_backend_config_is_checked_against_its_onnx_too(
    problems_of: ProblemsOf,
) -> None:
    config = GOOD.replace('platform: "onnxruntime_onnx"', 'backend: "python"').replace(
        "dims: [ 10 ]", "dims: [ 11 ]"
    )
    config_file, problems = problems_of(config, files=("1/model.onnx", "1/model.py"))
    assert problems == [
        f"{config_file}:15:13: output 'logits' dims [11] do not match model.onnx's [10] "
        "(without the batch dim)"
    ]


def test_batching_a_fixed_batch_onnx_is_reported(
    tmp_path: Path, make_model: MakeModel, build_onnx: Callable[..., Path]
) -> None:
    config_file = make_model(tmp_path / "repo", GOOD)
    build_onnx(config_file.parent / "1" / "model.onnx", batch=1)
    assert [str(p) for p in validate_repo(tmp_path / "repo")] == [
        f"{config_file}:3:1: max_batch_size > 0 but input 'input' of model.onnx has a fixed "
        "first dim 1; use max_batch_size 0",
        f"{config_file}:3:1: max_batch_size > 0 but output 'logits' of model.onnx has a fixed "
        "first dim 1; use max_batch_size 0",
    ]


def test_unreadable_onnx_is_reported(tmp_path: Path, make_model: MakeModel) -> None:
    config_file = make_model(tmp_path / "repo", GOOD)
    onnx_file = config_file.parent / "1" / "model.onnx"
    onnx_file.write_bytes(b"not a protobuf")
    (problem,) = validate_repo(tmp_path / "repo")
    assert problem.file == onnx_file
    assert problem.message.startswith("not a readable ONNX model (")


TRT = GOOD.replace('name: "mnist"', 'name: "mnist_trt_fp16"').replace(
    'platform: "onnxruntime_onnx"', 'platform: "tensorrt_plan"'
) + (
    'cc_model_filenames { key: "8.6" value: "model.sm86.plan" }\n'
    'cc_model_filenames { key: "9.0" value: "model.sm90.plan" }\n'
)


def test_tensorrt_plans_per_compute_capability(problems_of: ProblemsOf, tmp_path: Path) -> None:
    _, problems = problems_of(TRT, name="mnist_trt_fp16", files=("1/model.sm90.plan",))
    assert problems == []
    repo = tmp_path / "other"
    (repo / "mnist_trt_fp16" / "1").mkdir(parents=True)
    (repo / "mnist_trt_fp16" / "config.pbtxt").write_text(TRT)
    assert [str(p) for p in validate_repo(repo)] == [
        f"{repo}/mnist_trt_fp16/1: none of the cc_model_filenames (model.sm86.plan, "
        "model.sm90.plan) is here or in the engine list; build the engines on the GPU host "
        "(trt_engines role) and copy them in"
    ]
    # Rendered on the control node, the plans arrive on the GPU host later: the engine list
    # names them (1/ too is created there).
    (repo / "mnist_trt_fp16" / "1").rmdir()
    assert validate_repo(repo, [EngineRef("mnist", "fp16", "9.0")]) == []
    (repo / "mnist_trt_fp16" / "1").mkdir()
    assert [str(p) for p in validate_repo(repo, [EngineRef("mnist", "tf32", "9.0")])] == [
        f"{repo}: the engine list has model.sm90.plan for mnist_trt_tf32, which is not in the "
        "repository; render it with the same --engines",
        f"{repo}/mnist_trt_fp16/1: none of the cc_model_filenames (model.sm86.plan, "
        "model.sm90.plan) is here or in the engine list; build the engines on the GPU host "
        "(trt_engines role) and copy them in",
    ]


def test_cc_model_filenames_values_are_checked(problems_of: ProblemsOf) -> None:
    bad = TRT.replace('key: "9.0" value: "model.sm90.plan"', 'key: "sm90" value: "../x.plan"')
    config, problems = problems_of(bad, name="mnist_trt_fp16", files=("1/model.sm86.plan",))
    assert problems == [
        f"{config}:28:1: cc_model_filenames key 'sm90' is not a compute capability like 8.6",
        f"{config}:28:1: cc_model_filenames['sm90'] = '../x.plan' must be a file name in the "
        "version directory",
    ]


def test_external_data_must_sit_next_to_the_model(
    tmp_path: Path, build_onnx: Callable[..., Path]
) -> None:
    repo = tmp_path / "repo"
    (repo / "mnist").mkdir(parents=True)
    (repo / "mnist" / "config.pbtxt").write_text(GOOD)
    build_onnx(repo / "mnist" / "1" / "model.onnx", external_data=True)
    assert validate_repo(repo) == []
    (repo / "mnist" / "1" / "model.onnx.data").unlink()
    (problem,) = validate_repo(repo)
    assert str(problem) == (
        f"{repo}/mnist/1/model.onnx: external data file model.onnx.data is missing next to the "
        f"model; copy it to {repo}/mnist/1/model.onnx.data"
    )
