"""`dltk` command line: one sub-command per module (export, repo, validate, serve, verify)."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from dltk import __version__
from dltk.errors import DltkError

# Every `dltk` sub-command and the module that defines it: add_parser(subparsers) adds the
# command's parser and sets `func`. Imported when the parser is built (some pull in onnx, torch).
COMMANDS: dict[str, str] = {
    "export": "dltk.export.cli",
    "repo": "dltk.repo.cli",
    "validate": "dltk.repo.validate_cli",
    "engines": "dltk.engines.cli",
    "serve": "dltk.serve.cli",
    "verify": "dltk.verify.cli",
    "bench": "dltk.bench.cli",
    "profile": "dltk.profile.cli",
    "mirror": "dltk.mirror.apt_mirror",
    "release": "dltk.release",
    "driver": "dltk.driver_policy",
    "drill": "dltk.drill.cli",
    "tune": "dltk.tune.cli",
}


def build_parser(commands: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser of every command, or of COMMANDS only: a command's parser is the same either
    way (sub-parsers are independent), so `dltk release` need not import torch or tritonclient."""
    parser = argparse.ArgumentParser(
        prog="dltk",
        description="DLTK Deploy toolkit: export ONNX models, render/validate Triton model "
        "repositories, serve them on CPU and verify a running Triton server.",
    )
    parser.add_argument("--version", action="version", version=f"dltk {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, module_name in COMMANDS.items():
        if commands is None or name in commands:
            importlib.import_module(module_name).add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    given = list(sys.argv[1:] if argv is None else argv)
    # `dltk COMMAND ...` builds COMMAND's parser alone (each dltk start is on a deploy's path);
    # anything else (--help, --version, a wrong command) the whole parser.
    only = given[:1] if given and given[0] in COMMANDS else None
    args = build_parser(only).parse_args(given)
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
