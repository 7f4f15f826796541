"""Prove that requests through the load balancer reach every host: send inference requests
(HTTP and gRPC) through it, then compare each host's own Triton metrics before and after
(nv_inference_request_success of the model) and read the load balancer's per-server counts."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from dltk import metrics

TRITON_TO_NUMPY = {"FP32": np.float32, "FP16": np.float16, "INT64": np.int64, "INT32": np.int32,
                   "INT8": np.int8, "UINT8": np.uint8, "BOOL": np.bool_}  # fmt: skip


@dataclass(frozen=True)
class HostCount:
    host: str
    before: float
    after: float

    @property
    def delta(self) -> int:
        return int(self.after - self.before)


def zeros_inputs(metadata: Mapping) -> list[tuple[str, list[int], str, np.ndarray]]:
    """(name, shape, datatype, array) for each input of a model's metadata: batch 1 for -1."""
    out = []
    for inp in metadata["inputs"]:
        shape = [1 if int(d) < 0 else int(d) for d in inp["shape"]]
        dtype = TRITON_TO_NUMPY[inp["datatype"]]
        out.append((inp["name"], shape, inp["datatype"], np.zeros(shape, dtype=dtype)))
    return out


def infer_inputs(
    client_module: Any, inputs: Sequence[tuple[str, list[int], str, np.ndarray]]
) -> list:
    """The InferInput objects of tritonclient.http or tritonclient.grpc (CLIENT_MODULE) for
    zeros_inputs' arrays."""
    args = []
    for name, shape, dt, arr in inputs:
        item = client_module.InferInput(name, shape, dt)
        item.set_data_from_numpy(arr)
        args.append(item)
    return args


def success_counts(urls: Mapping[str, str], model: str) -> dict[str, float]:
    """host -> nv_inference_request_success of `model` on that host's metrics URL."""
    return {h: metrics.model_metrics(metrics.scrape(u), model).success for h, u in urls.items()}


def send(http_url: str, grpc_url: str, model: str, requests: int) -> tuple[int, int]:
    """`requests` inferences over HTTP and as many over gRPC, each through the load balancer, on
    fresh connections (a new client per request: keep-alive would still be balanced per request
    by HAProxy, this just makes the test independent of it). Returns (http ok, grpc ok)."""
    import tritonclient.grpc as grpcclient
    import tritonclient.http as httpclient

    meta = httpclient.InferenceServerClient(http_url).get_model_metadata(model)
    inputs = zeros_inputs(meta)
    ok_http = ok_grpc = 0
    for _ in range(requests):
        client = httpclient.InferenceServerClient(http_url)
        client.infer(model, infer_inputs(httpclient, inputs))
        client.close()
        ok_http += 1
    for _ in range(requests):
        client = grpcclient.InferenceServerClient(grpc_url)
        client.infer(model, infer_inputs(grpcclient, inputs))
        client.close()
        ok_grpc += 1
    return ok_http, ok_grpc


def host_counts(before: Mapping[str, float], after: Mapping[str, float]) -> list[HostCount]:
    return [HostCount(h, before[h], after[h]) for h in before]


def unreached(counts: Sequence[HostCount]) -> list[str]:
    return [c.host for c in counts if c.delta <= 0]
