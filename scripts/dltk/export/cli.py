"""`dltk export`: train/build the known models and write checked ONNX files.

Models: mnist (export/mnist.py) and resnet50 (export/resnet.py: ResNet in code, random or given
weights).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

from rich.console import Console

from dltk.errors import DltkError
from dltk.export.mnist import DATASETS, DEFAULT_EPOCHS, export_mnist
from dltk.export.onnx_io import ExportOptions, ExportResult
from dltk.export.resnet import export_resnet

console = Console()

# Every known exporter; `--model all` runs them in this order.
EXPORTERS: dict[str, Callable[[ExportOptions], ExportResult]] = {
    "mnist": export_mnist,
    "resnet50": export_resnet,
}


def run(args: argparse.Namespace) -> int:
    names = list(EXPORTERS) if args.model == "all" else [args.model]
    opts = ExportOptions(
        out=Path(args.out),
        epochs=args.epochs,
        seed=args.seed,
        dataset=args.dataset,
        depth=args.depth,
        weights=Path(args.weights) if args.weights else None,
        external_data=args.external_data,
    )
    if opts.epochs is not None and opts.epochs < 1:
        raise DltkError(f"--epochs must be >= 1, got {opts.epochs}")
    if opts.weights is not None and not opts.weights.is_file():
        raise DltkError(f"--weights {opts.weights} does not exist")
    for name in names:
        started = time.monotonic()
        result = EXPORTERS[name](opts)
        accuracy = "n/a" if result.accuracy is None else f"{result.accuracy:.4f}"
        console.print(
            f"[green]exported[/] {name}: {opts.out / result.onnx} (dataset {result.dataset}, "
            f"accuracy {accuracy}, max diff {result.max_abs_diff:.2e}, "
            f"{time.monotonic() - started:.1f} s)"
        )
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "export",
        help="build the known models as checked ONNX files",
        description="Train/build models and write ONNX files checked against torch with "
        "onnxruntime, plus held-out samples and metadata (works offline).",
    )
    parser.add_argument(
        "--model", choices=[*EXPORTERS, "all"], default="all", help="which model (default: all)"
    )
    parser.add_argument("--out", default="build/models", help="output directory")
    parser.add_argument(
        "--epochs",
        type=int,
        default=None,
        help=f"training epochs (default: {DEFAULT_EPOCHS['mnist']} on MNIST, "
        f"{DEFAULT_EPOCHS['sklearn-digits']} on the sklearn digits)",
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    parser.add_argument(
        "--dataset",
        choices=DATASETS,
        default="auto",
        help="auto: real MNIST when downloadable, else sklearn digits (default: auto)",
    )
    parser.add_argument(
        "--depth",
        type=int,
        default=50,
        help="resnet50: ResNet depth 18/34/50/101/152 (default 50; other depths write "
        "resnet<depth>.onnx)",
    )
    parser.add_argument(
        "--weights", help="resnet50: torchvision-style state dict (default: random weights)"
    )
    parser.add_argument(
        "--external-data",
        action="store_true",
        help="resnet50: write the weights to a .onnx.data side file next to the model",
    )
    parser.set_defaults(func=run)
