"""dltk.tune.report and the ratio line of dltk bench tune (pure parts)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dltk.errors import DltkError
from dltk.tune.report import Tried, TuneRun, best_of, markdown, to_json, write_report
from dltk.tune.run import Comparison, parse_ratio_line, ratio_line
from dltk.tune.space import Point, Space, Variant

SPACE = Space((1, 2), (8,), (0,), (1, 2))
A, B = Variant(1, 8, 0), Variant(2, 8, 0)
TRIED = [
    Tried("brute", A, 1, 2000.0, 2.4),
    Tried("brute", A, 2, 3100.0, 3.4),
    Tried("brute", B, 1, 2100.0, 2.5),
    Tried("brute", B, 2, 3500.0, 12.0),
    Tried("default", Variant(1, 64, 100), 2, 9000.0, 1.0),
    Tried("screen", B, 4, None, None, "perf_analyzer failed (exit 2): unstable"),
]


def test_best_of_keeps_the_budget_and_the_stages() -> None:
    assert best_of(TRIED, 10.0, ("brute",)) == Point(A, 2, 3100.0, 3.4)
    assert best_of(TRIED, 20.0, ("brute",)) == Point(B, 2, 3500.0, 12.0)
    assert best_of(TRIED, 10.0, ("brute", "default")).variant == Variant(1, 64, 100)


def test_json_and_markdown_list_every_config_tried(tmp_path: Path) -> None:
    run = TuneRun("brute-force", "mnist", SPACE, 10.0, TRIED, best_of(TRIED, 10, ("brute",)), 42.0)
    data = to_json(run)
    assert data["best"] == {"instances": 1, "max_batch": 8, "delay_us": 0, "concurrency": 2,
                            "throughput": 3100.0, "p99_ms": 3.4}  # fmt: skip
    assert data["space"]["points"] == 4 and data["measured"] == 5
    assert [t["within_budget"] for t in data["tried"]] == [True, True, True, False, True, False]
    text = markdown(run, "brute-force.png")
    assert (
        "Best within the budget: instances 1, max batch 8, queue delay 0 us at concurrency 2"
        in (text)
    )
    assert "| brute | 2 | 8 | 0 | 2 | 3500.0 | 12.00 | no |" in text
    assert "| screen | 2 | 8 | 0 | 4 | - | - | perf_analyzer failed (exit 2): unstable |" in text
    files = write_report(tmp_path, run)
    assert [f.name for f in files] == ["brute-force.json", "brute-force.md", "brute-force.png"]
    assert json.loads(files[0].read_text()) == data
    assert files[2].read_bytes()[:4] == b"\x89PNG"


def test_ratio_line_round_trips_and_uses_medians() -> None:
    comparison = Comparison(
        tuned=[Point(A, 2, t, 3.0) for t in (2900.0, 3000.0, 9999.0)],
        brute=[Point(B, 2, t, 3.0) for t in (3000.0, 1.0, 3100.0)],
    )
    assert comparison.ratio == pytest.approx(1.0)
    line = ratio_line(0.973, tuned_s=61.0, brute_s=600.0)
    assert line == "ratio tuned/brute-force: 0.97 in 10% of the time"
    assert parse_ratio_line(f"noise\n{line}\n") == (0.97, 10.0)
    with pytest.raises(DltkError, match="no 'ratio tuned/brute-force' line"):
        parse_ratio_line("ratio tuned/default: 3.0")
