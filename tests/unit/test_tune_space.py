"""dltk.tune.space: the search space, its variants, neighbours and value parsing."""

from __future__ import annotations

import pytest

from dltk.errors import DltkError
from dltk.tune.space import Point, Space, Variant, best_point, parse_values

SPACE = Space(instances=(1, 2, 3), max_batch=(8, 32), delay_us=(0, 100, 500), concurrency=(1, 4))


def test_variants_are_the_product_in_brute_force_order() -> None:
    variants = SPACE.variants()
    assert len(variants) == 18 and SPACE.size() == 36
    assert variants[0] == Variant(1, 8, 0) and variants[-1] == Variant(3, 32, 500)
    assert variants[1] == Variant(1, 8, 100)


def test_start_is_the_lower_middle_and_neighbours_step_one_dimension() -> None:
    assert SPACE.start() == Variant(2, 8, 100)
    assert sorted(SPACE.neighbors(Variant(2, 8, 100))) == [
        Variant(1, 8, 100),
        Variant(2, 8, 0),
        Variant(2, 8, 500),
        Variant(2, 32, 100),
        Variant(3, 8, 100),
    ]
    assert sorted(SPACE.neighbors(Variant(1, 8, 0))) == [
        Variant(1, 8, 100),
        Variant(1, 32, 0),
        Variant(2, 8, 0),
    ]


def test_diagonals_step_two_dimensions_at_once_in_bounds() -> None:
    assert sorted(SPACE.diagonals(Variant(2, 8, 100))) == [
        Variant(1, 8, 0),
        Variant(1, 8, 500),
        Variant(1, 32, 100),
        Variant(2, 32, 0),
        Variant(2, 32, 500),
        Variant(3, 8, 0),
        Variant(3, 8, 500),
        Variant(3, 32, 100),
    ]
    assert sorted(SPACE.diagonals(Variant(1, 8, 0))) == [
        Variant(1, 32, 100),
        Variant(2, 8, 100),
        Variant(2, 32, 0),
    ]
    one_axis = Space(instances=(1, 2, 3), max_batch=(8,), delay_us=(0,), concurrency=(1,))
    assert one_axis.diagonals(Variant(2, 8, 0)) == []


def test_best_point_keeps_the_budget() -> None:
    v = Variant(1, 8, 0)
    points = [Point(v, 1, 100.0, 2.0), Point(v, 2, 300.0, 9.0), Point(v, 4, 200.0, 4.0)]
    assert best_point(points, 5.0) == points[2]
    assert best_point(points, 10.0) == points[1]
    assert best_point(points, 1.0) is None


@pytest.mark.parametrize(
    ("space", "message"),
    [
        (Space((), (8,), (0,), (1,)), "--instances needs at least one value"),
        (Space((2, 1), (8,), (0,), (1,)), "--instances values must be distinct and ascending"),
        (Space((1,), (0,), (0,), (1,)), "--max-batch values must be >= 1"),
        (Space((1,), (8,), (-1,), (1,)), "--delay-us values must be >= 0"),
        (Space((1,), (8,), (0,), (1, 128)), "--concurrency values must be <= 64"),
        (Space(tuple(range(1, 10)), (8,), (0,), (1,)), "--instances has 9 values; at most 8"),
    ],
)
def test_bad_spaces_are_one_line_errors(space: Space, message: str) -> None:
    with pytest.raises(DltkError, match=message):
        space.check()


def test_parse_values() -> None:
    assert parse_values("1,2, 4", "--instances") == (1, 2, 4)
    with pytest.raises(DltkError, match="--instances 'a,b' is not a comma-separated list"):
        parse_values("a,b", "--instances")
