"""model_repo/models.yml: one test per rule, each named and worded after the rule it pins.

These were survivors of mutation testing (issue 14): changing the rule in manifest/load.py or
manifest/options.py made no test fail. Each test gives a manifest on each side of the rule.
Parsing only (parse_manifest reads no ONNX file).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from dltk.errors import DltkError
from dltk.manifest.load import parse_manifest
from dltk.manifest.model import BatchRange


def manifest(batch: str = "{min: 1, opt: 16, max: 64}", **fields: str) -> str:
    entry = {
        "name": "mnist",
        "onnx": "models/mnist.onnx",
        "batch": batch,
        "runtimes": "[onnxruntime]",
    }
    entry.update(fields)
    lines = [f"    {key}: {value}" for key, value in entry.items()]
    return "models:\n  - " + "\n".join(lines)[4:] + "\n"


def parse(text: str):  # noqa: ANN201 - the Manifest
    return parse_manifest(text, Path("models.yml"))


def error(text: str) -> str:
    with pytest.raises(DltkError) as exc:
        parse(text)
    return str(exc.value)


@pytest.mark.parametrize(
    "batch, expected",
    [
        ("{max: 64}", BatchRange(1, 64, 64)),
        ("{min: 4, max: 64}", BatchRange(4, 64, 64)),
        ("{opt: 8, max: 64}", BatchRange(1, 8, 64)),
    ],
)
def test_batch_min_defaults_to_1_and_opt_to_max(batch: str, expected: BatchRange) -> None:
    """Rule: an omitted batch.min is 1 and an omitted batch.opt is batch.max (they become
    trtexec's --minShapes and --optShapes, so a wrong default builds a different engine)."""
    (model,) = parse(manifest(batch=batch)).models
    assert model.batch == expected, f"batch {batch} must give min/opt/max {expected}"


def test_batch_min_may_equal_opt_and_max() -> None:
    """Rule: min <= opt <= max, equality allowed at both steps."""
    (model,) = parse(manifest(batch="{min: 8, opt: 8, max: 8}")).models
    assert model.batch == BatchRange(8, 8, 8)


@pytest.mark.parametrize("batch", ["{min: 0, max: 64}", "{opt: 0, max: 64}"])
def test_batch_min_and_opt_are_at_least_1(batch: str) -> None:
    """Rule: batch.min and batch.opt are sizes, at least 1."""
    assert "must be >= 1, got 0" in error(manifest(batch=batch))


def test_fixed_batch_model_has_all_zero_range() -> None:
    """Rule: batch.max 0 is a fixed-batch model: min and opt are 0 too (nothing to tune)."""
    (model,) = parse(manifest(batch="{max: 0}")).models
    assert model.batch == BatchRange(0, 0, 0)


def test_a_runtime_listed_twice_is_refused() -> None:
    """Rule: each runtime appears once in a model's runtimes (a duplicate would render the
    same Triton model twice)."""
    message = error(manifest(runtimes="[onnxruntime, onnxruntime]"))
    assert message.endswith("model 'mnist': runtimes lists one twice"), message


def test_distinct_runtimes_are_accepted() -> None:
    (model,) = parse(manifest(runtimes="[onnxruntime, python-onnxruntime]")).models
    assert model.runtimes == ("onnxruntime", "python-onnxruntime")


@pytest.mark.parametrize(
    "name", ["a/b", ".hidden", "''", "'my model'", "mnïst", "-x", '"a\\n"', "a" * 129]
)
def test_model_name_must_be_a_directory_name(name: str) -> None:
    """Rule: a model name is its directory's name in the repository, a URL path segment and a
    command-line argument: ASCII letters, digits, `_`, `.`, `-`, not starting with `.` or `-`,
    at most 128 characters."""
    assert "models[0]: bad name: use ASCII letters" in error(manifest(**{"name": name}))


@pytest.mark.parametrize("name", ["mnist_trt_fp16", "resnet-50.v2", "_x", "'9'", "a" * 128])
def test_model_names_within_the_rule_are_accepted(name: str) -> None:
    (model,) = parse(manifest(**{"name": name})).models
    assert model.name == name.strip("'")


def test_a_runtime_given_as_one_string_is_a_list_of_one() -> None:
    """Rule: `runtimes: onnxruntime` is short for `runtimes: [onnxruntime]`."""
    (model,) = parse(manifest(runtimes="onnxruntime")).models
    assert model.runtimes == ("onnxruntime",)


def test_duplicate_model_names_are_refused_with_the_first_line() -> None:
    """Rule: model names are unique; the error points at the second and names the first."""
    one = manifest()
    two = one + one.split("\n", 1)[1]
    assert error(two).endswith(
        "duplicate model name 'mnist' (first at line 2); names must be unique"
    )
