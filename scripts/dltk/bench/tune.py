"""`dltk bench tune MODEL`: our own search against triton-model-analyzer's brute force, in one
run on one local tritonserver (127.0.0.1): ours first, then the brute force over the same space
and p99 budget, then both winners re-measured alternately with the same perf_analyzer settings
(`--rounds`, median). Prints exactly one line on stdout:
`ratio tuned/brute-force: X in Y% of the time` (X: median throughput of our winner over the
brute force's; Y: our search's wall time over the brute force's). Reports: build/tune/...
(tuned.*, brute-force.*, bench.json)."""

from __future__ import annotations

import argparse
import json
import sys

from rich.console import Console

from dltk.errors import DltkError
from dltk.tune.args import add_space_arguments, options_from_args

err = Console(stderr=True, width=120)


def cmd_bench_tune(args: argparse.Namespace) -> int:
    from dltk.tune.report import write_report
    from dltk.tune.run import compare, load_model, ratio_line, run_brute, run_tuned, tuning_server

    opts = options_from_args(args)
    if args.rounds < 1:
        raise DltkError("--rounds must be >= 1")
    model = load_model(opts.manifest, opts.model)
    with (
        err.status("bench tune") as status,
        tuning_server(model, opts.out, opts.ready_timeout_s) as server,
    ):
        update = lambda msg: status.update(f"bench tune: {msg}")  # noqa: E731
        tuned = run_tuned(server, model, opts, update)
        err.print(f"tuned: {len(tuned.points())} points in {tuned.wall_s:.1f} s, best {tuned.best}")
        brute = run_brute(server, model, opts, update)
        err.print(f"brute force: {len(brute.points())} points in {brute.wall_s:.1f} s, "
                  f"best {brute.best}")  # fmt: skip
        if tuned.best is None or brute.best is None:
            write_report(opts.out, tuned, [brute])
            write_report(opts.out, brute, [tuned])
            which = "our search" if tuned.best is None else "the brute force"
            raise DltkError(
                f"{which} found no config within the p99 budget; raise --budget-ms "
                f"(reports: {opts.out})"
            )
        same = (tuned.best.variant, tuned.best.concurrency) == (
            brute.best.variant,
            brute.best.concurrency,
        )
        comparison = compare(
            server, model, tuned.best, brute.best, args.rounds, opts.brute_fidelity, update
        )
    write_report(opts.out, tuned, [brute])
    write_report(opts.out, brute, [tuned])
    line = ratio_line(comparison.ratio, tuned.wall_s, brute.wall_s)
    summary = {
        "line": line,
        "ratio": round(comparison.ratio, 4),
        "time_share": round(tuned.wall_s / brute.wall_s, 4),
        "tuned_wall_s": round(tuned.wall_s, 2),
        "brute_wall_s": round(brute.wall_s, 2),
        "same_config": same,
        "rounds": args.rounds,
        "tuned_best": tuned.best.variant.label() + f"-c{tuned.best.concurrency}",
        "brute_best": brute.best.variant.label() + f"-c{brute.best.concurrency}",
        "remeasured": {
            "tuned": [[p.throughput, p.p99_ms] for p in comparison.tuned],
            "brute-force": [[p.throughput, p.p99_ms] for p in comparison.brute],
        },
    }
    (opts.out / "bench.json").write_text(json.dumps(summary, indent=2) + "\n")
    err.print(f"reports: {opts.out}")
    print(line)
    sys.stdout.flush()
    return 0


def add_bench_tune_parser(sub: argparse._SubParsersAction) -> None:
    """`dltk bench tune` under `dltk bench` (bench/cli.py calls this)."""
    t = sub.add_parser(
        "tune",
        help="our tuner vs triton-model-analyzer's brute force (one run, 127.0.0.1)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_space_arguments(t)
    t.add_argument("--rounds", type=int, default=3, help="re-measurements per winner (3)")
    t.set_defaults(func=cmd_bench_tune)
