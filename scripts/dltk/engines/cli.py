"""`dltk engines`: `plan` prints the trtexec command and cache key of every TensorRT engine to
build (the planning itself: engines/plan.py); `detect` decides whether a host builds engines.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path

from rich.console import Console
from rich.table import Table

from dltk.engines.plan import (
    CONTAINER_DIR,
    EnginePlan,
    decide_gpus,
    parse_gpus,
    plan_engines,
    plan_json,
    plan_trt_version,
)
from dltk.errors import DltkError
from dltk.manifest.load import load_manifest
from dltk.release import DEFAULT_NGC_RELEASE

console = Console()


def _print_plan(plans: list[EnginePlan], trt_version: str) -> None:
    table = Table(title=f"TensorRT {trt_version} engines")
    for column in ("model", "precision", "cc", "triton model", "cache key"):
        table.add_column(column, no_wrap=True)
    for p in plans:
        table.add_row(p.model, p.precision, p.cc, p.triton_model, p.key[:16])
    console.print(table)
    for p in plans:
        console.print(
            f"# {p.triton_model} cc {p.cc} key {p.key}",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
        console.print(" ".join(p.argv), markup=False, highlight=False, soft_wrap=True)
    if not plans:
        console.print("no model of the manifest lists the tensorrt runtime: nothing to build")


def run_plan(args: argparse.Namespace) -> int:
    gpus = parse_gpus(args.gpu_cc)
    manifest = load_manifest(Path(args.manifest))
    trtexec_output = args.trtexec_output
    if trtexec_output is not None and trtexec_output.startswith("@"):
        trtexec_output = Path(trtexec_output[1:]).read_text(errors="replace")
    trt_version, source = plan_trt_version(args.trt_version, trtexec_output, args.ngc_release)
    plans = plan_engines(manifest, gpus, trt_version, args.container_dir)
    if args.json:
        print(plan_json(plans, gpus, trt_version, source), end="")
    else:
        console.print(f"TensorRT {trt_version} ({source})", markup=False, highlight=False)
        _print_plan(plans, trt_version)
    return 0


def run_detect(args: argparse.Namespace) -> int:
    try:
        facts = json.loads(args.gpu_facts)
    except json.JSONDecodeError as exc:
        raise DltkError(
            f"--gpu-facts is not JSON ({exc}): pass nvidia_gpu_facts | to_json"
        ) from None
    if not isinstance(facts, dict):
        raise DltkError("--gpu-facts must be a JSON object: pass nvidia_gpu_facts | to_json")
    decision = decide_gpus(args.mode, facts, tuple(args.gpu_cc))
    print(json.dumps(asdict(decision), sort_keys=True))
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "engines",
        help="plan TensorRT engine builds (trtexec commands and cache keys)",
        description="TensorRT engines of the manifest's models (runtime tensorrt).",
    )
    verbs = parser.add_subparsers(dest="engines_command", metavar="VERB", required=True)
    plan = verbs.add_parser(
        "plan",
        help="print the trtexec command and cache key of every engine",
        description="One engine per model x precision x compute capability, keyed by sha256 of "
        "(ONNX bytes, trtexec flags, TensorRT version, compute capability). Deterministic: same "
        "input, same output. Needs no GPU.",
    )
    plan.add_argument("--manifest", default="model_repo/models.yml", help="the model manifest")
    plan.add_argument(
        "--gpu-cc",
        action="append",
        default=[],
        metavar="[DEVICE=]X.Y",
        help="compute capability of the target GPU, e.g. 8.6 (repeat for several GPUs)",
    )
    version = plan.add_mutually_exclusive_group()
    version.add_argument(
        "--trtexec-output",
        metavar="TEXT|@FILE",
        help="what `trtexec --help` printed in the build image: the key uses its TensorRT version",
    )
    version.add_argument(
        "--ngc-release",
        metavar="YY.MM",
        help="plan with this NGC release's nominal TensorRT version (hosts that build nothing; "
        f"the default, {DEFAULT_NGC_RELEASE})",
    )
    version.add_argument("--trt-version", help="plan for this TensorRT version, e.g. 10.5.0")
    plan.add_argument(
        "--container-dir",
        default=CONTAINER_DIR,
        help=f"engines directory inside the TensorRT container (default {CONTAINER_DIR})",
    )
    plan.add_argument("--json", action="store_true", help="print the plan as JSON (for Ansible)")
    plan.set_defaults(func=run_plan)

    detect = verbs.add_parser(
        "detect",
        help="decide from a host's findings whether it builds engines (JSON, for trt_engines)",
        description="Print as JSON whether a host builds TensorRT engines, for which GPUs and "
        "why, from what the trt_engines role found there.",
    )
    detect.add_argument("--mode", default="auto", help="auto, present or absent")
    detect.add_argument(
        "--gpu-facts",
        required=True,
        help="the host's nvidia_gpu_facts fact as JSON (dltk.gpu_facts.gather)",
    )
    detect.add_argument(
        "--gpu-cc", action="append", default=[], help="compute capability that overrides it"
    )
    detect.set_defaults(func=run_detect)
