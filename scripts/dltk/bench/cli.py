"""`dltk bench speed|trt|serving`: the seed benchmark tables, and serving efficiency.

speed    ms per batch for PyTorch, ONNX Runtime (CPU/GPU) and TensorRT, per batch size
trt      latency and throughput per batch size of a TensorRT engine (GPU hosts, trtexec)
serving  in-process onnxruntime vs Triton-served, and tuned vs default Triton config
converge a converged re-run of deploy.yml vs a cold deploy on a fresh sandbox host (and the
         extra time a big model in the repository costs a converged run)
fleet    a converged deploy.yml on N hosts of a fleet sandbox vs on one of them
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from dltk.bench.timing import DEFAULT_BATCHES, parse_batches
from dltk.bench.tune import add_bench_tune_parser
from dltk.errors import DltkError
from dltk.perf import parse_concurrency_range

console = Console()
err_console = Console(stderr=True, width=120)
REPO_ROOT = Path(__file__).resolve().parents[3]


def _sample_for(onnx: Path, samples: Path | None) -> np.ndarray:
    """Real samples when given, else deterministic random data of the ONNX input's shape."""
    if samples is not None:
        from dltk.verify.data import load_samples

        return np.asarray(load_samples(samples).inputs, dtype=np.float32)
    import onnxruntime as ort

    try:
        session = ort.InferenceSession(str(onnx), providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types
        raise DltkError(f"onnxruntime cannot load {onnx}: {str(exc).splitlines()[0]}") from None
    shape = [d if isinstance(d, int) and d > 0 else 1 for d in session.get_inputs()[0].shape]
    return np.random.default_rng(0).random(shape, dtype=np.float32)


def _write(path: Path, text: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    except OSError as exc:
        raise DltkError(f"cannot write {path}: {exc.strerror}") from None


# --- speed ----------------------------------------------------------------------------------


def cmd_speed(args: argparse.Namespace) -> int:
    from dltk.bench.speed import (
        agreement,
        detect_gpu,
        ort_backends,
        run_speed,
        table_rows,
        to_csv,
        torch_backends,
    )

    onnx = Path(args.onnx)
    if not onnx.is_file():
        raise DltkError(f"--onnx {onnx}: no such file; run `dltk export` first")
    if args.budget_s <= 0:
        raise DltkError("--budget-s must be > 0")
    batches = parse_batches(args.batches)
    sample = _sample_for(onnx, Path(args.samples) if args.samples else None)
    gpu = detect_gpu()
    console.print(f"GPU: {gpu.detail}" if gpu.present else f"GPU: none ({gpu.detail})")
    backends = [*([] if args.no_torch else torch_backends(onnx, gpu)), *ort_backends(onnx, gpu)]
    with console.status("timing") as status:
        results = run_speed(
            backends,
            batches,
            sample,
            args.budget_s,
            args.max_iterations,
            progress=lambda msg: status.update(f"timing {msg}"),
        )
    header, rows = table_rows(results)
    table = Table(title=f"ms per batch: {onnx.name} (mean of up to {args.max_iterations} runs)")
    for name in header:
        table.add_column(name, justify="right")
    for row in rows:
        table.add_row(*row)
    console.print(table)
    diff = agreement(backends, sample[:8])
    if diff is not None:
        console.print(f"max |PyTorch - ONNX Runtime| on 8 samples: {diff:.3g}")
    if args.csv:
        _write(Path(args.csv), to_csv(results))
        console.print(f"csv: {args.csv}")
    return 0


# --- trt ------------------------------------------------------------------------------------


def cmd_trt(args: argparse.Namespace) -> int:
    import shutil

    from dltk.bench.speed import detect_gpu
    from dltk.bench.trt import TrtRun, parse_input_shape, run_trt

    engine = Path(args.engine)
    name, dims = parse_input_shape(args.input)
    batches = parse_batches(args.batches)
    if not engine.is_file():
        raise DltkError(f"--engine {engine}: no such file; build it with trtexec on this GPU")
    gpu = detect_gpu()
    if not gpu.present:
        raise DltkError(
            f"no NVIDIA GPU on this host ({gpu.detail}): TensorRT engines run on GPU hosts only"
        )
    trtexec = args.trtexec or shutil.which("trtexec")
    if not trtexec:
        raise DltkError(
            "trtexec not found; pass --trtexec PATH (NGC images: /usr/src/tensorrt/bin)"
        )
    runs = [TrtRun(engine, name, dims, b, duration_s=args.duration_s) for b in batches]
    with console.status(f"trtexec on {engine.name}, batches {args.batches}"):
        stats = run_trt(runs, trtexec)
    table = Table(title=f"TensorRT {engine.name} on {gpu.detail}")
    for col in ("batch", "latency ms", "median ms", "p99 ms", "GPU compute ms", "infer/s"):
        table.add_column(col, justify="right")
    for s in stats:
        gpu_ms = "-" if s.gpu_compute_mean_ms is None else f"{s.gpu_compute_mean_ms:.3f}"
        table.add_row(
            str(s.batch),
            f"{s.mean_ms:.3f}",
            f"{s.median_ms:.3f}",
            f"{s.p99_ms:.3f}",
            gpu_ms,
            f"{s.throughput:.0f}",
        )
    console.print(table)
    if args.csv:
        lines = ["batch,mean_ms,median_ms,p99_ms,gpu_compute_mean_ms,samples_per_s"]
        lines += [
            f"{s.batch},{s.mean_ms},{s.median_ms},{s.p99_ms},"
            f"{'' if s.gpu_compute_mean_ms is None else s.gpu_compute_mean_ms},{s.throughput:.1f}"
            for s in stats
        ]
        _write(Path(args.csv), "\n".join(lines) + "\n")
    return 0


# --- serving --------------------------------------------------------------------------------


def cmd_serving(args: argparse.Namespace) -> int:
    from dltk.bench.serving import ServingOptions, ratio_lines, run_serving
    from dltk.bench.tables import serving_tables

    opts = ServingOptions(
        manifest=Path(args.manifest),
        model=args.model,
        concurrency=parse_concurrency_range(str(args.concurrency)).start,
        sweep=parse_concurrency_range(args.sweep),
        served_batch=args.served_batch,
        max_batch_size=args.max_batch_size,
        instances=args.instances,
        queue_delay_us=args.queue_delay_us,
        intra_op_threads=args.intra_op_threads,
        protocol=args.protocol,
        shared_memory=args.shared_memory == "system",
        client_threads=args.client_threads,
        served_client_threads=args.served_client_threads,
        batches=parse_batches(args.batches),
        budget_s=args.budget_s,
        interval_ms=args.interval_ms,
        rounds=args.rounds,
        pairs=args.pairs,
        out=Path(args.out) if args.out else None,
    )
    if not opts.manifest.is_file():
        raise DltkError(f"--manifest {opts.manifest}: no such file")
    with err_console.status("bench serving") as status:
        result = run_serving(opts, lambda msg: status.update(f"bench serving: {msg}"))
    for table in serving_tables(result):
        err_console.print(table)
    if opts.out:
        err_console.print(f"results: {opts.out}")
    for line in ratio_lines(result.served_spread, result.tuned_spread):
        print(line)
    sys.stdout.flush()
    return 0


# --- converge -------------------------------------------------------------------------------


def cmd_converge(args: argparse.Namespace) -> int:
    from dltk.bench.converge import (
        cold_and_converged,
        manifest_with_bulk,
        report_lines,
        small_and_big,
        write_bulk_onnx,
    )
    from dltk.drill.host import DrillHost, deploy, sandbox

    root = REPO_ROOT
    # Every task's time in build/bench/converge/plays.log (profile_tasks lists 20 by default).
    os.environ.setdefault("PROFILE_TASKS_TASK_OUTPUT_LIMIT", "all")
    inventory = root / "inventory" / "bench.yml"
    work = root / "build" / "bench" / "converge"
    work.mkdir(parents=True, exist_ok=True)

    def host(name: str, port: int, models: tuple[str, ...]) -> DrillHost:
        return DrillHost(root, inventory, name, port, work, models=models)

    def play(h: DrillHost):  # type: ignore[no-untyped-def]
        return deploy(h, "--limit", h.name)

    def fresh(h: DrillHost) -> None:
        sandbox(h, "down")
        sandbox(h, "up")

    def log(msg: str) -> None:
        print(f"[bench converge] {msg}", file=sys.stderr, flush=True)

    hosts = [host("dltk-bench-1", 18300, ("mnist", "mnist_classifier"))]
    small_runs: tuple[list, list] = ([], [])
    try:
        cold, converged = cold_and_converged(hosts[0], args.rounds, play, fresh, log)
        if args.big_mb > 0:
            base = Path(args.manifest)
            for label, mb in (("small", 1.0), ("big", args.big_mb)):
                size = write_bulk_onnx(work / f"bulk-{label}.onnx", mb, args.external_data)
                manifest_with_bulk(base, work / f"bulk-{label}.onnx", work / f"models-{label}.yml")
                log(f"bulk model for dltk-bench-{label}: {size / 1e6:.1f} MB")
            models = ("mnist", "mnist_classifier", "bulk")
            hosts += [
                host("dltk-bench-small", 18310, models),
                host("dltk-bench-big", 18320, models),
            ]
            small_runs = small_and_big(hosts[1], hosts[2], args.size_rounds, play, fresh, log)
    finally:
        if not args.keep:
            for h in hosts:
                sandbox(h, "down")
    for line in report_lines(cold, converged, *small_runs, big_mb=args.big_mb):
        print(line)
    sys.stdout.flush()
    return 0


# --- fleet ----------------------------------------------------------------------------------


def cmd_fleet(args: argparse.Namespace) -> int:
    import json
    import subprocess

    from dltk.api_key import headers_for, read_api_key
    from dltk.bench.fleet import extra_vars, fleet_perf_lines, measure, report_lines, sides
    from dltk.drill.host import DrillHost, deploy
    from dltk.fleet.inventory import key_path, lb_ports
    from dltk.perf import PerfConfig, parse_concurrency_range, run_sweep
    from dltk.tritonbin import find_perf_analyzer

    root = REPO_ROOT
    # Every task's time in build/bench/fleet/plays.log (profile_tasks lists 20 by default).
    os.environ.setdefault("PROFILE_TASKS_TASK_OUTPUT_LIMIT", "all")
    work = root / "build" / "bench" / "fleet"
    work.mkdir(parents=True, exist_ok=True)
    inventory = root / "build" / "fleet" / args.name / "inventory.yml"
    one, many = sides(args.hosts, args.name)
    http_port, grpc_port = lb_ports(args.base_port)
    extra = json.dumps(extra_vars(args.name))
    timed_extra = ["-e", args.extra_vars] if args.extra_vars else []
    fleet_env = dict(
        os.environ,
        FLEET_NAME=args.name,
        FLEET_PORT_BASE=str(args.base_port),
        FLEET_HOSTS=str(args.hosts),
        FLEET_EXTRA_VARS=extra,
        ANSIBLE_CONFIG=str(root / "ansible.cfg"),
        PATH=f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}",
    )

    def log(msg: str) -> None:
        print(f"[bench fleet] {msg}", file=sys.stderr, flush=True)

    def fleet(action: str) -> None:
        out = work / f"fleet-{action}.log"
        log(f"scripts/fleet.sh {action} ({args.name}, {args.hosts} hosts; log: {out})")
        with out.open("w") as f:
            try:
                proc = subprocess.run(
                    ["scripts/fleet.sh", action], cwd=root, env=fleet_env, stdout=f,
                    stderr=subprocess.STDOUT, timeout=args.up_timeout_s, check=False,
                )  # fmt: skip
            except subprocess.TimeoutExpired:
                raise DltkError(f"scripts/fleet.sh {action}: no end within "
                                f"{args.up_timeout_s:.0f} s (log: {out})") from None  # fmt: skip
        if proc.returncode != 0:
            tail = out.read_text().strip().splitlines()[-5:]
            raise DltkError(f"scripts/fleet.sh {action} failed: {' | '.join(tail)} (log: {out})")

    # The drill's ansible-playbook runner on the fleet's inventory (its name only labels logs).
    runner = DrillHost(root, inventory, args.name, http_port, work, play_timeout_s=1800.0)

    def play(side):  # type: ignore[no-untyped-def]
        return deploy(
            runner, "-e", "dltk_hosts=sandbox", "-e", extra, *timed_extra, "--limit", side.limit
        )

    try:
        fleet("up")
        runs = measure(one, many, args.rounds, play, log)
        for line in report_lines(one, many, runs, os.cpu_count()):
            print(line, flush=True)
        if args.perf:
            url = f"127.0.0.1:{grpc_port}"
            log(f"fleet perf_analyzer through the load balancer {url} (once)")
            tool = find_perf_analyzer()
            key = read_api_key(key_path(inventory))
            cfg = PerfConfig(
                model=args.model,
                url=url,
                protocol="grpc",
                concurrency=parse_concurrency_range(args.perf_concurrency),
                headers=tuple(headers_for("grpc", key).items()),
                # The fleet's hosts and the client share the machine's cores: 2 s windows,
                # 50 % stability (what dltk tune's confirm rung uses on this machine).
                measurement_interval_ms=2000,
                stability_percentage=50.0,
            )
            result = run_sweep(tool.binary, cfg, tool.env())
            for line in fleet_perf_lines(url, cfg.protocol, result.rows):
                print(line, flush=True)
    finally:
        if not args.keep:
            fleet("down")
    return 0


# --- parser ---------------------------------------------------------------------------------


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "bench",
        help="benchmark tables: runtimes per batch size, TensorRT engines, serving efficiency",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = p.add_subparsers(dest="bench", metavar="BENCH", required=True)
    default_batches = ",".join(map(str, DEFAULT_BATCHES))

    s = sub.add_parser("speed", help="ms per batch for each runtime this host has")
    s.add_argument("--onnx", default="build/models/mnist.onnx", help="ONNX model file")
    s.add_argument("--samples", help="NPZ with `inputs` (default: random data)")
    s.add_argument("--batches", default=default_batches, help=f"default {default_batches}")
    s.add_argument("--budget-s", type=float, default=0.5, help="seconds per cell (default 0.5)")
    s.add_argument("--max-iterations", type=int, default=200, help="runs per cell at most")
    s.add_argument("--no-torch", action="store_true", help="skip the PyTorch columns")
    s.add_argument("--csv", help="also write the results to this CSV file")
    s.set_defaults(func=cmd_speed)

    t = sub.add_parser("trt", help="latency/throughput per batch of a TensorRT engine (GPU)")
    t.add_argument("--engine", required=True, help="serialized TensorRT engine (.plan)")
    t.add_argument("--input", default="input:1,28,28", help="NAME:DIMS of one sample")
    t.add_argument("--batches", default="1,8,32,64", help="batch sizes in the engine's profile")
    t.add_argument("--duration-s", type=int, default=3, help="trtexec seconds per batch")
    t.add_argument("--trtexec", help="trtexec binary (default: on PATH)")
    t.add_argument("--csv", help="also write the results to this CSV file")
    t.set_defaults(func=cmd_trt)

    v = sub.add_parser(
        "serving",
        help="in-process vs Triton-served throughput, tuned vs default config",
        description="Starts the local CPU tritonserver twice on 127.0.0.1, with a tuned and with "
        "the default config, then measures round after round (interleaved): onnxruntime "
        "in-process, and each server by perf_analyzer. Prints two lines on stdout, each ratio's "
        "median over the rounds (tuned/default: over every pair of every round) with its range: "
        "'ratio served/in-process: X.XX (min A, max B, n=R)' and 'ratio tuned/default: Y.YY "
        "(...)'; tables go to stderr.",
    )
    v.add_argument("--manifest", default=str(REPO_ROOT / "model_repo" / "models.yml"))
    v.add_argument("--model", default="mnist", help="manifest model (default mnist)")
    v.add_argument("--concurrency", type=int, default=64, help="tuned vs default (default 64)")
    v.add_argument("--sweep", default="1:4", help="served concurrency range (default 1:4)")
    v.add_argument("--served-batch", type=int, default=256, help="client batch (default 256)")
    v.add_argument("--max-batch-size", type=int, default=256, help="config max_batch_size")
    v.add_argument("--instances", type=int, default=2, help="tuned instance count (default 2)")
    v.add_argument("--queue-delay-us", type=int, default=100, help="tuned max_queue_delay")
    v.add_argument("--intra-op-threads", type=int, default=1, help="onnxruntime threads/instance")
    v.add_argument("--protocol", choices=("grpc", "http"), default="grpc")
    v.add_argument("--shared-memory", choices=("system", "none"), default="system")
    v.add_argument("--client-threads", type=int, default=1, help="async threads, batch-1 runs")
    v.add_argument(
        "--served-client-threads", type=int, help="served sweep threads (default: sweep end)"
    )
    v.add_argument("--batches", default="1-256", help="in-process batch sizes (default 1-256)")
    v.add_argument("--budget-s", type=float, default=1.0, help="seconds per in-process batch")
    v.add_argument("--interval-ms", type=int, default=2000, help="perf window (default 2000)")
    v.add_argument(
        "--rounds", type=int, default=5, help="interleaved rounds of every measurement (default 5)"
    )
    v.add_argument(
        "--pairs", type=int, default=2, help="tuned/default pairs per round, ABBA (default 2)"
    )
    v.add_argument("--out", help="write every measurement to this JSON file")
    v.set_defaults(func=cmd_serving)

    c = sub.add_parser(
        "converge",
        help="converged re-run of deploy.yml vs cold deploy on fresh sandbox hosts",
        description="Sandbox hosts of inventory/bench.yml (images built: `make images`). Each "
        "round creates dltk-bench-1 fresh, runs deploy.yml (cold), then again (converged). "
        "Prints the median and spread of 'ratio converged/cold' on stdout; with --big-mb, also "
        "the extra seconds a converged run takes with a big model in the repository.",
    )
    c.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="cold/converged rounds (default 3; 0: size check only)",
    )
    c.add_argument("--big-mb", type=float, default=0, help="size check: extra model of N MB")
    c.add_argument("--size-rounds", type=int, default=3, help="size check rounds (default 3)")
    c.add_argument(
        "--external-data",
        action="store_true",
        help="the extra model keeps its weights in an external data file (as models over 2 GB do)",
    )
    c.add_argument("--manifest", default=str(REPO_ROOT / "model_repo" / "models.yml"))
    c.add_argument("--keep", action="store_true", help="leave the bench hosts running")
    c.set_defaults(func=cmd_converge)

    f = sub.add_parser(
        "fleet",
        help="converged deploy.yml on N hosts of a fleet sandbox vs on one of them",
        description="Brings up a fleet sandbox of its own (scripts/fleet.sh, FLEET_NAME=--name, "
        "FLEET_PORT_BASE=--base-port: ports BASE..BASE+91; images built: `make images`), runs "
        "one untimed converged deploy.yml, then R rounds of a converged deploy.yml limited to "
        "NAME-1 and one on all hosts, alternating which goes first, each ending changed=0. "
        "Prints the median and spread of each side and of 'ratio N-host/1-host converged "
        "deploy' on stdout; then (--no-perf: not) one fleet-level perf_analyzer sweep through "
        "the load balancer (the fleet inventory has no per-host perf sweep). Removes the fleet "
        "unless --keep.",
    )
    f.add_argument("--hosts", type=int, default=4, help="hosts of the fleet (default 4)")
    f.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    f.add_argument("--name", default="dltk-bench", help="fleet name (default dltk-bench)")
    f.add_argument("--base-port", type=int, default=18700, help="first port (default 18700)")
    f.add_argument("--model", default="mnist", help="model of the fleet perf run (mnist)")
    f.add_argument(
        "--perf-concurrency", default="1:4", help="fleet perf_analyzer levels (default 1:4)"
    )
    f.add_argument(
        "--perf",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="after the rounds, one perf_analyzer sweep through the load balancer with the "
        "fleet's API key (perf_analyzer reads the statistics API, which the fleet's load "
        "balancer forwards and tritonserver answers only with the key; default: on)",
    )
    f.add_argument(
        "--extra-vars",
        help="more -e for the bench's deploy.yml runs (JSON), e.g. to compare a setting",
    )
    f.add_argument("--up-timeout-s", type=float, default=2400, help="fleet.sh up/down bound")
    f.add_argument("--keep", action="store_true", help="leave the fleet running")
    f.set_defaults(func=cmd_fleet)

    add_bench_tune_parser(sub)  # dltk bench tune: bench/tune.py
