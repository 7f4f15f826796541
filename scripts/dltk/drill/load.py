"""The fault drills' load client: one thread sending inference requests, bounded in count and time.

It talks to the sandbox's published HTTP port (127.0.0.1:<port>) with tritonclient, as a user's
client would: the inference API is open (no key). Each request's end time and outcome go into a
log that dltk.drill.report turns into recovery time and failure counts.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np

from dltk.drill.report import Request
from dltk.errors import DltkError

NUMPY_DTYPES = {"FP32": np.float32, "FP16": np.float16, "INT64": np.int64, "INT32": np.int32}


def zero_input(metadata: dict[str, Any]) -> tuple[str, list[int], str, np.ndarray]:
    """(name, shape, datatype, array) of a batch-1 zero request for a one-input model (pure)."""
    inputs = metadata.get("inputs") or []
    if len(inputs) != 1:
        raise DltkError(f"model {metadata.get('name')!r} has {len(inputs)} inputs; drills need one")
    spec = inputs[0]
    datatype = spec["datatype"]
    if datatype not in NUMPY_DTYPES:
        raise DltkError(f"input datatype {datatype} is not supported by the drill client")
    shape = [1 if int(d) < 0 else int(d) for d in spec["shape"]]
    return spec["name"], shape, datatype, np.zeros(shape, dtype=NUMPY_DTYPES[datatype])


class LoadClient(threading.Thread):
    """Sends `model` requests until stopped, `max_requests` sent or `max_seconds` passed."""

    def __init__(
        self,
        url: str,
        model: str,
        max_requests: int,
        max_seconds: float,
        pause_s: float = 0.05,
        timeout_s: float = 2.0,
    ) -> None:
        super().__init__(name=f"drill-load-{model}", daemon=True)
        self.url = url
        self.model = model
        self.max_requests = max_requests
        self.max_seconds = max_seconds
        self.pause_s = pause_s
        self.timeout_s = timeout_s
        self.log: list[Request] = []
        self.errors: dict[str, int] = {}
        self._stop_event = threading.Event()
        self._lock = threading.Lock()

    def requests_since(self, t: float) -> list[Request]:
        with self._lock:
            return [r for r in self.log if r.t >= t]

    def stop(self) -> None:
        self._stop_event.set()

    def _client(self) -> Any:
        import tritonclient.http as httpclient

        return httpclient.InferenceServerClient(
            self.url, connection_timeout=self.timeout_s, network_timeout=self.timeout_s
        )

    def _feed(self, client: Any) -> Any:
        import tritonclient.http as httpclient

        name, shape, datatype, array = zero_input(client.get_model_metadata(self.model))
        infer_input = httpclient.InferInput(name, shape, datatype)
        infer_input.set_data_from_numpy(array)
        return infer_input

    def run(self) -> None:
        deadline = time.monotonic() + self.max_seconds
        client, feed = None, None
        while (
            not self._stop_event.is_set()
            and len(self.log) < self.max_requests
            and time.monotonic() < deadline
        ):
            ok = False
            try:
                if client is None:
                    client = self._client()
                if feed is None:
                    feed = self._feed(client)
                client.infer(self.model, [feed])
                ok = True
            except Exception as exc:  # every failure is counted: that is the measurement
                kind = type(exc).__name__
                self.errors[kind] = self.errors.get(kind, 0) + 1
                client, feed = None, None  # a new connection after a failure
            with self._lock:
                self.log.append(Request(time.monotonic(), ok))
            self._stop_event.wait(self.pause_s)
