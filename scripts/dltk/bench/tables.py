"""Rich tables of `dltk bench serving`'s measurements."""

from __future__ import annotations

from rich.table import Table

from dltk.bench.serving import Measurement, ServingResult


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def serving_tables(result: ServingResult) -> list[Table]:
    inproc = Table(title="in-process onnxruntime (all cores)")
    for col in ("batch", "ms/batch", "samples/s"):
        inproc.add_column(col, justify="right")
    best = result.inprocess_best
    for t in result.inprocess:
        mark = " *" if t is best else ""
        inproc.add_row(str(t.batch), f"{t.mean_ms:.3f}", f"{t.throughput:.0f}{mark}")

    served = Table(title="Triton (python-onnxruntime) measured by perf_analyzer")
    for col in (
        "run",
        "client",
        "conc",
        "infer/s",
        "p99 ms",
        "avg batch",
        "queue ms",
        "compute ms",
        "CPU s client/server",
    ):
        served.add_column(col, justify="right")
    for m in (result.served, result.tuned, result.default):
        served.add_row(*_row(m))
    summary = Table(title="serving efficiency")
    summary.add_column("ratio")
    summary.add_column("value", justify="right")
    summary.add_column("from")
    summary.add_row(
        "served/in-process",
        f"{result.served_ratio:.2f}",
        f"{result.served.best.throughput:.0f} / {best.throughput:.0f} samples/s "
        f"(in-process batch {best.batch})",
    )
    summary.add_row(
        "tuned/default",
        f"{result.tuned_ratio:.2f}",
        f"{result.tuned.best.throughput:.0f} / {result.default.best.throughput:.0f} infer/s at "
        f"concurrency {result.default.best.concurrency}",
    )
    return [inproc, served, summary]


def _row(m: Measurement) -> list[str]:
    cfg = m.result.config
    client = f"{cfg.protocol} b{cfg.batch_size}" + (" shm" if cfg.shared_memory else "")
    metrics = m.metrics
    server_cpu = sum(m.server_cpu_s.values())
    return [
        m.label,
        client,
        str(m.best.concurrency),
        f"{m.best.throughput:.0f}",
        f"{m.best.p99_ms:.2f}",
        "-" if metrics is None or metrics.avg_batch is None else f"{metrics.avg_batch:.1f}",
        _ms(metrics.queue_ms if metrics else None),
        _ms(metrics.compute_ms if metrics else None),
        f"{m.client_cpu_s:.1f}/{server_cpu:.1f} in {m.result.elapsed_s:.0f}s",
    ]
