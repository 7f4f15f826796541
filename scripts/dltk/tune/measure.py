"""The real measuring behind our own search: a one-model repository for the local tritonserver
(explicit model control), each variant loaded through the repository API with its own
config.pbtxt (rendered as deploy.yml would render it), and one perf_analyzer run per point."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path
from typing import Any

from dltk.errors import DltkError
from dltk.manifest.model import BatchRange, ModelSpec
from dltk.manifest.options import DynamicBatching
from dltk.perf import ConcurrencyRange, PerfConfig, run_sweep
from dltk.tune.search import Fidelity
from dltk.tune.space import Point, Variant

RUNTIME = "python-onnxruntime"  # the ONNX runtime the local CPU tritonserver has
PYTHON_MODEL = Path(__file__).parents[1] / "python_models" / "onnxruntime_model.py"
LOAD_TIMEOUT_S = 120.0


def variant_spec(model: ModelSpec, variant: Variant) -> ModelSpec:
    """`model` with the variant's instances, max batch and queue delay (pure). opt and min
    follow a smaller max; preferred batch sizes above it are dropped."""
    top = variant.max_batch
    batch = BatchRange(min(model.batch.min, top), min(model.batch.opt, top), top)
    preferred = model.dynamic_batching.preferred_batch_size if model.dynamic_batching else ()
    return dataclasses.replace(
        model,
        batch=batch,
        instances=variant.instances,
        dynamic_batching=DynamicBatching(
            max_queue_delay_microseconds=variant.delay_us,
            preferred_batch_size=tuple(p for p in preferred if p <= top),
        ),
        warmup=None,
    )


def config_json(model: ModelSpec, instance_kind: str = "cpu") -> str:
    """The model's config.pbtxt (as `dltk repo render` writes it) as the JSON the repository
    API's load takes (pure)."""
    from google.protobuf import json_format, text_format
    from tritonclient.grpc import model_config_pb2

    from dltk.repo.config import render_config

    message = text_format.Parse(render_config(model, RUNTIME, instance_kind),
                                model_config_pb2.ModelConfig())  # fmt: skip
    return json.dumps(json_format.MessageToDict(message, preserving_proto_field_name=True))


def shapes_of(model: ModelSpec) -> tuple[tuple[str, tuple[int, ...]], ...]:
    """perf_analyzer --shape for inputs with variable dims (1 where the dim is -1)."""
    return tuple(
        (t.name, tuple(d if d > 0 else 1 for d in t.dims))
        for t in model.inputs
        if any(d < 1 for d in t.dims)
    )


def write_repo(root: Path, model: ModelSpec) -> Path:
    """A one-model repository: config.pbtxt, 1/model.onnx, 1/model.py (python-onnxruntime)."""
    from dltk.repo.config import render_config

    target = root / model.name
    (target / "1").mkdir(parents=True, exist_ok=True)
    (target / "config.pbtxt").write_text(render_config(model, RUNTIME, "cpu"))
    shutil.copyfile(model.onnx, target / "1" / "model.onnx")
    shutil.copyfile(PYTHON_MODEL, target / "1" / "model.py")
    return root


class Measurer:
    """Loads variants on a server with explicit model control and measures points."""

    def __init__(self, server: Any, model: ModelSpec) -> None:
        from dltk.tritonbin import find_perf_analyzer

        self.server = server
        self.model = model
        self.perf = find_perf_analyzer()
        self.loaded: Variant | None = None
        self.load_seconds: list[float] = []

    def load(self, variant: Variant) -> None:
        import time

        from tritonclient.grpc import InferenceServerClient
        from tritonclient.utils import InferenceServerException

        if variant == self.loaded:
            return
        started = time.monotonic()
        text = config_json(variant_spec(self.model, variant))
        try:
            with InferenceServerClient(self.server.grpc_url) as client:
                client.load_model(self.model.name, config=text, client_timeout=LOAD_TIMEOUT_S)
                if not client.is_model_ready(self.model.name):
                    raise DltkError(f"{self.model.name} {variant.label()} is not ready after load")
        except InferenceServerException as exc:
            self.loaded = None
            raise DltkError(f"loading {variant.label()} failed: {exc.message()}") from None
        self.loaded = variant
        self.load_seconds.append(time.monotonic() - started)

    def unload(self) -> None:
        from tritonclient.grpc import InferenceServerClient

        with InferenceServerClient(self.server.grpc_url) as client:
            client.unload_model(self.model.name)
        self.loaded = None

    def __call__(self, variant: Variant, concurrency: int, fidelity: Fidelity) -> Point:
        self.load(variant)
        cfg = PerfConfig(
            model=self.model.name,
            url=self.server.grpc_url,
            protocol="grpc",
            concurrency=ConcurrencyRange(concurrency, concurrency),
            shapes=dict(shapes_of(self.model)),
            measurement_interval_ms=fidelity.interval_ms,
            max_trials=fidelity.max_trials,
            stability_percentage=fidelity.stability,
        )
        result = run_sweep(self.perf.binary, cfg, self.perf.env())
        if result.missing_levels or not result.rows:
            raise DltkError(f"perf_analyzer measured nothing for {variant.label()} c{concurrency}")
        row = result.rows[0]
        return Point(variant, concurrency, row.throughput, row.p99_ms)
