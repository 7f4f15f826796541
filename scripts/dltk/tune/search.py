"""Our own search (pure; the measuring is passed in): a quick search over the model config with
an early-stopping concurrency sweep, then successive halving's second rung on the finalists.

1. Screen (short perf windows): start in the middle of the space and climb, one dimension at a
   time, to the best neighbour (Triton model-analyzer's quick search), until no neighbour beats
   the current variant by more than `min_gain` (noise) or `max_variants` were screened. Each
   variant's concurrency sweep comes down from the highest level (see `sweep`); ranking and
   the choice of levels to confirm judge p99 against `screen_slack` x the budget, as short
   windows overstate p99.
2. Probe the diagonals: the in-bounds variants two dimensions away from the best screened
   variant (`Space.diagonals`, at most `max_probes`, not screened yet) get ONE screening point
   each, at the level that variant was best at. The best probe that beats it by more
   than `min_gain` gets a full sweep and a place among the finalists, and the climb goes on from
   it while the variant budget lasts. This reaches an optimum whose two parts look worse alone
   (measured on mnist: max batch 4 with the longest queue delay) for one load and one short
   point per diagonal instead of a sweep.
3. Confirm (full perf windows, as the brute force measures): the `finalists` best screened
   variants (and the winning diagonal) at their best screened levels, against the budget itself;
   the best confirmed point within the budget wins.
Why this and not optuna or plain successive halving: docs/tuning.md.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from dltk.errors import DltkError
from dltk.tune.space import Point, Space, Variant, best_point


@dataclass(frozen=True)
class Fidelity:
    """How long perf_analyzer measures one point."""

    name: str
    interval_ms: int
    max_trials: int
    stability: float


# Screening windows are short and loose (only the ranking matters, and the confirm rung re-measures
# the finalists); confirm windows are the brute force's (2 cores shared: 50 % stability).
SCREEN = Fidelity("screen", interval_ms=300, max_trials=3, stability=100.0)
CONFIRM = Fidelity("confirm", interval_ms=1000, max_trials=5, stability=50.0)

# Measures one variant at one concurrency with a fidelity (loading the variant when it is not
# the one loaded). Raises DltkError when it cannot; the search records a failed point then.
MeasureOne = Callable[[Variant, int, Fidelity], Point]


@dataclass(frozen=True)
class SearchOptions:
    budget_ms: float
    max_variants: int = 10  # screened (swept) at most, plus the winning diagonal
    max_probes: int = 8  # diagonals probed with one screening point each (0: no probing)
    finalists: int = 2
    confirm_levels: int = 2  # best screened levels re-measured per finalist
    min_gain: float = 0.05  # a move or a lower level must beat the best by 5 % (noise)
    # Short windows overstate p99 (a few scheduling stalls weigh more): a screened point up to
    # this multiple of the budget still ranks its variant and may be confirmed; the sweep's
    # stopping and the confirm rung apply the budget itself.
    screen_slack: float = 2.0
    screen: Fidelity = SCREEN
    confirm: Fidelity = CONFIRM


@dataclass
class Trial:
    """One measured point, or a failure, with the stage that asked for it."""

    stage: str
    variant: Variant
    concurrency: int
    point: Point | None
    error: str = ""
    elapsed_s: float = 0.0


@dataclass
class SearchResult:
    best: Point | None
    trials: list[Trial] = field(default_factory=list)

    def points(self, stage: str | None = None) -> list[Point]:
        return [t.point for t in self.trials if t.point and (stage is None or t.stage == stage)]


def _measure(
    measure: MeasureOne,
    variant: Variant,
    concurrency: int,
    fidelity: Fidelity,
    trials: list[Trial],
    clock: Callable[[], float],
    stage: str = "",
) -> Point | None:
    started = clock()
    try:
        point: Point | None = measure(variant, concurrency, fidelity)
        error = ""
    except DltkError as exc:
        point, error = None, str(exc)
    stage = stage or fidelity.name
    trials.append(Trial(stage, variant, concurrency, point, error, clock() - started))
    return point


def sweep(
    measure: MeasureOne,
    variant: Variant,
    levels: Sequence[int],
    fidelity: Fidelity,
    budget_ms: float,
    min_gain: float,
    trials: list[Trial],
    clock: Callable[[], float] = time.monotonic,
    known: Sequence[Point] = (),
) -> list[Point]:
    """The levels from the top down: more requests in flight batch better, so the best point
    within the budget is usually the highest level within it. Going down past levels over the
    budget, it stops one level below the first level within it, unless that one is better by
    more than `min_gain` (a server saturated at the top); two failed levels in a row end it
    (one failure is noise on a busy machine: skipped). A level in `known` (measured already at
    this fidelity, e.g. a diagonal's probe) is taken as it is, not measured again."""
    points: list[Point] = []
    best: Point | None = None
    failed = 0
    have = {p.concurrency: p for p in known}
    for level in sorted(levels, reverse=True):
        point = have.get(level) or _measure(measure, variant, level, fidelity, trials, clock)
        if point is None:
            failed += 1
            if failed >= 2:
                break
            continue
        failed = 0
        points.append(point)
        if not point.within(budget_ms):
            continue
        if best is not None and point.throughput <= best.throughput * (1 + min_gain):
            break
        best = point
    return points


def score(points: Sequence[Point], budget_ms: float) -> float:
    found = best_point(points, budget_ms)
    return found.throughput if found else 0.0


def _ranked_levels(points: Sequence[Point], screen_budget: float) -> list[int]:
    """Levels within the slack, the best screened throughput first (the lower level on a tie:
    less queueing)."""
    ranked = sorted(points, key=lambda p: (-p.throughput, p.concurrency))
    return [p.concurrency for p in ranked if p.within(screen_budget)]


def _probe_diagonals(
    space: Space,
    measure: MeasureOne,
    opts: SearchOptions,
    screened: dict[Variant, list[Point]],
    value: Callable[[Variant], float],
    best: Variant,
    trials: list[Trial],
    clock: Callable[[], float],
) -> Point | None:
    """One screening point (stage "probe") for each diagonal of `best` not screened yet, at the
    level `best` was best at (the lowest level when none was within the slack). When there are
    more than `max_probes`, the diagonals through the best one-dimension moves go first (the
    better of its two parts, then their sum): a diagonal is worth probing because one of its
    parts may look worse alone, so that part is not held against it. Returns the best probe
    that beats `best` by more than `min_gain` within the slack, or None."""
    screen_budget = opts.budget_ms * opts.screen_slack
    levels = _ranked_levels(screened.get(best, []), screen_budget)
    level = levels[0] if levels else min(space.concurrency)
    neighbours = space.neighbors(best)

    def parts(diagonal: Variant) -> tuple[float, float]:
        near = set(space.neighbors(diagonal))
        values = [value(n) for n in neighbours if n in near]
        return max(values), sum(values)

    candidates = [d for d in space.diagonals(best) if d not in screened]
    candidates.sort(key=parts, reverse=True)  # stable: Space.diagonals order on a tie
    bar = value(best) * (1 + opts.min_gain)
    winner: Point | None = None
    for diagonal in candidates[: opts.max_probes]:
        point = _measure(measure, diagonal, level, opts.screen, trials, clock, stage="probe")
        if point is None or not point.within(screen_budget) or point.throughput <= bar:
            continue
        if winner is None or point.throughput > winner.throughput:
            winner = point
    return winner


def quick_search(
    space: Space,
    measure: MeasureOne,
    opts: SearchOptions,
    clock: Callable[[], float] = time.monotonic,
) -> SearchResult:
    """Screen by hill climbing, probe the diagonals, confirm the finalists (see the module's
    docstring)."""
    trials: list[Trial] = []
    screened: dict[Variant, list[Point]] = {}
    screen_budget = opts.budget_ms * opts.screen_slack

    def screen(variant: Variant, known: Sequence[Point] = (), extra: int = 0) -> None:
        if variant in screened or len(screened) >= opts.max_variants + extra:
            return
        screened[variant] = sweep(
            measure, variant, space.concurrency, opts.screen, opts.budget_ms, opts.min_gain,
            trials, clock, known,
        )  # fmt: skip

    def value(variant: Variant) -> float:
        return score(screened.get(variant, []), screen_budget)

    def climb(current: Variant) -> Variant:
        while len(screened) < opts.max_variants:
            for neighbour in space.neighbors(current):
                screen(neighbour)
            candidates = [n for n in space.neighbors(current) if n in screened]
            if not candidates:
                break
            challenger = max(candidates, key=value)
            if value(challenger) <= value(current) * (1 + opts.min_gain) or value(challenger) == 0:
                break
            current = challenger
        return current

    current = space.start()
    screen(current)
    current = climb(current)
    # The best screened variant (the climb's end unless a neighbour beat it by less than
    # `min_gain`) is where the diagonals are probed.
    best = max(screened, key=lambda v: (value(v), v == current), default=current)
    won = _probe_diagonals(space, measure, opts, screened, value, best, trials, clock)
    diagonal = won.variant if won else None
    if won is not None:
        # The probe won: a sweep (its probed level reused; one variant over `max_variants` at
        # most) and a place among the finalists; the climb goes on from it if the sweep agrees
        # and variants are left.
        screen(won.variant, known=[won], extra=1)
        if value(won.variant) > value(best) * (1 + opts.min_gain):
            climb(won.variant)

    ranked = sorted((v for v in screened if value(v) > 0), key=value, reverse=True)
    finalists = ranked[: opts.finalists]
    if diagonal is not None and diagonal not in finalists and value(diagonal) > 0:
        finalists.append(diagonal)
    # The variant measured last is still loaded: confirming it first saves a load (~2 s here).
    loaded = trials[-1].variant if trials else None
    finalists.sort(key=lambda v: v != loaded)
    confirmed: list[Point] = []
    for variant in finalists:
        # Best screened levels first; one level more when none of the first `confirm_levels`
        # is within the budget at full windows.
        levels = _ranked_levels(screened[variant], screen_budget)
        found: list[Point] = []
        for measured, level in enumerate(levels):
            if measured >= opts.confirm_levels + 1 or (
                measured >= opts.confirm_levels and best_point(found, opts.budget_ms)
            ):
                break
            point = _measure(measure, variant, level, opts.confirm, trials, clock)
            if point is not None:
                found.append(point)
        confirmed += found
    return SearchResult(best=best_point(confirmed, opts.budget_ms), trials=trials)
