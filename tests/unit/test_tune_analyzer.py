"""dltk.tune.analyzer: model-analyzer's config as we render it, and its checkpoint read back
(tests/unit/data/tune/: a real checkpoint of model-analyzer 1.58 in remote mode against
`dltk serve --model-control-mode=explicit` with the mnist python-onnxruntime model)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from dltk.errors import DltkError
from dltk.tune.analyzer import AnalyzerRun, config_yaml, parse_checkpoint, render_config
from dltk.tune.search import CONFIRM
from dltk.tune.space import Point, Space, Variant

DATA = Path(__file__).parent / "data" / "tune"
SPACE = Space(instances=(1, 2), max_batch=(8,), delay_us=(0,), concurrency=(1, 2))
RUN = AnalyzerRun(
    model="mnist",
    http_url="127.0.0.1:18900",
    grpc_url="127.0.0.1:18901",
    metrics_url="127.0.0.1:18902",
    perf_analyzer=Path("/venv/bin/perf_analyzer"),
    workdir=Path("/tmp/ma1"),
    budget_ms=20.0,
    fidelity=CONFIRM,
)


def test_rendered_config_is_a_manual_brute_force_in_remote_mode() -> None:
    config = render_config(RUN, SPACE)
    assert config["triton_launch_mode"] == "remote"
    assert config["run_config_search_disable"] is True
    assert config["triton_metrics_url"] == "http://127.0.0.1:18902/metrics"
    model = config["profile_models"]["mnist"]
    assert model == {
        "model_config_parameters": {
            "max_batch_size": [8],
            "dynamic_batching": {"max_queue_delay_microseconds": [0]},
            "instance_group": [{"kind": "KIND_CPU", "count": [1, 2]}],
        },
        "parameters": {"concurrency": [1, 2]},
        "constraints": {"perf_latency_p99": {"max": 20.0}},
        "objectives": {"perf_throughput": 10},
    }
    assert config["perf_analyzer_flags"] == {
        "measurement-mode": "time_windows",
        "measurement-interval": CONFIRM.interval_ms,
        "max-trials": CONFIRM.max_trials,
        "stability-percentage": CONFIRM.stability,
    }


def test_the_config_we_render_matches_the_one_the_sample_ran_with() -> None:
    """The sample's config.yml is the one model-analyzer ran; ours differs only where the run
    did (the perf flags we add, paths)."""
    ran = yaml.safe_load((DATA / "config.yml").read_text())
    ours = yaml.safe_load(config_yaml(RUN, SPACE))
    assert (
        ours["profile_models"]["mnist"]["model_config_parameters"]
        == (ran["profile_models"]["mnist"]["model_config_parameters"])
    )
    assert (
        ours["profile_models"]["mnist"]["parameters"]
        == ran["profile_models"]["mnist"]["parameters"]
    )
    same = ("triton_launch_mode", "triton_http_endpoint", "triton_grpc_endpoint",
            "triton_metrics_url", "client_protocol", "run_config_search_disable")  # fmt: skip
    assert {k: ours[k] for k in same} == {k: ran[k] for k in same}


def test_shapes_go_to_perf_analyzer_flags() -> None:
    from dataclasses import replace

    config = render_config(replace(RUN, shapes=(("input", (1, 28, 28)),)), SPACE)
    assert config["perf_analyzer_flags"]["shape"] == ["input:1,28,28"]


def test_the_real_checkpoint_is_read_back() -> None:
    data = json.loads((DATA / "model-analyzer-checkpoint.json").read_text())
    found = parse_checkpoint(data, "mnist")
    assert [(a.variant_name, a.point) for a in found] == [
        ("mnist_config_0", Point(Variant(1, 8, 0), 1, 2029.84, 2.414)),
        ("mnist_config_0", Point(Variant(1, 8, 0), 2, 3122.57, 3.363)),
        ("mnist_config_default", Point(Variant(1, 64, 100), 1, 1306.05, 4.884)),
        ("mnist_config_default", Point(Variant(1, 64, 100), 2, 2153.27, 4.901)),
        ("mnist_config_1", Point(Variant(2, 8, 0), 1, 2102.43, 2.454)),
        ("mnist_config_1", Point(Variant(2, 8, 0), 2, 2220.12, 4.195)),
    ]


def test_a_checkpoint_without_the_model_is_a_one_line_error() -> None:
    data = json.loads((DATA / "model-analyzer-checkpoint.json").read_text())
    with pytest.raises(DltkError, match="no results for model 'resnet'"):
        parse_checkpoint(data, "resnet")
