"""A pipeline's model must be a classifier the BLS model can feed: one rule per test.

Mutation testing (issue 14) found these rules of manifest_checks.check_pipeline unpinned. The
records are built directly (the tensors as `with_tensors` gives them: batch dim removed when
the model batches), so each test shows the model shape on each side of a rule.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from specs import MNIST

from dltk.errors import DltkError
from dltk.manifest.checks import check_pipeline
from dltk.manifest.model import BatchRange, ModelSpec
from dltk.manifest.options import PipelineSpec
from dltk.onnx_graph import TensorSpec

RGB = replace(MNIST, name="rgb", inputs=(TensorSpec("input", "FLOAT", (3, 32, 32)),))
PIPE = PipelineSpec("digits", "mnist")


def refusal(pipeline: PipelineSpec, model: ModelSpec) -> str:
    with pytest.raises(DltkError) as exc:
        check_pipeline(pipeline, model, "m.yml")
    return str(exc.value)


def test_one_input_and_one_output_are_required() -> None:
    """Rule: a pipeline calls a classifier: exactly one input and one output."""
    two_outputs = replace(MNIST, outputs=(*MNIST.outputs, TensorSpec("aux", "FLOAT", (2,))))
    assert refusal(PIPE, two_outputs) == (
        "m.yml: pipeline 'digits': model 'mnist' has 1 inputs and 2 outputs; a pipeline calls a "
        "classifier with one image input and one scores output"
    )
    two_inputs = replace(MNIST, inputs=(*MNIST.inputs, TensorSpec("aux", "FLOAT", (2,))))
    assert "has 2 inputs and 1 outputs" in refusal(PIPE, two_inputs)


@pytest.mark.parametrize("dtype", ["FLOAT", "FLOAT16"])
def test_float_and_half_inputs_are_accepted(dtype: str) -> None:
    """Rule: the normalized image is sent as FLOAT or FLOAT16 (fp16 engines)."""
    check_pipeline(PIPE, replace(MNIST, inputs=(TensorSpec("input", dtype, (1, 28, 28)),)))


def test_an_integer_input_is_refused() -> None:
    model = replace(MNIST, inputs=(TensorSpec("input", "INT64", (1, 28, 28)),))
    assert refusal(PIPE, model) == (
        "m.yml: pipeline 'digits': model 'mnist' input 'input' is INT64; it must be FLOAT"
    )


@pytest.mark.parametrize("dims", [(28, 28), (1, 28, 28)])
def test_hw_and_chw_images_are_accepted_on_a_batching_model(dims: tuple[int, ...]) -> None:
    """Rule: after the batch dim, the image is [H,W] or [C,H,W]."""
    check_pipeline(PIPE, replace(MNIST, inputs=(TensorSpec("input", "FLOAT", dims),)))


@pytest.mark.parametrize("dims", [(1, 28, 28), (1, 1, 28, 28)])
def test_a_fixed_batch_model_keeps_its_batch_dim_first(dims: tuple[int, ...]) -> None:
    """Rule: on a fixed-batch model (batch.max 0) the first dim is the batch, so [N,H,W] and
    [N,C,H,W] are images and [H,W] alone is not."""
    fixed = replace(MNIST, batch=BatchRange(0, 0, 0))
    check_pipeline(PIPE, replace(fixed, inputs=(TensorSpec("input", "FLOAT", dims),)))
    flat = replace(fixed, inputs=(TensorSpec("input", "FLOAT", (28, 28)),))
    assert "input dims [28, 28] must be fixed [C,H,W] or [H,W]" in refusal(PIPE, flat)


@pytest.mark.parametrize("dims", [(784,), (1, 1, 28, 28), (1, -1, 28)])
def test_other_ranks_and_variable_dims_are_refused(dims: tuple[int, ...]) -> None:
    """Rule: a vector, a 4-D image after the batch dim, or a variable size cannot be fed."""
    model = replace(MNIST, inputs=(TensorSpec("input", "FLOAT", dims),))
    assert refusal(PIPE, model) == (
        f"m.yml: pipeline 'digits': model 'mnist' input dims {list(dims)} must be fixed "
        "[C,H,W] or [H,W] after the batch dim"
    )


@pytest.mark.parametrize("values", [(0.5,), (0.1, 0.2, 0.3)])
def test_mean_and_std_have_one_value_or_one_per_channel(values: tuple[float, ...]) -> None:
    """Rule: mean/std give 1 value (all channels) or one per channel of a [C,H,W] model."""
    check_pipeline(replace(PIPE, model="rgb", mean=values, std=values), RGB)


def test_a_wrong_count_of_mean_or_std_values_is_refused() -> None:
    assert refusal(replace(PIPE, mean=(0.1, 0.2)), RGB) == (
        "m.yml: pipeline 'digits': mean has 2 values; give 1 or 3 (one per channel of 'rgb')"
    )
    assert refusal(replace(PIPE, std=(1.0, 1.0)), RGB).startswith(
        "m.yml: pipeline 'digits': std has 2 values; give 1 or 3"
    )


def test_an_hw_model_has_one_channel() -> None:
    """Rule: an [H,W] model has one channel: 1 mean value passes, 3 do not."""
    hw = replace(MNIST, inputs=(TensorSpec("input", "FLOAT", (28, 28)),))
    check_pipeline(replace(PIPE, mean=(0.5,)), hw)
    assert "give 1 or 1" in refusal(replace(PIPE, mean=(0.1, 0.2, 0.3)), hw)


def test_hwc_layout_needs_a_chw_model() -> None:
    """Rule: layout HWC transposes to the model's [C,H,W]; an [H,W] model cannot take it, and
    CHW (the default) works on both."""
    hw = replace(MNIST, inputs=(TensorSpec("input", "FLOAT", (28, 28)),))
    assert refusal(replace(PIPE, layout="HWC"), hw) == (
        "m.yml: pipeline 'digits': layout HWC needs a [C,H,W] model"
    )
    check_pipeline(replace(PIPE, layout="HWC"), MNIST)
    check_pipeline(PIPE, hw)


def test_without_a_place_the_message_starts_with_the_pipeline() -> None:
    """Rule: called without `where_`, the message starts at ': pipeline' (no file)."""
    with pytest.raises(DltkError, match=r"^: pipeline 'digits': model 'mnist' input 'input'"):
        check_pipeline(PIPE, replace(MNIST, inputs=(TensorSpec("input", "INT8", (28, 28)),)))
