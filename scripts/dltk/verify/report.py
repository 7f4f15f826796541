"""`dltk verify`'s output: the JSON report and the rich tables of checks and perf rows."""

from __future__ import annotations

import json
import platform
from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
from rich.table import Table

from dltk import __version__
from dltk.errors import DltkError
from dltk.metrics import ModelMetrics
from dltk.perf import PerfResult, PerfRow, format_command
from dltk.verify.records import (
    DEFAULT_ATOL,
    FAIL,
    PASS,
    SKIP,
    Check,
    ModelInfo,
    VerifyOptions,
    overall_exit_code,
)

# --- JSON report ----------------------------------------------------------------------------


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def build_report(
    opts: VerifyOptions,
    checks: Sequence[Check],
    started_at: str,
    server: dict[str, Any],
    info: ModelInfo | None,
    perf: PerfResult | None,
    metrics: dict[str, ModelMetrics] | None = None,
    tolerance: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "tool": f"dltk verify {__version__}",
        "host": opts.host or platform.node(),
        "verifier_node": platform.node(),
        "started_at": started_at,
        "finished_at": utc_now(),
        "passed": overall_exit_code(checks) == 0,
        "url": opts.url,
        "grpc_url": opts.grpc_url,
        "model": opts.model,
        "server": server,
        "model_config": info.summary() if info else None,
        "tolerance": {
            **(tolerance or {"atol": DEFAULT_ATOL if opts.atol is None else opts.atol}),
            "min_accuracy": opts.min_accuracy,
        },
        "checks": [asdict(c) for c in checks],
        "perf": None
        if perf is None
        else {
            "command": format_command(perf.command),
            "elapsed_s": round(perf.elapsed_s, 3),
            "concurrency": str(perf.config.concurrency),
            "batch_size": perf.config.batch_size,
            "protocol": perf.config.protocol,
            "shared_memory": perf.config.shared_memory,
            "measurement_interval_ms": perf.config.measurement_interval_ms,
            "levels_asked": perf.config.concurrency.levels,
            "levels_missing": perf.missing_levels,
            "retried": bool(perf.retries),
            "retry_reasons": list(perf.retries),
            "rows": [asdict(r) for r in perf.rows],
        },
        "metrics": {k: v.summary() for k, v in (metrics or {}).items()},
        "slo": asdict(opts.slo),
    }


def report_paths(path: Path) -> dict[str, Path]:
    """Files of one report: FILE.json and, beside it, .md, .perf.csv and .png."""
    stem = path.with_suffix("") if path.suffix == ".json" else path
    return {
        "json": path,
        "md": stem.with_suffix(".md"),
        "csv": stem.with_suffix(".perf.csv"),
        "png": stem.with_suffix(".png"),
    }


def write_report(
    path: Path, report: dict[str, Any], perf_csv: str = "", plot: bool = True
) -> list[Path]:
    """Write the JSON report, its markdown summary, the perf CSV and the plot; paths written."""
    paths = report_paths(path)
    written: list[Path] = []
    rows = (report.get("perf") or {}).get("rows") or []
    png: Path | None = None
    if plot and rows:
        png = paths["png"] if plot_throughput_latency(report, paths["png"]) else None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(report, indent=2, default=_json_default) + "\n")
        written.append(path)
        paths["md"].write_text(markdown_report(report, png.name if png else None))
        written.append(paths["md"])
        if perf_csv:
            paths["csv"].write_text(perf_csv)
            written.append(paths["csv"])
        # A plot or CSV left by an earlier run would be fetched as if it were this run's.
        for stale in (paths["csv"], paths["png"]):
            if stale not in written and stale != png:
                stale.unlink(missing_ok=True)
    except OSError as exc:
        raise DltkError(f"cannot write report {path}: {exc.strerror}") from None
    return written + ([png] if png else [])


def failure_line(checks: Sequence[Check]) -> str:
    """One line naming the failed checks, with the first one's reason."""
    failed = [c for c in checks if c.failed]
    if not failed:
        return "all checks passed"
    more = f" (+{len(failed) - 1} more: {', '.join(c.name for c in failed[1:])})"
    return f"FAILED {failed[0].name}: {failed[0].detail}" + (more if len(failed) > 1 else "")


# --- markdown and plot ----------------------------------------------------------------------


def _md_cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def markdown_report(report: dict[str, Any], png_name: str | None) -> str:
    """A human-readable summary of a JSON report (pure)."""
    server = report.get("server") or {}
    status = "all checks passed" if report.get("passed") else "**FAILED**"
    lines = [
        f"# dltk verify: {report['model']} on {report.get('host', '?')} ({report['url']})",
        "",
        f"triton {server.get('version', '?')}, {report.get('started_at', '?')}: {status}",
        "",
        "| check | result | detail |",
        "| --- | --- | --- |",
    ]
    lines += [
        f"| {_md_cell(c['name'])} | {c['result']} | {_md_cell(c['detail'])} |"
        for c in report.get("checks", [])
    ]
    perf = report.get("perf") or {}
    if perf.get("rows"):
        shm = ", system shared memory" if perf.get("shared_memory") else ""
        lines += [
            "",
            f"## perf_analyzer ({perf['protocol']}, batch {perf['batch_size']}, concurrency "
            f"{perf['concurrency']}{shm})",
            "",
            "| concurrency | infer/s | p50 ms | p99 ms | queue ms | compute ms |",
            "| ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for r in perf["rows"]:
            lines.append(
                f"| {r['concurrency']} | {r['throughput']:.1f} | {r['p50_ms']:.2f} | "
                f"{r['p99_ms']:.2f} | {_ms(r.get('server_queue_ms'))} | "
                f"{_ms(r.get('server_compute_infer_ms'))} |"
            )
        if perf.get("levels_missing"):
            missing = ", ".join(map(str, perf["levels_missing"]))
            lines += ["", f"**Not measured: concurrency {missing}** (the check fails)."]
        if perf.get("retried"):
            lines += [
                "",
                f"Retried once with a {perf['measurement_interval_ms']} ms window: the first "
                f"run {perf['retry_reasons'][0]}.",
            ]
        lines += ["", f"`{perf['command']}`"]
    if png_name:
        lines += ["", f"![throughput vs latency]({png_name})"]
    elif perf.get("rows"):
        lines += ["", "(no throughput-vs-latency plot: matplotlib is not installed)"]
    metrics = report.get("metrics") or {}
    if metrics:
        lines += [
            "",
            "## Triton metrics",
            "",
            "| span | ok | failed | avg batch | queue ms/request | compute ms/request |",
            "| --- | ---: | ---: | ---: | ---: | ---: |",
        ]
        for span, m in metrics.items():
            lines.append(
                f"| {span} | {m['success']:.0f} | {m['failure']:.0f} | "
                f"{_num(m.get('avg_batch'))} | {_ms(m.get('queue_ms'))} | "
                f"{_ms(m.get('compute_ms'))} |"
            )
    return "\n".join(lines) + "\n"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def plot_throughput_latency(report: dict[str, Any], path: Path) -> bool:
    """PNG of p50/p99 latency against throughput, one point per concurrency level.

    False (and no file) when matplotlib is not installed: the markdown says so.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    perf = report["perf"]
    rows = perf["rows"]
    x = [r["throughput"] for r in rows]
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=100)
    for key, label, style in (("p50_ms", "p50", "o--"), ("p99_ms", "p99", "s-")):
        ax.plot(x, [r[key] for r in rows], style, label=f"{label} latency")
    for r in rows:
        ax.annotate(
            f"c={r['concurrency']}",
            (r["throughput"], r["p99_ms"]),
            textcoords="offset points",
            xytext=(4, 4),
            fontsize=8,
        )
    slo = report.get("slo") or {}
    if slo.get("max_p99_ms"):
        ax.axhline(slo["max_p99_ms"], color="red", linestyle=":", label="SLO max p99")
    if slo.get("min_throughput"):
        ax.axvline(slo["min_throughput"], color="orange", linestyle=":", label="SLO min infer/s")
    ax.set_xlabel("throughput (inferences/s)")
    ax.set_ylabel("latency (ms)")
    ax.set_title(
        f"{report['model']}: {perf['protocol']}, batch {perf['batch_size']}, "
        f"concurrency {perf['concurrency']}"
    )
    ax.grid(True, alpha=0.3)
    ax.legend(loc="upper left")
    fig.tight_layout()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path)
    except OSError as exc:
        raise DltkError(f"cannot write plot {path}: {exc.strerror}") from None
    finally:
        plt.close(fig)
    return True


def _json_default(value: object) -> object:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


# --- tables ---------------------------------------------------------------------------------


def checks_table(checks: Sequence[Check]) -> Table:
    table = Table(title="dltk verify", show_lines=False)
    table.add_column("check")
    table.add_column("result")
    table.add_column("detail", overflow="fold")
    colors = {PASS: "green", FAIL: "bold red", SKIP: "yellow"}
    for c in checks:
        table.add_row(c.name, f"[{colors[c.result]}]{c.result}[/]", c.detail)
    return table


def perf_table(rows: Sequence[PerfRow], title: str) -> Table:
    table = Table(title=title)
    for col in (
        "conc",
        "infer/s",
        "p50 ms",
        "p90 ms",
        "p95 ms",
        "p99 ms",
        "queue ms",
        "compute ms",
    ):
        table.add_column(col, justify="right")

    def ms(v: float | None) -> str:
        return "-" if v is None else f"{v:.2f}"

    for r in rows:
        table.add_row(
            str(r.concurrency),
            f"{r.throughput:.1f}",
            ms(r.p50_ms),
            ms(r.p90_ms),
            ms(r.p95_ms),
            ms(r.p99_ms),
            ms(r.server_queue_ms),
            ms(r.server_compute_infer_ms),
        )
    return table
