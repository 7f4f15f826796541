"""`dltk bench serving`: what serving through Triton costs, and what tuning its config buys.

All in one run on one machine, everything on 127.0.0.1 and bounded in time. Two local CPU
tritonservers (`dltk serve`) run side by side for the whole bench: the model rendered from the
manifest with server-side dynamic batching, N instances and a larger max batch (tuned), and the
same model with Triton's defaults (no dynamic batching, one instance). Then, round after round
(--rounds, 5 by default), interleaved so that drift of a shared machine reaches every
side alike:
1. in-process: onnxruntime on the model's ONNX file (all cores), per batch size;
2. served: perf_analyzer sweeps client concurrency at a large client batch on the tuned server;
3. in-process again; per batch size the better of the two runs of the round counts;
4. tuned / default: batch-1 requests at concurrency C (64) on each server (the tuned one batches),
   --pairs times, in ABBA order (tuned, default, default, tuned, ...; odd rounds start with
   default). Each pair gives one tuned/default ratio; the printed median and range are over all
   pairs of all rounds. More pairs narrow that median more cheaply than more rounds: a pair is
   two short runs, a round adds two in-process runs and the served sweep.
The pair comes after the second in-process run, never right after the served sweep: with the
sweep right before it (the order of earlier versions), the tuned server's batch-1 throughput was
lower (5.2k-8.6k infer/s against 8.0k-10.4k after the default server's run, 2026-12-03), which
made the ratio's rounds bimodal.
Each round gives served/in-process and tuned/default; stdout gets exactly two lines, the median of
each ratio with its range; tables and notes go to stderr.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dltk.bench.timing import Spread, Timing, spread, time_calls
from dltk.errors import DltkError
from dltk.metrics import ModelMetrics
from dltk.perf import ConcurrencyRange, PerfConfig, PerfResult, PerfRow, best_row

MAX_ROUNDS = 20
MAX_PAIRS = 10  # tuned/default pairs per round
STABLE_RETRIES = 2  # perf_analyzer runs again when it found no stable window
SERVING_RUNTIME = "python-onnxruntime"  # the only ONNX runtime the local tritonserver has
PYTHON_MODEL = Path(__file__).parents[1] / "python_models" / "onnxruntime_model.py"


@dataclass(frozen=True)
class ServingOptions:
    manifest: Path
    model: str = "mnist"
    concurrency: int = 64  # tuned vs default, batch-1 requests
    sweep: ConcurrencyRange = field(default_factory=lambda: ConcurrencyRange(1, 4))
    served_batch: int = 256
    max_batch_size: int = 256
    instances: int = 2
    queue_delay_us: int = 100  # 0-100 beat 500 here: 64 waiting requests batch without delay
    intra_op_threads: int = 1
    protocol: str = "grpc"
    shared_memory: bool = True
    client_threads: int = 1  # perf_analyzer --async --max-threads, tuned and default runs
    # Served sweep: client threads; None = one per concurrent request (the sweep's end). With
    # one async thread perf_analyzer kept only one large request in flight here.
    served_client_threads: int | None = None
    batches: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64, 128, 256)
    budget_s: float = 1.0  # per in-process batch size
    interval_ms: int = 2000
    max_trials: int = 4
    stability: float = 50.0
    rounds: int = 5
    pairs: int = 2
    out: Path | None = None

    def check(self) -> None:
        if not 1 <= self.served_batch <= self.max_batch_size:
            raise DltkError(
                f"--served-batch {self.served_batch} must be between 1 and --max-batch-size "
                f"{self.max_batch_size}"
            )
        if self.instances < 1 or self.intra_op_threads < 1 or self.queue_delay_us < 0:
            raise DltkError("--instances and --intra-op-threads >= 1, --queue-delay-us >= 0")
        if self.protocol not in ("http", "grpc"):
            raise DltkError("--protocol must be http or grpc")
        if not 1 <= self.rounds <= MAX_ROUNDS:
            raise DltkError(f"--rounds must be between 1 and {MAX_ROUNDS}, got {self.rounds}")
        if not 1 <= self.pairs <= MAX_PAIRS:
            raise DltkError(f"--pairs must be between 1 and {MAX_PAIRS}, got {self.pairs}")


# --- pure parts -----------------------------------------------------------------------------


def tuned_spec(model: Any, opts: ServingOptions) -> Any:
    """The manifest model with the tuned serving settings (dynamic batching, instances)."""
    from dltk.manifest.model import BatchRange
    from dltk.manifest.options import DynamicBatching

    batch = BatchRange(
        min=1, opt=min(model.batch.opt, opts.max_batch_size), max=opts.max_batch_size
    )
    return dataclasses.replace(
        model,
        batch=batch,
        instances=opts.instances,
        cpu_threads=opts.intra_op_threads,
        dynamic_batching=DynamicBatching(max_queue_delay_microseconds=opts.queue_delay_us),
    )


def default_spec(model: Any, opts: ServingOptions) -> Any:
    """Triton's defaults: no dynamic batching, one instance (same max batch as tuned)."""
    return dataclasses.replace(
        tuned_spec(model, opts), instances=1, cpu_threads=None, dynamic_batching=None
    )


def ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator > 0 else 0.0


def ratio_lines(served_vs_inprocess: Spread, tuned_vs_default: Spread) -> list[str]:
    """The two lines a script reads (pure): each ratio's median over the rounds, and its range."""
    return [
        f"ratio served/in-process: {served_vs_inprocess.text(2)}",
        f"ratio tuned/default: {tuned_vs_default.text(2)}",
    ]


def parse_ratio_lines(text: str) -> dict[str, float]:
    """{'served/in-process': median, 'tuned/default': median} from `dltk bench serving`'s stdout."""
    found: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("ratio ") and ": " in line:
            name, value = line[len("ratio ") :].split(": ", 1)
            found[name] = float(value.split()[0])
    return found


def round_order(index: int, pairs: int = 1) -> tuple[str, ...]:
    """The steps of round INDEX (0-based) in the order they run: the served sweep between the two
    in-process runs, then PAIRS tuned/default pairs in ABBA order (the first pair's order
    alternates round by round), so that a machine getting slower or faster during the bench
    reaches each side alike."""
    steps: list[str] = ["in-process", "served", "in-process"]
    for k in range(pairs):
        steps += ["tuned", "default"] if (index + k) % 2 == 0 else ["default", "tuned"]
    return tuple(steps)


def lower_median(ordered: list[Any]) -> Any:
    """The middle item of a sorted list (the lower of the two middle ones)."""
    return ordered[(len(ordered) - 1) // 2]


def best_of(first: list[Timing], second: list[Timing]) -> list[Timing]:
    """Per batch size, the timing with the higher throughput (pure)."""
    by_batch = {t.batch: t for t in first}
    for t in second:
        if t.batch not in by_batch or t.throughput > by_batch[t.batch].throughput:
            by_batch[t.batch] = t
    return [by_batch[b] for b in sorted(by_batch)]


def parse_proc_stat(text: str) -> tuple[int, str, float]:
    """(ppid, comm, cpu clock ticks user+system) from /proc/PID/stat (pure)."""
    close = text.rindex(")")
    comm = text[text.index("(") + 1 : close]
    rest = text[close + 2 :].split()
    return int(rest[1]), comm, float(int(rest[11]) + int(rest[12]))


def tree_cpu_seconds(root: int, proc: Path = Path("/proc")) -> dict[str, float]:
    """CPU seconds used so far by `root`'s descendants, by command name."""
    tick = os.sysconf("SC_CLK_TCK")
    children: dict[int, list[tuple[int, str, float]]] = {}
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid, comm, ticks = parse_proc_stat((entry / "stat").read_text())
        except (OSError, ValueError, IndexError):
            continue  # the process went away or is not readable
        children.setdefault(ppid, []).append((int(entry.name), comm, ticks))
    usage: dict[str, float] = {}
    stack = [root]
    while stack:
        for pid, comm, ticks in children.get(stack.pop(), []):
            usage[comm] = usage.get(comm, 0.0) + ticks / tick
            stack.append(pid)
    return usage


# --- records --------------------------------------------------------------------------------


@dataclass
class Measurement:
    """One perf_analyzer measurement with the server's counters and CPU split."""

    label: str
    result: PerfResult
    best: PerfRow
    metrics: ModelMetrics | None
    client_cpu_s: float
    server_cpu_s: dict[str, float]

    def summary(self) -> dict[str, Any]:
        cfg = self.result.config
        return {
            "label": self.label,
            "command": " ".join(self.result.command),
            "protocol": cfg.protocol,
            "batch": cfg.batch_size,
            "concurrency": str(cfg.concurrency),
            "best": dataclasses.asdict(self.best),
            "rows": [dataclasses.asdict(r) for r in self.result.rows],
            "metrics": self.metrics.summary() if self.metrics else None,
            "elapsed_s": round(self.result.elapsed_s, 2),
            "client_cpu_s": round(self.client_cpu_s, 2),
            "server_cpu_s": {k: round(v, 2) for k, v in sorted(self.server_cpu_s.items())},
        }


@dataclass
class ServingRound:
    """One round: in-process timings (the better of two runs per batch), the served sweep, and
    the tuned/default pairs (tuned, default), in the order they were measured."""

    inprocess: list[Timing]
    served: Measurement
    pairs: list[tuple[Measurement, Measurement]]
    order: tuple[str, ...] = round_order(0)

    @property
    def inprocess_best(self) -> Timing:
        return max(self.inprocess, key=lambda t: t.throughput)

    @property
    def served_ratio(self) -> float:
        return ratio(self.served.best.throughput, self.inprocess_best.throughput)

    @property
    def pair_ratios(self) -> list[float]:
        return [ratio(t.best.throughput, d.best.throughput) for t, d in self.pairs]

    @property
    def median_pair(self) -> tuple[Measurement, Measurement]:
        """The pair whose ratio is the round's median (the lower of the two middle ones)."""
        ranked = sorted(zip(self.pair_ratios, range(len(self.pairs)), strict=True))
        return self.pairs[lower_median(ranked)[1]]

    @property
    def tuned(self) -> Measurement:
        return self.median_pair[0]

    @property
    def default(self) -> Measurement:
        return self.median_pair[1]

    @property
    def tuned_ratio(self) -> float:
        return ratio(self.tuned.best.throughput, self.default.best.throughput)

    def to_json(self) -> dict[str, Any]:
        return {
            "order": list(self.order),
            "inprocess": [
                dict(dataclasses.asdict(t), throughput=t.throughput) for t in self.inprocess
            ],
            "inprocess_best": {
                "batch": self.inprocess_best.batch,
                "throughput": self.inprocess_best.throughput,
            },
            "served": self.served.summary(),
            "tuned": self.tuned.summary(),
            "default": self.default.summary(),
            "ratio_served_inprocess": round(self.served_ratio, 4),
            "ratio_tuned_default": round(self.tuned_ratio, 4),
            "pairs": [
                {"tuned": t.summary(), "default": d.summary(), "ratio": round(r, 4)}
                for (t, d), r in zip(self.pairs, self.pair_ratios, strict=True)
            ],
        }


@dataclass
class ServingResult:
    rounds: list[ServingRound]
    options: dict[str, Any]

    @property
    def served_spread(self) -> Spread:
        return spread([r.served_ratio for r in self.rounds])

    @property
    def tuned_spread(self) -> Spread:
        """Over every tuned/default pair of every round."""
        return spread([x for r in self.rounds for x in r.pair_ratios])

    @property
    def median_round(self) -> ServingRound:
        """The round whose tuned/default ratio is the median (the tables show it)."""
        return lower_median(sorted(self.rounds, key=lambda r: r.tuned_ratio))

    def to_json(self) -> dict[str, Any]:
        """Every round, and the medians with their range; the top-level measurements are the
        median round's (the tables')."""
        served, tuned = self.served_spread, self.tuned_spread
        return {
            "options": self.options,
            **self.median_round.to_json(),
            "ratio_served_inprocess": round(served.median, 4),
            "ratio_tuned_default": round(tuned.median, 4),
            "spread": {
                "served/in-process": dataclasses.asdict(served),
                "tuned/default": dataclasses.asdict(tuned),
            },
            "rounds": [r.to_json() for r in self.rounds],
        }


# --- I/O ------------------------------------------------------------------------------------


def inprocess_timings(
    onnx: Path, sample: np.ndarray, batches: tuple[int, ...], budget_s: float
) -> list[Timing]:
    """onnxruntime in this process with its default threads (all cores), per batch size."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(onnx), providers=["CPUExecutionProvider"])
    feed = session.get_inputs()[0].name
    timings = []
    for batch in batches:
        data = np.ascontiguousarray(np.resize(sample, (batch, *sample.shape[1:])))
        timings.append(
            time_calls(lambda d=data: session.run(None, {feed: d}), batch, budget_s, 100_000)
        )
    return timings


def write_repo(root: Path, model: Any, instance_kind: str) -> Path:
    """A one-model repository: config.pbtxt, 1/model.onnx, 1/model.py (python-onnxruntime)."""
    from dltk.repo.config import render_config

    text = render_config(model, SERVING_RUNTIME, instance_kind)
    target = root / model.name
    (target / "1").mkdir(parents=True, exist_ok=True)
    (target / "config.pbtxt").write_text(text)
    shutil.copyfile(model.onnx, target / "1" / "model.onnx")
    shutil.copyfile(PYTHON_MODEL, target / "1" / "model.py")
    return root


def measure(
    server: Any,
    opts: ServingOptions,
    label: str,
    concurrency: ConcurrencyRange,
    batch: int,
    shapes: dict[str, tuple[int, ...]],
    client_threads: int,
) -> Measurement:
    """One bounded perf_analyzer run against `server`, with metrics and CPU accounting."""
    from dltk.perf import run_perf, timeout_for
    from dltk.tritonbin import find_perf_analyzer
    from dltk.verify.perf import scrape_model

    cfg = PerfConfig(
        model=opts.model,
        url=server.grpc_url if opts.protocol == "grpc" else server.http_url,
        protocol=opts.protocol,
        concurrency=concurrency,
        batch_size=batch,
        shapes=shapes,
        measurement_interval_ms=opts.interval_ms,
        max_trials=opts.max_trials,
        stability_percentage=opts.stability,
        shared_memory=opts.shared_memory,
        async_mode=True,
        max_threads=client_threads,
    )
    install = find_perf_analyzer()
    before = scrape_model(server.metrics_url, opts.model, 10.0)
    server_before = tree_cpu_seconds(server.proc.pid)
    client_before = os.times()
    for attempt in range(1 + STABLE_RETRIES):
        try:
            result = run_perf(install.binary, cfg, install.env(), timeout_s=timeout_for(cfg))
            break
        except DltkError as exc:
            if "stable measurement" not in str(exc) or attempt == STABLE_RETRIES:
                raise
            # A shared, noisy machine: retry with windows twice as long, a looser threshold.
            cfg = dataclasses.replace(
                cfg,
                measurement_interval_ms=min(2 * cfg.measurement_interval_ms, 60_000),
                stability_percentage=max(2 * cfg.stability_percentage, 100.0),
            )
    client_after = os.times()
    server_after = tree_cpu_seconds(server.proc.pid)
    after = scrape_model(server.metrics_url, opts.model, 10.0)
    best = best_row(result.rows)
    assert best is not None  # parse_csv never returns no rows
    return Measurement(
        label=label,
        result=result,
        best=best,
        metrics=after.minus(before),
        client_cpu_s=(client_after.children_user + client_after.children_system)
        - (client_before.children_user + client_before.children_system),
        server_cpu_s={k: v - server_before.get(k, 0.0) for k, v in server_after.items()},
    )


def run_serving(opts: ServingOptions, status: Callable[[str], None]) -> ServingResult:
    from dltk.manifest.load import load_manifest
    from dltk.serve.server import background_server

    opts.check()
    model = load_manifest(opts.manifest).model(opts.model)
    if model.batch.max < 1:
        raise DltkError(f"model {opts.model!r} has max batch 0: nothing to batch")
    if len(model.inputs) != 1:
        raise DltkError(f"model {opts.model!r} has {len(model.inputs)} inputs; the bench feeds one")
    dims = tuple(d if d > 0 else 1 for d in model.inputs[0].dims)
    shapes = {model.inputs[0].name: dims} if any(d < 1 for d in model.inputs[0].dims) else {}
    sample = np.random.default_rng(0).random((1, *dims), dtype=np.float32)
    if model.samples and model.samples.is_file():
        with np.load(model.samples) as data:
            sample = np.asarray(data["inputs"], dtype=np.float32)

    single = ConcurrencyRange(opts.concurrency, opts.concurrency)
    runs = {
        "served": ("served", opts.sweep, opts.served_batch, opts.served_client_threads),
        "tuned": ("tuned", single, 1, opts.client_threads),
        "default": ("default", single, 1, opts.client_threads),
    }
    rounds: list[ServingRound] = []
    with tempfile.TemporaryDirectory(prefix="dltk-bench-serving-") as tmp:
        base = Path(tmp)
        tuned_repo = write_repo(base / "tuned", tuned_spec(model, opts), "cpu")
        default_repo = write_repo(base / "default", default_spec(model, opts), "cpu")
        status("tritonserver with the tuned config, and one with the default config")
        with (
            background_server(tuned_repo, base / "tuned.log") as tuned_server,
            background_server(default_repo, base / "default.log") as default_server,
        ):
            servers = {"served": tuned_server, "tuned": tuned_server, "default": default_server}
            for index in range(opts.rounds):
                step = f"round {index + 1}/{opts.rounds}"
                timings: list[list[Timing]] = []
                measured: dict[str, list[Measurement]] = {name: [] for name in runs}
                order = round_order(index, opts.pairs)
                for name in order:
                    if name == "in-process":
                        again = " again" if timings else ""
                        batches = ",".join(map(str, opts.batches))
                        status(f"{step}: in-process onnxruntime{again}, batches {batches}")
                        timings.append(
                            inprocess_timings(model.onnx, sample, opts.batches, opts.budget_s)
                        )
                        continue
                    label, conc, batch, threads = runs[name]
                    status(f"{step}: {label}, concurrency {conc}, client batch {batch}")
                    threads = threads or conc.end
                    measured[name].append(
                        measure(servers[name], opts, label, conc, batch, shapes, threads)
                    )
                first, again = timings
                pairs = list(zip(measured["tuned"], measured["default"], strict=True))
                rounds.append(
                    ServingRound(best_of(first, again), measured["served"][0], pairs, order)
                )
    options = {
        k: (str(v) if isinstance(v, Path | ConcurrencyRange) else v)
        for k, v in dataclasses.asdict(opts).items()
    }
    options["sweep"] = str(opts.sweep)
    result = ServingResult(rounds, options)
    if opts.out:
        try:
            opts.out.parent.mkdir(parents=True, exist_ok=True)
            opts.out.write_text(json.dumps(result.to_json(), indent=2) + "\n")
        except OSError as exc:
            raise DltkError(f"cannot write {opts.out}: {exc.strerror}") from None
    return result
