"""dltk.tune.search against a test double of the measurement with a known optimum."""

from __future__ import annotations

import math

from dltk.errors import DltkError
from dltk.tune.search import SCREEN, Fidelity, SearchOptions, quick_search, sweep
from dltk.tune.space import Point, Space, Variant, best_point

SPACE = Space(
    instances=(1, 2, 3, 4),
    max_batch=(4, 8, 16, 32, 64),
    delay_us=(0, 100, 500, 2000),
    concurrency=(1, 2, 4, 8, 16, 32),
)
BUDGET_MS = 12.0


def capacity(v: Variant) -> float:
    """Peaks at 2 instances, max batch 16, 100 us delay; smooth around it."""
    inst = 1.0 - 0.25 * abs(v.instances - 2)
    batch = 1.0 - 0.15 * abs(math.log2(v.max_batch) - 4)
    delay = 1.0 - 0.1 * abs(SPACE.delay_us.index(v.delay_us) - 1)
    return 10_000 * inst * batch * delay


def model(v: Variant, c: int) -> Point:
    throughput = min(c * 2000.0, capacity(v))
    p99 = 1.0 + 0.7 * c + v.delay_us / 1000
    return Point(v, c, throughput, p99)


class Double:
    def __init__(self) -> None:
        self.calls: list[tuple[Variant, int, str]] = []

    def __call__(self, v: Variant, c: int, fidelity: Fidelity) -> Point:
        self.calls.append((v, c, fidelity.name))
        return model(v, c)


def brute_best(measure=model) -> Point:  # type: ignore[no-untyped-def]
    points = [measure(v, c) for v in SPACE.variants() for c in SPACE.concurrency]
    best = best_point(points, BUDGET_MS)
    assert best is not None
    return best


def test_the_double_has_one_known_optimum() -> None:
    best = brute_best()
    assert (best.variant, best.concurrency) == (Variant(2, 16, 100), 8)


def test_quick_search_finds_the_optimum_with_a_fraction_of_the_measurements() -> None:
    double = Double()
    result = quick_search(SPACE, double, SearchOptions(budget_ms=BUDGET_MS))
    assert result.best is not None
    assert (result.best.variant, result.best.concurrency) == (Variant(2, 16, 100), 8)
    assert len(double.calls) <= 0.2 * SPACE.size()
    assert {stage for _, _, stage in double.calls} == {"screen", "confirm"}
    # The winner is a confirmed point, measured at the confirm fidelity.
    assert (Variant(2, 16, 100), 8, "confirm") in double.calls


def test_quick_search_climbs_to_a_corner_optimum() -> None:
    def corner(v: Variant, c: int) -> Point:
        i, b, d = SPACE.index(v)
        cap = 1000.0 * v.instances * (1 + 0.2 * b) * (1 - 0.1 * d)
        return Point(v, c, min(c * 2000.0, cap), 1.0 + 0.7 * c)

    best = brute_best(corner)
    assert (best.variant, best.concurrency) == (Variant(4, 64, 0), 4)
    opts = SearchOptions(BUDGET_MS, max_variants=25)
    result = quick_search(SPACE, lambda v, c, f: corner(v, c), opts)
    assert result.best == best


def test_sweep_stops_at_the_first_level_over_the_budget() -> None:
    double = Double()
    points = sweep(double, Variant(2, 16, 100), SPACE.concurrency, SCREEN,
                   SearchOptions(budget_ms=3.0), [])  # fmt: skip
    assert [p.concurrency for p in points] == [1, 2, 4]  # p99 at 4 is 3.9 ms: over, last
    assert [c for _, c, _ in double.calls] == [1, 2, 4]


def test_sweep_stops_when_throughput_stops_rising() -> None:
    flat = Double()
    points = sweep(
        lambda v, c, f: Point(v, c, 1000.0 + c, 1.0),
        Variant(1, 4, 0),
        SPACE.concurrency,
        SCREEN,
        SearchOptions(budget_ms=BUDGET_MS),
        [],
    )
    assert [p.concurrency for p in points] == [1, 2]
    assert flat.calls == []


def test_a_failed_level_is_recorded_and_skipped_two_in_a_row_end_the_sweep() -> None:
    def failing(v: Variant, c: int, f: Fidelity) -> Point:
        if c in (2, 8, 16):
            raise DltkError(f"perf_analyzer failed (exit 99): boom at {c}")
        return model(v, c)

    trials: list = []
    points = sweep(failing, Variant(2, 16, 100), SPACE.concurrency, SCREEN,
                   SearchOptions(budget_ms=BUDGET_MS), trials)  # fmt: skip
    assert [p.concurrency for p in points] == [1, 4]
    assert [(t.concurrency, t.point is None) for t in trials] == [
        (1, False),
        (2, True),
        (4, False),
        (8, True),
        (16, True),
    ]
    assert "boom at 16" in trials[-1].error


def test_nothing_within_the_budget_gives_no_best() -> None:
    result = quick_search(SPACE, Double(), SearchOptions(budget_ms=0.5))
    assert result.best is None
    assert all(t.stage == "screen" for t in result.trials)
