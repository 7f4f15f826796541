"""python -m dltk.fleet inventory | traffic | lb  (make fleet uses them; --help on each)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from dltk.errors import DltkError
from dltk.fleet import inventory, lb_runtime, traffic
from dltk.fleet import load as fleet_load


def _inventory(args: argparse.Namespace) -> int:
    out = inventory.write_inventory(
        args.hosts, Path(args.out), Path(args.group_vars), args.name, args.base_port
    )
    print(" ".join(inventory.host_names(args.hosts, args.name)))
    lb = inventory.lb_host(args.name)
    print(f"[fleet] inventory {out} ({args.hosts} hosts + {lb})", file=sys.stderr)
    return 0


def _traffic(args: argparse.Namespace) -> int:
    urls = dict(item.split("=", 1) for item in args.metrics)
    before = traffic.success_counts(urls, args.model)
    ok_http, ok_grpc = traffic.send(args.http, args.grpc, args.model, args.requests)
    counts = traffic.host_counts(before, traffic.success_counts(urls, args.model))
    sent = f"{ok_http} HTTP + {ok_grpc} gRPC inferences of {args.model}"
    print(f"[fleet] through the load balancer: {sent}")
    print(f"{'host':<16} {'requests served (from its own Triton metrics)':>46}")
    for c in counts:
        print(f"{c.host:<16} {c.delta:>46}")
    if args.lb_container:
        print(f"{'backend/server':<32} {'status':<8} {'sent by the LB (stot)':>22}")
        for s in lb_runtime.servers(args.lb_container):
            print(f"{s.backend + '/' + s.server:<32} {s.status:<8} {s.sessions_total:>22}")
    missing = traffic.unreached(counts)
    if missing:
        print(f"[fleet] FAILED: no request reached {', '.join(missing)}", file=sys.stderr)
        return 1
    print(f"[fleet] every host served requests through the load balancer ({len(counts)} hosts)")
    return 0


def _load(args: argparse.Namespace) -> int:
    """Steady load through the LB around COMMAND; exit 1 when a request failed (or COMMAND's
    exit status is not the expected one)."""
    command = [a for a in args.command if a != "--"]
    if not command:
        raise DltkError("load: name the command to run under load after --")
    send = fleet_load.triton_sender(args.http, args.grpc, args.model)
    print(
        f"[fleet load] {args.workers} workers x {args.rate:g} req/s; running: {' '.join(command)}"
    )
    result = fleet_load.under_load(
        send,
        command,
        workers=args.workers,
        rate=args.rate,
        warmup_s=args.warmup_s,
        cooldown_s=args.cooldown_s,
        max_seconds=args.max_seconds,
        max_requests=args.max_requests,
    )
    for line in fleet_load.result_lines(result):
        print(f"[fleet load] {line}")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    expected = result["exit"] != 0 if args.expect_command_failure else result["exit"] == 0
    return 0 if result["failed"] == 0 and expected else 1


def _rollouts(args: argparse.Namespace) -> int:
    """The zero-failure scenarios (dltk.fleet.rollouts) on the fleet sandbox."""
    from dltk.fleet import rollouts

    root = Path(__file__).resolve().parents[3]
    work = Path(args.work).resolve()  # deploy.yml resolves a relative manifest elsewhere
    chosen = rollouts.scenarios(root, work)
    if args.only:
        names = args.only.split(",")
        unknown = sorted(set(names) - set(rollouts.SCENARIOS))
        if unknown:
            raise DltkError(
                f"rollouts: unknown scenario {', '.join(unknown)}: choose from "
                f"{', '.join(rollouts.SCENARIOS)}"
            )
        chosen = [s for s in chosen if s.name in names]
    send = fleet_load.triton_sender(args.http, args.grpc, args.model)
    deploy = [
        "ansible-playbook",
        str(root / "deploy.yml"),
        "-i",
        args.inventory,
        "-e",
        "dltk_hosts=sandbox",
        *(["-e", f"dltk_rollout_batch={args.batch}"] if args.batch else []),
    ]

    def measure(command: list[str]) -> dict:
        result = fleet_load.under_load(
            send, command, workers=args.workers, rate=args.rate, max_seconds=args.max_seconds
        )
        for line in fleet_load.result_lines(result):
            print(f"[fleet rollouts]   {line}", flush=True)
        return result

    results = rollouts.run(
        chosen, deploy, measure, lambda m: print(f"[fleet rollouts] {m}", flush=True)
    )
    for line in rollouts.summary_lines(results):
        print(line)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0 if all(r["verdict"] == "ok" for r in results) else 1


def _lb(args: argparse.Namespace) -> int:
    if args.action == "servers":
        for s in lb_runtime.servers(args.container):
            print(
                f"{s.backend}/{s.server} {s.status} stot={s.sessions_total} check={s.check_status}"
            )
        return 0
    lb_runtime.set_state(args.container, args.server, args.action)
    print(f"[fleet] {args.server}: {args.action} in {', '.join(lb_runtime.BACKENDS)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dltk.fleet", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser(
        "inventory", help="write the fleet sandbox's inventory; prints the host names"
    )
    p.add_argument("--hosts", type=int, default=4)
    p.add_argument("--out", default="build/fleet/inventory.yml")
    p.add_argument("--group-vars", default="inventory/group_vars")
    p.add_argument("--name", default=inventory.NAME, help="hosts NAME-1..N, load balancer NAME-lb")
    p.add_argument(
        "--base-port",
        type=int,
        default=inventory.BASE_PORT,
        help="host i publishes BASE+10(i-1)+{0,1,2}; the load balancer BASE+90 (HTTP), +91 (gRPC)",
    )
    p.set_defaults(func=_inventory)
    p = sub.add_parser(
        "traffic", help="send inferences through the LB; per-host counts; exit 1 if a host got none"
    )
    p.add_argument("--http", required=True, help="the LB's HTTP HOST:PORT")
    p.add_argument("--grpc", required=True, help="the LB's gRPC HOST:PORT")
    p.add_argument(
        "--metrics", nargs="+", required=True, help="HOST=http://ADDR:PORT/metrics per host"
    )
    p.add_argument("--model", default="mnist")
    p.add_argument("--requests", type=int, default=40, help="per protocol")
    p.add_argument("--lb-container", default="", help="also print the LB's per-server counts")
    p.set_defaults(func=_traffic)
    p = sub.add_parser(
        "load", help="steady inference load through the LB around a command; failures counted"
    )
    p.add_argument("--http", required=True, help="the LB's HTTP HOST:PORT")
    p.add_argument("--grpc", required=True, help="the LB's gRPC HOST:PORT")
    p.add_argument("--model", default="mnist")
    p.add_argument("--workers", type=int, default=4, help="client threads, HTTP and gRPC alike")
    p.add_argument("--rate", type=float, default=10.0, help="requests per second per worker")
    p.add_argument("--warmup-s", type=float, default=5.0, help="load before the command")
    p.add_argument("--cooldown-s", type=float, default=5.0, help="load after the command")
    p.add_argument("--max-seconds", type=float, default=900.0, help="bound on the whole run")
    p.add_argument("--max-requests", type=int, default=200_000, help="bound on requests")
    p.add_argument("--expect-command-failure", action="store_true", help="the command must fail")
    p.add_argument("--json", help="write the result to this file")
    p.add_argument("command", nargs=argparse.REMAINDER, help="-- COMMAND ARGS...")
    p.set_defaults(func=_load)
    p = sub.add_parser(
        "rollouts", help="deploy.yml rollouts under load through the LB; 0 failed requests each"
    )
    p.add_argument("--inventory", default="build/fleet/inventory.yml")
    p.add_argument(
        "--http", default=f"127.0.0.1:{inventory.LB_HTTP_PORT}", help="the LB's HTTP HOST:PORT"
    )
    p.add_argument(
        "--grpc", default=f"127.0.0.1:{inventory.LB_GRPC_PORT}", help="the LB's gRPC HOST:PORT"
    )
    p.add_argument("--model", default="mnist")
    p.add_argument("--only", help="comma-separated scenarios (default: all, in order)")
    p.add_argument("--batch", help="dltk_rollout_batch (default: the playbook's, 25%%)")
    p.add_argument("--workers", type=int, default=4)
    p.add_argument("--rate", type=float, default=10.0, help="requests per second per worker")
    p.add_argument("--max-seconds", type=float, default=900.0, help="bound per deploy.yml")
    p.add_argument("--work", default="build/fleet/rollouts", help="the scenarios' manifests")
    p.add_argument("--json", default="build/fleet/rollouts.json")
    p.set_defaults(func=_rollouts)
    p = sub.add_parser("lb", help="the LB's runtime API: servers | drain S | maint S | ready S")
    p.add_argument("--container", required=True)
    p.add_argument("action", choices=["servers", *lb_runtime.STATES])
    p.add_argument("server", nargs="?", default="")
    p.set_defaults(func=_lb)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except DltkError as err:
        print(f"python -m dltk.fleet: error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
