"""verify_records' pure helpers: one test per rule, with whole expected outputs.

These pin what mutation testing found unpinned (issue 14 item 1: survivors of
`MUTATION_MODULES="verify_records verify_perf" scripts/mutation.sh`). Every expected value is
written from the rule (the docstrings, Triton's JSON forms), on both sides of each comparison.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from dltk.errors import DltkError
from dltk.perf import ConcurrencyRange, PerfConfig, PerfResult, PerfRow
from dltk.verify.records import (
    FAIL,
    PASS,
    Check,
    Diff,
    ModelInfo,
    Slo,
    TensorSpec,
    Tolerance,
    accuracy,
    accuracy_of_classes,
    batches,
    check_sample_shape,
    chunk_size,
    compare,
    model_info,
    normalize_url,
    perf_check,
    perf_shapes,
    synthetic_inputs,
    wrong_shape,
)

# --- normalize_url ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("  https://triton.example:443/  ", "triton.example:443"),  # blanks, https, slash
        ("http://127.0.0.1:8000///", "127.0.0.1:8000"),  # every trailing slash
        ("grpc://h:1", "h:1"),  # lowest port
        ("h:65535", "h:65535"),  # highest port
        ("[::1]:8001", "[::1]:8001"),  # the last colon separates the port
    ],
)
def test_a_url_becomes_host_colon_port(url: str, expected: str) -> None:
    """Rule: blanks, one scheme (http, https, grpc) and trailing slashes are removed; the rest
    is HOST:PORT with the port after the last colon, 1..65535."""
    assert normalize_url(url) == expected


@pytest.mark.parametrize("url", ["h:0", "h:65536", "h:", ":8000", "h", "h:-1", "h:80a", "h:8000X"])
def test_a_url_without_a_host_or_a_valid_port_is_refused_in_one_line(url: str) -> None:
    """Rule: no host, no port, a port that is not digits (also text after it) or outside
    1..65535 is refused with the URL and an example."""
    with pytest.raises(DltkError) as err:
        normalize_url(url)
    assert str(err.value) == f"URL {url!r} is not HOST:PORT, e.g. 127.0.0.1:8000"


# --- model_info and its summary ----------------------------------------------------------------

# Triton's JSON forms: HTTP gives numbers; the gRPC messages as JSON give int64 (shape) as strings.
METADATA = {
    "name": "resnet",
    "versions": ["1", "2"],
    "platform": "onnxruntime_onnx",
    "inputs": [{"name": "x", "datatype": "FP32", "shape": ["-1", "3", "224", "224"]}],
    "outputs": [{"name": "y", "datatype": "FP16", "shape": [-1, 1000]}],
}
CONFIG = {
    "name": "ignored: metadata names the model",
    "backend": "onnxruntime",
    "max_batch_size": 16,
    "instance_group": [{"name": "g0", "kind": "KIND_GPU", "count": 2}, {"name": "g1"}],
    "dynamic_batching": {"preferred_batch_size": [8]},
    "parameters": {"a": {"string_value": "1"}, "b": {}, "c": 3},
    "optimization": {"execution_accelerators": {"gpu_execution_accelerator": []}},
}
RESNET = ModelInfo(
    name="resnet",
    platform="onnxruntime_onnx",
    backend="onnxruntime",
    max_batch_size=16,
    inputs=(TensorSpec("x", "FP32", (-1, 3, 224, 224)),),
    outputs=(TensorSpec("y", "FP16", (-1, 1000)),),
    versions=("1", "2"),
    instance_groups=("2x KIND_GPU", "1x KIND_AUTO"),
    dynamic_batching={"preferred_batch_size": [8]},
    parameters={"a": "1", "b": "", "c": "3"},
    optimization={"execution_accelerators": {"gpu_execution_accelerator": []}},
)


def test_model_info_reads_every_field_of_metadata_and_config() -> None:
    """Rule: name, platform, tensors (shapes as ints, also from strings) and versions come from
    the metadata; backend, max_batch_size, instance groups ("COUNTx KIND", count 1 and
    KIND_AUTO when absent), dynamic batching, parameters (their string_value, "" when absent)
    and optimization from the config."""
    assert model_info(METADATA, CONFIG) == RESNET


def test_model_info_of_empty_answers_has_the_documented_defaults() -> None:
    """Rule: a field Triton leaves out is empty: "" for names, 0 for max_batch_size (a model
    without a batch dim), no tensors, versions or groups, no dynamic batching, no parameters."""
    empty = ModelInfo("", "", "", 0, (), (), (), (), None, {}, {})
    assert model_info({}, {}) == empty
    assert model_info({}, {"parameters": None, "optimization": None}) == empty


def test_model_info_takes_the_name_from_the_config_when_the_metadata_has_none() -> None:
    """Rule: the model name is the metadata's, else the config's."""
    assert model_info({}, {"name": "from-config"}).name == "from-config"
    assert model_info({"name": "meta"}, {"name": "from-config"}).name == "meta"


def test_the_summary_has_the_reports_model_fields_as_lists() -> None:
    """Rule: the report's model summary names the model, its platform and backend, its batch
    size, versions, tensors (as dicts), instance groups and dynamic batching; sequences are
    lists (JSON)."""
    assert RESNET.summary() == {
        "name": "resnet",
        "platform": "onnxruntime_onnx",
        "backend": "onnxruntime",
        "max_batch_size": 16,
        "versions": ["1", "2"],
        "inputs": [{"name": "x", "datatype": "FP32", "shape": (-1, 3, 224, 224)}],
        "outputs": [{"name": "y", "datatype": "FP16", "shape": (-1, 1000)}],
        "instance_groups": ["2x KIND_GPU", "1x KIND_AUTO"],
        "dynamic_batching": {"preferred_batch_size": [8]},
    }


# --- chunk_size and batches ---------------------------------------------------------------------


def info_with(max_batch_size: int, *shapes: tuple[int, ...]) -> ModelInfo:
    inputs = tuple(TensorSpec(f"in{i}", "FP32", s) for i, s in enumerate(shapes))
    return ModelInfo("m", "", "", max_batch_size, inputs, (), ("1",), (), None)


@pytest.mark.parametrize(
    ("info", "total", "size"),
    [
        (info_with(8, (-1, 3)), 20, 8),  # more rows than the batch: max_batch_size
        (info_with(8, (-1, 3)), 8, 8),  # equal
        (info_with(8, (-1, 3)), 7, 7),  # fewer rows: all of them
        (info_with(1, (-1, 3)), 5, 1),  # max_batch_size 1 is a batched model
        (info_with(0, (4, 3)), 20, 4),  # no batch dim: the fixed first dim
        (info_with(0, (1, 3)), 20, 1),
        (info_with(0, (-1, 3)), 20, 20),  # dynamic first dim: everything at once
        (info_with(0, (0, 3)), 20, 20),  # a 0 dim is no request size
        (info_with(0, ()), 20, 20),  # a scalar input
        (info_with(0), 20, 20),  # no inputs
    ],
)
def test_chunk_size_is_the_largest_request_the_model_accepts(
    info: ModelInfo, total: int, size: int
) -> None:
    """Rule: max_batch_size (at most the rows there are) for a batched model; else the first
    input's fixed (positive) first dim; else all rows in one request."""
    assert chunk_size(info, total) == size


def test_batches_cut_rows_in_order_into_requests_of_the_size() -> None:
    """Rule: consecutive chunks of `size` rows, the last one shorter; every row exactly once."""
    rows = np.arange(5)
    assert [b.tolist() for b in batches(rows, 2)] == [[0, 1], [2, 3], [4]]
    assert [b.tolist() for b in batches(rows, 1)] == [[0], [1], [2], [3], [4]]
    assert [b.tolist() for b in batches(rows, 9)] == [[0, 1, 2, 3, 4]]


# --- sample shapes ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("shape", "sample", "batched"),
    [
        ((-1, 3, -1), (4, 3, 9), True),  # batch dim and -1 dims match anything
        ((-1, -1), (4, 7), True),
        ((2, 3), (2, 3), False),  # no batch dim: every dim is compared
        ((-1, 3), (5, 3), False),
    ],
)
def test_samples_fit_a_model_input_when_every_fixed_dim_matches(
    shape: tuple[int, ...], sample: tuple[int, ...], batched: bool
) -> None:
    """Rule: the samples' dims (after the row dim of a batched model) equal the model's, where
    the model's -1 dims match any size."""
    check_sample_shape(TensorSpec("x", "FP32", shape), sample, batched)


@pytest.mark.parametrize(
    ("shape", "sample", "batched"),
    [
        ((-1, 3, -1), (4, 2, 9), True),  # a fixed dim differs
        ((-1, 3, -1), (4, 3), True),  # a dim missing
        ((2, 3), (3, 3), False),  # the first dim of a model without batch dim
        ((2, 3), (2, 3, 1), False),  # one dim too many
    ],
)
def test_samples_that_do_not_fit_are_refused_naming_both_shapes(
    shape: tuple[int, ...], sample: tuple[int, ...], batched: bool
) -> None:
    """Rule: samples that do not fit are refused in one line with both shapes and what to do."""
    with pytest.raises(DltkError) as err:
        check_sample_shape(TensorSpec("x", "FP32", shape), sample, batched)
    assert str(err.value) == (
        f"samples have shape {list(sample)} but model input 'x' is {list(shape)}; "
        "pass the samples exported with this model"
    )


def test_synthetic_inputs_have_the_input_shape_with_dynamic_dims_1() -> None:
    """Rule: generated inputs have SYNTHETIC_BATCH (8) rows for a batched model, the model's
    fixed dims, 1 for each dynamic dim, the asked dtype, values in [0, 1), the same each call."""
    batched = synthetic_inputs(TensorSpec("x", "FP32", (-1, -1, 3)), True, np.dtype(np.float16))
    assert batched.shape == (8, 1, 3) and batched.dtype == np.float16
    assert np.all((batched >= 0) & (batched < 1)) and np.unique(batched).size > 1
    fixed = synthetic_inputs(TensorSpec("x", "FP32", (2, -1, 0)), False, np.dtype(np.float32))
    assert fixed.shape == (2, 1, 1) and fixed.dtype == np.float32
    again = synthetic_inputs(TensorSpec("x", "FP32", (2, -1, 0)), False, np.dtype(np.float32))
    assert np.array_equal(fixed, again)


@pytest.mark.parametrize(
    ("shape", "good", "batched", "bad"),
    [
        ((-1, -1, 5), (2, 7, 5), True, (2, 7, 6)),  # the first fixed dim + 1
        ((-1, 1), (2, 1), True, (2, 2)),  # a fixed dim of 1
        ((-1, 4), (3, 4), False, (3, 5)),  # no batch dim: dims counted from 0
        ((-1,), (3,), False, (3, 1)),  # all dynamic: one dim more
    ],
)
def test_the_wrong_shape_changes_the_first_fixed_dim_or_adds_one(
    shape: tuple[int, ...], good: tuple[int, ...], batched: bool, bad: tuple[int, ...]
) -> None:
    """Rule: a shape the server must reject is a good shape with its first fixed dim + 1, or
    with one more dim when every dim is dynamic."""
    assert wrong_shape(good, TensorSpec("x", "FP32", shape), batched) == bad


@pytest.mark.parametrize(
    ("shape", "sample", "batched", "shapes"),
    [
        ((-1, 4), (3, 4), True, {}),  # only the batch dim is dynamic
        ((-1, 1), (3, 1), True, {}),  # a fixed dim of 1
        ((-1, -1, 4), (2, 9, 4), True, {"x": (9, 4)}),  # the dims after the rows
        ((3, 4), (3, 4), False, {}),
        ((-1, 4), (3, 4), False, {"x": (3, 4)}),  # no batch dim: every dim
    ],
)
def test_perf_shapes_are_given_only_for_inputs_with_dynamic_dims(
    shape: tuple[int, ...], sample: tuple[int, ...], batched: bool, shapes: dict
) -> None:
    """Rule: perf_analyzer needs --shape only when an input has a -1 dim besides the batch dim;
    the shape is the samples' (without the row dim of a batched model)."""
    assert perf_shapes(TensorSpec("x", "FP32", shape), sample, batched) == shapes


# --- compare, tolerance, accuracy ---------------------------------------------------------------


def arr(values: object, dtype: type = np.float32) -> np.ndarray:
    return np.array(values, dtype=dtype)


@pytest.mark.parametrize(
    ("got", "ref", "atol", "rtol", "diff"),
    [
        # different shapes: nothing compared, infinitely far, no class agrees
        (np.zeros((2, 3)), np.zeros((3, 2)), 0.5, 0.25, Diff(math.inf, 0.5, 0.0, 0.25, False)),
        # no rows: nothing differs
        (np.zeros((0, 3)), np.zeros((0, 3)), 0.1, 0.2, Diff(0.0, 0.1, 1.0, 0.2, True)),
        # |diff| equal to atol is within; just above is not
        (arr([[1.5, 0.0]]), arr([[1.0, 0.0]]), 0.5, 0.0, Diff(0.5, 0.5, 1.0, 0.0, True)),
        (arr([[1.5, 0.0]]), arr([[1.0, 0.0]]), 0.25, 0.0, Diff(0.5, 0.25, 1.0, 0.0, False)),
        # rtol scales |ref| (negative ref too): 1 <= 0 + 0.5 * |-2|, not <= 0.25 * 2
        (arr([[-1.0, -3.0]]), arr([[-2.0, -3.0]]), 0.0, 0.5, Diff(1.0, 0.0, 1.0, 0.5, True)),
        (arr([[-1.0, -3.0]]), arr([[-2.0, -3.0]]), 0.0, 0.25, Diff(1.0, 0.0, 1.0, 0.25, False)),
        (arr([[-1.0, -3.0]]), arr([[-2.0, -3.0]]), 0.5, 0.25, Diff(1.0, 0.5, 1.0, 0.25, True)),
        # unsigned outputs: 0 vs 1 differ by 1 (not 255)
        (
            arr([[0, 2]], np.uint8),
            arr([[1, 2]], np.uint8),
            1.0,
            0.0,
            Diff(1.0, 1.0, 1.0, 0.0, True),
        ),
        # argmax per row: one of two rows agrees
        (arr([[1, 0], [1, 0]]), arr([[1, 0], [0, 1]]), 1.0, 0.0, Diff(1.0, 1.0, 0.5, 0.0, True)),
        # one row (1-D): its argmax disagrees
        (arr([0.0, 1.0]), arr([1.0, 0.0]), 1.0, 0.0, Diff(1.0, 1.0, 0.0, 0.0, True)),
        # a scalar has no class: agreement 1
        (arr(2.0), arr(1.0), 1.0, 0.0, Diff(1.0, 1.0, 1.0, 0.0, True)),
    ],
)
def test_compare_measures_every_element_against_atol_plus_rtol_times_ref(
    got: np.ndarray, ref: np.ndarray, atol: float, rtol: float, diff: Diff
) -> None:
    """Rule: |got - ref| <= atol + rtol*|ref| element-wise (in float64), the largest |got - ref|,
    and the share of rows whose argmax agrees (1 when there is no class axis or no row)."""
    assert compare(got, ref, atol, rtol) == diff


def test_compare_uses_no_rtol_unless_given() -> None:
    """Rule: rtol defaults to 0 (an absolute tolerance)."""
    assert compare(arr([2.0]), arr([1.0]), 0.5) == Diff(1.0, 0.5, 1.0, 0.0, False)


@pytest.mark.parametrize(
    ("tolerance", "precision", "text"),
    [
        (Tolerance(1e-4), "fp32", "atol 0.0001"),
        (Tolerance(0.01, 0.01), "tf32", "tf32: atol 0.01 + rtol 0.01*|ref|"),
        (Tolerance(0.05, 0.5), "fp16", "fp16: atol 0.05 + rtol 0.5*|ref|"),
    ],
)
def test_a_tolerance_describes_itself_with_the_precision_when_it_has_rtol(
    tolerance: Tolerance, precision: str, text: str
) -> None:
    """Rule: an absolute tolerance reads "atol A"; with rtol it names the precision it is for."""
    assert tolerance.describe(precision) == text


def test_accuracy_takes_the_argmax_of_each_row_of_any_shape() -> None:
    """Rule: accuracy is the share of rows whose argmax (over all values of the row) is the
    label."""
    logits = arr([[[0, 1]], [[1, 0]], [[0, 1]]])  # [3, 1, 2]
    assert accuracy(logits, np.array([1, 0, 0])) == pytest.approx(2 / 3)
    assert accuracy(arr([[0, 0, 1, 0]]), np.array([2])) == 1.0


def test_accuracy_of_classes_compares_one_class_per_row() -> None:
    """Rule: classes and labels may come as [N] or [N, 1]; one row is enough."""
    assert accuracy_of_classes(np.array([[1], [2]]), np.array([[1], [3]])) == 0.5
    assert accuracy_of_classes(np.array([4]), np.array([4])) == 1.0


@pytest.mark.parametrize(("classes", "labels"), [(0, 0), (3, 2), (2, 3)])
def test_accuracy_needs_one_label_per_output(classes: int, labels: int) -> None:
    """Rule: no labels, or a different number of outputs and labels, is refused in one line."""
    with pytest.raises(DltkError) as err:
        accuracy_of_classes(np.zeros(classes), np.zeros(labels))
    assert str(err.value) == f"{classes} outputs for {labels} labels: samples are inconsistent"


# --- Slo ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("slo", "message"),
    [
        (Slo(min_throughput=-1.0), "--slo-min-throughput and --slo-max-p99-ms must be >= 0"),
        (Slo(max_p99_ms=-0.5), "--slo-min-throughput and --slo-max-p99-ms must be >= 0"),
        (Slo(max_errors=-1), "--slo-max-errors must be >= 0"),
    ],
)
def test_a_negative_slo_gate_is_refused(slo: Slo, message: str) -> None:
    """Rule: SLO gates are >= 0 (0: no gate); a negative one is refused naming the option."""
    with pytest.raises(DltkError) as err:
        slo.check()
    assert str(err.value).startswith(message)
    Slo(0.0, 0.0, 0).check()  # all zero: accepted


def test_slo_gates_that_need_a_sweep() -> None:
    """Rule: a throughput or p99 gate needs the perf sweep; an error gate alone does not, but is
    still a gate (max_errors 0 is "no failed request")."""
    assert (Slo().needs_perf, Slo().active) == (False, False)
    assert (Slo(max_errors=0).needs_perf, Slo(max_errors=0).active) == (False, True)
    assert (Slo(min_throughput=0.5).needs_perf, Slo(min_throughput=0.5).active) == (True, True)
    assert (Slo(max_p99_ms=0.5).needs_perf, Slo(max_p99_ms=0.5).active) == (True, True)


# --- perf_check ---------------------------------------------------------------------------------


def sweep(
    rows: list[PerfRow],
    levels: ConcurrencyRange,
    batch: int = 1,
    interval_ms: int = 1000,
    retries: tuple[str, ...] = (),
) -> PerfResult:
    cfg = PerfConfig(
        model="m",
        url="127.0.0.1:8000",
        concurrency=levels,
        batch_size=batch,
        measurement_interval_ms=interval_ms,
    )
    return PerfResult(cfg, ["perf_analyzer"], rows, elapsed_s=2.46, retries=retries)


def row(concurrency: int, throughput: float, p99_ms: float) -> PerfRow:
    return PerfRow(concurrency, throughput, 1.0, 1.0, 1.0, p99_ms)


def test_perf_check_passes_every_level_measured_and_names_the_best() -> None:
    """Rule: every level asked for measured with a positive throughput passes; the detail
    counts the levels, names the range, batch, the highest-throughput level (its p99), the
    time taken and the window of the first run."""
    rows = [row(1, 100.0, 4.0), row(2, 180.4, 5.125), row(3, 150.0, 9.0)]
    check = perf_check(sweep(rows, ConcurrencyRange(1, 3)))
    assert check == Check(
        "perf_analyzer",
        PASS,
        "3 of 3 levels, concurrency 1:3:1, batch 1: best 180 infer/s at concurrency 2 "
        "(p99 5.12 ms), 2.5s; first run, 1000 ms window",
        {
            "rows": 3,
            "levels_asked": [1, 2, 3],
            "levels_missing": [],
            "measurement_interval_ms": 1000,
            "retried": False,
            "retry_reasons": [],
        },
    )


def test_perf_check_fails_missing_levels_and_says_the_run_was_retried() -> None:
    """Rule: a level asked for and not measured fails the check and is named; a sweep measured
    on the retry says so, with the retry's window and the first run's reason."""
    rows = [row(2, 50.0, 2.0), row(6, 90.0, 3.0)]
    retries = ("measured 1 of 3 levels", "unstable")
    check = perf_check(sweep(rows, ConcurrencyRange(2, 6, 2), 4, 3000, retries))
    assert check == Check(
        "perf_analyzer",
        FAIL,
        "2 of 3 levels, concurrency 2:6:2, batch 4 (missing concurrency 4): best 90 infer/s "
        "at concurrency 6 (p99 3.00 ms), 2.5s; retried once with a 3000 ms window after the "
        "first run measured 1 of 3 levels",
        {
            "rows": 2,
            "levels_asked": [2, 4, 6],
            "levels_missing": [4],
            "measurement_interval_ms": 3000,
            "retried": True,
            "retry_reasons": ["measured 1 of 3 levels", "unstable"],
        },
    )


def test_perf_check_without_rows_fails() -> None:
    """Rule: a sweep that measured nothing fails and says "no rows"."""
    check = perf_check(sweep([], ConcurrencyRange(1, 2)))
    assert (check.result, check.detail) == (
        FAIL,
        "0 of 2 levels, concurrency 1:2:1, batch 1 (missing concurrency 1, 2): no rows; "
        "first run, 1000 ms window",
    )


@pytest.mark.parametrize(("throughput", "result"), [(0.0, FAIL), (0.5, PASS)])
def test_perf_check_needs_a_positive_throughput_at_every_level(
    throughput: float, result: str
) -> None:
    """Rule: a level with throughput 0 fails the check; any positive throughput passes."""
    rows = [row(1, 100.0, 1.0), row(2, throughput, 1.0)]
    assert perf_check(sweep(rows, ConcurrencyRange(1, 2))).result == result
