"""`dltk verify`'s command line: arguments, their checks, and VerifyOptions."""

from __future__ import annotations

import argparse
from pathlib import Path

from dltk.errors import DltkError
from dltk.perf import parse_concurrency_range
from dltk.verify_records import (
    DEFAULT_ATOL,
    DEFAULT_MIN_ACCURACY,
    Slo,
    VerifyOptions,
    normalize_url,
)

# --- CLI ------------------------------------------------------------------------------------


def options_from_args(args: argparse.Namespace) -> VerifyOptions:
    for flag, path in (("--onnx", args.onnx), ("--samples", args.samples)):
        if path is not None and not Path(path).is_file():
            raise DltkError(f"{flag} {path}: no such file; run `dltk export` first")
    if args.timeout <= 0:
        raise DltkError("--timeout must be > 0 seconds")
    if not 0.0 <= args.min_accuracy <= 1.0:
        raise DltkError("--min-accuracy must be between 0 and 1")
    if args.batch_size < 1:
        raise DltkError("--batch-size must be >= 1")
    if args.perf_protocol == "grpc" and not args.grpc_url:
        raise DltkError("--perf-protocol grpc needs --grpc-url HOST:PORT")
    slo = Slo(
        min_throughput=args.slo_min_throughput,
        max_p99_ms=args.slo_max_p99_ms,
        max_errors=args.slo_max_errors,
    )
    slo.check()
    if slo.needs_perf and not args.perf:
        raise DltkError("--slo-min-throughput/--slo-max-p99-ms gate a perf run: add --perf")
    return VerifyOptions(
        url=normalize_url(args.url),
        grpc_url=normalize_url(args.grpc_url) if args.grpc_url else None,
        model=args.model,
        onnx=Path(args.onnx) if args.onnx else None,
        samples=Path(args.samples) if args.samples else None,
        perf=args.perf,
        concurrency=parse_concurrency_range(args.concurrency),
        batch_size=args.batch_size,
        perf_protocol=args.perf_protocol,
        perf_interval_ms=args.perf_interval_ms,
        perf_max_trials=args.perf_max_trials,
        perf_stability=args.perf_stability,
        perf_shared_memory=args.perf_shared_memory == "system",
        perf_async=args.perf_async,
        perf_threads=args.perf_threads,
        metrics_url=normalize_url(args.metrics_url) if args.metrics_url else None,
        slo=slo,
        report=Path(args.report) if args.report else None,
        timeout=args.timeout,
        atol=args.atol,
        min_accuracy=args.min_accuracy,
    )


def cmd_verify(args: argparse.Namespace) -> int:
    from dltk.verify import Verifier

    return Verifier(options_from_args(args)).run()


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "verify",
        help="check a running Triton serves a model correctly (and measure it with --perf)",
        description="Check server and model readiness, run HTTP and gRPC inference on sample "
        "images, compare with onnxruntime and the labels, check a wrong-shape request is "
        "rejected without harming the server, optionally run perf_analyzer. Exit 1 when a check "
        "fails.",
    )
    p.add_argument("--url", required=True, help="HTTP endpoint HOST:PORT, e.g. 127.0.0.1:8000")
    p.add_argument("--grpc-url", help="gRPC endpoint HOST:PORT (gRPC checks skipped without it)")
    p.add_argument("--model", required=True, help="model name on the server")
    p.add_argument("--onnx", help="ONNX file for the onnxruntime reference outputs")
    p.add_argument("--samples", help="NPZ with `inputs` (and `labels`), from dltk export")
    p.add_argument(
        "--atol",
        type=float,
        default=DEFAULT_ATOL,
        help=f"max |triton - onnxruntime| allowed (default {DEFAULT_ATOL:g}; "
        "use 1e-2 for FP16/TF32 engines)",
    )
    p.add_argument(
        "--min-accuracy",
        type=float,
        default=DEFAULT_MIN_ACCURACY,
        help=f"minimum accuracy on the samples (default {DEFAULT_MIN_ACCURACY:g})",
    )
    p.add_argument("--perf", action="store_true", help="also run perf_analyzer")
    p.add_argument(
        "--concurrency",
        default="1:4",
        help="perf concurrency START:END[:STEP] (default 1:4; at most 16 levels)",
    )
    p.add_argument("--batch-size", type=int, default=1, help="perf client batch size (default 1)")
    p.add_argument(
        "--perf-protocol",
        choices=("http", "grpc"),
        default="http",
        help="perf_analyzer protocol (grpc needs --grpc-url; default http)",
    )
    p.add_argument(
        "--perf-interval-ms",
        type=int,
        default=1000,
        help="perf measurement window in ms (default 1000)",
    )
    p.add_argument(
        "--perf-max-trials",
        type=int,
        default=5,
        help="perf windows per concurrency level at most (default 5)",
    )
    p.add_argument(
        "--perf-stability",
        type=float,
        default=50.0,
        help="perf stability threshold in %% (default 50: CPU hosts are noisy)",
    )
    p.add_argument(
        "--perf-shared-memory",
        choices=("none", "system"),
        default="none",
        help="perf_analyzer passes tensors through system shared memory (client and server "
        "on one host / IPC namespace; default none)",
    )
    p.add_argument(
        "--perf-async",
        action="store_true",
        help="perf_analyzer's asynchronous client (fewer threads for the same concurrency)",
    )
    p.add_argument(
        "--perf-threads", type=int, help="perf_analyzer client threads at most (--max-threads)"
    )
    p.add_argument(
        "--metrics-url",
        help="Triton metrics HOST:PORT (e.g. 127.0.0.1:8002): check request counters, average "
        "batch, queue vs compute time",
    )
    p.add_argument(
        "--slo-min-throughput",
        type=float,
        default=0.0,
        metavar="INFER_PER_S",
        help="fail unless the sweep reaches this many inferences/s within the p99 budget "
        "(default 0: no gate)",
    )
    p.add_argument(
        "--slo-max-p99-ms",
        type=float,
        default=0.0,
        metavar="MS",
        help="fail unless some concurrency level has p99 latency <= MS (default 0: no gate)",
    )
    p.add_argument(
        "--slo-max-errors",
        type=int,
        default=None,
        metavar="N",
        help="fail when more than N requests fail during the perf sweep (needs --metrics-url)",
    )
    p.add_argument(
        "--report",
        help="write a JSON report to this file, with a markdown summary (.md), the perf CSV "
        "(.perf.csv) and a throughput-vs-latency plot (.png) beside it",
    )
    p.add_argument(
        "--timeout",
        type=float,
        default=60.0,
        help="seconds to wait for readiness and per request (default 60)",
    )
    p.set_defaults(func=cmd_verify)
