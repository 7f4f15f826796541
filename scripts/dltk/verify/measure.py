"""Measuring the served model: the bounded perf_analyzer sweep, the Prometheus counters over
the run and the sweep, and the SLO gates.
"""

from __future__ import annotations

import time

from dltk.api_key import headers_for, read_api_key
from dltk.errors import DltkError
from dltk.perf import PerfConfig, longer_window, run_sweep, timeout_for
from dltk.verify.perf import metrics_check, perf_errors, slo_check
from dltk.verify.records import FAIL, Check, Inputs, perf_check, perf_shapes
from dltk.verify.state import VerifierState, console


def perf_sweep_check(run: VerifierState, inputs: Inputs) -> None:
    from dltk.tritonbin import find_perf_analyzer

    opts = run.opts
    t = time.monotonic()
    info = run.info
    assert info is not None
    if info.batched and opts.batch_size > info.max_batch_size:
        run.add(
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
    run.scrape("before_perf")
    with console.status(
        f"perf_analyzer concurrency {cfg.concurrency}, batch {cfg.batch_size} "
        f"(≤ {budget:.0f}s with one retry)"
    ):
        try:
            run.perf = run_sweep(install.binary, cfg, install.env())
        except DltkError as exc:
            run.perf_failed = True
            run.add(Check("perf_analyzer", FAIL, str(exc)), t)
            return
        finally:
            run.scrape("after_perf")
    run.add(perf_check(run.perf), t)


def measure_checks(run: VerifierState) -> None:
    """Counters over the whole run and the sweep, then the SLO gates."""
    t = time.monotonic()
    run.scrape("end")
    deltas = run.metric_deltas()
    rows = run.perf.rows if run.perf else None
    run.add(
        metrics_check(
            run.opts.model, deltas.get("verify"), deltas.get("perf"), rows, run.metrics_error
        ),
        t,
    )
    t = time.monotonic()
    errors = perf_errors(deltas.get("perf"), run.perf_failed) if run.opts.perf else None
    run.add(slo_check(run.opts.slo, rows, errors), t)
