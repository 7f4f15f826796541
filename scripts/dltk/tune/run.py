"""The runs behind `dltk tune` and `dltk bench tune`: the local tritonserver with explicit model
control (`dltk serve`, loopback, free ports), our own search on it, model-analyzer's brute force
on it, and the interleaved re-measurement that compares two winners on equal terms."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dltk.errors import DltkError
from dltk.manifest.model import ModelSpec
from dltk.tune.report import Tried, TuneRun, best_of
from dltk.tune.search import CONFIRM, Fidelity, SearchOptions, quick_search
from dltk.tune.space import Point, Space

Status = Callable[[str], None]


@dataclass(frozen=True)
class TuneOptions:
    manifest: Path
    model: str
    space: Space
    budget_ms: float
    out: Path
    max_variants: int = 10
    max_probes: int = 8
    brute_fidelity: Fidelity = CONFIRM
    ready_timeout_s: float = 120.0
    search: SearchOptions = field(init=False)

    def __post_init__(self) -> None:
        search = SearchOptions(
            self.budget_ms, max_variants=self.max_variants, max_probes=self.max_probes
        )
        object.__setattr__(self, "search", search)

    def check(self) -> None:
        self.space.check()
        if self.budget_ms <= 0:
            raise DltkError("--budget-ms must be > 0")
        if self.max_variants < 1:
            raise DltkError("--max-variants must be >= 1")
        if self.max_probes < 0:
            raise DltkError("--max-probes must be >= 0")


def load_model(manifest: Path, name: str) -> ModelSpec:
    from dltk.manifest.load import load_manifest

    model = load_manifest(manifest).model(name)
    if model.batch.max < 1:
        raise DltkError(f"model {name!r} has batch.max 0 (fixed batch): nothing to tune")
    return model


@contextmanager
def tuning_server(model: ModelSpec, work: Path, ready_timeout_s: float) -> Iterator[Any]:
    """`dltk serve` with explicit model control on a one-model repository (no model loaded)."""
    from dltk.serve.server import background_server
    from dltk.tune.measure import write_repo

    repo = write_repo(work / "repo", model)
    with background_server(
        repo,
        work / "tritonserver.log",
        ready_timeout=ready_timeout_s,
        extra_serve_args=["--model-control-mode=explicit"],
    ) as server:
        yield server


def run_tuned(server: Any, model: ModelSpec, opts: TuneOptions, status: Status) -> TuneRun:
    from dltk.tune.measure import Measurer

    measurer = Measurer(server, model)

    def measure(variant, concurrency, fidelity):  # type: ignore[no-untyped-def]
        status(f"tuned: {fidelity.name} {variant.label()} at concurrency {concurrency}")
        return measurer(variant, concurrency, fidelity)

    started = time.monotonic()
    result = quick_search(opts.space, measure, opts.search)
    wall = time.monotonic() - started
    measurer.unload()
    tried = [
        Tried(
            t.stage,
            t.variant,
            t.concurrency,
            t.point.throughput if t.point else None,
            t.point.p99_ms if t.point else None,
            t.error,
            t.elapsed_s,
        )
        for t in result.trials
    ]
    notes = {
        "stage_s": {
            stage: round(sum(t.elapsed_s for t in result.trials if t.stage == stage), 2)
            for stage in ("screen", "probe", "confirm")
        },
        "variants_loaded": len(measurer.load_seconds),
        "load_s": round(sum(measurer.load_seconds), 2),
        "screen": vars(opts.search.screen),
        "confirm": vars(opts.search.confirm),
        "max_variants": opts.search.max_variants,
        "max_probes": opts.search.max_probes,
    }
    return TuneRun("tuned", model.name, opts.space, opts.budget_ms, tried, result.best, wall, notes)


def run_brute(server: Any, model: ModelSpec, opts: TuneOptions, status: Status) -> TuneRun:
    from dltk.tritonbin import find_perf_analyzer
    from dltk.tune.analyzer import AnalyzerRun, run_model_analyzer, timeout_for
    from dltk.tune.measure import shapes_of

    perf = find_perf_analyzer()
    run = AnalyzerRun(
        model=model.name,
        http_url=server.http_url,
        grpc_url=server.grpc_url,
        metrics_url=server.metrics_url,
        perf_analyzer=perf.binary,
        workdir=(opts.out / "model-analyzer").resolve(),
        budget_ms=opts.budget_ms,
        fidelity=opts.brute_fidelity,
        shapes=shapes_of(model),
    )
    status(
        f"brute force: model-analyzer over {len(opts.space.variants())} variants x "
        f"{len(opts.space.concurrency)} levels (log: {run.workdir / 'model-analyzer.log'})"
    )
    timeout = timeout_for(opts.space, opts.brute_fidelity)
    found, wall = run_model_analyzer(run, opts.space, perf.env(), timeout)
    in_space = set(opts.space.variants())
    tried = [
        Tried(
            "brute" if a.point.variant in in_space else "default",
            a.point.variant,
            a.point.concurrency,
            a.point.throughput,
            a.point.p99_ms,
        )
        for a in found
    ]
    best = best_of(tried, opts.budget_ms, ("brute",))
    notes = {"fidelity": vars(opts.brute_fidelity), "workdir": str(run.workdir),
             "timeout_s": round(timeout)}  # fmt: skip
    return TuneRun("brute-force", model.name, opts.space, opts.budget_ms, tried, best, wall, notes)


@dataclass
class Comparison:
    """Both winners re-measured alternately with the same perf settings."""

    tuned: list[Point]
    brute: list[Point]

    @property
    def ratio(self) -> float:
        brute = statistics.median(p.throughput for p in self.brute)
        return statistics.median(p.throughput for p in self.tuned) / brute if brute else 0.0


def compare(
    server: Any,
    model: ModelSpec,
    tuned: Point,
    brute: Point,
    rounds: int,
    fidelity: Fidelity,
    status: Status,
) -> Comparison:
    from dltk.tune.measure import Measurer

    measurer = Measurer(server, model)
    result = Comparison([], [])
    for index in range(rounds):
        pairs = [("tuned", tuned, result.tuned), ("brute-force", brute, result.brute)]
        for label, point, into in pairs if index % 2 == 0 else pairs[::-1]:
            status(f"compare round {index + 1}/{rounds}: {label} {point.variant.label()}")
            into.append(measurer(point.variant, point.concurrency, fidelity))
    measurer.unload()
    return result


def ratio_line(ratio: float, tuned_s: float, brute_s: float) -> str:
    """The line a script reads (pure)."""
    share = 100.0 * tuned_s / brute_s if brute_s > 0 else 0.0
    return f"ratio tuned/brute-force: {ratio:.2f} in {share:.0f}% of the time"


def parse_ratio_line(text: str) -> tuple[float, float]:
    import re

    match = re.search(r"^ratio tuned/brute-force: ([0-9.]+) in ([0-9.]+)% of the time$", text,
                      re.M)  # fmt: skip
    if not match:
        raise DltkError("no 'ratio tuned/brute-force' line in the output")
    return float(match.group(1)), float(match.group(2))
