"""dltk.tune.search against a test double of the measurement with a known optimum."""

from __future__ import annotations

import math
import random
import statistics
from collections.abc import Callable

import pytest

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
    """A test double of the measurement: `truth` answers, every call is recorded."""

    def __init__(self, truth: Callable[[Variant, int], Point] = model) -> None:
        self.truth = truth
        self.calls: list[tuple[Variant, int, str]] = []

    def __call__(self, v: Variant, c: int, fidelity: Fidelity) -> Point:
        self.calls.append((v, c, fidelity.name))
        return self.truth(v, c)

    def loads(self) -> int:
        """Variant loads the real measurer would make: one per change of variant."""
        return sum(
            1 for i, call in enumerate(self.calls) if i == 0 or call[0] != self.calls[i - 1][0]
        )


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
    assert {t.stage for t in result.trials} == {"screen", "probe"}  # nothing to confirm


def second_peak(v: Variant, c: int) -> Point:
    """`model` with a higher peak at (2, 8, 500): one step down in max batch and one up in queue
    delay from the smooth peak (2, 16, 100), each of which alone is worse."""
    point = model(v, c)
    if v == Variant(2, 8, 500):
        return Point(v, c, min(c * 2000.0, 12_000.0), point.p99_ms)
    return point


def test_a_diagonal_probe_reaches_an_optimum_the_climb_misses() -> None:
    best = brute_best(second_peak)
    assert (best.variant, best.concurrency) == (Variant(2, 8, 500), 8)
    peak = capacity(Variant(2, 16, 100))
    assert capacity(Variant(2, 8, 100)) < peak and capacity(Variant(2, 16, 500)) < peak
    climb_only = quick_search(SPACE, Double(second_peak), SearchOptions(BUDGET_MS, max_probes=0))
    assert climb_only.best is not None and climb_only.best.variant == Variant(2, 16, 100)
    assert not [t for t in climb_only.trials if t.stage == "probe"]

    double = Double(second_peak)
    result = quick_search(SPACE, double, SearchOptions(BUDGET_MS))
    assert result.best == best
    probes = [t for t in result.trials if t.stage == "probe"]
    # (2, 16, 100) was best at concurrency 8: each diagonal gets that one point, 8 at most
    assert len(probes) == 8 and {t.concurrency for t in probes} == {8}
    assert len({t.variant for t in probes}) == 8
    # the winning probe got a sweep that reused its point, and was confirmed
    assert double.calls.count((Variant(2, 8, 500), 8, "screen")) == 1
    assert (Variant(2, 8, 500), 16, "screen") in double.calls
    assert (Variant(2, 8, 500), 8, "confirm") in double.calls


def test_probes_go_to_the_diagonals_with_the_best_parts_first() -> None:
    opts = SearchOptions(BUDGET_MS, max_probes=4)
    result = quick_search(SPACE, Double(second_peak), opts)
    probed = [t.variant for t in result.trials if t.stage == "probe"]
    # 12 diagonals, 4 probes: the best part (a delay step, 9000) is in 8 of them; of those, the
    # max batch x delay ones have the better other part (8500 against 7500 for instances)
    assert sorted(probed) == [
        Variant(2, 8, 0),
        Variant(2, 8, 500),
        Variant(2, 32, 0),
        Variant(2, 32, 500),
    ]


# The default space of `dltk tune` (27 variants x 4 levels) and a test double shaped like what
# the brute force measured for mnist on this machine (docs/tuning.md): one instance best, max
# batch 4 with the longest queue delay the best pair although each is worse alone.
DEFAULT_SHAPE = Space((1, 2, 3), (4, 16, 64), (0, 200, 1000), (1, 2, 4, 8))
PAIR = {
    (4, 0): 0.8, (4, 200): 0.85, (4, 1000): 1.2,
    (16, 0): 0.9, (16, 200): 1.0, (16, 1000): 0.5,
    (64, 0): 0.85, (64, 200): 0.9, (64, 1000): 0.45,
}  # fmt: skip


def mnist_shaped(v: Variant, c: int) -> Point:
    cap = 6000.0 * {1: 1.0, 2: 0.9, 3: 0.75}[v.instances] * PAIR[(v.max_batch, v.delay_us)]
    return Point(v, c, min(c * 1000.0, cap), 1.0 + 0.5 * c + v.delay_us / 1000)


# Costs measured on this machine (docs/tuning.md, runs 2-3): loading a variant ~2.2 s, a
# screening point (300 ms x 3) ~1.5 s, a confirm point (1000 ms x 5) ~4.5 s; the brute force
# ~5 s per point of the space (564 s for 112). A model of the wall time, not a timing.
LOAD_S, SCREEN_S, CONFIRM_S, BRUTE_S = 2.2, 1.5, 4.5, 5.0


def modelled_s(double: Double) -> float:
    confirm = sum(1 for call in double.calls if call[2] == "confirm")
    screen = len(double.calls) - confirm
    return LOAD_S * double.loads() + SCREEN_S * screen + CONFIRM_S * confirm


def test_on_the_default_space_the_diagonal_reaches_the_mnist_corner_within_the_time_share() -> None:
    best = brute_best_in(DEFAULT_SHAPE, mnist_shaped, 10.0)
    assert (best.variant, best.concurrency) == (Variant(1, 4, 1000), 8)
    climb_only = quick_search(DEFAULT_SHAPE, mnist_shaped_double := Double(mnist_shaped),
                              SearchOptions(10.0, max_probes=0))  # fmt: skip
    assert climb_only.best is not None and climb_only.best.variant == Variant(1, 16, 200)
    double = Double(mnist_shaped)
    result = quick_search(DEFAULT_SHAPE, double, SearchOptions(10.0))
    assert result.best == best
    # Two of the climb's best's diagonals were screened as the start's neighbours: 4 probes.
    assert len([t for t in result.trials if t.stage == "probe"]) == 4
    brute_s = BRUTE_S * DEFAULT_SHAPE.size()
    assert modelled_s(mnist_shaped_double) < modelled_s(double) < 0.2 * brute_s


def brute_best_in(space: Space, truth: Callable[[Variant, int], Point], budget: float) -> Point:
    points = [truth(v, c) for v in space.variants() for c in space.concurrency]
    found = best_point(points, budget)
    assert found is not None
    return found


def noisy_double(seed: int) -> Double:
    """The mnist-shaped test double measured on a busy machine: throughput off by up to 30 %,
    p99 between 0.7x and 2.5x (short windows overstate it), seeded."""
    rng = random.Random(seed)

    def noisy(v: Variant, c: int) -> Point:
        point = mnist_shaped(v, c)
        throughput = point.throughput * rng.uniform(0.7, 1.3)
        return Point(v, c, throughput, point.p99_ms * rng.uniform(0.7, 2.5))

    return Double(noisy)


@pytest.mark.parametrize("seed", range(30))
def test_variants_points_and_loads_stay_within_the_budget_under_noise(seed: int) -> None:
    """Whatever the noise makes the search do, its options bound it."""
    opts = SearchOptions(10.0)
    double = noisy_double(seed)
    result = quick_search(DEFAULT_SHAPE, double, opts)
    assert len(result.trials) == len(double.calls)
    stage = {name: [t for t in result.trials if t.stage == name] for name in STAGES}
    assert set(t.stage for t in result.trials) <= set(STAGES)
    swept = {t.variant for t in stage["screen"]}
    assert len(swept) <= opts.max_variants + 1  # + the winning diagonal
    assert len(stage["screen"]) <= len(swept) * len(DEFAULT_SHAPE.concurrency)
    assert len(stage["probe"]) <= opts.max_probes
    confirmed = {t.variant for t in stage["confirm"]}
    assert len(confirmed) <= opts.finalists + 1  # + the winning diagonal
    assert len(stage["confirm"]) <= len(confirmed) * (opts.confirm_levels + 1)
    probed = {t.variant for t in stage["probe"]}
    assert double.loads() <= len(swept) + len(probed) + len(confirmed)
    assert double.loads() <= opts.max_variants + 1 + opts.max_probes + opts.finalists + 1


STAGES = ("screen", "probe", "confirm")


def test_the_probes_expected_cost_keeps_the_search_within_its_time_share() -> None:
    """The modelled wall time over 30 noisy searches: the probes add a bounded amount to the
    climb's, and the median stays under 20 % of the brute force's (the goal)."""
    brute_s = BRUTE_S * DEFAULT_SHAPE.size()
    with_probes, climb_only = [], []
    for seed in range(30):
        for opts, into in ((SearchOptions(10.0), with_probes),
                           (SearchOptions(10.0, max_probes=0), climb_only)):  # fmt: skip
            double = noisy_double(seed)
            quick_search(DEFAULT_SHAPE, double, opts)
            into.append(modelled_s(double))
    added = statistics.median(with_probes) - statistics.median(climb_only)
    # 8 probes (a load and a point each), the winner's sweep, one more finalist: the worst case
    worst = 8 * (LOAD_S + SCREEN_S) + LOAD_S + 4 * SCREEN_S + LOAD_S + 3 * CONFIRM_S
    assert 0 < added < worst
    assert statistics.median(with_probes) < 0.2 * brute_s
