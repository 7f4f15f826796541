"""triton-model-analyzer as the brute-force reference of `dltk tune --brute`.

model-analyzer runs in remote mode against a tritonserver started with explicit model control
(`dltk serve --model-control-mode=explicit`): it loads each model config variant through the
repository API (the model's files stay in the server's repository, only config.pbtxt changes),
runs perf_analyzer (the tritonclient binary dltk already finds) at every concurrency level, and
keeps its measurements in a checkpoint file. With the model config parameters and the
concurrency levels both given, it measures the whole product (no early exit), plus the model's
own config ("mnist_config_default"). The pure parts here render its YAML config and read its
checkpoint; `run_model_analyzer` is the bounded subprocess.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from dltk.errors import DltkError
from dltk.tune.search import Fidelity
from dltk.tune.space import Point, Space, Variant

INSTALL_HINT = "install it with: pip install -c constraints.txt -e '.[tune]' (or `make venv`)"
CHECKPOINT = "0.ckpt"


@dataclass(frozen=True)
class AnalyzerRun:
    """Where model-analyzer reaches the server and perf_analyzer, and where it writes."""

    model: str
    http_url: str  # host:port
    grpc_url: str
    metrics_url: str  # host:port
    perf_analyzer: Path
    workdir: Path
    budget_ms: float
    fidelity: Fidelity
    shapes: tuple[tuple[str, tuple[int, ...]], ...] = ()  # perf_analyzer --shape NAME:DIMS
    instance_kind: str = "KIND_CPU"

    @property
    def checkpoint(self) -> Path:
        return self.workdir / "checkpoints" / CHECKPOINT


def render_config(run: AnalyzerRun, space: Space) -> dict[str, Any]:
    """model-analyzer's profile config for a manual brute-force search over `space` (pure)."""
    flags: dict[str, Any] = {
        "measurement-mode": "time_windows",
        "measurement-interval": run.fidelity.interval_ms,
        "max-trials": run.fidelity.max_trials,
        "stability-percentage": run.fidelity.stability,
    }
    if run.shapes:
        flags["shape"] = [f"{name}:{','.join(map(str, dims))}" for name, dims in run.shapes]
    return {
        "triton_launch_mode": "remote",
        "triton_http_endpoint": run.http_url,
        "triton_grpc_endpoint": run.grpc_url,
        "triton_metrics_url": f"http://{run.metrics_url}/metrics",
        "client_protocol": "grpc",
        "perf_analyzer_path": str(run.perf_analyzer),
        "output_model_repository_path": str(run.workdir / "variants"),
        "override_output_model_repository": True,
        "export_path": str(run.workdir / "export"),
        "checkpoint_directory": str(run.workdir / "checkpoints"),
        "run_config_search_disable": True,
        "collect_cpu_metrics": False,
        "skip_summary_reports": True,
        "perf_analyzer_flags": flags,
        "profile_models": {
            run.model: {
                "model_config_parameters": {
                    "max_batch_size": list(space.max_batch),
                    "dynamic_batching": {"max_queue_delay_microseconds": list(space.delay_us)},
                    "instance_group": [{"kind": run.instance_kind, "count": list(space.instances)}],
                },
                "parameters": {"concurrency": list(space.concurrency)},
                "constraints": {"perf_latency_p99": {"max": run.budget_ms}},
                "objectives": {"perf_throughput": 10},
            }
        },
    }


def config_yaml(run: AnalyzerRun, space: Space) -> str:
    return yaml.safe_dump(render_config(run, space), sort_keys=False)


def _metric(tags: Mapping[str, Any], name: str) -> float:
    try:
        return float(tags[name][1]["_value"])
    except (KeyError, IndexError, TypeError, ValueError):
        raise DltkError(f"model-analyzer checkpoint: a measurement lacks {name}") from None


def variant_of(model_config: Mapping[str, Any]) -> Variant:
    """The Variant of a model config as model-analyzer stores it (protobuf JSON names)."""
    groups = model_config.get("instanceGroup") or [{}]
    delay = (model_config.get("dynamicBatching") or {}).get("maxQueueDelayMicroseconds", 0)
    return Variant(
        instances=sum(int(g.get("count", 1)) for g in groups),
        max_batch=int(model_config.get("maxBatchSize", 0)),
        delay_us=int(delay),
    )


@dataclass(frozen=True)
class AnalyzerPoint:
    """A checkpoint measurement: the variant's name in model-analyzer and the point."""

    variant_name: str
    point: Point


def parse_checkpoint(data: Mapping[str, Any], model: str) -> list[AnalyzerPoint]:
    """Every measurement of `model` in a model-analyzer checkpoint (pure)."""
    try:
        variants = data["ResultManager.results"]["_results"][model]
    except (KeyError, TypeError):
        raise DltkError(
            f"model-analyzer checkpoint has no results for model {model!r}; see its log"
        ) from None
    found: list[AnalyzerPoint] = []
    for name, (run_config, measurements) in variants.items():
        model_config = run_config["_model_run_configs"][0]["_model_config_variant"]["model_config"]
        variant = variant_of(model_config)
        for measurement in measurements.values():
            for record in measurement["_model_config_measurements"]:
                tags = record["_non_gpu_data_from_tag"]
                concurrency = int(record["_model_specific_pa_params"]["concurrency-range"])
                point = Point(
                    variant,
                    concurrency,
                    _metric(tags, "perf_throughput"),
                    _metric(tags, "perf_latency_p99"),
                )
                found.append(AnalyzerPoint(name, point))
    return sorted(found, key=lambda a: (a.point.variant, a.point.concurrency, a.variant_name))


def model_analyzer_binary() -> Path:
    binary = Path(sys.executable).parent / "model-analyzer"
    if binary.is_file():
        return binary
    found = shutil.which("model-analyzer")
    if not found:
        raise DltkError(f"model-analyzer (triton-model-analyzer) not found; {INSTALL_HINT}")
    return Path(found)


def timeout_for(space: Space, fidelity: Fidelity, per_level_s: float = 30.0) -> float:
    """A bound for the whole brute force: each point's windows, auto-adjusted up to 3 times
    longer, plus per-level overhead, for the space and the model's own config."""
    levels = (len(space.variants()) + 1) * len(space.concurrency)
    window_s = fidelity.max_trials * fidelity.interval_ms / 1000.0
    return 120.0 + levels * (3 * window_s + per_level_s)


def run_model_analyzer(
    run: AnalyzerRun, space: Space, env: Mapping[str, str], timeout_s: float
) -> tuple[list[AnalyzerPoint], float]:
    """model-analyzer profile over `space` (bounded); its measurements and the wall time."""
    binary = model_analyzer_binary()
    if run.workdir.exists():
        shutil.rmtree(run.workdir)  # a checkpoint left there would be resumed, not re-measured
    run.workdir.mkdir(parents=True)
    config = run.workdir / "config.yml"
    config.write_text(config_yaml(run, space))
    log_path = run.workdir / "model-analyzer.log"
    started = time.monotonic()
    with log_path.open("w") as log:
        try:
            proc = subprocess.run(
                [str(binary), "profile", "-f", str(config)],
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=run.workdir,
                env=dict(env),
                timeout=timeout_s,
            )
        except subprocess.TimeoutExpired:
            raise DltkError(
                f"model-analyzer did not finish within {timeout_s:.0f}s; shrink the search "
                f"space (log: {log_path})"
            ) from None
    elapsed = time.monotonic() - started
    if proc.returncode != 0 or not run.checkpoint.is_file():
        tail = log_path.read_text(errors="replace").strip().splitlines()[-1:] or ["(no output)"]
        raise DltkError(
            f"model-analyzer failed (exit {proc.returncode}): {tail[0]} (log: {log_path})"
        )
    data = json.loads(run.checkpoint.read_text())
    return parse_checkpoint(data, run.model), elapsed
