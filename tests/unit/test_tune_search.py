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


def test_sweep_comes_down_past_levels_over_the_budget_and_one_below_the_first_within() -> None:
    double = Double()
    points = sweep(double, Variant(2, 16, 100), SPACE.concurrency, SCREEN, 3.0, 0.05, [])
    # p99 = 1 + 0.7 c + 0.1: over 3 ms down to c=2 (2.5 ms); c=1 is measured and is worse
    assert [p.concurrency for p in points] == [32, 16, 8, 4, 2, 1]
    points = sweep(double, Variant(2, 16, 100), SPACE.concurrency, SCREEN, BUDGET_MS, 0.05, [])
    assert [p.concurrency for p in points] == [32, 16, 8, 4]  # 8 within, 4 worse: stop


def test_sweep_goes_further_down_when_the_top_is_saturated() -> None:
    def saturated(v: Variant, c: int, f: Fidelity) -> Point:
        return Point(v, c, {1: 100.0, 2: 300.0, 4: 400.0, 8: 350.0, 16: 300.0, 32: 200.0}[c], 1.0)

    points = sweep(saturated, Variant(1, 4, 0), SPACE.concurrency, SCREEN, BUDGET_MS, 0.05, [])
    assert [p.concurrency for p in points] == [32, 16, 8, 4, 2]


def test_a_failed_level_is_recorded_and_skipped_two_in_a_row_end_the_sweep() -> None:
    def failing(v: Variant, c: int, f: Fidelity) -> Point:
        if c in (32, 8, 4):
            raise DltkError(f"perf_analyzer failed (exit 99): boom at {c}")
        return Point(v, c, 100.0, 50.0)  # over the budget: the sweep keeps coming down

    trials: list = []
    points = sweep(failing, Variant(2, 16, 100), SPACE.concurrency, SCREEN, BUDGET_MS, 0.05,
                   trials)  # fmt: skip
    assert [p.concurrency for p in points] == [16]
    assert [(t.concurrency, t.point is None) for t in trials] == [
        (32, True),
        (16, False),
        (8, True),
        (4, True),
    ]
    assert "boom at 4" in trials[-1].error


def test_screening_keeps_points_within_the_slack_and_confirm_applies_the_budget() -> None:
    """A short window's p99 is 1.8x the confirm window's: a plain budget would screen c=8 out."""

    def windowed(v: Variant, c: int, f: Fidelity) -> Point:
        point = model(v, c)
        factor = 1.8 if f.name == "screen" else 1.0
        return Point(v, c, point.throughput, point.p99_ms * factor)

    result = quick_search(SPACE, windowed, SearchOptions(budget_ms=BUDGET_MS))
    assert result.best is not None and result.best.concurrency == 8
    assert result.best == brute_best()
    strict = quick_search(SPACE, windowed, SearchOptions(budget_ms=BUDGET_MS, screen_slack=1.0))
    assert strict.best is not None and strict.best.throughput < result.best.throughput


def test_nothing_within_the_budget_gives_no_best() -> None:
    result = quick_search(SPACE, Double(), SearchOptions(budget_ms=0.5))
    assert result.best is None
    assert all(t.stage == "screen" for t in result.trials)
