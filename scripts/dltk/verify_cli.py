"""`dltk verify`'s command line: arguments, their checks, and VerifyOptions."""

from __future__ import annotations

import argparse
from pathlib import Path

from dltk.errors import DltkError
from dltk.perf import parse_concurrency_range
from dltk.verify_models import parse_tolerances
from dltk.verify_perf import default_concurrency
from dltk.verify_records import (
    DEFAULT_ATOL,
    DEFAULT_MIN_ACCURACY,
    DEFAULT_TOLERANCES,
    Slo,
    VerifyOptions,
    normalize_url,
)

# --- CLI ------------------------------------------------------------------------------------


def options_from_args(args: argparse.Namespace) -> VerifyOptions:
    for flag, path in (
        ("--onnx", args.onnx),
        ("--samples", args.samples),
        ("--manifest", args.manifest),
    ):
        if path is not None and not Path(path).is_file():
            raise DltkError(f"{flag} {path}: no such file; run `dltk export` first")
    if args.reference_dir is not None and not Path(args.reference_dir).is_dir():
        raise DltkError(f"--reference-dir {args.reference_dir}: no such directory")
    if args.gpus < 0:
        raise DltkError("--gpus must be >= 0")
    if args.synthetic_batch is not None and args.synthetic_batch < 1:
        raise DltkError("--synthetic-batch must be >= 1")
    if args.atol is not None and args.atol < 0:
        raise DltkError("--atol must be >= 0")
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
        concurrency=(
            parse_concurrency_range(args.concurrency)
            if args.concurrency
            else default_concurrency(args.gpus)
        ),
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
        tolerances=parse_tolerances(args.tolerance or [], DEFAULT_TOLERANCES),
        reference_dir=Path(args.reference_dir) if args.reference_dir else None,
        manifest=Path(args.manifest) if args.manifest else None,
        synthetic_batch=args.synthetic_batch,
        gpus=args.gpus,
        host=args.host,
        api_key_file=Path(args.api_key_file) if args.api_key_file else None,
    )


def cmd_verify(args: argparse.Namespace) -> int:
    from dltk.verify import Verifier

    return Verifier(options_from_args(args)).run()


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "verify",
        help="check a running Triton serves a model correctly (and measure it with --perf)",
        description="Check server and model readiness, run HTTP and gRPC inference on samples "
        "(one array per input) or on inputs generated from the ONNX signature, compare every "
        "output with onnxruntime (TensorRT engines <model>_trt_<precision>: against <model>'s "
        "ONNX within the tolerance of their precision; BLS pipelines: uint8 images, classes and "
        "probabilities) and the labels, check a wrong-shape request is rejected without harming "
        "the server, optionally run perf_analyzer. Exit 1 when a check fails.",
    )
    p.add_argument("--url", required=True, help="HTTP endpoint HOST:PORT, e.g. 127.0.0.1:8000")
    p.add_argument("--grpc-url", help="gRPC endpoint HOST:PORT (gRPC checks skipped without it)")
    p.add_argument("--model", required=True, help="model name on the server")
    p.add_argument(
        "--onnx",
        help="ONNX file for the onnxruntime reference outputs (for <model>_trt_<precision> and "
        "pipelines: <model>'s ONNX file)",
    )
    p.add_argument(
        "--samples",
        help="NPZ with one array per input keyed by input name (or `inputs` for a one-input "
        "model, as dltk export writes it) and optional `labels`; without it, inputs are "
        "generated from the ONNX signature",
    )
    p.add_argument(
        "--reference-dir",
        help="directory with <model>.onnx and <model>.samples.npz for each manifest model: "
        "used when --onnx/--samples are not given (<model>: the served model, the model of a "
        "TensorRT engine or of a pipeline)",
    )
    p.add_argument(
        "--manifest",
        help="model manifest: the batch of generated inputs (its opt) and, without "
        "--reference-dir, the ONNX file and samples of the model",
    )
    p.add_argument(
        "--synthetic-batch",
        type=int,
        help="rows of generated inputs (default: the manifest's opt batch, else 8)",
    )
    tolerances = ", ".join(
        f"{k} {v.atol:g}" + (f":{v.rtol:g}" if v.rtol else "")
        for k, v in DEFAULT_TOLERANCES.items()
    )
    p.add_argument(
        "--tolerance",
        action="append",
        metavar="PRECISION=ATOL[:RTOL]",
        help="|triton - onnxruntime| <= ATOL + RTOL*|onnxruntime| for models of PRECISION "
        f"(fp32, tf32, fp16; defaults {tolerances}); repeatable, or one JSON object "
        '{"fp16": {"atol": A, "rtol": R}, ...}',
    )
    p.add_argument(
        "--atol",
        type=float,
        default=None,
        help=f"one absolute tolerance for this model whatever its precision (overrides "
        f"--tolerance; the fp32 default is {DEFAULT_ATOL:g})",
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
        default=None,
        help="perf concurrency START:END[:STEP] (default: sized to --gpus, 1:4 without a GPU; "
        "at most 16 levels)",
    )
    p.add_argument(
        "--gpus",
        type=int,
        default=0,
        help="GPUs the server uses: the default concurrency range ends at 4 per GPU (default 0)",
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
        "--host",
        help="the deployment host to name in the report (the role passes inventory_hostname; "
        "default: the name of the machine the verifier runs on)",
    )
    p.add_argument(
        "--api-key-file",
        metavar="FILE",
        help="file holding the deployment's API key: sent on Triton's restricted APIs "
        "(repository index, and perf_analyzer's statistics via -H, redacted in the report)",
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
