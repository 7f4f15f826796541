"""The search-space options shared by `dltk tune` and `dltk bench tune` (no command here)."""

from __future__ import annotations

import argparse
from datetime import datetime, timezone
from pathlib import Path

from dltk.tune.run import TuneOptions
from dltk.tune.space import Space, parse_values

REPO_ROOT = Path(__file__).resolve().parents[3]
DEFAULTS = {
    "instances": "1,2,3",
    "max_batch": "4,16,64",
    "delay_us": "0,200,1000",
    "concurrency": "1,2,4,8",
}


def add_space_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", metavar="MODEL", help="a model of the manifest (e.g. mnist)")
    p.add_argument("--manifest", default=str(REPO_ROOT / "model_repo" / "models.yml"))
    p.add_argument("--budget-ms", type=float, default=10.0, help="p99 latency budget (10)")
    for name, default in DEFAULTS.items():
        flag = "--" + name.replace("_", "-")
        p.add_argument(flag, dest=name, default=default, help=f"values to try (default {default})")
    p.add_argument(
        "--max-variants", type=int, default=10, help="our search screens at most N variants (10)"
    )
    p.add_argument(
        "--max-probes",
        type=int,
        default=8,
        help="diagonals (two settings changed at once) probed with one point each (8; 0: none)",
    )
    p.add_argument("--out", help="report directory (default build/tune/MODEL/<UTC time>)")


def options_from_args(args: argparse.Namespace) -> TuneOptions:
    space = Space(
        instances=parse_values(args.instances, "--instances"),
        max_batch=parse_values(args.max_batch, "--max-batch"),
        delay_us=parse_values(args.delay_us, "--delay-us"),
        concurrency=parse_values(args.concurrency, "--concurrency"),
    )
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    default_out = REPO_ROOT / "build" / "tune" / args.model / stamp
    out = Path(args.out).resolve() if args.out else default_out
    opts = TuneOptions(
        manifest=Path(args.manifest),
        model=args.model,
        space=space,
        budget_ms=args.budget_ms,
        out=out,
        max_variants=args.max_variants,
        max_probes=args.max_probes,
    )
    opts.check()
    return opts
