"""What one `dltk verify` run knows and records: its checks (each with its duration), the
server and model it found, the metrics scrapes and the perf_analyzer result; the JSON report and
the one-line stop of a failed prerequisite. The checks themselves: readiness.py, inputs.py,
correctness.py, measure.py; verifier.py runs them in order.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from rich.console import Console

from dltk.errors import DltkError
from dltk.metrics import ModelMetrics
from dltk.perf import PerfResult
from dltk.verify.models import Served
from dltk.verify.perf import scrape_model
from dltk.verify.records import DEFAULT_TOLERANCES, Check, ModelInfo, Tolerance, VerifyOptions
from dltk.verify.report import build_report, utc_now, write_report

console = Console()


class VerifierState:
    """The state of one run, shared by the checks: options, results so far, what was found."""

    def __init__(self, opts: VerifyOptions) -> None:
        self.opts = opts
        self.checks: list[Check] = []
        self.server: dict[str, Any] = {}
        self.info: ModelInfo | None = None
        self.perf: PerfResult | None = None
        self.perf_failed = False
        self.metrics: dict[str, ModelMetrics] = {}  # scrapes: start, before_perf, after_perf
        self.metrics_error: str | None = None
        self.started_at = utc_now()
        self.served = Served("onnx", opts.model, "fp32", "")
        self.tolerance: Tolerance = DEFAULT_TOLERANCES["fp32"]
        self.onnx: Path | None = opts.onnx
        self.samples_path: Path | None = opts.samples
        self.manifest_opt: int | None = None
        self.manifest_min = 1  # the smallest batch the model takes (TensorRT profile minimum)

    def add(self, check: Check, started: float) -> Check:
        check.duration_ms = round((time.monotonic() - started) * 1000, 1)
        self.checks.append(check)
        return check

    def report(self) -> dict[str, Any]:
        return build_report(
            self.opts,
            self.checks,
            self.started_at,
            self.server,
            self.info,
            self.perf,
            self.metric_deltas(),
            {
                "precision": self.served.precision,
                "atol": self.tolerance.atol,
                "rtol": self.tolerance.rtol,
            },
        )

    def perf_csv(self) -> str:
        return self.perf.csv if self.perf else ""

    def scrape(self, label: str) -> None:
        """Remember the model's counters now; the first failure is reported by `metrics`."""
        if not self.opts.metrics_url or self.metrics_error:
            return
        try:
            self.metrics[label] = scrape_model(self.opts.metrics_url, self.opts.model, 10.0)
        except DltkError as exc:
            self.metrics_error = str(exc)

    def metric_deltas(self) -> dict[str, ModelMetrics]:
        m = self.metrics
        deltas: dict[str, ModelMetrics] = {}
        if "start" in m and "end" in m:
            deltas["verify"] = m["end"].minus(m["start"])
        if "before_perf" in m and "after_perf" in m:
            deltas["perf"] = m["after_perf"].minus(m["before_perf"])
        return deltas

    def fatal(self, check: Check, started: float) -> DltkError:
        """A failed prerequisite: record it, write the report, stop with one line."""
        self.add(check, started)
        if self.opts.report:
            write_report(self.opts.report, self.report(), self.perf_csv())
        return DltkError(f"{check.name}: {check.detail}")
