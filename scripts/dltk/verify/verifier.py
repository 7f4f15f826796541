"""`dltk verify`: prove a running Triton serves a model correctly, then measure it.

Checks, in order: server live, server ready and model ready (bounded waits), model
metadata/config, one HTTP and one gRPC inference on the samples (one array per input) or on
inputs generated from the ONNX signature, outputs against onnxruntime in-process on the
reference ONNX file within the tolerance of the model's precision, accuracy against the
samples' labels, a request with a wrong input shape (rejected with a clear error while the
server stays ready and keeps answering), and with --perf a bounded perf_analyzer run. TensorRT
engines `<model>_trt_<precision>` are compared with `<model>`'s ONNX file; BLS pipelines get
uint8 images and their classes and probabilities are checked (verify/models.py says how).
Prints a table of checks, writes a JSON report with --report, exits 1 when any check fails.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console

from dltk.api_key import headers_for, read_api_key
from dltk.errors import DltkError
from dltk.metrics import ModelMetrics
from dltk.perf import PerfConfig, PerfResult, longer_window, run_sweep, timeout_for
from dltk.verify.data import onnx_signature, onnxruntime_outputs, read_npz
from dltk.verify.models import (
    Served,
    classes_check,
    classify,
    compare_outputs,
    generated_feeds,
    numeric_precision,
    pipeline_images,
    pipeline_normalize,
    pipeline_params,
    sample_feeds,
    softmax,
    synthetic_batch,
    tolerance_for,
)
from dltk.verify.perf import metrics_check, perf_errors, scrape_model, slo_check
from dltk.verify.records import (
    DEFAULT_TOLERANCES,
    FAIL,
    PASS,
    SKIP,
    SYNTHETIC_BATCH,
    Check,
    Inputs,
    ModelInfo,
    TensorSpec,
    Tolerance,
    VerifyOptions,
    accuracy_of_classes,
    check_sample_shape,
    chunk_size,
    model_info,
    overall_exit_code,
    perf_check,
    perf_shapes,
)
from dltk.verify.report import (
    build_report,
    checks_table,
    failure_line,
    perf_table,
    utc_now,
    write_report,
)
from dltk.verify.triton_client import (
    Triton,
    _server_message,
    infer_all,
    probe_bad_input,
    wait_until,
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
        triton = Triton(opts.url, opts.grpc_url, opts.timeout, read_api_key(opts.api_key_file))
        try:
            self._server_checks(triton)
            info = self._model_checks(triton)
            self._reference_files()
            inputs = self._samples_check(info)
            outputs = self._inference_checks(triton, inputs)
            if self.served.kind == "pipeline":
                self._pipeline_checks(triton, inputs, outputs)
            else:
                self._reference_checks(inputs, outputs)
            self._bad_input_check(triton, inputs)
            if opts.perf:
                self._perf_check(inputs)
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

    def _model_checks(self, triton: Triton) -> ModelInfo:
        opts = self.opts
        t = time.monotonic()
        index = triton.call(lambda: triton.http.get_model_repository_index(headers=triton.headers))
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
                    for m in triton.call(
                        lambda: triton.http.get_model_repository_index(headers=triton.headers)
                    )
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
        info = self.info = self._info(triton, opts.model)
        if not info.inputs or not info.outputs:
            raise self.fatal(
                Check(
                    "model config",
                    FAIL,
                    f"{opts.model} has {len(info.inputs)} inputs and {len(info.outputs)} "
                    "outputs; dltk verify needs at least one of each",
                ),
                t,
            )
        try:
            self.served = classify(info)
        except DltkError as exc:
            raise self.fatal(Check("model config", FAIL, str(exc)), t) from None
        self.tolerance = tolerance_for(self.served.precision, opts.tolerances, opts.atol)
        runtime = info.backend or info.platform
        inputs = ", ".join(f"{s.name} {s.datatype} {list(s.shape)}" for s in info.inputs)
        kind = "" if self.served.kind == "onnx" else f" ({self.served.why})"
        self.add(
            Check(
                "model config",
                PASS,
                f"{runtime}{kind}, max_batch_size {info.max_batch_size}, "
                f"input{'s' if len(info.inputs) > 1 else ''} {inputs}, outputs "
                f"{', '.join(o.name for o in info.outputs)}, instances "
                f"{', '.join(info.instance_groups) or 'default'}",
                {"kind": self.served.kind, "reference_model": self.served.reference},
            ),
            t,
        )
        return info

    def _info(self, triton: Triton, model: str) -> ModelInfo:
        metadata = triton.call(lambda: triton.http.get_model_metadata(model))
        config = triton.call(lambda: triton.http.get_model_config(model))
        return model_info(metadata, config)

    # --- inputs ---------------------------------------------------------------------------

    def _reference_files(self) -> None:
        """The reference ONNX file, the samples and the manifest's batch for this model."""
        opts = self.opts
        ref = self.served.reference
        onnx, samples = opts.onnx, opts.samples
        onnx_name = f"{ref}.onnx"
        if opts.manifest is not None:
            from dltk.manifest.load import load_manifest

            manifest = load_manifest(opts.manifest, read_onnx=False)
            entry = next((m for m in manifest.models if m.name == ref), None)
            if entry is not None:
                self.manifest_opt = entry.batch.opt if entry.batch.max > 0 else None
                self.manifest_min = max(1, entry.batch.min)
                onnx_name = entry.onnx.name
                if opts.reference_dir is None:
                    onnx = onnx or entry.onnx
                    samples = samples or entry.samples
        if opts.reference_dir is not None:
            # reference/<model>/<its ONNX file> beside its external data (the role's layout,
            # `dltk repo references`), else reference/<model>.onnx.
            in_dir = opts.reference_dir / ref / onnx_name
            onnx = onnx or (in_dir if in_dir.is_file() else opts.reference_dir / f"{ref}.onnx")
            found = opts.reference_dir / f"{ref}.samples.npz"
            samples = samples or (found if found.is_file() else None)
        self.onnx, self.samples_path = onnx, samples

    def _samples_check(self, info: ModelInfo) -> Inputs:
        t = time.monotonic()
        try:
            inputs = self._inputs(info)
        except DltkError as exc:
            raise self.fatal(Check("samples", FAIL, str(exc)), t) from None
        rows = len(next(iter(inputs.feeds.values())))
        shapes = ", ".join(f"{n} {list(a.shape)}" for n, a in inputs.feeds.items())
        if inputs.generated:
            self.add(Check("samples", SKIP, f"{inputs.source}: {shapes}, no accuracy check"), t)
        else:
            labels = "with labels" if inputs.labels is not None else "without labels"
            if len(inputs.feeds) == 1:
                shapes = str(list(next(iter(inputs.feeds.values())).shape))
            self.add(
                Check("samples", PASS, f"{rows} samples {shapes} {labels} from {inputs.source}"),
                t,
            )
        return inputs

    def _inputs(self, info: ModelInfo) -> Inputs:
        from tritonclient.utils import triton_to_np_dtype

        opts = self.opts
        dtypes = {s.name: np.dtype(triton_to_np_dtype(s.datatype)) for s in info.inputs}
        pipeline = pipeline_params(info) if self.served.kind == "pipeline" else None
        if self.samples_path is not None:
            converted = ""
            arrays, labels = read_npz(self.samples_path)
            if pipeline is not None and info.inputs[0].name not in arrays:
                # The model's normalized float samples -> the uint8 images behind them.
                base = sample_feeds(
                    arrays,
                    [TensorSpec(pipeline.target_input, "FP32", ())],
                    str(self.samples_path),
                )
                arrays = {
                    info.inputs[0].name: pipeline_images(base[pipeline.target_input], pipeline)
                }
                converted = " (uint8 images behind the model's normalized samples)"
            feeds = sample_feeds(arrays, info.inputs, str(self.samples_path))
            for spec in info.inputs:
                check_sample_shape(spec, tuple(feeds[spec.name].shape), info.batched)
            if labels is not None and len(labels) != len(next(iter(feeds.values()))):
                raise DltkError(
                    f"{self.samples_path}: {len(labels)} labels for other sample counts"
                )
            source = f"{self.samples_path}{converted}"
            return Inputs({n: a.astype(dtypes[n]) for n, a in feeds.items()}, labels, source)
        batch = synthetic_batch(info, self.manifest_opt, opts.synthetic_batch or SYNTHETIC_BATCH)
        if pipeline is None and self.onnx is not None and self.onnx.is_file():
            signature = [
                (name, dtype, dims)
                for name, dtype, dims in onnx_signature(self.onnx)
                if name in dtypes
            ]
            if {n for n, _, _ in signature} != set(dtypes):
                raise DltkError(
                    f"{self.onnx} inputs do not match the served model's "
                    f"({', '.join(dtypes)}); pass this model's ONNX file"
                )
            source = f"no samples: generated from the ONNX signature of {self.onnx.name}"
        else:
            signature = [(s.name, dtypes[s.name], s.shape) for s in info.inputs]
            source = "no samples: generated from the model's metadata"
        feeds = generated_feeds(signature, batch if info.batched else None)
        return Inputs(
            {n: a.astype(dtypes[n]) for n, a in feeds.items()}, None, source, generated=True
        )

    # --- inference and reference ----------------------------------------------------------

    def _inference_checks(self, triton: Triton, inputs: Inputs) -> dict[str, dict[str, np.ndarray]]:
        from tritonclient.utils import InferenceServerException

        info = self.info
        assert info is not None
        rows = len(next(iter(inputs.feeds.values())))
        size = chunk_size(info, rows) if info.batched else rows
        results: dict[str, dict[str, np.ndarray]] = {}
        protocols: list[tuple[str, Callable[..., dict], str | None]] = [
            ("http", triton.infer_http, self.opts.url)
        ]
        if self.opts.grpc_url:
            protocols.append(("grpc", triton.infer_grpc, self.opts.grpc_url))
        for proto, infer, url in protocols:
            t = time.monotonic()
            try:
                out = infer_all(infer, self.opts.model, info.inputs, inputs.feeds, size)
            except InferenceServerException as exc:
                self.add(Check(f"{proto} inference", FAIL, _server_message(exc)), t)
                continue
            shapes = ", ".join(f"{k} {list(v.shape)}" for k, v in out.items())
            requests = math.ceil(rows / max(size, 1))
            self.add(
                Check(
                    f"{proto} inference",
                    PASS,
                    f"{rows} samples in {requests} "
                    f"request(s) to {url} -> {shapes} in "
                    f"{(time.monotonic() - t) * 1000:.0f} ms",
                ),
                t,
            )
            results[proto] = out
        if not self.opts.grpc_url:
            self.checks.append(Check("grpc inference", SKIP, "no --grpc-url given"))
        return results

    def _reference(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray] | str:
        """onnxruntime's outputs on the reference ONNX, or why there are none."""
        if self.onnx is None:
            return "no --onnx given"
        if not self.onnx.is_file():
            return f"no reference ONNX file {self.onnx}"
        with console.status(f"onnxruntime on {self.onnx}"):
            return onnxruntime_outputs(self.onnx, feeds)

    def _reference_checks(self, inputs: Inputs, outputs: dict[str, dict[str, np.ndarray]]) -> None:
        t = time.monotonic()
        if not outputs:
            self.add(Check("outputs vs onnxruntime", FAIL, "no inference succeeded"), t)
            return
        ref = self._reference(inputs.feeds)
        if isinstance(ref, str):
            result = SKIP if self.onnx is None else FAIL
            self.add(Check("outputs vs onnxruntime", result, ref), t)
        else:
            self.add(compare_outputs(outputs, ref, self.tolerance, self.served.precision), t)
        first = self.info.outputs[0].name if self.info else ""
        self._accuracy_check(
            inputs,
            {
                p: o[first].reshape(len(o[first]), -1).argmax(-1)
                for p, o in outputs.items()
                if first in o
            },
        )

    def _accuracy_check(self, inputs: Inputs, classes: dict[str, np.ndarray]) -> None:
        opts = self.opts
        t = time.monotonic()
        if inputs.labels is None:
            self.add(Check("accuracy", SKIP, "no labels in the samples"), t)
            return
        n = len(inputs.labels)
        accs = {p: accuracy_of_classes(c, inputs.labels) for p, c in classes.items()}
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

    def _pipeline_checks(
        self, triton: Triton, inputs: Inputs, outputs: dict[str, dict[str, np.ndarray]]
    ) -> None:
        """Probabilities vs softmax(onnxruntime) after the same normalization; classes vs the
        reference's argmax (near ties within the tolerance allowed) and the labels."""
        info = self.info
        assert info is not None
        params = pipeline_params(info)
        t = time.monotonic()
        if not outputs:
            self.add(Check("outputs vs onnxruntime", FAIL, "no inference succeeded"), t)
            return
        images = inputs.feeds[info.inputs[0].name]
        ref = self._reference({params.target_input: pipeline_normalize(images, params)})
        served_by = self._served_by(outputs)
        precision, tol = "fp32", self.tolerance
        if served_by and self.opts.atol is None:
            precision, _ = numeric_precision(self._info(triton, served_by))
            tol = tolerance_for(precision, self.opts.tolerances, None)
        if isinstance(ref, str):
            self.add(Check("outputs vs onnxruntime", SKIP if self.onnx is None else FAIL, ref), t)
            scores = None
        else:
            scores = (
                ref[params.target_output]
                if params.target_output in ref
                else next(iter(ref.values()))
            )
            expected = softmax(scores) if params.softmax else scores.reshape(len(scores), -1)
            check = compare_outputs(outputs, {"probabilities": expected}, tol, precision)
            check.detail += f"; served by {served_by or '?'}"
            check.data["served_by"] = served_by
            self.add(check, t)
        t = time.monotonic()
        if scores is None:
            self.add(Check("classes vs onnxruntime", SKIP, "no onnxruntime reference"), t)
        else:
            reference = softmax(scores) if params.softmax else scores
            self.add(classes_check(outputs, reference, tol), t)
        self._accuracy_check(
            inputs, {p: o["class"].reshape(-1) for p, o in outputs.items() if "class" in o}
        )

    @staticmethod
    def _served_by(outputs: dict[str, dict[str, np.ndarray]]) -> str | None:
        for out in outputs.values():
            if "served_by" in out and len(out["served_by"]):
                value = out["served_by"].reshape(-1)[0]
                return value.decode() if isinstance(value, bytes) else str(value)
        return None

    def _bad_input_check(self, triton: Triton, inputs: Inputs) -> None:
        t = time.monotonic()
        info = self.info
        assert info is not None
        first, *rest = info.inputs

        def good(spec: TensorSpec) -> np.ndarray:
            array = inputs.feeds[spec.name]
            return array[: self.manifest_min] if info.batched else array

        probe = probe_bad_input(
            triton,
            self.opts.model,
            first,
            good(first),
            info.batched,
            self.opts.timeout,
            [(s, good(s)) for s in rest],
        )
        detail = (
            f"shape {list(probe.sent_shape)} -> {'rejected' if probe.rejected else 'ACCEPTED'} "
            f"({probe.status}: {probe.message[:160]}); ready after: {probe.ready_after}; "
            f"correct request after: {probe.good_request_after}"
        )
        self.add(
            Check("wrong shape rejected", PASS if probe.ok else FAIL, detail, asdict(probe)), t
        )

    def _perf_check(self, inputs: Inputs) -> None:
        from dltk.tritonbin import find_perf_analyzer

        opts = self.opts
        t = time.monotonic()
        info = self.info
        assert info is not None
        if info.batched and opts.batch_size > info.max_batch_size:
            self.add(
                Check(
                    "perf_analyzer",
                    FAIL,
                    f"--batch-size {opts.batch_size} > model max_batch_size {info.max_batch_size}",
                ),
                t,
            )
            return
        shapes: dict[str, tuple[int, ...]] = {}
        for spec in info.inputs:
            shapes.update(perf_shapes(spec, tuple(inputs.feeds[spec.name].shape), info.batched))
        cfg = PerfConfig(
            model=opts.model,
            url=opts.grpc_url if opts.perf_protocol == "grpc" and opts.grpc_url else opts.url,
            protocol=opts.perf_protocol,
            concurrency=opts.concurrency,
            batch_size=opts.batch_size if info.batched else 1,
            shapes=shapes,
            measurement_interval_ms=opts.perf_interval_ms,
            max_trials=opts.perf_max_trials,
            stability_percentage=opts.perf_stability,
            shared_memory=opts.perf_shared_memory,
            async_mode=opts.perf_async,
            max_threads=opts.perf_threads,
            # perf_analyzer reads server-side statistics (a restricted API) with the same headers.
            headers=tuple(headers_for(opts.perf_protocol, read_api_key(opts.api_key_file)).items()),
        )
        install = find_perf_analyzer()
        longer = longer_window(cfg)
        budget = timeout_for(cfg) + (timeout_for(longer) if longer else 0.0)
        self.scrape("before_perf")
        with console.status(
            f"perf_analyzer concurrency {cfg.concurrency}, batch {cfg.batch_size} "
            f"(≤ {budget:.0f}s with one retry)"
        ):
            try:
                self.perf = run_sweep(install.binary, cfg, install.env())
            except DltkError as exc:
                self.perf_failed = True
                self.add(Check("perf_analyzer", FAIL, str(exc)), t)
                return
            finally:
                self.scrape("after_perf")
        self.add(perf_check(self.perf), t)
