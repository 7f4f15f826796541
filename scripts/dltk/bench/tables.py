"""Rich tables of `dltk bench serving`'s measurements."""

from __future__ import annotations

from rich.table import Table

from dltk.bench.serving import Measurement, ServingResult


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def serving_tables(result: ServingResult) -> list[Table]:
    """The median round's tables (in-process, the three served runs, its ratios), then every
    round's ratios with their medians and ranges."""
    median = result.median_round
    inproc = Table(title="in-process onnxruntime (all cores), the median round")
    for col in ("batch", "ms/batch", "samples/s"):
        inproc.add_column(col, justify="right")
    best = median.inprocess_best
    for t in median.inprocess:
        mark = " *" if t is best else ""
        inproc.add_row(str(t.batch), f"{t.mean_ms:.3f}", f"{t.throughput:.0f}{mark}")

    served = Table(title="Triton (python-onnxruntime) measured by perf_analyzer, the median round")
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
    for m in (median.served, median.tuned, median.default):
        served.add_row(*_row(m))
    rounds = Table(title=f"serving efficiency, {len(result.rounds)} interleaved rounds")
    for col in ("round", "order", "served/in-process", "from", "tuned/default by pair", "from "):
        rounds.add_column(col)
    for index, r in enumerate(result.rounds, 1):
        rounds.add_row(
            str(index),
            ", ".join(r.order),
            f"{r.served_ratio:.2f}",
            f"{r.served.best.throughput:.0f} / {r.inprocess_best.throughput:.0f} samples/s "
            f"(in-process batch {r.inprocess_best.batch})",
            ", ".join(f"{x:.2f}" for x in r.pair_ratios),
            f"{r.tuned.best.throughput:.0f} / {r.default.best.throughput:.0f} infer/s at "
            f"concurrency {r.default.best.concurrency} (the round's median pair)",
        )
    rounds.add_row("median", "", result.served_spread.text(2), "", result.tuned_spread.text(2), "")
    return [inproc, served, rounds]


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
