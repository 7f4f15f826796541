"""The fault drills: each injects one real fault into the drill host and waits (bounded) for it
to come back. The load client runs around each drill (dltk.drill); a drill returns when the
fault happened and what it saw.

Sources: Docker's restart policies (https://docs.docker.com/engine/containers/start-containers-automatically/),
Triton's model readiness (`/v2/models/<m>/ready`, KServe v2 protocol,
https://github.com/kserve/kserve/blob/master/docs/predict-api/v2/required_api.md) and the
triton_server role's safe-update path (roles/triton_server/README.md).
"""

from __future__ import annotations

import fcntl
import os
import shutil
import signal
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from dltk.drill.host import (
    DrillHost,
    deploy,
    docker,
    inspect,
    models_not_ready,
    repo_snapshot,
    run,
    systemd_state,
    wait_until,
)
from dltk.drill.manifest import (
    big_variant,
    broken_variant,
    corrupt_copy,
    unfit_warmup,
    write_override,
)
from dltk.drill.report import files_lost
from dltk.errors import DltkError

# Re-runs during drills skip perf_analyzer: it would measure a server under the drill's own load.
DRILL_PLAY_VARS = ("-e", "triton_verify_perf=false")


@dataclass
class Fault:
    """What one drill did: when the fault happened (monotonic s) and what it saw afterwards."""

    t: float
    lost: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _books(host: DrillHost) -> str:
    return " ".join(host.playbooks)


def _ready(host: DrillHost) -> bool:
    return not models_not_ready(host)


def _wait_models(host: DrillHost, fault: Fault, what: str) -> None:
    if wait_until(lambda: _ready(host), host.recover_timeout_s):
        fault.notes.append(f"models READY {time.monotonic() - fault.t:.1f} s after the fault")
    else:
        missing = models_not_ready(host)
        fault.lost.append(
            f"not READY {host.recover_timeout_s:.0f} s after {what}: {', '.join(missing)}"
        )


def _started_at(host: DrillHost) -> str:
    return inspect(host.container, "{{.State.StartedAt}}")


def tritonserver_killed(host: DrillHost) -> Fault:
    """SIGKILL to tritonserver (PID 1 of its container) from the host, as the OOM killer would."""
    pid = int(inspect(host.container, "{{.State.Pid}}") or 0)
    if pid <= 0:
        raise DltkError(f"{host.container} is not running: deploy the drill host first")
    before = _started_at(host)
    fault = Fault(time.monotonic())
    os.kill(pid, signal.SIGKILL)
    restarted = wait_until(
        lambda: (
            _started_at(host) != before and inspect(host.container, "{{.State.Running}}") == "true"
        ),
        host.recover_timeout_s,
    )
    count = inspect(host.container, "{{.RestartCount}}")
    fault.notes.append(
        f"restart policy restarted the container (RestartCount {count})"
        if restarted
        else "the container was not restarted"
    )
    _wait_models(host, fault, "the kill")
    return fault


def container_removed(host: DrillHost) -> Fault:
    """`docker rm -f` of the tritonserver container, then a re-run of deploy.yml (or its stage)."""
    fault = Fault(time.monotonic())
    removed = docker("rm", "-f", host.container)
    if removed.returncode != 0:
        raise DltkError(f"docker rm -f {host.container} failed: {removed.stderr.strip()}")
    play = deploy(host, *DRILL_PLAY_VARS)
    fault.notes.append(f"{_books(host)} re-run rc={play.rc} in {play.seconds:.0f} s")
    if play.rc != 0:
        fault.notes.append(f"re-run failed: {play.failure()}")
    _wait_models(host, fault, "the re-run")
    return fault


def _dockerd_pid() -> int:
    try:
        return int(Path("/var/run/docker.pid").read_text().strip())
    except (OSError, ValueError):
        return 0


def engine_restarted(host: DrillHost, lock: Path | None) -> Fault:
    """Stop the machine's dockerd (SIGTERM) and start it as scripts/ensure-docker.sh does.

    Only for an engine that is not under systemd (the one ensure-docker.sh starts in the
    background): a user's own engine is not restarted.
    """
    if Path("/run/systemd/system").is_dir():
        raise DltkError(
            "the docker engine here is under systemd (the user's own): the engine drill restarts "
            "only an engine scripts/ensure-docker.sh started; run the other drills"
        )
    pid = _dockerd_pid()
    if pid <= 0:
        raise DltkError("no /var/run/docker.pid: cannot find the dockerd to restart")
    handle = None
    if lock is not None:
        lock.parent.mkdir(parents=True, exist_ok=True)
        handle = lock.open("w")
        fcntl.flock(handle, fcntl.LOCK_EX)  # other drills/helpers holding it finish first
    try:
        fault = Fault(time.monotonic())
        os.kill(pid, signal.SIGTERM)
        if not wait_until(lambda: not Path(f"/proc/{pid}").exists(), 90):
            raise DltkError(f"dockerd (pid {pid}) did not stop within 90 s")
        fault.notes.append(f"dockerd stopped after {time.monotonic() - fault.t:.1f} s")
        started = run(
            ["setsid", str(host.root / "scripts/ensure-docker.sh")], timeout=120, cwd=host.root
        )
        if started.returncode != 0:
            raise DltkError(f"scripts/ensure-docker.sh failed: {started.stdout[-300:]}")
        fault.notes.append(f"engine answered {time.monotonic() - fault.t:.1f} s after the stop")
    finally:
        if handle is not None:
            fcntl.flock(handle, fcntl.LOCK_UN)
            handle.close()
    if wait_until(lambda: systemd_state(host) in ("running", "degraded"), 120):
        fault.notes.append(f"sandbox host systemd {systemd_state(host)}")
    else:
        fault.lost.append(f"sandbox host systemd {systemd_state(host)} (restart policy?)")
    _wait_models(host, fault, "the engine restart")
    return fault


def host_restarted(host: DrillHost) -> Fault:
    """`docker restart` of the sandbox host (its systemd reboots; Triton is a sibling container)."""
    fault = Fault(time.monotonic())
    restarted = docker("restart", "-t", "10", host.name, timeout=120)
    if restarted.returncode != 0:
        raise DltkError(f"docker restart {host.name} failed: {restarted.stderr.strip()}")
    if wait_until(lambda: systemd_state(host) in ("running", "degraded"), 120):
        fault.notes.append(
            f"systemd {systemd_state(host)} {time.monotonic() - fault.t:.1f} s after the restart"
        )
    else:
        fault.lost.append(f"systemd {systemd_state(host)} 120 s after the restart")
    fault.notes.append(
        "tritonserver runs on the engine, beside the host container: not restarted with it "
        f"(StartedAt {_started_at(host)})"
    )
    _wait_models(host, fault, "the host restart")
    return fault


def _rollout(
    host: DrillHost, label: str, onnx: Path | None = None, fields: dict | None = None
) -> Fault:
    """Deploy a manifest whose mnist is `onnx` and/or has `fields`; expect a failed play and the
    old version serving."""
    manifest = write_override(
        host.root / "model_repo/models.yml", host.work / label, "mnist", onnx, fields
    )
    before = repo_snapshot(host.repo_dir)
    fault = Fault(time.monotonic())
    play = deploy(host, "-e", f"dltk_manifest={manifest}", *DRILL_PLAY_VARS)
    fault.notes.append(f"{_books(host)} rc={play.rc} in {play.seconds:.0f} s")
    if play.rc == 0:
        fault.lost.append(f"{_books(host)} passed with a bad model")
    else:
        fault.notes.append(f"error: {play.failure()}")
    fault.lost += files_lost(before, repo_snapshot(host.repo_dir))
    if models_not_ready(host):
        fault.lost.append(f"not READY after the rollout: {', '.join(models_not_ready(host))}")
    return fault


def rollout_corrupt_onnx(host: DrillHost) -> Fault:
    onnx = corrupt_copy(host.root / "build/models/mnist.onnx", host.work / "mnist-corrupt.onnx")
    return _rollout(host, "corrupt-onnx", onnx)


def rollout_fails_to_load(host: DrillHost) -> Fault:
    onnx = broken_variant(host.root / "build/models/mnist.onnx", host.work / "mnist-noload.onnx")
    return _rollout(host, "fails-to-load", onnx)


def rollout_config_fails_to_load(host: DrillHost) -> Fault:
    # mnist's input: "input", [1, 28, 28] without the batch dim (dltk export --model mnist).
    return _rollout(host, "config-fails-to-load", fields=unfit_warmup("input", [1, 28, 28]))


def port_taken(host: DrillHost) -> Fault:
    """Deploy with triton_server_http_port set to a port another process holds on 127.0.0.1."""
    holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    holder.bind(("127.0.0.1", 0))
    holder.listen(1)
    port = holder.getsockname()[1]
    before_id = inspect(host.container, "{{.Id}}")
    before_start = _started_at(host)
    try:
        fault = Fault(time.monotonic())
        play = deploy(host, "-e", f"triton_server_http_port={port}", *DRILL_PLAY_VARS)
    finally:
        holder.close()
    fault.notes.append(
        f"port {port} held by the drill; {_books(host)} rc={play.rc} in {play.seconds:.0f} s"
    )
    if play.rc == 0:
        fault.lost.append(f"{_books(host)} passed on a taken port")
    else:
        fault.notes.append(f"error: {play.failure()}")
    after_id, after_start = inspect(host.container, "{{.Id}}"), _started_at(host)
    if (after_id, after_start) != (before_id, before_start):
        fault.lost.append(
            "old tritonserver container "
            + ("removed" if after_id != before_id else "restarted")
            + " by the failed deploy"
        )
    if models_not_ready(host):
        fault.lost.append(f"not READY after the deploy: {', '.join(models_not_ready(host))}")
        restore = deploy(host, *DRILL_PLAY_VARS)
        fault.notes.append(f"restored by a plain {_books(host)} re-run: rc={restore.rc}")
    return fault


def _is_mountpoint(path: Path) -> bool:
    return os.path.ismount(path)


def disk_full(host: DrillHost) -> Fault:
    """A new model version larger than the free space of the model repository's filesystem.

    The drill host's data directory is a size-limited tmpfs (`dltk drill --setup` mounts it before
    the host starts); the drill fills it to a few MB and deploys a version that does not fit.
    """
    if not _is_mountpoint(host.data_dir):
        raise DltkError(
            f"{host.data_dir} is not a size-limited mount (dltk drill --setup mounts one): "
            "cannot fill the model repository's disk without filling the machine's"
        )
    filler = host.data_dir / "drill-filler"
    stats = os.statvfs(host.data_dir)
    free = stats.f_bavail * stats.f_frsize
    headroom = 4 * 1024 * 1024  # the kept copy of the serving version fits; the new one does not
    onnx = big_variant(
        host.root / "build/models/mnist.onnx", host.work / "mnist-big.onnx", extra_mb=32
    )
    with filler.open("wb") as f:
        os.posix_fallocate(f.fileno(), 0, max(free - headroom, 0))
    try:
        fault = _rollout(host, "disk-full", onnx)
        left = os.statvfs(host.data_dir)
        fault.notes.append(f"{left.f_bavail * left.f_frsize // 1024} KiB left on the mount")
    finally:
        filler.unlink(missing_ok=True)
    restore = deploy(host, *DRILL_PLAY_VARS)
    fault.notes.append(f"after freeing the space, a plain re-run rc={restore.rc}")
    if restore.rc != 0:
        fault.lost.append(f"re-run after freeing space failed: {restore.failure()}")
    return fault


def mount_data_dir(host: DrillHost, size: str) -> str:
    """Mount a size-limited tmpfs at the drill host's data directory (before the host starts)."""
    host.data_dir.mkdir(parents=True, exist_ok=True)
    if _is_mountpoint(host.data_dir):
        return f"{host.data_dir} already a mount"
    if any(host.data_dir.iterdir()):
        raise DltkError(f"{host.data_dir} is not empty: `dltk drill --teardown` first")
    result = run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(host.data_dir)]
    )
    if result.returncode != 0:
        return f"no size-limited mount ({result.stderr.strip()}): the disk-full drill cannot run"
    return f"{host.data_dir}: tmpfs size={size}"


def unmount_data_dir(host: DrillHost) -> None:
    if _is_mountpoint(host.data_dir):
        run(["umount", str(host.data_dir)])
    shutil.rmtree(host.data_dir, ignore_errors=True)


Drill = Callable[[DrillHost], Fault]

# name -> (fault description, drill); the engine drill takes its lock path (see dltk.drill).
DRILLS: dict[str, str] = {
    "kill": "tritonserver process killed (SIGKILL to the container's PID 1)",
    "rm": "tritonserver container removed (docker rm -f), then the deploy re-run",
    "engine": "docker engine restarted (dockerd SIGTERM, started as ensure-docker.sh does)",
    "host": "sandbox host restarted (docker restart of the systemd host)",
    "onnx": "bad rollout: corrupt ONNX (truncated file) via a manifest override",
    "noload": "bad rollout: model that validates but fails to load (unknown ONNX op)",
    "config": "bad rollout: config that fails to load (a warmup shape that does not fit the input)",
    "port": "deploy with triton_server_http_port held by another process on 127.0.0.1",
    "disk": "model repository disk full during the copy (tmpfs, 32 MB larger version)",
}


def drill_function(name: str, engine_lock: Path | None) -> Drill:
    table: dict[str, Drill] = {
        "kill": tritonserver_killed,
        "rm": container_removed,
        "engine": lambda host: engine_restarted(host, engine_lock),
        "host": host_restarted,
        "onnx": rollout_corrupt_onnx,
        "noload": rollout_fails_to_load,
        "config": rollout_config_fails_to_load,
        "port": port_taken,
        "disk": disk_full,
    }
    return table[name]
