"""Triton python-backend BLS model: uint8 images in, class and probabilities out.

`dltk repo render` copies this file to `<repo>/<pipeline>/1/model.py` for each manifest
pipeline. Per request it scales the uint8 image to [0, 1], transposes HWC to CHW when the
pipeline's layout says so, normalizes with the pipeline's per-channel mean and std, and calls
the first *ready* model of the config's `targets` through BLS: the model's TensorRT engines
first (when the host built them), then its ONNX deployment. It answers `class` (argmax),
`probabilities` (softmax of the scores unless `softmax` is false) and `served_by` (the model
that answered). The requests of one `execute` (several when the pipeline has dynamic batching)
go to the model together, in calls of at most max_batch_size rows; a fixed-batch pipeline
(max_batch_size 0) calls once per request. Readiness is asked per call, so a model loaded or
unloaded later through the repository API is picked up without reloading the pipeline.

The BLS call asks for its outputs in CPU memory (`preferred_memory`, python backend >= 23.04):
without it "the output tensors will be allocated on the same device where the output tensors
were received from the model", so a TensorRT engine on KIND_GPU instances answers with GPU
tensors and `as_numpy()` raises "Tensor is stored in GPU and cannot be converted to NumPy."
(https://github.com/triton-inference-server/python_backend/blob/r24.10/README.md, "Business
Logic Scripting"; src/pb_tensor.cc).

It runs inside tritonserver's python stub, so it imports only numpy and Triton's
`triton_python_backend_utils`; it must not import `dltk`.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import triton_python_backend_utils as pb_utils

NUMPY_OF = {"TYPE_FP32": np.float32, "TYPE_FP16": np.float16}


def _parameter(config: dict[str, Any], key: str) -> str:
    value = config.get("parameters", {}).get(key, {}).get("string_value", "")
    if value == "":
        raise pb_utils.TritonModelException(f"config parameter {key!r} is missing")
    return str(value)


def softmax(scores: np.ndarray) -> np.ndarray:
    """Row-wise softmax of [N, C] scores in float32, stable for large values."""
    shifted = scores.astype(np.float32) - scores.max(axis=1, keepdims=True).astype(np.float32)
    exp = np.exp(shifted)
    return (exp / exp.sum(axis=1, keepdims=True)).astype(np.float32)


class TritonPythonModel:
    """One instance per Triton model instance; stateless apart from the parsed config."""

    def initialize(self, args: dict[str, str]) -> None:
        config = json.loads(args["model_config"])
        self.max_batch_size = int(config.get("max_batch_size", 0))
        self.input_name = config["input"][0]["name"]
        self.targets = [
            (t["model"], NUMPY_OF[t["data_type"]])
            for t in json.loads(_parameter(config, "targets"))
        ]
        self.target_input = _parameter(config, "target_input")
        self.target_output = _parameter(config, "target_output")
        self.layout = _parameter(config, "layout")
        self.mean = np.asarray(json.loads(_parameter(config, "mean")), dtype=np.float32)
        self.std = np.asarray(json.loads(_parameter(config, "std")), dtype=np.float32)
        self.softmax = _parameter(config, "softmax") == "true"

    def normalize(self, image: np.ndarray) -> np.ndarray:
        """uint8 [N,(C,)H,W] or [N,H,W,C] -> float32 [N,(C,)H,W], (x/255 - mean) / std."""
        x = image.astype(np.float32) / np.float32(255.0)
        if self.layout == "HWC":
            x = np.moveaxis(x, -1, 1)
        if x.ndim == 4:  # per channel
            shape = (1, -1, 1, 1)
            return ((x - self.mean.reshape(shape)) / self.std.reshape(shape)).astype(np.float32)
        return ((x - self.mean[0]) / self.std[0]).astype(np.float32)

    def choose_target(self) -> tuple[str, Any]:
        for name, dtype in self.targets:
            if pb_utils.is_model_ready(model_name=name):
                return name, dtype
        names = ", ".join(name for name, _ in self.targets)
        raise RuntimeError(f"none of the pipeline's models is ready ({names})")

    def _image(self, request: Any) -> np.ndarray:
        """The request's uint8 images, normalized (ValueError: a bad request)."""
        tensor = pb_utils.get_input_tensor_by_name(request, self.input_name)
        if tensor is None:
            raise ValueError(f"missing input {self.input_name!r}")
        image = np.asarray(tensor.as_numpy())
        if image.dtype != np.uint8:
            raise ValueError(f"input {self.input_name!r} has type {image.dtype}, expected uint8")
        return self.normalize(image)

    def _classify(self, x: np.ndarray) -> tuple[str, np.ndarray]:
        """One BLS call for the rows of `x`: the model that answered and the [N, C] scores."""
        name, dtype = self.choose_target()
        inference = pb_utils.InferenceRequest(
            model_name=name,
            requested_output_names=[self.target_output],
            inputs=[pb_utils.Tensor(self.target_input, x.astype(dtype))],
            preferred_memory=pb_utils.PreferredMemory(pb_utils.TRITONSERVER_MEMORY_CPU, 0),
        )
        response = inference.exec()
        if response.has_error():
            raise RuntimeError(f"{name}: {response.error().message()}")
        scores = pb_utils.get_output_tensor_by_name(response, self.target_output).as_numpy()
        rows = scores.reshape(scores.shape[0], -1).astype(np.float32)
        return name, softmax(rows) if self.softmax else rows

    def _groups(self, images: list[tuple[int, np.ndarray]]) -> list[list[tuple[int, np.ndarray]]]:
        """Requests sent together in one BLS call: as many as fit in max_batch_size (the
        dynamic batcher hands over at most that many rows); one each for a fixed-batch model."""
        if self.max_batch_size <= 0:
            return [[item] for item in images]
        groups: list[list[tuple[int, np.ndarray]]] = []
        rows = 0
        for item in images:
            if not groups or rows + len(item[1]) > self.max_batch_size:
                groups.append([])
                rows = 0
            groups[-1].append(item)
            rows += len(item[1])
        return groups

    @staticmethod
    def _failed(exc: Exception) -> Any:
        error = pb_utils.TritonError(str(exc))
        return pb_utils.InferenceResponse(output_tensors=[], error=error)

    def execute(self, requests: list[Any]) -> list[Any]:
        """One response per request; requests batched together share one call to the model."""
        responses: list[Any] = [None] * len(requests)
        images = []
        for index, request in enumerate(requests):
            try:
                images.append((index, self._image(request)))
            except ValueError as exc:
                responses[index] = self._failed(exc)
        for group in self._groups(images):
            try:
                name, probabilities = self._classify(np.concatenate([x for _, x in group]))
            except (ValueError, RuntimeError, pb_utils.TritonModelException) as exc:
                for index, _ in group:
                    responses[index] = self._failed(exc)
                continue
            start = 0
            for index, x in group:
                rows = probabilities[start : start + len(x)]
                start += len(x)
                classes = rows.argmax(axis=1).astype(np.int64).reshape(-1, 1)
                served_by = np.array([[name.encode()]] * len(rows), dtype=np.object_)
                responses[index] = pb_utils.InferenceResponse(
                    output_tensors=[
                        pb_utils.Tensor("class", classes),
                        pb_utils.Tensor("probabilities", rows),
                        pb_utils.Tensor("served_by", served_by),
                    ]
                )
        return responses

    def finalize(self) -> None:
        self.targets = []
