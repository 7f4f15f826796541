"""`dltk profile torch|nsys`: where the time goes.

torch  PyTorch profiler over a few inference steps of the exported model (the seed's
       pytorch_profile.py): a table of operators with CPU and device (CUDA) time, and a
       chrome trace (open it in chrome://tracing or ui.perfetto.dev).
nsys   Nsight Systems around a command (default: `dltk bench speed` on the model):
       `nsys profile` writes a .nsys-rep, `nsys stats` summaries are saved beside it. Where nsys
       is missing or cannot trace (no GPU, no perf events), it writes profile.json saying why
       and exits 0: a skipped step with its reason, never a silent one.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console
from rich.table import Table

from dltk.errors import DltkError

console = Console()


def cmd_torch(args: argparse.Namespace) -> int:
    from dltk.profile.torch_profiler import TorchProfileOptions, op_rows, profile_model

    opts = TorchProfileOptions(
        onnx=Path(args.onnx),
        out_dir=Path(args.out),
        batch=args.batch,
        steps=args.steps,
        warmup=args.warmup,
        device=args.device,
    )
    with console.status(f"profiling {opts.onnx.name} batch {opts.batch} on {opts.device}"):
        result = profile_model(opts)
    table = Table(
        title=f"PyTorch profiler: {opts.onnx.name}, batch {opts.batch}, {opts.steps} steps"
    )
    for col in ("operator", "calls", "CPU total ms", "self CPU ms", "device ms"):
        table.add_column(col, justify="left" if col == "operator" else "right")
    for row in op_rows(result.ops, args.top):
        table.add_row(*row)
    console.print(table)
    if result.device_note:
        console.print(f"device time: {result.device_note}")
    console.print(f"chrome trace: {result.trace}")
    console.print(f"table: {result.table_file}")
    return 0


def cmd_nsys(args: argparse.Namespace) -> int:
    from dltk.profile.nsys import NsysOptions, default_target, run_nsys

    out = Path(args.out)
    target: Sequence[str] = args.command or default_target(args.onnx)
    opts = NsysOptions(out_dir=out, name=args.name, command=tuple(target), timeout_s=args.timeout)
    with console.status(f"nsys profile {' '.join(target)}"):
        result = run_nsys(opts)
    summary = out / "profile.json"
    try:
        out.mkdir(parents=True, exist_ok=True)
        summary.write_text(json.dumps(result, indent=2) + "\n")
    except OSError as exc:
        raise DltkError(f"cannot write {summary}: {exc.strerror}") from None
    if result["status"] == "skipped":
        console.print(f"nsys: skipped: {result['reason']}", soft_wrap=True)
    else:
        console.print(f"nsys: {result['report']} ({len(result['stats'])} stats files)")
    console.print(f"summary: {summary}")
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "profile",
        help="PyTorch profiler table + chrome trace, or Nsight Systems around a command",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = p.add_subparsers(dest="profiler", metavar="PROFILER", required=True)
    t = sub.add_parser("torch", help="PyTorch profiler: CPU vs device time, chrome trace")
    t.add_argument("--onnx", default="build/models/mnist.onnx", help="exported MNIST ONNX")
    t.add_argument("--out", default="build/profile", help="output dir (default build/profile)")
    t.add_argument("--batch", type=int, default=32, help="batch size (default 32)")
    t.add_argument("--steps", type=int, default=10, help="profiled steps (default 10)")
    t.add_argument("--warmup", type=int, default=3, help="unprofiled warm-up steps")
    t.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    t.add_argument("--top", type=int, default=15, help="operators in the table (default 15)")
    t.set_defaults(func=cmd_torch)

    n = sub.add_parser("nsys", help="Nsight Systems around a command (skips with a reason)")
    n.add_argument("--out", default="build/profile", help="output dir (default build/profile)")
    n.add_argument("--name", default="dltk", help="report name (default dltk)")
    n.add_argument(
        "--onnx", default="build/models/mnist.onnx", help="model for the default command"
    )
    n.add_argument("--timeout", type=float, default=600.0, help="seconds before nsys is stopped")
    n.add_argument("command", nargs=argparse.REMAINDER, help="-- COMMAND to profile")
    n.set_defaults(func=cmd_nsys)
