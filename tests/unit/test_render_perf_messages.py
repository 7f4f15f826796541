# ruff: noqa: E501 - each expected message is kept whole on one line, as the user sees it
"""The one-line errors of config rendering, perf_analyzer runs and metrics parsing, whole.

Mutation testing (issue 14) left survivors in repo/config.py, perf.py and metrics.py that changed the
wording of these messages: the older tests matched a fragment. Each test gives the input at the
edge of one rule and compares the whole message. perf_analyzer is replaced by TEST DOUBLES of
subprocess.run (named so below).
"""

from __future__ import annotations

import subprocess
from dataclasses import replace
from pathlib import Path

import pytest
from specs import MNIST

from dltk.errors import DltkError
from dltk.metrics import parse_prometheus
from dltk.onnx_graph import TensorSpec
from dltk.perf import (
    MAX_INTERVAL_MS,
    ConcurrencyRange,
    PerfConfig,
    format_command,
    longer_window,
    run_perf,
    run_sweep,
    timeout_for,
)
from dltk.repo.config import config_context, render_config, triton_dtype

TRITON_TYPES = "BOOL, UINT8, UINT16, UINT32, UINT64, INT8, INT16, INT32, INT64, FLOAT16, FLOAT, DOUBLE, STRING, BFLOAT16"


def message(call, *args: object, **kwargs: object) -> str:  # noqa: ANN001 - any callable
    with pytest.raises(DltkError) as exc:
        call(*args, **kwargs)
    return str(exc.value)


def test_an_onnx_type_triton_lacks_names_the_supported_ones() -> None:
    """Rule: an ONNX element type without a Triton DataType is refused with the list of the
    supported ONNX types; rendering names the model and the tensor first."""
    assert (
        message(triton_dtype, "COMPLEX64")
        == f"ONNX type COMPLEX64 has no Triton equivalent; supported: {TRITON_TYPES}"
    )
    complex_out = replace(MNIST, outputs=(TensorSpec("spectrum", "COMPLEX64", (10,)),))
    assert message(render_config, complex_out, "onnxruntime") == (
        f"model 'mnist' tensor 'spectrum': ONNX type COMPLEX64 has no Triton equivalent; supported: {TRITON_TYPES}"
    )


def test_an_unknown_runtime_lists_the_onnx_runtimes_without_the_tensorrt_hint() -> None:
    """Rule: render_config serves the ONNX runtimes; an unknown one lists them (the TensorRT
    hint is only for `tensorrt`)."""
    assert (
        message(render_config, MNIST, "tvm")
        == "unknown runtime 'tvm'; known runtimes: onnxruntime, python-onnxruntime"
    )


def test_config_context_refusals_are_one_exact_line() -> None:
    """Rule: instances are cpu or gpu; a model must have its tensors (read from ONNX) first."""
    assert (
        message(config_context, MNIST, "onnxruntime", "tpu")
        == "unknown instance kind 'tpu'; use one of: cpu, gpu"
    )
    assert message(config_context, replace(MNIST, outputs=()), "onnxruntime") == (
        "model 'mnist' has no inputs/outputs; load the manifest with its ONNX files"
    )


def test_a_command_is_shown_as_its_words_joined_by_one_space() -> None:
    """Rule: the perf command in the verify report is argv joined by single spaces."""
    assert format_command(["perf_analyzer", "-m", "mnist", "--concurrency-range", "1:4"]) == (
        "perf_analyzer -m mnist --concurrency-range 1:4"
    )


CFG = PerfConfig(model="m", url="127.0.0.1:8000")


def fails_with(returncode: int, stdout: str, stderr: str):  # noqa: ANN201 - a runner
    def run(cmd: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
        """TEST DOUBLE of subprocess.run: perf_analyzer exiting `returncode`, no CSV."""
        return subprocess.CompletedProcess(cmd, returncode, stdout, stderr)

    return run


def times_out(cmd: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    """TEST DOUBLE of subprocess.run: perf_analyzer still running at the timeout."""
    raise subprocess.TimeoutExpired(cmd, float(kwargs["timeout"]))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "runner, expected",
    [
        (
            fails_with(2, "", "Failed to obtain stable measurement within 10 windows.\n"),
            "perf_analyzer failed (exit 2): Failed to obtain stable measurement within 10 windows.; raise the measurement interval or the stability percentage",
        ),
        (
            fails_with(
                1, "*** Measurement Settings ***\n", "error: failed to get model metadata\n"
            ),
            "perf_analyzer failed (exit 1): error: failed to get model metadata",
        ),
        (
            times_out,
            "perf_analyzer did not finish within 7s; lower the concurrency range or the measurement interval",
        ),
    ],
    ids=["unstable: the hint", "other failure: its error line only", "timeout"],
)
def test_a_failed_perf_run_is_one_exact_line(runner, expected: str) -> None:  # noqa: ANN001 - a runner
    """Rule: a failed perf_analyzer run is one line: the exit code and its telling line, plus
    what to change when the measurement was not stable; a run past its bound says so."""
    assert message(run_perf, Path("pa"), CFG, {}, timeout_s=7, runner=runner) == expected


def test_a_perf_analyzer_that_cannot_start_names_the_binary(tmp_path: Path) -> None:
    """Rule: a binary that cannot start is named, with the OS's reason."""
    binary = tmp_path / "perf_analyzer"
    assert (
        message(run_perf, binary, CFG, {}, timeout_s=7)
        == f"cannot run perf_analyzer ({binary}): No such file or directory"
    )


def test_a_metrics_value_that_is_not_a_number_names_its_line() -> None:
    """Rule: a sample whose value is not a float is refused with its 1-based line number."""
    text = "# HELP x\nnv_inference_count 4\nnv_inference_exec_count four\n"
    assert message(parse_prometheus, text) == "metrics line 3: value 'four' is not a number"


def test_a_precision_the_model_lacks_lists_all_its_precisions() -> None:
    """Rule: rendering an engine of a precision the model does not build names all it builds."""
    from dltk.repo.config import render_tensorrt_config

    both = replace(MNIST, runtimes=("onnxruntime", "tensorrt"), precisions=("tf32", "fp16"))
    assert message(render_tensorrt_config, both, "int8", ("8.6",)) == (
        "model 'mnist' has no int8 engine; its precisions: tf32, fp16"
    )


HTTP_CSV = (Path(__file__).parent / "data" / "perf_http_b8_c1-3.csv").read_text()
ONE_LEVEL_CSV = "\n".join(HTTP_CSV.splitlines()[:2]) + "\n"
SWEEP = PerfConfig(model="m", url="127.0.0.1:8000", concurrency=ConcurrencyRange(1, 3))
UNSTABLE = "Failed to obtain stable measurement within 5 measurement windows\n"


def sequence(*answers: tuple[str, int, str]):  # noqa: ANN201 - a runner and its calls
    calls: list[tuple[list[str], dict[str, object]]] = []

    def run(cmd: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
        """TEST DOUBLE of subprocess.run: perf_analyzer writing the next (csv, exit, stderr)."""
        csv, code, stderr = answers[len(calls)]
        calls.append((cmd, kwargs))
        if csv:
            Path(cmd[cmd.index("-f") + 1]).write_text(csv)
        return subprocess.CompletedProcess(cmd, code, "", stderr)

    return run, calls


def test_a_sweep_runs_the_given_binary_with_its_env_and_each_windows_timeout() -> None:
    """Rule: both runs of a sweep (the first and its retry) run the given perf_analyzer with the
    given environment, each bounded by the timeout of its own window."""
    runner, calls = sequence((ONE_LEVEL_CSV, 0, ""), (HTTP_CSV, 0, ""))
    run_sweep(Path("/opt/pa"), SWEEP, {"K": "v"}, runner=runner)
    assert [cmd[0] for cmd, _ in calls] == ["/opt/pa", "/opt/pa"]
    assert [kwargs["env"] for _, kwargs in calls] == [{"K": "v"}, {"K": "v"}]
    longer = longer_window(SWEEP)
    assert longer is not None
    assert [kwargs["timeout"] for _, kwargs in calls] == [timeout_for(SWEEP), timeout_for(longer)]


def test_a_sweep_at_the_window_cap_keeps_its_gap_or_fails_in_one_line() -> None:
    """Rule: at the 60 s window cap there is no retry: missing levels are kept with the reason,
    an unstable measurement fails with one line that says the window is at its cap."""
    capped = replace(SWEEP, measurement_interval_ms=MAX_INTERVAL_MS)
    runner, calls = sequence((ONE_LEVEL_CSV, 0, ""))
    result = run_sweep(Path("pa"), capped, {}, runner=runner)
    assert len(calls) == 1
    assert (result.missing_levels, result.retries) == (
        [2, 3],
        ("measured 1 of 3 levels (missing concurrency 2, 3) with a 60000 ms window",),
    )
    runner, calls = sequence(("", 1, UNSTABLE))
    assert message(run_sweep, Path("pa"), capped, {}, runner=runner) == (
        "perf_analyzer failed (exit 1): Failed to obtain stable measurement within 5 measurement "
        "windows; raise the measurement interval or the stability percentage (with a 60000 ms "
        "window); the window is already at its 60000 ms cap"
    )
    assert len(calls) == 1
