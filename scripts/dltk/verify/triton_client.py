"""Triton client for `dltk verify`: HTTP/gRPC calls, connection errors, waits, bad input."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from dltk.errors import DltkError
from dltk.verify.records import BadInputProbe, TensorSpec, wrong_shape

# One request's inputs: each input's spec (name, Triton datatype) and its array.
Feeds = Sequence[tuple[TensorSpec, np.ndarray]]


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

    def __init__(
        self, url: str, grpc_url: str | None, timeout: float, api_key: str | None = None
    ) -> None:
        import tritonclient.http as httpclient

        from dltk.api_key import http_headers

        # Sent on the restricted APIs (the repository index); inference and health are open.
        self.headers = http_headers(api_key)
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

    def infer_http(self, model: str, feeds: Feeds) -> dict:
        import tritonclient.http as httpclient

        inputs = []
        for spec, data in feeds:
            inp = httpclient.InferInput(spec.name, list(data.shape), spec.datatype)
            inp.set_data_from_numpy(data, binary_data=True)
            inputs.append(inp)
        result = self.call(lambda: self.http.infer(model, inputs))
        return {o["name"]: result.as_numpy(o["name"]) for o in result.get_response()["outputs"]}

    def infer_grpc(self, model: str, feeds: Feeds) -> dict:
        import tritonclient.grpc as grpcclient

        inputs = []
        for spec, data in feeds:
            inp = grpcclient.InferInput(spec.name, list(data.shape), spec.datatype)
            inp.set_data_from_numpy(data)
            inputs.append(inp)
        result = self.call(
            lambda: self.grpc.infer(model, inputs, client_timeout=self.timeout), self.grpc_url
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
    infer: Callable[[str, Feeds], dict],
    model: str,
    specs: Sequence[TensorSpec],
    inputs: Mapping[str, np.ndarray],
    size: int,
) -> dict[str, np.ndarray]:
    """Every row of `inputs` (one array per input) in requests of at most `size` rows."""
    total = len(next(iter(inputs.values())))
    parts: dict[str, list[np.ndarray]] = {}
    for start in range(0, total, max(size, 1)):
        feeds = [(s, inputs[s.name][start : start + size]) for s in specs]
        for name, value in infer(model, feeds).items():
            parts.setdefault(name, []).append(value)
    return {name: np.concatenate(values) for name, values in parts.items()}


def _finite(value: np.ndarray) -> bool:
    return value.dtype == np.object_ or bool(np.all(np.isfinite(value)))


def probe_bad_input(
    triton: Triton,
    model: str,
    spec: TensorSpec,
    good: np.ndarray,
    batched: bool,
    timeout: float,
    others: Feeds = (),
) -> BadInputProbe:
    """Send a request whose `spec` input has a wrong shape (the `others` inputs as they are)
    over HTTP; then check the server is ready and still answers a correct request."""
    from tritonclient.utils import InferenceServerException

    shape = wrong_shape(tuple(good.shape), spec, batched)
    bad = np.zeros(shape, dtype=good.dtype)
    try:
        triton.infer_http(model, [(spec, bad), *others])
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
        out = triton.infer_http(model, [(spec, good), *others])
        good_after = bool(out) and all(_finite(v) for v in out.values())
    except InferenceServerException:
        good_after = False
    return BadInputProbe(shape, rejected, status, message, ready, good_after)
