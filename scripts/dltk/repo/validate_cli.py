"""`dltk validate DIR`: every DIR/*/config.pbtxt against Triton's schema and value rules
(the rules: repo/validate.py)."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console

from dltk.errors import DltkError
from dltk.repo.plan import parse_engines
from dltk.repo.validate import model_dirs, validate_repo


def run(args: argparse.Namespace) -> int:
    problems = validate_repo(Path(args.repo), parse_engines(args.engines))
    if problems:
        errors = Console(stderr=True)
        for problem in problems:
            errors.print(str(problem), markup=False, highlight=False, soft_wrap=True)
        raise DltkError(f"{len(problems)} problem(s) in {args.repo}")
    count = len(list(model_dirs(Path(args.repo))))
    Console().print(
        f"{args.repo}: {count} model(s) valid", markup=False, highlight=False, soft_wrap=True
    )
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "validate",
        help="check every config.pbtxt of a model repository",
        description="Parse every DIR/*/config.pbtxt with Triton's ModelConfig schema and check "
        "the value rules Triton applies at load time; print every problem as FILE:LINE:COL: "
        "message and exit 1 if there is any.",
    )
    parser.add_argument("repo", metavar="DIR", help="the model repository directory")
    parser.add_argument(
        "--engines",
        metavar="JSON|@FILE",
        help="TensorRT engines built on the GPU host (the list given to `dltk repo render "
        "--engines`): their plan files count as present in <model>_trt_<precision>/1/",
    )
    parser.set_defaults(func=run)
