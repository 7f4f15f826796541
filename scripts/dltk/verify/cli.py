"""`dltk verify`'s command line: its flags and --options document, checked by verify/options.py."""

from __future__ import annotations

import argparse
from typing import Any

from dltk.errors import DltkError
from dltk.verify.options import FIELDS, check_files, load_options, read_documents
from dltk.verify.records import (
    DEFAULT_ATOL,
    DEFAULT_MIN_ACCURACY,
    DEFAULT_TOLERANCES,
    VerifyOptions,
)

# --- CLI ------------------------------------------------------------------------------------


def documents_from_args(args: argparse.Namespace) -> list[dict[str, Any]]:
    """The options documents of a command line: --options' object (or each of its array), the
    flags given over it (flags left out are absent: their defaults are the loader's, not
    argparse's)."""
    given = getattr(args, "options", None)
    documents = read_documents(given) if given else [{}]
    flags = {k: v for k, v in vars(args).items() if k in FIELDS and v is not None}
    return [{**document, **flags} for document in documents]


def options_list_from_args(
    args: argparse.Namespace, *, check_only: bool = False
) -> list[VerifyOptions]:
    """Every run's options, all validated before any runs (one bad document: nothing runs)."""
    runs = [load_options(d, need_model=not check_only) for d in documents_from_args(args)]
    if not check_only:
        for opts in runs:
            check_files(opts)
    return runs


def options_from_args(args: argparse.Namespace, *, check_only: bool = False) -> VerifyOptions:
    runs = options_list_from_args(args, check_only=check_only)
    if len(runs) != 1:
        raise DltkError(f"--options: one run expected here, got {len(runs)}")
    return runs[0]


def cmd_verify(args: argparse.Namespace) -> int:
    if getattr(args, "check_options", False):
        for opts in options_list_from_args(args, check_only=True):
            perf = f"perf {opts.concurrency}" if opts.perf else "no perf sweep"
            print(f"dltk verify: the options are valid ({perf})")
        return 0
    from dltk.verify.verifier import Verifier

    # An array of documents runs one verification after the other in this process (the role's
    # quick check: one container for every model); exit 1 when any of them failed.
    return max(Verifier(opts).run() for opts in options_list_from_args(args))


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
    p.add_argument(
        "--options",
        metavar="FILE|JSON",
        help="the options as one JSON object (or a file holding it): keys are the flags' names "
        'with _ for -, e.g. {"url": "127.0.0.1:8000", "model": "mnist", "perf": true}; a flag '
        "given too wins (the triton_verify role passes its options so); an array of objects "
        "runs one verification each, in order, all validated first (exit 1 when any fails)",
    )
    p.add_argument(
        "--check-options",
        action="store_true",
        help="only validate the options (no model needed, no file or server looked at) and exit",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        default=None,
        help="leave out the perf sweep and its SLO gates (the role's re-run with nothing changed)",
    )
    p.add_argument("--url", help="HTTP endpoint HOST:PORT, e.g. 127.0.0.1:8000 (required)")
    p.add_argument("--grpc-url", help="gRPC endpoint HOST:PORT (gRPC checks skipped without it)")
    p.add_argument("--model", help="model name on the server (required)")
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
        help=f"one absolute tolerance for this model whatever its precision (overrides "
        f"--tolerance; the fp32 default is {DEFAULT_ATOL:g})",
    )
    p.add_argument(
        "--min-accuracy",
        help=f"minimum accuracy on the samples (default {DEFAULT_MIN_ACCURACY:g})",
    )
    p.add_argument("--perf", action="store_true", default=None, help="also run perf_analyzer")
    p.add_argument(
        "--concurrency",
        help="perf concurrency START:END[:STEP] (default: sized to --gpus, 1:4 without a GPU; "
        "at most 16 levels)",
    )
    p.add_argument(
        "--gpus",
        help="GPUs the server uses: the default concurrency range ends at 4 per GPU (default 0)",
    )
    p.add_argument("--batch-size", help="perf client batch size (default 1)")
    p.add_argument(
        "--perf-protocol",
        metavar="{http,grpc}",
        help="perf_analyzer protocol (grpc needs --grpc-url; default http)",
    )
    p.add_argument(
        "--perf-interval-ms",
        help="perf measurement window in ms (default 1000)",
    )
    p.add_argument(
        "--perf-max-trials",
        help="perf windows per concurrency level at most (default 5)",
    )
    p.add_argument(
        "--perf-stability",
        help="perf stability threshold in %% (default 50: CPU hosts are noisy)",
    )
    p.add_argument(
        "--perf-shared-memory",
        metavar="{none,system}",
        help="perf_analyzer passes tensors through system shared memory (client and server "
        "on one host / IPC namespace; default none)",
    )
    p.add_argument(
        "--perf-async",
        action="store_true",
        default=None,
        help="perf_analyzer's asynchronous client (fewer threads for the same concurrency)",
    )
    p.add_argument("--perf-threads", help="perf_analyzer client threads at most (--max-threads)")
    p.add_argument(
        "--metrics-url",
        help="Triton metrics HOST:PORT (e.g. 127.0.0.1:8002): check request counters, average "
        "batch, queue vs compute time",
    )
    p.add_argument(
        "--slo-min-throughput",
        metavar="INFER_PER_S",
        help="fail unless the sweep reaches this many inferences/s within the p99 budget "
        "(default 0: no gate)",
    )
    p.add_argument(
        "--slo-max-p99-ms",
        metavar="MS",
        help="fail unless some concurrency level has p99 latency <= MS (default 0: no gate)",
    )
    p.add_argument(
        "--slo-max-errors",
        metavar="N",
        help="fail when more than N requests fail during the perf sweep (needs --metrics-url; "
        "-1 or left out: no gate)",
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
        help="seconds to wait for readiness and per request (default 60)",
    )
    p.set_defaults(func=cmd_verify)
