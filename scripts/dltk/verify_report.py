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
from dltk.perf import PerfResult, PerfRow, format_command
from dltk.verify_records import (
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
) -> dict[str, Any]:
    return {
        "tool": f"dltk verify {__version__}",
        "host": platform.node(),
        "started_at": started_at,
        "finished_at": utc_now(),
        "passed": overall_exit_code(checks) == 0,
        "url": opts.url,
        "grpc_url": opts.grpc_url,
        "model": opts.model,
        "server": server,
        "model_config": info.summary() if info else None,
        "tolerance": {"atol": opts.atol, "min_accuracy": opts.min_accuracy},
        "checks": [asdict(c) for c in checks],
        "perf": None
        if perf is None
        else {
            "command": format_command(perf.command),
            "elapsed_s": round(perf.elapsed_s, 3),
            "concurrency": str(perf.config.concurrency),
            "batch_size": perf.config.batch_size,
            "protocol": perf.config.protocol,
            "rows": [asdict(r) for r in perf.rows],
        },
    }


def write_report(path: Path, report: dict[str, Any]) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(report, indent=2, default=_json_default) + "\n")
    except OSError as exc:
        raise DltkError(f"cannot write report {path}: {exc.strerror}") from None


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
