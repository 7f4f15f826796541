"""`dltk drill`: fault drills on a sandbox host under constant load, with figures.

    dltk drill [NAMES] --inventory inventory/drill.yml --host dltk-drill-1 \
        [--setup] [--teardown] [--json FILE] [--markdown docs/reliability.md]

Each drill starts a bounded load client (dltk.drill.load) on the host's published HTTP port,
injects one real fault (dltk.drill.faults), waits for the host to come back (bounded), stops the
client and prints one row: fault, time to recover, requests sent and failed, anything lost.
`--markdown` writes the table under "## Fault drills" with the command that produced it.
"""

from __future__ import annotations

import argparse
import platform
import shlex
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import yaml

from dltk.drill.faults import (
    DRILL_PLAY_VARS,
    DRILLS,
    drill_function,
    mount_data_dir,
    unmount_data_dir,
)
from dltk.drill.host import DrillHost, deploy, models_not_ready, sandbox, wait_until
from dltk.drill.load import LoadClient
from dltk.drill.report import (
    DrillRow,
    as_json,
    count,
    markdown_table,
    recovery_seconds,
    replace_section,
    rows_from_json,
)
from dltk.errors import DltkError

SHORT = ("kill", "onnx", "port")
ENGINE = "engine"
DEFAULT_HTTP_PORT = 8000
SETTLE_S = 2.0  # load after a drill returns: failures right after "recovered" are counted too
WARMUP_REQUESTS = 3

USAGE = """\
Run: `make drill` (every drill, the engine restart included; rewrites this section), `make
drill-short` (kill, corrupt ONNX, port taken; prints the rows), or `dltk drill [NAMES] --inventory
inventory/drill.yml --host dltk-drill-1 [--setup] [--teardown] [--json F] [--markdown F]`. The
drill host dltk-drill-1 is a sandbox host of its own (ports 18100-18102), so drills never touch the
`make demo` host; `--setup` mounts its data directory on a size-limited tmpfs (for the disk drill),
starts it and deploys; `--teardown` removes it. Drills: kill, host, rm, onnx, noload, config, port,
disk, engine (only with `--restart-engine`: it restarts the machine's docker engine, and only one
that scripts/ensure-docker.sh started, not a systemd-managed one).
"""

METHOD = """\
Time to recover: from the fault to the first successful request after the last failed one
(0.00: no request failed). Load: one client thread sending MNIST (batch 1) over HTTP to the
drill host's published port, one request every 50 ms, bounded per drill by count and time.
Lost: a model not READY after the drill, model-repository files that differ from the serving
version after a failed rollout, a server the failed deploy replaced. The drills re-run the serve
stage (`--playbooks`, playbooks/serve.yml by default: the model repository and the server, not the
verifier) with `-e triton_verify_perf=false` (with deploy.yml, perf_analyzer would measure the
drill's own load). Requests time out after 2 s: a request slower than that counts as failed.
"""


def host_var(inventory: dict[str, Any], host: str, name: str) -> Any:
    """A variable set on `host` anywhere in a YAML inventory (pure); None when not set."""
    stack: list[Any] = [inventory]
    while stack:
        node = stack.pop()
        if not isinstance(node, dict):
            continue
        hosts = node.get("hosts")
        if isinstance(hosts, dict) and host in hosts:
            return (hosts[host] or {}).get(name)
        stack.extend(v for v in node.values() if isinstance(v, dict))
    return None


def select(names: list[str], restart_engine: bool) -> tuple[list[str], list[str]]:
    """(drills to run, skip reasons) for the names asked ([]: all; "short": SHORT) (pure)."""
    if not names:
        chosen = list(DRILLS)
    elif names == ["short"]:
        chosen = list(SHORT)
    else:
        unknown = [n for n in names if n not in DRILLS]
        if unknown:
            raise DltkError(
                f"unknown drill {', '.join(unknown)}: choose from {', '.join(DRILLS)} or 'short'"
            )
        chosen = names
    skipped = []
    if ENGINE in chosen and not restart_engine:
        chosen.remove(ENGINE)
        skipped.append(
            f"{ENGINE}: skipped, it restarts the machine's docker engine (every container on "
            "it stops); pass --restart-engine to run it"
        )
    if ENGINE in chosen:  # the most disruptive one last
        chosen.remove(ENGINE)
        chosen.append(ENGINE)
    return chosen, skipped


def run_drill(host: DrillHost, name: str, args: argparse.Namespace) -> DrillRow:
    client = LoadClient(host.url, host.models[0], args.max_requests, args.max_seconds)
    client.start()
    start = time.monotonic()
    if not wait_until(lambda: sum(r.ok for r in client.log) >= WARMUP_REQUESTS, 30):
        client.stop()
        raise DltkError(f"no successful request to {host.url} before drill {name}")
    notes: list[str] = []
    lost: list[str] = []
    fault_t = time.monotonic()
    try:
        fault = drill_function(name, args.engine_lock)(host)
        fault_t, lost, notes = fault.t, fault.lost, fault.notes
    except DltkError as exc:
        lost = [f"drill failed: {exc}"]
    time.sleep(SETTLE_S)
    client.stop()
    client.join(timeout=10)
    requests = client.requests_since(start)
    sent, failed = count(requests)
    if client.errors:
        notes.append("client errors: " + ", ".join(f"{k} x{v}" for k, v in client.errors.items()))
    if not client.is_alive() and len(client.log) >= args.max_requests:
        notes.append(f"client stopped at its bound of {args.max_requests} requests")
    return DrillRow(
        name, DRILLS[name], recovery_seconds(requests, fault_t), sent, failed, lost, notes
    )


def _print_row(row: DrillRow) -> None:
    recovery = "not recovered" if row.recovery_s is None else f"{row.recovery_s:.2f} s"
    print(
        f"[drill] {row.name}: {row.fault} | recover {recovery} | sent {row.sent} "
        f"| failed {row.failed} | lost: {'; '.join(row.lost) or 'nothing'}",
        flush=True,
    )
    for note in row.notes:
        print(f"[drill]   {note}", flush=True)


def markdown_body(rows: list[DrillRow], skipped: list[str], header: list[str]) -> str:
    lines = [*header, "", USAGE, METHOD, markdown_table(rows)]
    lines += [f"- {reason}" for reason in skipped]
    return "\n".join(lines)


def write_saved(args: argparse.Namespace) -> int:
    """--rows: the table from rows earlier runs saved with --json (no drill runs)."""
    rows = [row for path in args.rows for row in rows_from_json(Path(path).read_text())]
    for row in rows:
        _print_row(row)
    if args.markdown:
        header = [f"Produced by `{args.command_line or 'dltk drill --rows ...'}`."]
        path = Path(args.markdown)
        path.write_text(replace_section(path.read_text(), markdown_body(rows, [], header)))
    return 0 if all(r.passed for r in rows) else 1


def run(args: argparse.Namespace) -> int:
    if args.rows:
        return write_saved(args)
    started = time.monotonic()
    root = Path.cwd()
    inventory = Path(args.inventory)
    try:
        doc = yaml.safe_load(inventory.read_text())
    except OSError as exc:
        raise DltkError(f"cannot read the inventory {inventory}: {exc.strerror}") from None
    port = int(
        args.http_port or host_var(doc, args.host, "triton_server_http_port") or DEFAULT_HTTP_PORT
    )
    work = root / "build" / "drill"
    work.mkdir(parents=True, exist_ok=True)
    host = DrillHost(
        root, inventory.resolve(), args.host, port, work, playbooks=tuple(args.playbooks)
    )
    names, skipped = select(args.names, args.restart_engine)
    header = []
    if args.setup:
        print(f"[drill] {mount_data_dir(host, args.tmpfs_size)}", flush=True)
        sandbox(host, "up")
        play = deploy(host, *DRILL_PLAY_VARS, playbooks=["deploy.yml"])
        print(f"[drill] first deploy.yml rc={play.rc} in {play.seconds:.0f} s", flush=True)
        if play.rc != 0:
            raise DltkError(
                f"the first deploy.yml failed: {play.failure()} (log: {work}/plays.log)"
            )
        header.append(
            f"First deploy of the drill host (deploy.yml with perf): {play.seconds:.0f} s."
        )
    if models_not_ready(host):
        raise DltkError(
            f"models {', '.join(models_not_ready(host))} are not READY on {host.url}: "
            "deploy the drill host first (dltk drill --setup)"
        )
    rows = []
    try:
        for name in names:
            print(f"[drill] {name}: {DRILLS[name]} ...", flush=True)
            row = run_drill(host, name, args)
            _print_row(row)
            rows.append(row)
            if args.json:  # after each drill: a partial run keeps what it measured
                Path(args.json).parent.mkdir(parents=True, exist_ok=True)
                Path(args.json).write_text(as_json(rows))
    finally:
        if args.teardown:
            sandbox(host, "down")
            unmount_data_dir(host)
    total = time.monotonic() - started
    for reason in skipped:
        print(f"[drill] {reason}")
    print(f"[drill] {len(rows)} drills in {total:.0f} s", flush=True)
    command = args.command_line or "dltk drill " + shlex.join(sys.argv[2:])
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    header = [
        f"Produced by `{command}` on {when} ({platform.machine()}, "
        f"{_cpus()} cores, no GPU; drill host {host.name}, 127.0.0.1:{host.http_port}); "
        f"total {total:.0f} s.",
        *header,
    ]
    if args.markdown:
        path = Path(args.markdown)
        path.write_text(replace_section(path.read_text(), markdown_body(rows, skipped, header)))
    return 0 if all(r.passed for r in rows) else 1


def _cpus() -> int:
    import os

    return os.cpu_count() or 0


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "drill",
        help="fault drills on a sandbox host under load: time to recover, failed requests",
        description="Run fault drills on the drill host (its own sandbox host) under a bounded "
        f"load client. Drills: {', '.join(f'{k} ({v})' for k, v in DRILLS.items())}; "
        f"'short' = {', '.join(SHORT)}.",
    )
    parser.add_argument("names", nargs="*", help="drills to run (default: all)")
    parser.add_argument(
        "--inventory", default="inventory/drill.yml", help="the drill host's inventory"
    )
    parser.add_argument("--host", default="dltk-drill-1", help="the drill host (a sandbox host)")
    parser.add_argument("--http-port", type=int, help="published HTTP port (default: inventory)")
    parser.add_argument(
        "--playbooks",
        nargs="+",
        default=["deploy.yml"],
        help="what drills re-run (default deploy.yml; playbooks/serve.yml: its serve stage)",
    )
    parser.add_argument("--setup", action="store_true", help="mount its data dir, start it, deploy")
    parser.add_argument("--teardown", action="store_true", help="remove the drill host afterwards")
    parser.add_argument(
        "--tmpfs-size", default="256m", help="size of the data dir mount (disk drill)"
    )
    parser.add_argument("--restart-engine", action="store_true", help="run the engine drill")
    parser.add_argument(
        "--engine-lock", type=Path, help="flock file held around the engine restart"
    )
    parser.add_argument("--max-requests", type=int, default=20000, help="load bound per drill")
    parser.add_argument("--max-seconds", type=float, default=900.0, help="load bound per drill")
    parser.add_argument("--json", help="write the rows as JSON")
    parser.add_argument("--markdown", help="write the table into this file's '## Fault drills'")
    parser.add_argument(
        "--rows", nargs="+", help="write the table from JSON files of earlier runs (no drills)"
    )
    parser.add_argument("--command-line", help="the command to name in the markdown (make drill)")
    parser.set_defaults(func=run)
