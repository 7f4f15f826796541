"""`dltk bench fleet`: the recap reading, the two sides, the run order, the converged check, the
ratio and the fleet perf lines.

The deploy is a TEST DOUBLE here (it records the calls and answers with a recap); the real bench
runs ansible-playbook on a fleet sandbox of its own (README, `dltk bench fleet`).
"""

from __future__ import annotations

import pytest
from play_double import Play

from dltk.bench.fleet import (
    Run,
    busy_seconds,
    cpu_floors,
    extra_vars,
    fleet_perf_lines,
    measure,
    ratios,
    recap,
    report_lines,
    round_order,
    sides,
)
from dltk.errors import DltkError
from dltk.perf import PerfRow

RECAP = """
TASK [x] ***
changed: [dltk-bench-1]

PLAY RECAP *********************************************************************
dltk-bench-1               : ok=120  changed=0    unreachable=0    failed=0    skipped=40
dltk-bench-2               : ok=118  changed=2    unreachable=0    failed=0    skipped=40
localhost                  : ok=4    changed=0    unreachable=0    failed=0    skipped=0
"""


def test_recap_reads_every_hosts_changed_count_of_the_last_recap():
    assert recap(RECAP) == {"dltk-bench-1": 0, "dltk-bench-2": 2, "localhost": 0}
    later = "\nPLAY RECAP ***\ndltk-bench-1 : ok=3 changed=1 unreachable=0\n"
    assert recap(RECAP + later) == {"dltk-bench-1": 1}
    assert recap("no recap: the play never ran") == {}


def test_the_two_sides_differ_only_in_the_triton_hosts():
    one, many = sides(4, "fb")
    assert one.label == "1-host" and many.label == "4-host"
    assert one.hosts == ("fb-1",)
    assert many.hosts == ("fb-1", "fb-2", "fb-3", "fb-4")
    # The control node (preflight's localhost play) and the load balancer are in both limits.
    assert one.limit == "fb-1,localhost,fb-lb"
    assert many.limit == "fb-1,fb-2,fb-3,fb-4,localhost,fb-lb"
    with pytest.raises(DltkError, match="at least 2 hosts"):
        sides(1)


def test_the_order_alternates_round_by_round():
    one, many = sides(4)
    assert [round_order(i, one, many) for i in range(3)] == [
        (one, many),
        (many, one),
        (one, many),
    ]


def _deploy_double(calls: list[str], changed: dict[int, int] | None = None, rc: int = 0):
    """A deploy TEST DOUBLE: records the side, takes 10 s per host of the side and answers with
    a recap of its hosts (changed=0 unless `changed` names a call number)."""

    def deploy(side) -> Play:  # type: ignore[no-untyped-def]
        calls.append(side.label)
        n = (changed or {}).get(len(calls), 0)
        lines = [f"{h} : ok=9 changed={n} unreachable=0" for h in (*side.hosts, "localhost")]
        return Play(rc, 10.0 * len(side.hosts), "PLAY RECAP ***\n" + "\n".join(lines))

    return deploy


def test_measure_warms_up_then_alternates_the_sides():
    calls: list[str] = []
    one, many = sides(4)
    runs = measure(one, many, 3, _deploy_double(calls), lambda _m: None)
    assert calls == ["4-host", "1-host", "4-host", "4-host", "1-host", "1-host", "4-host"]
    assert [r.seconds for r in runs["1-host"]] == [10.0] * 3
    assert [r.seconds for r in runs["4-host"]] == [40.0] * 3


def test_a_run_that_changed_something_stops_the_bench():
    one, many = sides(2)
    # Call 3 is round 1's second run: the 2-host one.
    with pytest.raises(
        DltkError, match=r"2-host deploy.yml was not converged: .*dltk-bench-1 \(1\)"
    ):
        measure(one, many, 2, _deploy_double([], changed={3: 1}), lambda _m: None)
    # The warm-up may change things (it converges the fleet): it is repeated until it does not.
    calls: list[str] = []
    runs = measure(one, many, 1, _deploy_double(calls, changed={1: 5, 2: 1}), lambda _m: None)
    assert calls == ["2-host"] * 3 + ["1-host", "2-host"]
    assert len(runs["1-host"]) == 1
    with pytest.raises(DltkError, match="did not converge in 2 warm-up runs"):
        measure(one, many, 1, _deploy_double([], changed={1: 5, 2: 1}), lambda _m: None, 2)


def test_a_host_missing_from_the_recap_is_not_converged():
    run = Run(1.0, {"dltk-bench-1": 0, "localhost": 0, "dltk-bench-lb": 1})
    assert run.not_converged(["dltk-bench-1", "dltk-bench-2", "localhost"]) == [
        "dltk-bench-2",
        "dltk-bench-lb",
    ]


def test_a_failed_play_stops_the_bench_with_its_failure():
    one, many = sides(4)
    with pytest.raises(DltkError, match="4-host deploy.yml failed: the TEST DOUBLE's failure"):
        measure(one, many, 1, _deploy_double([], rc=2), lambda _m: None)


def test_ratio_pairs_rounds_and_the_report_prints_it():
    assert ratios([10.0, 20.0], [15.0, 20.0]) == [1.5, 1.0]
    with pytest.raises(DltkError, match="2 1-host runs but 1 runs"):
        ratios([10.0, 20.0], [15.0])
    one, many = sides(4)
    runs = {
        "1-host": [Run(10.0, {"a": 0}), Run(20.0, {"a": 0}), Run(12.0, {"a": 0})],
        "4-host": [Run(15.0, {"a": 0}), Run(22.0, {"a": 0}), Run(24.0, {"a": 0})],
    }
    lines = report_lines(one, many, runs)
    assert "1-host converged deploy.yml s: 12.0 (min 10.0, max 20.0, n=3)" in lines
    assert "4-host converged deploy.yml s: 22.0 (min 15.0, max 24.0, n=3)" in lines
    assert "changed= of every timed run (all hosts): 0, 0, 0, 0, 0, 0" in lines
    assert lines[-1] == "ratio 4-host/1-host converged deploy: 1.50 (min 1.10, max 2.00, n=3)"


def test_the_fleet_perf_lines_name_each_level():
    rows = [PerfRow(1, 812.4, 1.0, 2.0, 2.5, 3.21), PerfRow(2, 1500.0, 1.0, 2.0, 2.5, 4.0)]
    assert fleet_perf_lines("127.0.0.1:18791", "grpc", rows) == [
        "fleet perf_analyzer grpc through the load balancer (127.0.0.1:18791), concurrency 1: "
        "812 infer/s, p99 3.2 ms",
        "fleet perf_analyzer grpc through the load balancer (127.0.0.1:18791), concurrency 2: "
        "1500 infer/s, p99 4.0 ms",
    ]
    assert fleet_perf_lines("u", "grpc", []) == [
        "fleet perf_analyzer through the load balancer (u): no level measured"
    ]


def test_the_bench_fleet_builds_a_toolkit_image_name_of_its_own():
    image = extra_vars("fb")["dltk_toolkit_image"]
    # Another checkout's deploy rebuilding dltk/toolkit does not touch it; the tag is the release's.
    assert image == "dltk/toolkit-fb:{{ dltk_ngc_toolkit_tag }}"


def test_busy_seconds_reads_the_machine_line_of_proc_stat_without_idle_and_iowait():
    stat = "cpu  100 20 30 5000 70 1 2 3 0 0\ncpu0 50 10 15 2500 35 1 1 2 0 0\nintr 12345\n"
    # user + nice + system + irq + softirq + steal = 100 + 20 + 30 + 1 + 2 + 3 ticks at 100 Hz.
    assert busy_seconds(stat, 100) == pytest.approx(1.56)
    with pytest.raises(DltkError, match="no cpu line"):
        busy_seconds("intr 1\n", 100)


def _cpu_clock_double(step_s: float):
    """A CPU clock TEST DOUBLE: each reading is `step_s` later than the one before."""
    now = [0.0]

    def clock() -> float:
        now[0] += step_s
        return now[0]

    return clock


def test_measure_records_the_machine_cpu_of_each_run_and_the_report_prints_the_floor():
    one, many = sides(4)
    runs = measure(
        one,
        many,
        3,
        _deploy_double([]),
        lambda _m: None,
        cpu_clock=_cpu_clock_double(5.0),
        control_clock=_cpu_clock_double(2.0),
    )
    # Two readings per run, 5 s apart: 5 CPU seconds each.
    assert [r.cpu_s for r in runs["4-host"]] == [5.0] * 3
    assert [r.control_cpu_s for r in runs["1-host"]] == [2.0] * 3
    runs = {
        "1-host": [
            Run(10.0, {"a": 0}, 8.0, 4.0),
            Run(20.0, {"a": 0}, 12.0, 5.0),
            Run(10.0, {"a": 0}, 9.0, 6.0),
        ],
        "4-host": [
            Run(30.0, {"a": 0}, 40.0, 20.0),
            Run(40.0, {"a": 0}, 60.0, 22.0),
            Run(25.0, {"a": 0}, 50.0, 21.0),
        ],
    }
    # 4-host CPU s / 2 cores / 1-host s: 40/2/10, 60/2/20, 50/2/10.
    assert cpu_floors(runs["1-host"], runs["4-host"], 2) == [2.0, 1.5, 2.5]
    lines = report_lines(one, many, runs, cores=2)
    assert (
        "CPU floor of the ratio on 2 cores (4-host CPU s / cores / 1-host s): 2.00 "
        "(min 1.50, max 2.50, n=3)" in lines
    )
    assert (
        "4-host machine CPU s (every process): 50.0 (min 40.0, max 60.0, n=3); "
        "busy share of 2 cores: 0.75 (min 0.67, max 1.00, n=3); "
        "of it the control node's (ansible-playbook and its children): "
        "21.0 (min 20.0, max 22.0, n=3)" in lines
    )
    assert lines[-1].startswith("ratio 4-host/1-host converged deploy: ")
    # Without CPU readings (or cores) the report has no CPU lines.
    assert not [
        x
        for x in report_lines(
            one, many, {k: [Run(r.seconds, r.changed) for r in v] for k, v in runs.items()}, 2
        )
        if "CPU" in x
    ]
