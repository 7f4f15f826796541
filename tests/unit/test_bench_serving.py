"""bench/serving.py's pure parts: configs, ratios, the two output lines, /proc accounting."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest

from dltk.bench.serving import (
    ServingOptions,
    best_of,
    default_spec,
    parse_proc_stat,
    parse_ratio_lines,
    ratio,
    ratio_lines,
    tree_cpu_seconds,
    tuned_spec,
    write_repo,
)
from dltk.bench.timing import Timing, spread
from dltk.errors import DltkError
from dltk.manifest.load import load_manifest
from dltk.repo.validate import validate_repo

OPTS = ServingOptions(manifest=Path("models.yml"), instances=2, queue_delay_us=500)


def _model(tiny_onnx: Path, write_manifest) -> object:  # type: ignore[no-untyped-def]
    path = write_manifest(
        """\
        models:
          - name: mnist
            onnx: models/mnist.onnx
            batch: {min: 1, opt: 16, max: 64}
            runtimes: [python-onnxruntime]
            dynamic_batching: {max_queue_delay_microseconds: 100}
        """
    )
    return load_manifest(path).model("mnist")


def test_tuned_and_default_configs_render_and_validate(
    tiny_onnx: Path, write_manifest, tmp_path: Path
) -> None:
    model = _model(tiny_onnx, write_manifest)
    opts = dataclasses.replace(OPTS, intra_op_threads=2)
    tuned = write_repo(tmp_path / "tuned", tuned_spec(model, opts), "cpu")
    default = write_repo(tmp_path / "default", default_spec(model, opts), "cpu")
    tuned_text = (tuned / "mnist" / "config.pbtxt").read_text()
    default_text = (default / "mnist" / "config.pbtxt").read_text()
    assert "max_queue_delay_microseconds: 500" in tuned_text and "count: 2" in tuned_text
    assert "max_batch_size: 256" in tuned_text and "max_batch_size: 256" in default_text
    assert 'string_value: "2"' in tuned_text and 'string_value: "1"' in default_text
    assert "dynamic_batching" not in default_text and "count: 1" in default_text
    for repo in (tuned, default):
        assert (repo / "mnist" / "1" / "model.py").is_file()
        assert (repo / "mnist" / "1" / "model.onnx").is_file()
        assert not validate_repo(repo)


def test_options_are_checked() -> None:
    with pytest.raises(DltkError, match="--served-batch 512"):
        ServingOptions(manifest=Path("m"), served_batch=512, max_batch_size=256).check()
    with pytest.raises(DltkError, match="--instances"):
        ServingOptions(manifest=Path("m"), instances=0).check()


def test_ratio_lines_round_trip() -> None:
    """Issue 11 item 8: each line is the median over the rounds with its range."""
    lines = ratio_lines(spread([0.8149, 0.79, 0.83]), spread([3.004, 2.9, 3.2]))
    assert lines == [
        "ratio served/in-process: 0.81 (min 0.79, max 0.83, n=3)",
        "ratio tuned/default: 3.00 (min 2.90, max 3.20, n=3)",
    ]
    parsed = parse_ratio_lines("noise\n" + "\n".join(lines) + "\n")
    assert parsed == {"served/in-process": 0.81, "tuned/default": 3.0}
    assert parse_ratio_lines("ratio tuned/default: 2.50\n") == {"tuned/default": 2.5}
    assert ratio(1.0, 0.0) == 0.0 and ratio(3.0, 2.0) == 1.5


def test_best_of_keeps_the_faster_run_per_batch() -> None:
    slow = Timing(8, 10, 1.0, 100.0, 100.0, 100.0)
    fast = Timing(8, 10, 0.5, 50.0, 50.0, 50.0)
    other = Timing(1, 10, 1.0, 100.0, 100.0, 100.0)
    assert best_of([slow, other], [fast]) == [other, fast]


def test_parse_proc_stat_handles_spaces_in_the_command_name() -> None:
    stat = "4242 (triton python b) S 4200 4242 4242 0 -1 4194560 1 0 0 0 150 30 0 0 20 0 9 0"
    assert parse_proc_stat(stat) == (4200, "triton python b", 180.0)


def test_tree_cpu_seconds_of_this_process_tree_is_not_negative() -> None:
    usage = tree_cpu_seconds(os.getppid())
    assert all(v >= 0 for v in usage.values())
    assert any(True for _ in usage)  # this test process is a descendant of its parent


def _m(value: float):  # type: ignore[no-untyped-def]
    """A TEST DOUBLE measurement: only the best row's throughput is read."""
    from types import SimpleNamespace

    return SimpleNamespace(best=SimpleNamespace(throughput=value, concurrency=64))


def _round(served: float, inproc: float, tuned: float, default: float, index: int, *more):  # type: ignore[no-untyped-def]
    """A ServingRound of TEST DOUBLE measurements; MORE: further (tuned, default) pairs."""
    from dltk.bench.serving import ServingRound, round_order

    ms = 1000.0 * 64 / inproc
    timing = Timing(64, 10, 10 * ms / 1000.0, ms, ms, ms)  # INPROC samples/s
    pairs = [(_m(t), _m(d)) for t, d in [(tuned, default), *more]]
    return ServingRound([timing], _m(served), pairs, round_order(index, len(pairs)))  # type: ignore[arg-type]


def test_rounds_interleave_and_each_ratio_is_the_median_of_the_rounds() -> None:
    from dltk.bench.serving import ServingResult, round_order

    # The tuned/default pair never follows the served sweep (it loads the tuned server with large
    # batches) and alternates its order; the sweep sits between the two in-process runs.
    assert round_order(0) == ("in-process", "served", "in-process", "tuned", "default")
    assert round_order(1) == ("in-process", "served", "in-process", "default", "tuned")
    assert round_order(2) == round_order(0)
    rounds = [
        _round(800, 1000, 300, 100, 0),  # served/in-process 0.8, tuned/default 3.0
        _round(600, 1000, 250, 100, 1),  # 0.6, 2.5
        _round(900, 1000, 330, 100, 2),  # 0.9, 3.3
    ]
    result = ServingResult(rounds, {})
    assert result.served_spread.median == pytest.approx(0.8)
    assert (result.served_spread.low, result.served_spread.high) == pytest.approx((0.6, 0.9))
    assert result.tuned_spread.median == pytest.approx(3.0)
    assert result.median_round is rounds[0]
    assert ServingResult(rounds[:2], {}).median_round is rounds[1]  # the lower of two


def test_pairs_run_abba_and_the_tuned_median_is_over_every_pair() -> None:
    from dltk.bench.serving import ServingResult, round_order

    tail = ("tuned", "default", "default", "tuned")
    assert round_order(0, 2) == ("in-process", "served", "in-process", *tail)
    baab = ("default", "tuned", "tuned", "default")
    assert round_order(1, 2) == ("in-process", "served", "in-process", *baab)
    assert round_order(0, 3)[3:] == (*tail, "tuned", "default")
    rounds = [
        _round(800, 1000, 300, 100, 0, (200, 100)),  # pairs 3.0, 2.0
        _round(600, 1000, 250, 100, 1, (260, 100), (240, 100)),  # 2.5, 2.6, 2.4
    ]
    result = ServingResult(rounds, {})
    assert rounds[0].pair_ratios == pytest.approx([3.0, 2.0])
    # The round's own ratio and tables use its median pair (the lower of two middle ones).
    assert rounds[0].tuned_ratio == pytest.approx(2.0)
    assert rounds[1].tuned_ratio == pytest.approx(2.5)
    assert rounds[1].tuned.best.throughput == 250
    # The printed median and range are over all five pairs, not over the rounds' medians.
    assert result.tuned_spread.median == pytest.approx(2.5)
    assert (result.tuned_spread.low, result.tuned_spread.high) == pytest.approx((2.0, 3.0))
    assert len(result.tuned_spread.values) == 5


def test_pairs_are_bounded() -> None:
    with pytest.raises(DltkError, match="--pairs must be between 1 and 10, got 0"):
        ServingOptions(manifest=Path("m"), pairs=0).check()
    with pytest.raises(DltkError, match="got 11"):
        ServingOptions(manifest=Path("m"), pairs=11).check()


def test_rounds_are_bounded() -> None:
    with pytest.raises(DltkError, match="--rounds must be between 1 and 20, got 0"):
        ServingOptions(manifest=Path("m"), rounds=0).check()
    with pytest.raises(DltkError, match="got 21"):
        ServingOptions(manifest=Path("m"), rounds=21).check()
