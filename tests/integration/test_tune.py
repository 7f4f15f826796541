"""`dltk bench tune` and `dltk tune --write` end to end on the real local tritonserver with
explicit model control (`dltk serve`, 127.0.0.1), perf_analyzer and triton-model-analyzer, over
a tiny space (2 variants x 2 concurrency levels) and a generous p99 budget: the one line a script
reads, the reports, and the write-back into a copy of the manifest."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dltk.tune.run import parse_ratio_line

from .support import MANIFEST, MODELS_DIR, Artifacts, require_ok, run_dltk

pytestmark = pytest.mark.integration
TINY = ("--instances", "1,2", "--max-batch", "8", "--delay-us", "0", "--concurrency", "1,2")


def test_bench_tune_prints_the_ratio_line_and_keeps_both_reports(
    artifacts: Artifacts, tmp_path: Path
) -> None:
    out = tmp_path / "bench"
    proc = run_dltk("bench", "tune", "mnist", *TINY, "--budget-ms", "50", "--rounds", "1",
                    "--out", str(out), timeout=600)  # fmt: skip
    require_ok(proc)
    assert len(proc.stdout.strip().splitlines()) == 1, proc.stdout
    ratio, share = parse_ratio_line(proc.stdout)
    assert ratio > 0 and share > 0
    bench = json.loads((out / "bench.json").read_text())
    assert bench["line"] == proc.stdout.strip()
    brute = json.loads((out / "brute-force.json").read_text())
    in_space = [t for t in brute["tried"] if t["stage"] == "brute"]
    # model-analyzer measured the whole product: 2 variants x 2 levels, plus the model's own config
    assert sorted((t["instances"], t["concurrency"]) for t in in_space) == [
        (1, 1),
        (1, 2),
        (2, 1),
        (2, 2),
    ]
    assert {t["max_batch"] for t in in_space} == {8} and {t["delay_us"] for t in in_space} == {0}
    assert [t["stage"] for t in brute["tried"]].count("default") == 2
    tuned = json.loads((out / "tuned.json").read_text())
    assert tuned["best"]["p99_ms"] <= 50 and brute["best"]["p99_ms"] <= 50
    assert {t["stage"] for t in tuned["tried"]} <= {"screen", "confirm"}
    for name in ("tuned", "brute-force"):
        assert (out / f"{name}.png").read_bytes()[:4] == b"\x89PNG"
        assert "| stage | instances |" in (out / f"{name}.md").read_text()


def test_tune_write_updates_the_manifest_keeping_its_comments(
    artifacts: Artifacts, tmp_path: Path
) -> None:
    manifest = tmp_path / "models.yml"
    original = MANIFEST.read_text().replace("../build/models", str(MODELS_DIR))
    manifest.write_text(original)
    proc = run_dltk("tune", "mnist", "--manifest", str(manifest), "--instances", "1",
                    "--max-batch", "8", "--delay-us", "0", "--concurrency", "1",
                    "--budget-ms", "50", "--out", str(tmp_path / "tune"), "--write",
                    timeout=300)  # fmt: skip
    require_ok(proc)
    assert "-    batch: {min: 1, opt: 16, max: 64}" in proc.stdout
    assert "+    batch: {min: 1, opt: 8, max: 8}" in proc.stdout
    assert f"written to {manifest}" in proc.stdout
    text = manifest.read_text()
    assert "dynamic_batching: {max_queue_delay_microseconds: 0}" in text
    comments = [ln for ln in original.splitlines() if ln.lstrip().startswith("#")]
    assert comments == [ln for ln in text.splitlines() if ln.lstrip().startswith("#")]
    again = run_dltk("repo", "render", "--manifest", str(manifest), "--out",
                     str(tmp_path / "repo"), "--runtimes", "python-onnxruntime")  # fmt: skip
    require_ok(again)
    assert "max_batch_size: 8" in (tmp_path / "repo" / "mnist" / "config.pbtxt").read_text()
