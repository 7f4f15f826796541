"""Bounded timing of a callable, and the statistics the benchmark tables print (pure parts).

Every loop is bounded twice: by a time budget and by an iteration cap, after a few warm-up
calls that are not timed.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from dltk.errors import DltkError

DEFAULT_BATCHES = (1, 2, 4, 8, 16, 32, 64, 128)
MAX_BATCH = 4096
MAX_ITERATIONS = 100_000


@dataclass(frozen=True)
class Timing:
    """Wall-clock of `iterations` calls on batches of `batch` samples."""

    batch: int
    iterations: int
    total_s: float
    mean_ms: float
    median_ms: float
    p99_ms: float

    @property
    def throughput(self) -> float:
        """Samples per second."""
        return self.batch * self.iterations / self.total_s if self.total_s > 0 else 0.0


def summarize(batch: int, durations_s: Sequence[float]) -> Timing:
    """Timing statistics of per-call durations in seconds (pure)."""
    if not durations_s:
        raise DltkError("nothing was timed: raise the time budget")
    ordered = sorted(durations_s)
    index = min(len(ordered) - 1, max(0, math.ceil(0.99 * len(ordered)) - 1))
    return Timing(
        batch=batch,
        iterations=len(ordered),
        total_s=sum(ordered),
        mean_ms=statistics.fmean(ordered) * 1000,
        median_ms=statistics.median(ordered) * 1000,
        p99_ms=ordered[index] * 1000,
    )


def time_calls(
    call: Callable[[], object],
    batch: int,
    budget_s: float,
    max_iterations: int = 1000,
    warmup: int = 3,
    clock: Callable[[], float] = time.perf_counter,
    sync: Callable[[], None] | None = None,
) -> Timing:
    """Time `call` until `budget_s` is spent or `max_iterations` calls are done (min 1 call).

    `sync` (e.g. torch.cuda.synchronize) runs after each call so device work is counted.
    """
    if budget_s <= 0 or not 1 <= max_iterations <= MAX_ITERATIONS:
        raise DltkError(
            f"time budget must be > 0 s and iterations 1..{MAX_ITERATIONS}, got "
            f"{budget_s} s / {max_iterations}"
        )
    for _ in range(max(0, warmup)):
        call()
        if sync:
            sync()
    durations: list[float] = []
    deadline = clock() + budget_s
    while len(durations) < max_iterations:
        start = clock()
        call()
        if sync:
            sync()
        end = clock()
        durations.append(end - start)
        if end >= deadline:
            break
    return summarize(batch, durations)


def parse_batches(text: str, maximum: int = MAX_BATCH) -> tuple[int, ...]:
    """'1,8,32' or '1-128' (powers of two from 1 to 128) -> sorted unique batch sizes."""
    text = text.strip()
    try:
        if "-" in text and "," not in text:
            low, high = (int(p) for p in text.split("-", 1))
            values = [b for b in (2**i for i in range(13)) if low <= b <= high]
        else:
            values = [int(p) for p in text.split(",") if p.strip()]
    except ValueError:
        values = []
    if not values or min(values) < 1 or max(values) > maximum:
        raise DltkError(
            f"batch sizes {text!r} must be a list like 1,8,32 or a range like 1-128 "
            f"(powers of two), each between 1 and {maximum}"
        )
    return tuple(sorted(set(values)))


@dataclass
class Spread:
    """The median of repeated measurements and their range (what a bench prints)."""

    median: float
    low: float
    high: float
    values: list[float] = field(default_factory=list)

    def text(self, digits: int = 2) -> str:
        d, n = digits, len(self.values)
        return f"{self.median:.{d}f} (min {self.low:.{d}f}, max {self.high:.{d}f}, n={n})"


def spread(values: Sequence[float]) -> Spread:
    if not values:
        raise DltkError("no measurement to summarize")
    return Spread(statistics.median(values), min(values), max(values), list(values))
