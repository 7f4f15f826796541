"""Zero failed requests while the fleet changes (issue 11 item 3, docs/rolling.md), in CI.

A fleet of its own (scripts/fleet.sh with FLEET_NAME=dltk-ci: two sandbox hosts dltk-ci-1 and
dltk-ci-2 behind HAProxy dltk-ci-lb, loopback ports 18600-18691, so `make fleet`'s is untouched)
gets three rollouts of `python -m dltk.fleet rollouts` with steady inference load (HTTP and
gRPC) through the load balancer: a new model version (with a model config change), a tritonserver
container change that restarts every server, a version that fails verification on the first
batch (the rollout stops there). Each must end with 0 failed requests; this test also checks the
versions each scenario leaves serving. The fleet is removed after. `make fleet-rollouts` runs all
five (the config change alone first, `restore` last) on four hosts; this keeps `make test` in its
time budget (the config-only rollout is the one the version rollout includes). Real docker
engine, sandbox hosts, HAProxy, tritonserver and deploy.yml; the rollouts' output goes to
build/fleet/dltk-ci/rollouts.log as they run.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from dltk.fleet import lb_runtime

from .support import REPO_ROOT

NAME = "dltk-ci"
BASE_PORT = 18600
HOSTS = 2
INVENTORY = REPO_ROOT / "build" / "fleet" / NAME / "inventory.yml"
LOG = INVENTORY.parent / "rollouts.log"
SCENARIOS = ("version", "container", "failing")
FLEET_TIMEOUT_S = 1200.0  # a cold 2-host deploy.yml and the load balancer
ROLLOUTS_TIMEOUT_S = 2400.0  # five deploy.yml runs, each bounded by --max-seconds too
pytestmark = pytest.mark.timeout(FLEET_TIMEOUT_S * 2 + ROLLOUTS_TIMEOUT_S + 300)


def run_group(command: list[str], timeout: float, env: dict[str, str]) -> tuple[int, str]:
    """COMMAND in a process group of its own (bounded): on timeout the whole group is killed,
    ansible-playbook and its workers included. Its exit status and output (stderr merged), which
    is also appended to LOG as it comes."""
    LOG.parent.mkdir(parents=True, exist_ok=True)
    with LOG.open("a") as log:
        log.write(f"$ {' '.join(command)}\n")
        log.flush()
        proc = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=REPO_ROOT,
            start_new_session=True,
        )  # fmt: skip
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            log.write(f"(killed after {timeout:.0f} s)\n")
    return proc.returncode, LOG.read_text()[-20000:]


def fleet_sh(action: str) -> tuple[int, str]:
    env = {
        **os.environ,
        "FLEET_NAME": NAME,
        "FLEET_PORT_BASE": str(BASE_PORT),
        "FLEET_HOSTS": str(HOSTS),
        "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}",
    }
    return run_group(["scripts/fleet.sh", action], FLEET_TIMEOUT_S, env)


@pytest.fixture(scope="module")
def rollouts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, dict]]:
    """The fleet up, the five rollouts run under load; their results by scenario."""
    LOG.unlink(missing_ok=True)
    fleet_sh("down")  # a fleet left over by an interrupted run
    rc, out = fleet_sh("up")
    if rc != 0:
        fleet_sh("down")
        pytest.fail(f"scripts/fleet.sh up exited {rc}:\n{out[-5000:]}")
    work = tmp_path_factory.mktemp("rollouts")
    results_file = work / "rollouts.json"
    try:
        _, out = run_group(
            [sys.executable, "-m", "dltk.fleet", "rollouts", "--inventory", str(INVENTORY),
             "--http", f"127.0.0.1:{BASE_PORT + 90}", "--grpc", f"127.0.0.1:{BASE_PORT + 91}",
             "--work", str(work), "--json", str(results_file), "--max-seconds", "600",
             "--only", ",".join(SCENARIOS)],
            ROLLOUTS_TIMEOUT_S,
            {**os.environ, "PYTHONPATH": str(REPO_ROOT / "scripts")},
        )  # fmt: skip
        print(out[-3000:])  # the table, in pytest's captured output
        assert results_file.is_file(), f"rollouts wrote no results:\n{out[-5000:]}"
        results = {r["scenario"]: r for r in json.loads(results_file.read_text())}
        results["_lb"] = {
            f"{s.backend}/{s.server}": s.status for s in lb_runtime.servers(f"{NAME}-lb")
        }
        yield results
    finally:
        fleet_sh("down")


def versions(result: dict, phase: str) -> set[str]:
    return set(next(p["versions"] for p in result["phases"] if p["name"] == phase))


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_no_request_fails_during_the_rollout(rollouts: dict[str, dict], scenario: str) -> None:
    result = rollouts[scenario]
    during = next(p for p in result["phases"] if p["name"] == "during")
    assert during["sent"] > 0, "no load ran while deploy.yml did"
    assert result["failed"] == 0, f"{scenario}: {result['failed']} failed requests: {during}"
    assert result["verdict"] == "ok", result["verdict"]


def test_each_rollout_leaves_the_version_it_should(rollouts: dict[str, dict]) -> None:
    first = versions(rollouts["version"], "before")
    assert len(first) == 1, f"the fleet served more than one version before the rollouts: {first}"
    # A new version replaces the weights everywhere; a container change keeps them.
    new = set(rollouts["version"]["served_at_end"])
    assert len(new) == 1 and new != first, f"after the new version: {new} (before: {first})"
    assert set(rollouts["container"]["served_at_end"]) == new
    # The failing version stopped on its first batch: only the previous version answers.
    failing = rollouts["failing"]
    assert failing["exit"] != 0, "deploy.yml passed although verification should fail"
    assert set(failing["served_at_end"]) == new


def test_the_failed_host_stays_out_of_rotation_the_other_serves(rollouts: dict[str, dict]) -> None:
    """After `failing` (batches of one host): the host of the first batch failed verification and
    stays out of rotation (drained, or down); the other was not touched and is up in both
    backends. Which host comes first is the rolling group's order (the probe play's)."""
    statuses = rollouts["_lb"]
    assert len(statuses) == 2 * HOSTS, statuses  # HTTP and gRPC backends
    by_host: dict[str, set[str]] = {}
    for key, status in statuses.items():
        by_host.setdefault(key.split("/", 1)[1], set()).add(status)
    assert sorted(by_host) == [f"{NAME}-1", f"{NAME}-2"], statuses
    up = [host for host, seen in by_host.items() if seen == {"UP"}]
    out = [host for host, seen in by_host.items() if "UP" not in seen]
    assert len(up) == 1 and len(out) == 1, f"one host up, the failed one out: {statuses}"
