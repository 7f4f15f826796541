"""Triton's Prometheus metrics: scrape the metrics port, parse (prometheus_client), per-model
counters.

tritonserver exposes per-model counters on its metrics port (`/metrics`, text format 0.0.4):
request success/failure, inference count (samples) and execution count (batches the model ran),
and cumulative durations in microseconds for queueing and compute. The difference of two
scrapes around a load run gives what the run did: average batch = inferences / executions,
queue and compute time per request.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from dltk.errors import DltkError

US_PER_MS = 1000.0
# Counter name -> ModelMetrics field (summed over versions and label values such as `reason`).
COUNTERS = {
    "nv_inference_request_success": "success",
    "nv_inference_request_failure": "failure",
    "nv_inference_count": "inferences",
    "nv_inference_exec_count": "executions",
    "nv_inference_request_duration_us": "request_us",
    "nv_inference_queue_duration_us": "queue_us",
    "nv_inference_compute_input_duration_us": "compute_input_us",
    "nv_inference_compute_infer_duration_us": "compute_infer_us",
    "nv_inference_compute_output_duration_us": "compute_output_us",
}


@dataclass(frozen=True)
class Sample:
    name: str
    labels: dict[str, str]
    value: float


def parse_prometheus(text: str) -> list[Sample]:
    """Samples of a Prometheus text exposition, parsed by prometheus_client.

    prometheus_client names a counter's samples the OpenMetrics way (`<family>_total`); a sample
    here keeps the name tritonserver exposes, the family's (Triton's counters have no `_total`).
    """
    try:
        families = list(text_string_to_metric_families(text))
    except ValueError:
        raise _parse_error(text) from None
    return [
        Sample(
            family.name if family.type == "counter" else sample.name,
            dict(sample.labels),
            float(sample.value),
        )
        for family in families
        for sample in family.samples
        if family.type != "counter" or sample.name == f"{family.name}_total"
    ]


def _parses(line: str) -> bool:
    try:
        list(text_string_to_metric_families(line + "\n"))
    except ValueError:
        return False
    return True


def _parse_error(text: str) -> DltkError:
    """The first line prometheus_client refuses, by its 1-based number: a sample whose value is
    not a number, or a line that is no sample at all."""
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if _parses(line):
            continue
        head, _, value = line.rpartition(" ")
        if head and _parses(f"{head} 0"):
            return DltkError(f"metrics line {number}: value {value!r} is not a number")
        return DltkError(f"metrics line {number} is not a Prometheus sample: {line[:80]!r}")
    return DltkError("the metrics text is not in the Prometheus text format")


@dataclass(frozen=True)
class ModelMetrics:
    """Cumulative counters of one model (all versions), or the difference of two scrapes."""

    model: str
    success: float = 0.0
    failure: float = 0.0
    inferences: float = 0.0
    executions: float = 0.0
    request_us: float = 0.0
    queue_us: float = 0.0
    compute_input_us: float = 0.0
    compute_infer_us: float = 0.0
    compute_output_us: float = 0.0

    @property
    def requests(self) -> float:
        return self.success + self.failure

    @property
    def avg_batch(self) -> float | None:
        """Samples per model execution: > 1 means the dynamic batcher combined requests."""
        return self.inferences / self.executions if self.executions else None

    def per_request_ms(self, value_us: float) -> float | None:
        return value_us / self.success / US_PER_MS if self.success else None

    @property
    def queue_ms(self) -> float | None:
        return self.per_request_ms(self.queue_us)

    @property
    def compute_ms(self) -> float | None:
        total = self.compute_input_us + self.compute_infer_us + self.compute_output_us
        return self.per_request_ms(total)

    @property
    def request_ms(self) -> float | None:
        return self.per_request_ms(self.request_us)

    def minus(self, before: ModelMetrics) -> ModelMetrics:
        values = {
            f.name: getattr(self, f.name) - getattr(before, f.name)
            for f in fields(self)
            if f.name != "model"
        }
        return ModelMetrics(model=self.model, **values)

    def summary(self) -> dict[str, Any]:
        data: dict[str, Any] = asdict(self)
        for name in ("avg_batch", "queue_ms", "compute_ms", "request_ms"):
            value = getattr(self, name)
            data[name] = None if value is None else round(value, 4)
        return data


def model_metrics(samples: Iterable[Sample], model: str) -> ModelMetrics:
    """Sum the per-model counters of `model` over its versions (pure)."""
    totals = dict.fromkeys(COUNTERS.values(), 0.0)
    for sample in samples:
        field_name = COUNTERS.get(sample.name)
        if field_name and sample.labels.get("model") == model:
            totals[field_name] += sample.value
    return ModelMetrics(model=model, **totals)


def metric_models(samples: Sequence[Sample]) -> list[str]:
    return sorted(
        {s.labels["model"] for s in samples if s.name in COUNTERS and "model" in s.labels}
    )


def scrape(url: str, timeout: float = 10.0) -> list[Sample]:
    """GET http://HOST:PORT/metrics and parse it; one-line DltkError when unreachable."""
    target = url if url.startswith("http") else f"http://{url}"
    if not target.rstrip("/").endswith("/metrics"):
        target = target.rstrip("/") + "/metrics"
    try:
        with urllib.request.urlopen(target, timeout=timeout) as response:
            text = response.read().decode("utf-8", errors="replace")
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", None) or getattr(exc, "strerror", None) or exc
        raise DltkError(
            f"cannot scrape Triton metrics at {target}: {reason}; is the metrics port "
            "(--metrics-port, default 8002) published and enabled?"
        ) from None
    return parse_prometheus(text)
