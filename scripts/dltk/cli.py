"""`dltk` command line: one sub-command per module (export, repo, validate, serve, verify)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from dltk import __version__
from dltk.errors import DltkError

# Each module registers its sub-command with add_parser(subparsers) and sets `func`.
COMMAND_MODULES = (
    "export",
    "repo",
    "validate",
    "engines",
    "serve",
    "verify",
    "bench",
    "profile",
    "apt_mirror",
    "release",
    "driver_policy",
    "drill",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dltk",
        description="DLTK Deploy toolkit: export ONNX models, render/validate Triton model "
        "repositories, serve them on CPU and verify a running Triton server.",
    )
    parser.add_argument("--version", action="version", version=f"dltk {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        module = __import__(f"dltk.{name}", fromlist=["add_parser"])
        module.add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except DltkError as exc:
        print(f"dltk {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"dltk {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
