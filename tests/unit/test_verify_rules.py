"""Verifier gates, one test per rule (survivors of mutation testing named in issue 14 item 2)."""

from __future__ import annotations

import numpy as np

from dltk.metrics import ModelMetrics
from dltk.perf import PerfRow
from dltk.verify.correctness import accuracy_check
from dltk.verify.perf import metrics_check
from dltk.verify.records import FAIL, PASS, Inputs, VerifyOptions
from dltk.verify.verifier import Verifier


def accuracy_result(right: int, total: int) -> tuple[str, float]:
    """The accuracy check of a default `dltk verify` for `right` of `total` correct classes."""
    verifier = Verifier(VerifyOptions(url="127.0.0.1:8000", model="mnist"))
    labels = np.arange(total) % 10
    classes = labels.copy()
    classes[right:] = (labels[right:] + 1) % 10
    inputs = Inputs(feeds={}, labels=labels, source="test double: labels only")
    accuracy_check(verifier, inputs, {"http": classes})
    (check,) = verifier.checks
    return check.result, check.data["min_accuracy"]


def test_by_default_a_model_below_90_percent_accuracy_fails() -> None:
    """Rule: without --min-accuracy, verify fails a model that gets fewer than 90 % of its
    labelled samples right (8 of 10) and passes one at exactly 90 % (9 of 10)."""
    assert accuracy_result(8, 10) == (FAIL, 0.9)
    assert accuracy_result(9, 10) == (PASS, 0.9)


def perf_rows() -> list[PerfRow]:
    return [PerfRow(1, 100.0, 0.9, 0.95, 0.99, 1.0)]  # concurrency, infer/s, p50..p99 ms


def test_a_sweep_the_server_did_not_count_fails_the_metrics_check() -> None:
    """Rule: when perf_analyzer measured requests but Triton's counters saw no successful request
    during the sweep, the metrics check fails (the sweep did not reach this model), even when
    the rest of the verification was counted."""
    whole = ModelMetrics("mnist", success=40, inferences=40, executions=40)
    uncounted = ModelMetrics("mnist")
    check = metrics_check("mnist", whole, uncounted, perf_rows())
    assert check.result == FAIL
    assert "perf_analyzer measured requests the server did not count" in check.detail
    counted = ModelMetrics("mnist", success=30, inferences=30, executions=30)
    assert metrics_check("mnist", whole, counted, perf_rows()).result == PASS
