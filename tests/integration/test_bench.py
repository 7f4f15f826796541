"""`dltk bench serving` end to end on the real local tritonserver, kept short (small batches,
short perf windows); the two stdout lines a script reads, and what the JSON records."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dltk.bench.serving import parse_ratio_lines

from .support import MANIFEST, Artifacts, run_dltk

pytestmark = pytest.mark.integration


def test_bench_serving_prints_two_ratio_lines(artifacts: Artifacts, tmp_path: Path) -> None:
    out = tmp_path / "serving.json"
    proc = run_dltk(
        "bench",
        "serving",
        "--manifest",
        str(MANIFEST),
        "--batches",
        "1,8",
        "--budget-s",
        "0.2",
        "--sweep",
        "1:1",
        "--served-batch",
        "8",
        "--max-batch-size",
        "8",
        "--concurrency",
        "4",
        "--interval-ms",
        "500",
        "--rounds",
        "2",
        "--pairs",
        "2",
        "--out",
        str(out),
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 2, proc.stdout
    ratios = parse_ratio_lines(proc.stdout)
    assert set(ratios) == {"served/in-process", "tuned/default"}
    assert all(value > 0 for value in ratios.values())

    data = json.loads(out.read_text())
    assert data["ratio_served_inprocess"] == pytest.approx(ratios["served/in-process"], abs=0.006)
    assert [t["batch"] for t in data["inprocess"]] == [1, 8]
    assert data["served"]["batch"] == 8 and data["tuned"]["batch"] == 1
    assert data["tuned"]["concurrency"] == data["default"]["concurrency"] == "4:4:1"
    # The default config has no dynamic batching: every execution ran exactly one request.
    assert data["default"]["metrics"]["avg_batch"] == 1.0
    assert data["default"]["metrics"]["failure"] == 0 and data["tuned"]["metrics"]["failure"] == 0
    assert (
        "--async" in data["tuned"]["command"]
        and "--shared-memory system" in data["tuned"]["command"]
    )
    assert "tritonserver" in data["tuned"]["server_cpu_s"]
    # Issue 11 item 8: every round recorded, the served sweep between the in-process runs and
    # the tuned/default pairs after them in ABBA order, the first pair's order alternating; the
    # printed tuned/default numbers are over every pair of every round.
    assert [r["order"] for r in data["rounds"]] == [
        ["in-process", "served", "in-process", "tuned", "default", "default", "tuned"],
        ["in-process", "served", "in-process", "default", "tuned", "tuned", "default"],
    ]
    per_pair = [p["ratio"] for r in data["rounds"] for p in r["pairs"]]
    assert len(per_pair) == 4
    assert all(p["tuned"]["batch"] == 1 for r in data["rounds"] for p in r["pairs"])
    middle = sorted(per_pair)[1:3]
    assert data["ratio_tuned_default"] == pytest.approx(sum(middle) / 2, abs=0.001)
    assert data["spread"]["tuned/default"]["values"] == pytest.approx(per_pair, abs=0.0001)
    assert proc.stdout.splitlines()[0].endswith(", n=2)")
    assert proc.stdout.splitlines()[1].endswith(", n=4)")


def test_bench_serving_bad_input_is_one_line(tmp_path: Path) -> None:
    proc = run_dltk("bench", "serving", "--served-batch", "512", "--max-batch-size", "64")
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        "dltk bench: error: --served-batch 512 must be between 1 and --max-batch-size 64"
    ]
    missing = run_dltk("bench", "serving", "--manifest", str(tmp_path / "none.yml"))
    assert missing.returncode == 1 and "no such file" in missing.stderr
