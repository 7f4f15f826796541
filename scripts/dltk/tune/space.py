"""The search space of `dltk tune` (pure): model config variants (instances x max batch x
dynamic-batching queue delay) and the client concurrency levels each variant is measured at.

A `Variant` is what goes into models.yml; a `Point` is one measurement of a variant at one
concurrency; a variant's score is its best throughput among its points within the latency budget.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from dltk.errors import DltkError

MAX_VALUES = 8  # per dimension: the brute force measures the product of the dimensions
MAX_CONCURRENCY = 64


@dataclass(frozen=True, order=True)
class Variant:
    """One model config: instance count, max_batch_size, max_queue_delay_microseconds."""

    instances: int
    max_batch: int
    delay_us: int

    def label(self) -> str:
        return f"i{self.instances}-b{self.max_batch}-d{self.delay_us}"


@dataclass(frozen=True)
class Point:
    """One measurement: a variant at a client concurrency."""

    variant: Variant
    concurrency: int
    throughput: float  # inferences per second
    p99_ms: float

    def within(self, budget_ms: float) -> bool:
        return self.p99_ms <= budget_ms


@dataclass(frozen=True)
class Space:
    instances: tuple[int, ...]
    max_batch: tuple[int, ...]
    delay_us: tuple[int, ...]
    concurrency: tuple[int, ...]

    def check(self) -> None:
        for name, values, low in (
            ("--instances", self.instances, 1),
            ("--max-batch", self.max_batch, 1),
            ("--delay-us", self.delay_us, 0),
            ("--concurrency", self.concurrency, 1),
        ):
            if not values:
                raise DltkError(f"{name} needs at least one value")
            if len(values) > MAX_VALUES:
                raise DltkError(f"{name} has {len(values)} values; at most {MAX_VALUES}")
            if min(values) < low:
                raise DltkError(f"{name} values must be >= {low}, got {min(values)}")
            if list(values) != sorted(set(values)):
                raise DltkError(f"{name} values must be distinct and ascending, got {values}")
        if max(self.concurrency) > MAX_CONCURRENCY:
            raise DltkError(f"--concurrency values must be <= {MAX_CONCURRENCY}")

    @property
    def dims(self) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
        return (self.instances, self.max_batch, self.delay_us)

    def variants(self) -> list[Variant]:
        """Every model config of the space, in brute-force order."""
        return [Variant(*combo) for combo in itertools.product(*self.dims)]

    def size(self) -> int:
        """Measurements the brute force makes: variants x concurrency levels."""
        return len(self.variants()) * len(self.concurrency)

    def index(self, variant: Variant) -> tuple[int, int, int]:
        return (
            self.instances.index(variant.instances),
            self.max_batch.index(variant.max_batch),
            self.delay_us.index(variant.delay_us),
        )

    def at(self, index: Sequence[int]) -> Variant:
        return Variant(*(dim[i] for dim, i in zip(self.dims, index, strict=True)))

    def start(self) -> Variant:
        """The middle of every dimension (lower middle when even): a quick search's start."""
        return self.at([(len(dim) - 1) // 2 for dim in self.dims])

    def neighbors(self, variant: Variant) -> list[Variant]:
        """Variants one step away in one dimension (Triton's quick-search neighbourhood)."""
        here = self.index(variant)
        found = []
        for axis, dim in enumerate(self.dims):
            for step in (-1, 1):
                moved = list(here)
                moved[axis] += step
                if 0 <= moved[axis] < len(dim):
                    found.append(self.at(moved))
        return found

    def diagonals(self, variant: Variant) -> list[Variant]:
        """Variants one step away in each of two dimensions at once (in bounds): the moves a
        one-dimension climb cannot make when both parts look worse alone."""
        here = self.index(variant)
        found = []
        for first, second in itertools.combinations(range(len(self.dims)), 2):
            for step_a, step_b in itertools.product((-1, 1), repeat=2):
                moved = list(here)
                moved[first] += step_a
                moved[second] += step_b
                if 0 <= moved[first] < len(self.dims[first]) and 0 <= moved[second] < len(
                    self.dims[second]
                ):
                    found.append(self.at(moved))
        return found


def parse_values(text: str, what: str) -> tuple[int, ...]:
    """'1,2,4' -> (1, 2, 4); one-line error naming `what` otherwise."""
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip() != "")
    except ValueError:
        values = ()
    if not values:
        raise DltkError(f"{what} {text!r} is not a comma-separated list of integers, e.g. 1,2,4")
    return values


def best_point(points: Iterable[Point], budget_ms: float) -> Point | None:
    """The highest-throughput point within the p99 budget (None: none is within)."""
    within = [p for p in points if p.within(budget_ms)]
    return max(within, key=lambda p: p.throughput) if within else None
