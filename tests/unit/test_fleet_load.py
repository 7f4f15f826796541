"""dltk.fleet.load: the bounded load generator and what it reports (phases, p99, versions),
with a TEST DOUBLE sender instead of a load balancer."""

from __future__ import annotations

import time

import pytest

from dltk.errors import DltkError
from dltk.fleet.load import Load, Sample, last_versions, p99, phases


def test_p99_is_the_nearest_rank() -> None:
    assert p99([]) is None
    assert p99([5.0]) == 5.0
    assert p99([float(i) for i in range(1, 101)]) == 99.0
    assert p99([float(i) for i in range(1, 201)]) == 198.0


def test_phases_split_at_the_command_and_count_failures_and_versions() -> None:
    samples = [
        Sample(0.5, "http", True, 2.0, "1"),
        Sample(1.5, "grpc", True, 3.0, "1"),
        Sample(2.0, "http", False, 10.0, "", "connection refused"),
        Sample(2.5, "grpc", True, 8.0, "2"),
        Sample(4.5, "http", True, 2.5, "2"),
    ]
    before, during, after = phases(samples, start_s=1.0, end_s=3.0)
    assert (before.sent, before.failed, before.versions) == (1, 0, {"1": 1})
    assert (during.sent, during.failed) == (3, 1)
    assert during.versions == {"1": 1, "2": 1} and during.errors == {"connection refused": 1}
    assert during.p99_ms == 8.0  # failed requests do not count in the latency
    assert (after.sent, after.failed, after.p99_ms) == (1, 0, 2.5)
    assert last_versions(samples, tail=2) == {"2": 2}


def test_the_load_is_bounded_and_counts_every_failure() -> None:
    calls: list[str] = []

    def sender(protocol: str) -> str:  # TEST DOUBLE of a Triton client: every third call fails
        calls.append(protocol)
        if len(calls) % 3 == 0:
            raise ConnectionError("refused\nsecond line")
        return "7"

    load = Load(sender, workers=2, rate=500.0, max_seconds=5.0, max_requests=30).start()
    deadline = time.monotonic() + 5
    while len(calls) < 30 and time.monotonic() < deadline:
        time.sleep(0.01)
    samples = load.stop()
    assert len(samples) == 30 == len(calls)  # 15 per worker, then each stops
    assert {s.protocol for s in samples} == {"http", "grpc"}
    failed = [s for s in samples if not s.ok]
    assert len(failed) == 10 and {s.error for s in failed} == {"refused"}
    assert all(s.version == "7" for s in samples if s.ok)


def test_stop_ends_the_workers_early() -> None:
    load = Load(lambda protocol: "1", workers=2, rate=20.0, max_seconds=60.0).start()
    time.sleep(0.3)
    samples = load.stop()
    assert 0 < len(samples) < 40


def test_bad_bounds_are_refused() -> None:
    with pytest.raises(DltkError, match="workers >= 1"):
        Load(lambda p: "", workers=0)


def test_an_answer_id_tells_weights_apart_under_one_version_number() -> None:
    import numpy as np

    from dltk.fleet.load import answer_id

    a = answer_id("1", np.array([[0.1, 0.2]], dtype=np.float32))
    assert a.startswith("1/") and len(a) == 10
    assert answer_id("1", np.array([[0.10000001, 0.2]], dtype=np.float32)) == a  # rounding
    assert answer_id("1", np.array([[0.3, 0.2]], dtype=np.float32)) != a
    assert answer_id("2", np.array([[0.1, 0.2]], dtype=np.float32)).startswith("2/")
