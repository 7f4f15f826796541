"""What `dltk tune` keeps: every config tried (JSON and a markdown table) and the curve of
throughput against p99 latency (PNG, one line per variant across its concurrency levels)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dltk.errors import DltkError
from dltk.tune.space import Point, Space, Variant, best_point


@dataclass(frozen=True)
class Tried:
    """One row of the table: a point measured by a stage (or a failure)."""

    stage: str  # screen | probe | confirm | brute | default (model-analyzer's own config)
    variant: Variant
    concurrency: int
    throughput: float | None
    p99_ms: float | None
    error: str = ""
    elapsed_s: float | None = None  # our search's points: load + perf_analyzer


@dataclass
class TuneRun:
    """One search: the brute force (model-analyzer) or our own."""

    method: str  # brute-force | tuned
    model: str
    space: Space
    budget_ms: float
    tried: list[Tried]
    best: Point | None
    wall_s: float
    notes: dict[str, Any] = field(default_factory=dict)

    def points(self) -> list[Point]:
        return [
            Point(t.variant, t.concurrency, t.throughput, t.p99_ms)
            for t in self.tried
            if t.throughput is not None and t.p99_ms is not None
        ]


def best_of(tried: Sequence[Tried], budget_ms: float, stages: Sequence[str]) -> Point | None:
    return best_point(
        (
            Point(t.variant, t.concurrency, t.throughput, t.p99_ms)
            for t in tried
            if t.stage in stages and t.throughput is not None and t.p99_ms is not None
        ),
        budget_ms,
    )


def _point(point: Point | None) -> dict[str, Any] | None:
    if point is None:
        return None
    return {
        "instances": point.variant.instances,
        "max_batch": point.variant.max_batch,
        "delay_us": point.variant.delay_us,
        "concurrency": point.concurrency,
        "throughput": point.throughput,
        "p99_ms": point.p99_ms,
    }


def to_json(run: TuneRun) -> dict[str, Any]:
    return {
        "method": run.method,
        "model": run.model,
        "budget_ms": run.budget_ms,
        "space": {
            "instances": list(run.space.instances),
            "max_batch": list(run.space.max_batch),
            "delay_us": list(run.space.delay_us),
            "concurrency": list(run.space.concurrency),
            "variants": len(run.space.variants()),
            "points": run.space.size(),
        },
        "wall_s": round(run.wall_s, 2),
        "best": _point(run.best),
        "measured": len([t for t in run.tried if t.throughput is not None]),
        "tried": [
            {
                "stage": t.stage,
                "variant": t.variant.label(),
                "instances": t.variant.instances,
                "max_batch": t.variant.max_batch,
                "delay_us": t.variant.delay_us,
                "concurrency": t.concurrency,
                "throughput": t.throughput,
                "p99_ms": t.p99_ms,
                "within_budget": t.p99_ms is not None and t.p99_ms <= run.budget_ms,
                "error": t.error,
                "elapsed_s": None if t.elapsed_s is None else round(t.elapsed_s, 2),
            }
            for t in run.tried
        ],
        "notes": run.notes,
    }


def _num(value: float | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def markdown(run: TuneRun, png_name: str | None) -> str:
    best = run.best
    lines = [
        f"# dltk tune {run.model}: {run.method}",
        "",
        f"p99 budget {run.budget_ms:g} ms; space: instances {list(run.space.instances)} x max "
        f"batch {list(run.space.max_batch)} x queue delay {list(run.space.delay_us)} us x "
        f"concurrency {list(run.space.concurrency)} ({run.space.size()} points); "
        f"{len(run.points())} measured in {run.wall_s:.1f} s.",
        "",
        (
            f"Best within the budget: instances {best.variant.instances}, max batch "
            f"{best.variant.max_batch}, queue delay {best.variant.delay_us} us at concurrency "
            f"{best.concurrency}: {best.throughput:.1f} infer/s, p99 {best.p99_ms:.2f} ms."
            if best
            else "No config met the latency budget."
        ),
        "",
    ]
    if png_name:
        lines += [f"![throughput vs p99]({png_name})", ""]
    lines += [
        "| stage | instances | max batch | delay us | concurrency | infer/s | p99 ms | in budget |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for t in run.tried:
        within = t.p99_ms is not None and t.p99_ms <= run.budget_ms
        lines.append(
            f"| {t.stage} | {t.variant.instances} | {t.variant.max_batch} | "
            f"{t.variant.delay_us} | {t.concurrency} | {_num(t.throughput, '.1f')} | "
            f"{_num(t.p99_ms, '.2f')} | {'yes' if within else t.error or 'no'} |"
        )
    return "\n".join(lines) + "\n"


def plot(runs: Sequence[TuneRun], path: Path) -> bool:
    """Throughput vs p99, one line per variant and run; False (no file) without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, ax = plt.subplots(figsize=(8, 5), dpi=100)
    for run, marker in zip(runs, ("o", "s", "^"), strict=False):
        by_variant: dict[Variant, list[Point]] = {}
        for p in run.points():
            by_variant.setdefault(p.variant, []).append(p)
        for _variant, points in sorted(by_variant.items()):
            points.sort(key=lambda p: p.concurrency)
            ax.plot([p.p99_ms for p in points], [p.throughput for p in points], marker=marker,
                    linewidth=0.8, markersize=3, alpha=0.6)  # fmt: skip
        if run.best:
            ax.plot([run.best.p99_ms], [run.best.throughput], marker="*", markersize=16,
                    linestyle="none", label=f"{run.method} best: {run.best.variant.label()} "
                    f"c{run.best.concurrency}")  # fmt: skip
    if runs:
        ax.axvline(runs[0].budget_ms, color="red", linestyle="--", label="p99 budget")
    ax.set_xlabel("p99 latency (ms)")
    ax.set_ylabel("throughput (infer/s)")
    ax.set_title(f"dltk tune {runs[0].model if runs else ''}: throughput vs p99")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return True


def write_report(out: Path, run: TuneRun, extra: Sequence[TuneRun] = ()) -> list[Path]:
    """<out>/<method>.json, .md and .png (the PNG also shows the `extra` runs)."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        png = out / f"{run.method}.png"
        has_png = plot([run, *extra], png)
        (out / f"{run.method}.json").write_text(json.dumps(to_json(run), indent=2) + "\n")
        (out / f"{run.method}.md").write_text(markdown(run, png.name if has_png else None))
    except OSError as exc:
        raise DltkError(f"cannot write the tune report to {out}: {exc.strerror}") from None
    return [out / f"{run.method}.{ext}" for ext in ("json", "md", "png") if ext != "png" or has_png]
