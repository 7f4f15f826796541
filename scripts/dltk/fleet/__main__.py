"""python -m dltk.fleet inventory | traffic | lb  (make fleet uses them; --help on each)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dltk.errors import DltkError
from dltk.fleet import inventory, lb_runtime, traffic


def _inventory(args: argparse.Namespace) -> int:
    out = inventory.write_inventory(args.hosts, Path(args.out), Path(args.group_vars))
    print(" ".join(inventory.host_names(args.hosts)))
    print(f"[fleet] inventory {out} ({args.hosts} hosts + {inventory.LB_HOST})", file=sys.stderr)
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
