"""`dltk serve DIR`: the real CPU tritonserver (from nvidia-pytriton) in the foreground (the
server itself, and `background_server()` for tests: serve/server.py)."""

from __future__ import annotations

import argparse
from pathlib import Path

from dltk.serve.server import (
    CONTROL_MODES,
    ServeOptions,
    build_server_command,
    check_options,
    console,
    run_foreground,
    validate_model_repo,
)
from dltk.tritonbin import find_tritonserver


def options_from_args(args: argparse.Namespace) -> ServeOptions:
    return ServeOptions(
        repo=Path(args.dir),
        http_port=args.http_port,
        grpc_port=args.grpc_port,
        metrics_port=args.metrics_port,
        address=args.address,
        model_control_mode=args.model_control_mode,
        log_verbose=args.log_verbose,
    )


def cmd_serve(args: argparse.Namespace) -> int:
    opts = options_from_args(args)
    check_options(opts)
    validate_model_repo(opts.repo)
    install = find_tritonserver()
    cmd = build_server_command(install, opts)
    console.print(
        f"[bold]dltk serve[/]: tritonserver on http {opts.http_url}, grpc {opts.grpc_url}, "
        f"metrics {opts.address}:{opts.metrics_port} (repository {opts.repo})",
        soft_wrap=True,
    )
    return run_foreground(cmd, install.env())


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "serve",
        help="run a local CPU tritonserver on a model repository (foreground)",
        description="Validate DIR, then run the tritonserver from nvidia-pytriton on it in the "
        "foreground, bound to loopback by default. Ctrl-C stops it.",
    )
    p.add_argument("dir", metavar="DIR", help="Triton model repository (dltk repo render)")
    p.add_argument("--http-port", type=int, default=8000, help="HTTP port (default 8000)")
    p.add_argument("--grpc-port", type=int, default=8001, help="gRPC port (default 8001)")
    p.add_argument("--metrics-port", type=int, default=8002, help="metrics port (default 8002)")
    p.add_argument(
        "--address", default="127.0.0.1", help="address for all three endpoints (default 127.0.0.1)"
    )
    p.add_argument(
        "--model-control-mode",
        choices=CONTROL_MODES,
        default="none",
        help="Triton model control mode (default none)",
    )
    p.add_argument(
        "--log-verbose",
        type=int,
        default=0,
        metavar="N",
        help="tritonserver verbose log level (default 0)",
    )
    p.set_defaults(func=cmd_serve)


# --- background server for tests and scripts ------------------------------------------------
