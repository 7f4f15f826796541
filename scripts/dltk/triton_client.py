"""Triton client for `dltk verify`: HTTP/gRPC calls, connection errors, waits, bad input."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from dltk.errors import DltkError
from dltk.verify_records import BadInputProbe, TensorSpec, batches, wrong_shape


class ServerUnreachable(DltkError):
    pass


def _connection_error(url: str, exc: BaseException) -> ServerUnreachable:
    reason = getattr(exc, "strerror", None) or str(exc).splitlines()[0]
    return ServerUnreachable(
        f"cannot connect to Triton at {url}: {reason}; is tritonserver running there "
        "(e.g. `dltk serve DIR`)?"
    )


def _is_unreachable(exc: BaseException) -> bool:
    if isinstance(exc, OSError | socket.gaierror):
        return True
    status = getattr(exc, "status", None)
    return callable(status) and "UNAVAILABLE" in str(status())


def _server_message(exc: BaseException) -> str:
    message = getattr(exc, "message", None)
    text = message() if callable(message) else str(exc)
    return " ".join(str(text).split())


class Triton:
    """Thin wrapper over tritonclient.http / tritonclient.grpc clients."""

    def __init__(self, url: str, grpc_url: str | None, timeout: float) -> None:
        import tritonclient.http as httpclient

        self.url = url
        self.grpc_url = grpc_url
        self.timeout = timeout
        self.http = httpclient.InferenceServerClient(
            url, connection_timeout=min(timeout, 10.0), network_timeout=timeout
        )
        self._grpc: Any = None

    @property
    def grpc(self) -> Any:
        if self._grpc is None and self.grpc_url:
            import tritonclient.grpc as grpcclient

            self._grpc = grpcclient.InferenceServerClient(self.grpc_url)
        return self._grpc

    def call(self, what: Callable[[], Any], url: str | None = None) -> Any:
        """Run a client call; connection failures become one ServerUnreachable line."""
        try:
            return what()
        except Exception as exc:
            if _is_unreachable(exc):
                raise _connection_error(url or self.url, exc) from None
            raise

    def infer_http(self, model: str, spec: TensorSpec, data: np.ndarray) -> dict:
        import tritonclient.http as httpclient

        inp = httpclient.InferInput(spec.name, list(data.shape), spec.datatype)
        inp.set_data_from_numpy(data, binary_data=True)
        result = self.call(lambda: self.http.infer(model, [inp]))
        return {o["name"]: result.as_numpy(o["name"]) for o in result.get_response()["outputs"]}

    def infer_grpc(self, model: str, spec: TensorSpec, data: np.ndarray) -> dict:
        import tritonclient.grpc as grpcclient

        inp = grpcclient.InferInput(spec.name, list(data.shape), spec.datatype)
        inp.set_data_from_numpy(data)
        result = self.call(
            lambda: self.grpc.infer(model, [inp], client_timeout=self.timeout), self.grpc_url
        )
        return {o.name: result.as_numpy(o.name) for o in result.get_response().outputs}

    def close(self) -> None:
        for client in (self.http, self._grpc):
            if client is not None:
                try:
                    client.close()
                except Exception:  # closing a broken connection is not worth a failure
                    pass


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.5) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def infer_all(
    infer: Callable[[str, TensorSpec, np.ndarray], dict],
    model: str,
    spec: TensorSpec,
    inputs: np.ndarray,
    size: int,
) -> dict[str, np.ndarray]:
    parts: dict[str, list[np.ndarray]] = {}
    for batch in batches(inputs, size):
        for name, value in infer(model, spec, batch).items():
            parts.setdefault(name, []).append(value)
    return {name: np.concatenate(values) for name, values in parts.items()}


def probe_bad_input(
    triton: Triton, model: str, spec: TensorSpec, good: np.ndarray, batched: bool, timeout: float
) -> BadInputProbe:
    """Send a wrong-shape request over HTTP; then check the server is ready and still answers."""
    from tritonclient.utils import InferenceServerException

    shape = wrong_shape(tuple(good.shape), spec, batched)
    bad = np.zeros(shape, dtype=good.dtype)
    try:
        triton.infer_http(model, spec, bad)
        rejected, status, message = False, "200", "the server accepted the wrong shape"
    except InferenceServerException as exc:
        rejected, status, message = True, str(exc.status()), _server_message(exc)
    ready = wait_until(
        lambda: (
            bool(triton.call(triton.http.is_server_ready))
            and bool(triton.call(lambda: triton.http.is_model_ready(model)))
        ),
        timeout,
    )
    try:
        out = triton.infer_http(model, spec, good)
        good_after = bool(out) and all(np.all(np.isfinite(v)) for v in out.values())
    except InferenceServerException:
        good_after = False
    return BadInputProbe(shape, rejected, status, message, ready, good_after)
