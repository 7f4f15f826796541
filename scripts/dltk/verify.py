"""`dltk verify`: prove a running Triton serves a model correctly, then measure it.

Checks, in order: server live, server ready and model ready (bounded waits), model
metadata/config, one HTTP and one gRPC inference on real sample images, outputs against
onnxruntime in-process on the same ONNX file, accuracy against the samples' labels, a request
with a wrong input shape (rejected with a clear error while the server stays ready and keeps
answering), and with --perf a bounded perf_analyzer run. Prints a table of checks, writes a
JSON report with --report, exits 1 when any check fails.
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

import numpy as np
from rich.console import Console

from dltk.errors import DltkError
from dltk.metrics import ModelMetrics
from dltk.perf import PerfConfig, PerfResult, run_perf, timeout_for
from dltk.triton_client import Triton, _server_message, infer_all, probe_bad_input, wait_until
from dltk.verify_data import load_samples, onnxruntime_outputs
from dltk.verify_perf import metrics_check, perf_errors, scrape_model, slo_check
from dltk.verify_records import (
    FAIL,
    PASS,
    SKIP,
    Check,
    Diff,
    ModelInfo,
    Samples,
    TensorSpec,
    VerifyOptions,
    accuracy,
    check_sample_shape,
    chunk_size,
    compare,
    model_info,
    overall_exit_code,
    perf_check,
    perf_shapes,
    synthetic_inputs,
)
from dltk.verify_report import (
    build_report,
    checks_table,
    failure_line,
    perf_table,
    utc_now,
    write_report,
)

console = Console()


# --- the verifier ---------------------------------------------------------------------------


class Verifier:
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
        )

    def _perf_csv(self) -> str:
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
            write_report(self.opts.report, self.report(), self._perf_csv())
        return DltkError(f"{check.name}: {check.detail}")

    def _measure_checks(self) -> None:
        """Counters over the whole run and the sweep, then the SLO gates."""
        t = time.monotonic()
        self.scrape("end")
        deltas = self.metric_deltas()
        rows = self.perf.rows if self.perf else None
        self.add(
            metrics_check(
                self.opts.model,
                deltas.get("verify"),
                deltas.get("perf"),
                rows,
                self.metrics_error,
            ),
            t,
        )
        t = time.monotonic()
        errors = perf_errors(deltas.get("perf"), self.perf_failed) if self.opts.perf else None
        self.add(slo_check(self.opts.slo, rows, errors), t)

    def run(self) -> int:
        opts = self.opts
        triton = Triton(opts.url, opts.grpc_url, opts.timeout)
        try:
            self._server_checks(triton)
            spec, batched, samples = self._model_checks(triton)
            outputs = self._inference_checks(triton, spec, batched, samples)
            self._reference_checks(spec, samples, outputs)
            self._bad_input_check(triton, spec, batched, samples)
            if opts.perf:
                self._perf_check(spec, batched, samples)
            self._measure_checks()
        finally:
            triton.close()
        console.print(checks_table(self.checks))
        if self.perf is not None:
            console.print(
                perf_table(
                    self.perf.rows,
                    f"perf_analyzer {opts.model} "
                    f"({self.perf.config.protocol}, batch "
                    f"{self.perf.config.batch_size})",
                )
            )
        if opts.report:
            for path in write_report(opts.report, self.report(), self._perf_csv()):
                console.print(f"report: {path}", soft_wrap=True)
        code = overall_exit_code(self.checks)
        # The last line is what the play shows when it fails: keep it one unwrapped line.
        console.print(
            "[green]all checks passed[/]" if code == 0 else failure_line(self.checks),
            soft_wrap=True,
        )
        return code

    def _server_checks(self, triton: Triton) -> None:
        opts = self.opts
        t = time.monotonic()
        live = bool(triton.call(triton.http.is_server_live))
        if not live:
            raise self.fatal(Check("server live", FAIL, f"{opts.url} answers but is not live"), t)
        meta = triton.call(triton.http.get_server_metadata)
        self.server = {
            "name": meta.get("name"),
            "version": meta.get("version"),
            "extensions": meta.get("extensions", []),
        }
        self.scrape("start")
        self.add(
            Check(
                "server live",
                PASS,
                f"{meta.get('name')} {meta.get('version')} at {opts.url}",
                {"version": meta.get("version")},
            ),
            t,
        )

        t = time.monotonic()
        with console.status(f"waiting for server ready (≤ {opts.timeout:.0f}s)"):
            ready = wait_until(lambda: bool(triton.call(triton.http.is_server_ready)), opts.timeout)
        waited = time.monotonic() - t
        if not ready:
            # Not fatal: /ready is false while any model is still loading or failed.
            self.add(Check("server ready", FAIL, f"not ready after {waited:.1f}s"), t)
        else:
            self.add(Check("server ready", PASS, f"ready after {waited:.1f}s"), t)
        if opts.grpc_url:
            t = time.monotonic()
            grpc_live = bool(triton.call(triton.grpc.is_server_live, opts.grpc_url))
            self.add(Check("grpc live", PASS if grpc_live else FAIL, f"gRPC at {opts.grpc_url}"), t)

    def _model_checks(self, triton: Triton) -> tuple[TensorSpec, bool, Samples]:
        opts = self.opts
        t = time.monotonic()
        index = triton.call(triton.http.get_model_repository_index)
        known = {str(m.get("name")): m for m in index}
        if opts.model not in known:
            have = ", ".join(sorted(known)) or "none"
            raise self.fatal(
                Check(
                    "model ready",
                    FAIL,
                    f"model {opts.model!r} is not in the server's repository (models: {have})",
                ),
                t,
            )
        with console.status(f"waiting for model {opts.model} ready (≤ {opts.timeout:.0f}s)"):
            ready = wait_until(
                lambda: bool(triton.call(lambda: triton.http.is_model_ready(opts.model))),
                opts.timeout,
            )
        if not ready:
            entry = next(
                (
                    m
                    for m in triton.call(triton.http.get_model_repository_index)
                    if m.get("name") == opts.model
                ),
                {},
            )
            reason = entry.get("reason") or "no reason given (check the server log)"
            raise self.fatal(
                Check(
                    "model ready",
                    FAIL,
                    f"model {opts.model!r} is "
                    f"{entry.get('state', 'not ready')} after {opts.timeout:.0f}s: "
                    f"{reason}",
                ),
                t,
            )
        self.add(
            Check("model ready", PASS, f"{opts.model} ready after {time.monotonic() - t:.1f}s"), t
        )

        t = time.monotonic()
        metadata = triton.call(lambda: triton.http.get_model_metadata(opts.model))
        config = triton.call(lambda: triton.http.get_model_config(opts.model))
        info = self.info = model_info(metadata, config)
        if len(info.inputs) != 1 or not info.outputs:
            raise self.fatal(
                Check(
                    "model config",
                    FAIL,
                    f"{opts.model} has {len(info.inputs)} inputs; dltk verify feeds exactly one",
                ),
                t,
            )
        spec = info.inputs[0]
        batched = info.max_batch_size > 0
        runtime = info.backend or info.platform
        self.add(
            Check(
                "model config",
                PASS,
                f"{runtime}, max_batch_size {info.max_batch_size}, "
                f"input {spec.name} {spec.datatype} {list(spec.shape)}, outputs "
                f"{', '.join(o.name for o in info.outputs)}, instances "
                f"{', '.join(info.instance_groups) or 'default'}",
            ),
            t,
        )

        t = time.monotonic()
        from tritonclient.utils import triton_to_np_dtype

        dtype = np.dtype(triton_to_np_dtype(spec.datatype))
        if opts.samples:
            samples = load_samples(opts.samples)
            samples = Samples(samples.inputs.astype(dtype), samples.labels, samples.source)
            try:
                check_sample_shape(spec, tuple(samples.inputs.shape), batched)
            except DltkError as exc:
                raise self.fatal(Check("samples", FAIL, str(exc)), t) from None
            labels = "with labels" if samples.labels is not None else "without labels"
            self.add(
                Check(
                    "samples",
                    PASS,
                    f"{len(samples.inputs)} samples "
                    f"{list(samples.inputs.shape)} {labels} from {opts.samples}",
                ),
                t,
            )
        else:
            samples = Samples(synthetic_inputs(spec, batched, dtype), None, "synthetic")
            self.add(
                Check(
                    "samples",
                    SKIP,
                    f"no --samples: {len(samples.inputs)} synthetic inputs, no accuracy check",
                ),
                t,
            )
        return spec, batched, samples

    def _inference_checks(
        self, triton: Triton, spec: TensorSpec, batched: bool, samples: Samples
    ) -> dict[str, dict[str, np.ndarray]]:
        from tritonclient.utils import InferenceServerException

        assert self.info is not None
        size = chunk_size(self.info, len(samples.inputs)) if batched else len(samples.inputs)
        results: dict[str, dict[str, np.ndarray]] = {}
        protocols: list[tuple[str, Callable[..., dict], str | None]] = [
            ("http", triton.infer_http, self.opts.url)
        ]
        if self.opts.grpc_url:
            protocols.append(("grpc", triton.infer_grpc, self.opts.grpc_url))
        inputs = samples.inputs if batched else samples.inputs[: max(size, 1)]
        for proto, infer, url in protocols:
            t = time.monotonic()
            try:
                out = infer_all(infer, self.opts.model, spec, inputs, size)
            except InferenceServerException as exc:
                self.add(Check(f"{proto} inference", FAIL, _server_message(exc)), t)
                continue
            shapes = ", ".join(f"{k} {list(v.shape)}" for k, v in out.items())
            requests = math.ceil(len(inputs) / max(size, 1))
            self.add(
                Check(
                    f"{proto} inference",
                    PASS,
                    f"{len(inputs)} samples in {requests} "
                    f"request(s) to {url} -> {shapes} in "
                    f"{(time.monotonic() - t) * 1000:.0f} ms",
                ),
                t,
            )
            results[proto] = out
        if not self.opts.grpc_url:
            self.checks.append(Check("grpc inference", SKIP, "no --grpc-url given"))
        return results

    def _reference_checks(
        self, spec: TensorSpec, samples: Samples, outputs: dict[str, dict[str, np.ndarray]]
    ) -> None:
        opts = self.opts
        t = time.monotonic()
        if not outputs:
            self.add(Check("outputs vs onnxruntime", FAIL, "no inference succeeded"), t)
            return
        n = len(next(iter(next(iter(outputs.values())).values())))
        inputs = samples.inputs[:n]
        if opts.onnx is None:
            self.add(Check("outputs vs onnxruntime", SKIP, "no --onnx given"), t)
        else:
            with console.status(f"onnxruntime on {opts.onnx}"):
                ref = onnxruntime_outputs(opts.onnx, spec.name, inputs)
            worst: Diff | None = None
            data: dict[str, Any] = {"atol": opts.atol}
            problems: list[str] = []
            for proto, out in outputs.items():
                for name, ref_value in ref.items():
                    if name not in out:
                        problems.append(f"{proto}: server returned no output {name!r}")
                        continue
                    diff = compare(out[name], ref_value, opts.atol)
                    data[f"{proto}_{name}_max_abs_diff"] = diff.max_abs
                    data[f"{proto}_{name}_argmax_agreement"] = diff.argmax_agreement
                    if worst is None or not diff.max_abs <= worst.max_abs:
                        worst = diff
            data["max_abs_diff"] = worst.max_abs if worst else None
            ok = worst is not None and worst.ok and not problems
            detail = (
                f"max |triton - onnxruntime| = {worst.max_abs:.3g} (atol {opts.atol:g}) over "
                f"{', '.join(outputs)}; argmax agreement {worst.argmax_agreement:.3f}"
                if worst
                else "nothing compared"
            )
            self.add(
                Check(
                    "outputs vs onnxruntime",
                    PASS if ok else FAIL,
                    "; ".join([detail, *problems]),
                    data,
                ),
                t,
            )

        t = time.monotonic()
        if samples.labels is None:
            self.add(Check("accuracy", SKIP, "no labels in the samples"), t)
            return
        first = self.info.outputs[0].name if self.info else None
        accs = {p: accuracy(o[first], samples.labels[:n]) for p, o in outputs.items() if first in o}
        low = {p: a for p, a in accs.items() if a < opts.min_accuracy}
        detail = ", ".join(f"{p} {a:.3f}" for p, a in accs.items())
        self.add(
            Check(
                "accuracy",
                FAIL if low or not accs else PASS,
                f"{detail} on {n} samples (min {opts.min_accuracy:g})",
                {
                    "accuracy": min(accs.values()) if accs else None,
                    "by_protocol": accs,
                    "samples": n,
                    "min_accuracy": opts.min_accuracy,
                },
            ),
            t,
        )

    def _bad_input_check(
        self, triton: Triton, spec: TensorSpec, batched: bool, samples: Samples
    ) -> None:
        t = time.monotonic()
        good = samples.inputs[:1] if batched else samples.inputs
        probe = probe_bad_input(triton, self.opts.model, spec, good, batched, self.opts.timeout)
        detail = (
            f"shape {list(probe.sent_shape)} -> {'rejected' if probe.rejected else 'ACCEPTED'} "
            f"({probe.status}: {probe.message[:160]}); ready after: {probe.ready_after}; "
            f"correct request after: {probe.good_request_after}"
        )
        self.add(
            Check("wrong shape rejected", PASS if probe.ok else FAIL, detail, asdict(probe)), t
        )

    def _perf_check(self, spec: TensorSpec, batched: bool, samples: Samples) -> None:
        from dltk.tritonbin import find_perf_analyzer

        opts = self.opts
        t = time.monotonic()
        assert self.info is not None
        if batched and opts.batch_size > self.info.max_batch_size:
            self.add(
                Check(
                    "perf_analyzer",
                    FAIL,
                    f"--batch-size {opts.batch_size} > model "
                    f"max_batch_size {self.info.max_batch_size}",
                ),
                t,
            )
            return
        cfg = PerfConfig(
            model=opts.model,
            url=opts.grpc_url if opts.perf_protocol == "grpc" and opts.grpc_url else opts.url,
            protocol=opts.perf_protocol,
            concurrency=opts.concurrency,
            batch_size=opts.batch_size if batched else 1,
            shapes=perf_shapes(spec, tuple(samples.inputs.shape), batched),
            measurement_interval_ms=opts.perf_interval_ms,
            max_trials=opts.perf_max_trials,
            stability_percentage=opts.perf_stability,
            shared_memory=opts.perf_shared_memory,
            async_mode=opts.perf_async,
            max_threads=opts.perf_threads,
        )
        install = find_perf_analyzer()
        budget = timeout_for(cfg)
        self.scrape("before_perf")
        with console.status(
            f"perf_analyzer concurrency {cfg.concurrency}, batch {cfg.batch_size} (≤ {budget:.0f}s)"
        ):
            try:
                self.perf = run_perf(install.binary, cfg, install.env(), timeout_s=budget)
            except DltkError as exc:
                self.perf_failed = True
                self.add(Check("perf_analyzer", FAIL, str(exc)), t)
                return
            finally:
                self.scrape("after_perf")
        self.add(perf_check(self.perf), t)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """`dltk verify`'s arguments live in verify_cli.py."""
    from dltk.verify_cli import add_parser as add_verify_parser

    add_verify_parser(subparsers)
