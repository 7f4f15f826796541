"""`dltk bench fleet`: what a converged deploy.yml costs on N hosts next to one host.

The bench brings up a fleet of its own (scripts/fleet.sh with FLEET_NAME and FLEET_PORT_BASE:
N sandbox hosts and the load balancer), then, round after round, times a converged deploy.yml on
one host of that fleet (`--limit NAME-1` plus the control node and the load balancer) and on all
N, in alternating order (round 1: one host first, round 2: N hosts first, ...), so drift of a
shared machine reaches both sides alike. Every run must end with changed=0 on every host. Each
round gives N-host/1-host; the bench prints its median and spread and the seconds of each side.

The fleet inventory turns the per-host perf sweep off (`triton_verify_perf: false`). After the
timed rounds (unless `--no-perf`), one perf_analyzer sweep from the control node through the load
balancer's published gRPC port: perf_analyzer reads the statistics API for every measurement, which
tritonserver answers only with the deployment's key, so the fleet's hosts share one key (kept
next to the fleet's inventory) and its load balancer forwards statistics
(scripts/dltk/fleet/inventory.py, roles/triton_lb/README.md); the sweep sends the key.
"""

from __future__ import annotations

import os
import resource
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dltk.bench.converge import RECAP_LINE
from dltk.bench.timing import spread
from dltk.errors import DltkError

NAME = "dltk-bench"
# Ports BASE .. BASE+91 (fleet/inventory.py): apart from the default fleet (18400) and the CI
# fleet (18600).
BASE_PORT = 18700


def extra_vars(name: str = NAME) -> dict[str, str]:
    """deploy.yml's extra variables on the bench's fleet: a toolkit image name of its own (same
    sources, same tag). The tag is shared by every sandbox on the machine's one engine, and the
    fast path observes the image by ID: a deploy from another checkout rebuilding the shared name
    would make this fleet's next run a full one (and this fleet's builds theirs)."""
    return {"dltk_toolkit_image": f"dltk/toolkit-{name}:{{{{ dltk_ngc_toolkit_tag }}}}"}


def recap(output: str) -> dict[str, int]:
    """host -> changed= of the last PLAY RECAP in an ansible-playbook output."""
    marker = output.rfind("PLAY RECAP")
    text = output[marker:] if marker >= 0 else ""
    return {m["host"]: int(m["changed"]) for m in RECAP_LINE.finditer(text)}


@dataclass(frozen=True)
class Side:
    """One side of the comparison: the fleet's Triton hosts a run targets and its --limit."""

    label: str
    hosts: tuple[str, ...]
    limit: str


def sides(count: int, name: str = NAME) -> tuple[Side, Side]:
    """The 1-host run and the `count`-host run on the same inventory.

    Both limit the play to their Triton hosts plus `localhost` (preflight.yml's first play) and
    the load balancer host (a delegation target): the two runs differ only in how many Triton
    hosts the plays target.
    """
    if count < 2:
        raise DltkError(f"bench fleet: --hosts {count}: compare at least 2 hosts with 1")
    hosts = tuple(f"{name}-{i}" for i in range(1, count + 1))
    extra = ("localhost", f"{name}-lb")
    return (
        Side("1-host", hosts[:1], ",".join(hosts[:1] + extra)),
        Side(f"{count}-host", hosts, ",".join(hosts + extra)),
    )


def round_order(index: int, one: Side, many: Side) -> tuple[Side, Side]:
    """Round 0: one host first; round 1: all hosts first; and so on."""
    return (one, many) if index % 2 == 0 else (many, one)


def busy_seconds(proc_stat: str, hz: int) -> float:
    """CPU seconds the whole machine spent busy since boot, all cores and processes (the `cpu`
    line of /proc/stat: user, nice, system, irq, softirq, steal; not idle nor iowait)."""
    for line in proc_stat.splitlines():
        fields = line.split()
        if fields and fields[0] == "cpu":
            ticks = [int(x) for x in fields[1:9]] + [0] * 8
            user, nice, system, _idle, _iowait, irq, softirq, steal = ticks[:8]
            return (user + nice + system + irq + softirq + steal) / hz
    raise DltkError("/proc/stat has no cpu line")


def machine_busy_seconds() -> float:
    """busy_seconds of this machine now (Linux)."""
    return busy_seconds(Path("/proc/stat").read_text(), os.sysconf("SC_CLK_TCK"))


def children_cpu_seconds() -> float:
    """CPU seconds of this process's waited-for children so far: around one deploy, the
    control node's part (ansible-playbook, its forks, the docker CLIs they ran); not what the
    hosts' containers ran (children of the docker engine)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@dataclass
class Run:
    seconds: float
    changed: dict[str, int]
    # CPU seconds the machine spent busy during the run (every process, not only the run's).
    cpu_s: float = 0.0
    # Of those, the control node's: ansible-playbook and the processes it waited for.
    control_cpu_s: float = 0.0

    def not_converged(self, hosts: Sequence[str]) -> list[str]:
        """Hosts of the run whose recap is missing or shows a change."""
        return [h for h in hosts if self.changed.get(h) != 0] + sorted(
            h for h, c in self.changed.items() if c != 0 and h not in hosts
        )


def play(
    deploy: Callable[[Side], Any],
    side: Side,
    log: Callable[[str], None],
    cpu_clock: Callable[[], float] = machine_busy_seconds,
    control_clock: Callable[[], float] = children_cpu_seconds,
) -> Run:
    before, control_before = cpu_clock(), control_clock()
    result = deploy(side)
    cpu_s, control_s = cpu_clock() - before, control_clock() - control_before
    if result.rc != 0:
        raise DltkError(f"{side.label} deploy.yml failed: {result.failure()}")
    run = Run(result.seconds, recap(result.output), cpu_s, control_s)
    changed = ", ".join(f"{h} {c}" for h, c in sorted(run.changed.items()) if c) or "0"
    log(f"{side.label} converged deploy.yml {run.seconds:.1f} s, machine CPU {cpu_s:.1f} s "
        f"(control node {control_s:.1f} s), changed: {changed}")  # fmt: skip
    return run


def measure(
    one: Side,
    many: Side,
    rounds: int,
    deploy: Callable[[Side], Any],
    log: Callable[[str], None],
    warmups: int = 3,
    cpu_clock: Callable[[], float] = machine_busy_seconds,
    control_clock: Callable[[], float] = children_cpu_seconds,
) -> dict[str, list[Run]]:
    """Untimed runs of `many` until one changes nothing (at most `warmups`: the fleet converges,
    caches are warm), then `rounds` rounds of both sides in alternating order. A timed run that
    changed something stops the bench: the comparison is of converged deploys."""
    if rounds < 1:
        raise DltkError(f"bench fleet: --rounds {rounds}: at least 1")
    for i in range(warmups):
        log(f"warm-up {i + 1}: {many.label} deploy.yml (not timed)")
        warm = play(deploy, many, log, cpu_clock, control_clock)
        if not warm.not_converged([*many.hosts, "localhost"]):
            break
    else:
        raise DltkError(
            f"the fleet did not converge in {warmups} warm-up runs (changed in the last: "
            f"{', '.join(f'{h} {c}' for h, c in sorted(warm.changed.items()) if c)})"
        )
    runs: dict[str, list[Run]] = {one.label: [], many.label: []}
    for i in range(rounds):
        log(f"round {i + 1}/{rounds}")
        for side in round_order(i, one, many):
            run = play(deploy, side, log, cpu_clock, control_clock)
            bad = run.not_converged([*side.hosts, "localhost"])
            if bad:
                raise DltkError(
                    f"{side.label} deploy.yml was not converged: changed or missing in the recap: "
                    f"{', '.join(f'{h} ({run.changed.get(h)})' for h in bad)}"
                )
            runs[side.label].append(run)
    return runs


def ratios(one: Sequence[float], many: Sequence[float]) -> list[float]:
    """many/one of each round (paired in order)."""
    if len(one) != len(many):
        raise DltkError(f"{len(one)} 1-host runs but {len(many)} runs on the fleet")
    return [m / o for o, m in zip(one, many, strict=True) if o > 0]


def cpu_floors(one: Sequence[Run], many: Sequence[Run], cores: int) -> list[float]:
    """Per round, the least N-host/1-host ratio this machine allows when the N-host run's CPU
    work cannot go faster than all cores busy: (N-host CPU seconds / cores) / 1-host seconds."""
    return [m.cpu_s / cores / o.seconds for o, m in zip(one, many, strict=True) if o.seconds > 0]


def report_lines(
    one: Side, many: Side, runs: dict[str, list[Run]], cores: int | None = None
) -> list[str]:
    a = [r.seconds for r in runs[one.label]]
    b = [r.seconds for r in runs[many.label]]
    lines = [
        f"{one.label} converged deploy.yml s: " + spread(a).text(1),
        f"{many.label} converged deploy.yml s: " + spread(b).text(1),
        "changed= of every timed run (all hosts): "
        + ", ".join(str(sum(r.changed.values())) for r in [*runs[one.label], *runs[many.label]]),
    ]
    if cores and all(r.cpu_s > 0 for r in [*runs[one.label], *runs[many.label]]):
        for side in (one, many):
            busy = [r.cpu_s / (r.seconds * cores) for r in runs[side.label] if r.seconds > 0]
            lines.append(
                f"{side.label} machine CPU s (every process): "
                + spread([r.cpu_s for r in runs[side.label]]).text(1)
                + f"; busy share of {cores} cores: "
                + spread(busy).text(2)
                + "; of it the control node's (ansible-playbook and its children): "
                + spread([r.control_cpu_s for r in runs[side.label]]).text(1)
            )
        lines.append(
            f"CPU floor of the ratio on {cores} cores "
            f"({many.label} CPU s / cores / {one.label} s): "
            + spread(cpu_floors(runs[one.label], runs[many.label], cores)).text(2)
        )
    lines.append(
        f"ratio {many.label}/{one.label} converged deploy: " + spread(ratios(a, b)).text(2)
    )
    return lines


# --- the fleet-level perf run through the load balancer -------------------------------------


def fleet_perf_lines(url: str, protocol: str, rows: Sequence[Any]) -> list[str]:
    """What the bench prints of the perf_analyzer sweep through the load balancer (PerfRow-like
    rows: concurrency, throughput, p99_ms)."""
    if not rows:
        return [f"fleet perf_analyzer through the load balancer ({url}): no level measured"]
    return [
        f"fleet perf_analyzer {protocol} through the load balancer ({url}), concurrency "
        f"{row.concurrency}: {row.throughput:.0f} infer/s, p99 {row.p99_ms:.1f} ms"
        for row in rows
    ]
