"""`dltk tune MODEL [--brute] [--write]`: the serving config with the most throughput under a
p99 budget, measured on the local CPU tritonserver (127.0.0.1), written back to models.yml."""

from __future__ import annotations

import argparse
import sys

from rich.console import Console

from dltk.tune.args import add_space_arguments, options_from_args

err = Console(stderr=True, width=120)


def cmd_tune(args: argparse.Namespace) -> int:
    from dltk.tune.report import write_report
    from dltk.tune.run import load_model, run_brute, run_tuned, tuning_server
    from dltk.tune.writeback import write_back

    opts = options_from_args(args)
    model = load_model(opts.manifest, opts.model)
    with (
        err.status("dltk tune") as status,
        tuning_server(model, opts.out, opts.ready_timeout_s) as server,
    ):
        update = lambda msg: status.update(f"dltk tune: {msg}")  # noqa: E731
        run = (run_brute if args.brute else run_tuned)(server, model, opts, update)
    files = write_report(opts.out, run)
    err.print(f"report: {', '.join(str(f) for f in files)}")
    best = run.best
    if best is None:
        print(f"{run.method}: no config met the p99 budget of {opts.budget_ms:g} ms "
              f"({len(run.points())} points measured in {run.wall_s:.0f} s)")  # fmt: skip
        return 1
    print(
        f"{run.method} best for {model.name}: instances {best.variant.instances}, max batch "
        f"{best.variant.max_batch}, queue delay {best.variant.delay_us} us, client concurrency "
        f"{best.concurrency}: {best.throughput:.0f} infer/s at p99 {best.p99_ms:.2f} ms "
        f"({len(run.points())} points in {run.wall_s:.0f} s)"
    )
    diff, written = write_back(opts.manifest, model.name, best.variant, args.write)
    if not diff:
        print(f"{opts.manifest}: already has these settings")
    else:
        sys.stdout.write(diff)
        print(f"written to {opts.manifest}" if written else "(not written: add --write)")
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "tune",
        help="find the serving config with the most throughput under a p99 budget",
        description="Loads each model config variant (instances x max batch x dynamic-batching "
        "queue delay) on a local tritonserver with explicit model control and measures it with "
        "perf_analyzer at client concurrency levels; keeps the best under the p99 budget. "
        "Default: our own quick search (docs/tuning.md); --brute: triton-model-analyzer over "
        "the whole space. Prints the diff to models.yml; --write applies it.",
    )
    add_space_arguments(p)
    p.add_argument("--brute", action="store_true", help="triton-model-analyzer brute force")
    p.add_argument("--write", action="store_true", help="apply the diff to the manifest")
    p.set_defaults(func=cmd_tune)
