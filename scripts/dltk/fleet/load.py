"""Steady inference load through the load balancer while something else runs (a rollout), and
what it saw: requests sent and failed, p99 latency before / during / after, the model versions
that answered. Bounded: each worker stops at the deadline or after its share of requests.

    python -m dltk.fleet load --http 127.0.0.1:18490 --grpc 127.0.0.1:18491 --model mnist \\
        -- ansible-playbook deploy.yml -i build/fleet/inventory.yml -e dltk_hosts=sandbox
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from dltk.errors import DltkError

PHASES = ("before", "during", "after")


@dataclass(frozen=True)
class Sample:
    at_s: float  # seconds since the load started, when the request was sent
    protocol: str
    ok: bool
    latency_ms: float
    version: str = ""
    error: str = ""


@dataclass(frozen=True)
class Phase:
    name: str
    sent: int
    failed: int
    p99_ms: float | None
    versions: dict[str, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)


def p99(values: Sequence[float]) -> float | None:
    """The 99th percentile (nearest rank), None without values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, -(-99 * len(ordered) // 100) - 1)]


def phases(samples: Sequence[Sample], start_s: float, end_s: float) -> list[Phase]:
    """Split SAMPLES at the run's start and end (seconds since the load started)."""
    buckets: dict[str, list[Sample]] = {name: [] for name in PHASES}
    for s in samples:
        name = "before" if s.at_s < start_s else ("during" if s.at_s <= end_s else "after")
        buckets[name].append(s)
    out = []
    for name in PHASES:
        group = buckets[name]
        versions: dict[str, int] = {}
        errors: dict[str, int] = {}
        for s in group:
            if s.ok:
                versions[s.version] = versions.get(s.version, 0) + 1
            else:
                errors[s.error] = errors.get(s.error, 0) + 1
        out.append(
            Phase(
                name=name,
                sent=len(group),
                failed=sum(1 for s in group if not s.ok),
                p99_ms=p99([s.latency_ms for s in group if s.ok]),
                versions=dict(sorted(versions.items())),
                errors=dict(sorted(errors.items(), key=lambda kv: -kv[1])),
            )
        )
    return out


def last_versions(samples: Sequence[Sample], tail: int = 20) -> dict[str, int]:
    """The versions that answered the last TAIL successful requests (what is served at the end)."""
    ok = [s for s in samples if s.ok][-tail:]
    counts: dict[str, int] = {}
    for s in ok:
        counts[s.version] = counts.get(s.version, 0) + 1
    return dict(sorted(counts.items()))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:120]


class Load:
    """WORKERS threads, alternating HTTP and gRPC clients, each sending one request at a time
    with at most RATE requests per second per worker, until stop() or MAX_SECONDS or
    MAX_REQUESTS in all."""

    def __init__(
        self,
        send: Callable[[str], str],
        workers: int = 4,
        rate: float = 10.0,
        max_seconds: float = 900.0,
        max_requests: int = 200_000,
    ) -> None:
        if workers < 1 or rate <= 0 or max_seconds <= 0 or max_requests < 1:
            raise DltkError("load: workers >= 1, rate > 0, max seconds > 0, max requests >= 1")
        self.send, self.workers, self.rate = send, workers, rate
        self.max_seconds, self.max_requests = max_seconds, max_requests
        self.samples: list[Sample] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.t0 = 0.0

    def now(self) -> float:
        return time.monotonic() - self.t0

    def _worker(self, protocol: str, quota: int) -> None:
        interval = 1.0 / self.rate
        for _ in range(quota):
            if self._stop.is_set() or self.now() > self.max_seconds:
                return
            sent = self.now()
            try:
                version = self.send(protocol)
                sample = Sample(sent, protocol, True, (self.now() - sent) * 1000, version)
            except Exception as exc:  # every failure counts, whatever the client raised
                sample = Sample(
                    sent, protocol, False, (self.now() - sent) * 1000, "", _first_line(exc)
                )
            with self._lock:
                self.samples.append(sample)
            self._stop.wait(max(0.0, interval - (self.now() - sent)))

    def start(self) -> Load:
        self.t0 = time.monotonic()
        quota = max(1, self.max_requests // self.workers)
        for i in range(self.workers):
            protocol = "http" if i % 2 == 0 else "grpc"
            t = threading.Thread(target=self._worker, args=(protocol, quota), daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def stop(self) -> list[Sample]:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=60)
        with self._lock:
            return sorted(self.samples, key=lambda s: s.at_s)


def answer_id(version: str, output: Any) -> str:
    """'<model version>/<8 hex>': the version Triton names and a digest of the answer to the fixed
    request (rounded to 1e-4), so a new model under the same version number shows as new."""
    import hashlib

    import numpy as np

    rounded = np.round(np.asarray(output, dtype=np.float64), 4)
    return f"{version}/{hashlib.sha256(rounded.tobytes()).hexdigest()[:8]}"


def triton_sender(
    http_url: str, grpc_url: str, model: str, timeout_s: float = 10.0
) -> Callable[[str], str]:
    """send(protocol) -> answer_id of the response: one inference of MODEL (zeros of its
    metadata's shapes) through the load balancer, a client per thread (kept alive)."""
    import tritonclient.grpc as grpcclient
    import tritonclient.http as httpclient

    from dltk.fleet.traffic import infer_inputs, zeros_inputs

    metadata = httpclient.InferenceServerClient(http_url).get_model_metadata(model)
    inputs = zeros_inputs(metadata)
    output = metadata["outputs"][0]["name"]
    local = threading.local()

    def send(protocol: str) -> str:
        if protocol == "http":
            client = getattr(local, "http", None) or httpclient.InferenceServerClient(
                http_url, connection_timeout=timeout_s, network_timeout=timeout_s
            )
            local.http = client
            result: Any = client.infer(model, infer_inputs(httpclient, inputs))
            return answer_id(
                str(result.get_response().get("model_version", "")), result.as_numpy(output)
            )
        client = getattr(local, "grpc", None) or grpcclient.InferenceServerClient(grpc_url)
        local.grpc = client
        result = client.infer(model, infer_inputs(grpcclient, inputs), client_timeout=timeout_s)
        return answer_id(str(result.get_response().model_version), result.as_numpy(output))

    return send


def under_load(
    send: Callable[[str], str],
    command: Sequence[str],
    *,
    workers: int = 4,
    rate: float = 10.0,
    warmup_s: float = 5.0,
    cooldown_s: float = 5.0,
    max_seconds: float = 900.0,
    max_requests: int = 200_000,
) -> dict[str, Any]:
    """Run COMMAND while LOAD runs (WARMUP_S before, COOLDOWN_S after); what the load saw."""
    import subprocess

    load = Load(send, workers, rate, max_seconds + warmup_s + cooldown_s, max_requests).start()
    time.sleep(warmup_s)
    start = load.now()
    try:
        rc = subprocess.run(list(command), check=False, timeout=max_seconds).returncode
    except subprocess.TimeoutExpired:
        rc = -1
    end = load.now()
    time.sleep(cooldown_s)
    samples = load.stop()
    result = phases(samples, start, end)
    return {
        "command": list(command),
        "exit": rc,
        "seconds": round(end - start, 1),
        "load": {"workers": workers, "rate_per_worker": rate},
        "phases": [vars(ph) for ph in result],
        "served_at_end": last_versions(samples),
        "sent": len(samples),
        "failed": sum(ph.failed for ph in result),
    }


def result_lines(result: dict[str, Any]) -> list[str]:
    """The table a person reads (pure)."""
    lines = [
        f"command exit {result['exit']} after {result['seconds']:.0f} s",
        f"{'phase':<8} {'sent':>7} {'failed':>7} {'p99 ms':>9}  answers (version/answer digest)",
    ]
    for ph in result["phases"]:
        p99_text = "-" if ph["p99_ms"] is None else f"{ph['p99_ms']:.1f}"
        answers = ", ".join(f"v{v}: {n}" for v, n in ph["versions"].items()) or "-"
        lines.append(f"{ph['name']:<8} {ph['sent']:>7} {ph['failed']:>7} {p99_text:>9}  {answers}")
        lines += [f"{'':<8} {n:>7} x {error}" for error, n in list(ph["errors"].items())[:3]]
    served = ", ".join(f"v{v}: {n}" for v, n in result["served_at_end"].items())
    lines.append(f"served at the end: {served}; {result['sent']} sent, {result['failed']} failed")
    return lines
