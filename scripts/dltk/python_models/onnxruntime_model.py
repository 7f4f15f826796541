"""Triton python-backend model that runs `<version>/model.onnx` with onnxruntime on CPU.

`dltk repo render` copies this file to `<repo>/<model>/<version>/model.py` for the
python-onnxruntime runtime (Triton images without the onnxruntime backend). Input and output
names and types come from the model's config.pbtxt. With dynamic batching Triton hands
`execute()` several requests at once: requests whose non-batch shapes agree are concatenated,
run in one onnxruntime call and split back; a bad request gets its own error response and
does not fail the others. Config parameters: `intra_op_num_threads` (default 1; above 1 idle
pool threads sleep instead of spinning).

It runs inside tritonserver's python stub, so it imports only numpy, onnxruntime and Triton's
`triton_python_backend_utils`; it must not import `dltk`.
"""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np
import onnxruntime as ort
import triton_python_backend_utils as pb_utils

DEFAULT_INTRA_OP_THREADS = 1


def _parameter(config: dict[str, Any], key: str, default: str) -> str:
    value = config.get("parameters", {}).get(key, {}).get("string_value", "")
    return value if value != "" else default


class TritonPythonModel:
    """One instance per Triton model instance; one onnxruntime session each."""

    def initialize(self, args: dict[str, str]) -> None:
        config = json.loads(args["model_config"])
        self.max_batch_size = int(config.get("max_batch_size", 0))
        self.inputs = [
            (t["name"], pb_utils.triton_string_to_numpy(t["data_type"]), list(t["dims"]))
            for t in config["input"]
        ]
        self.outputs = [
            (t["name"], pb_utils.triton_string_to_numpy(t["data_type"])) for t in config["output"]
        ]
        threads = _parameter(config, "intra_op_num_threads", str(DEFAULT_INTRA_OP_THREADS))
        try:
            intra_op = int(threads)
        except ValueError:
            raise pb_utils.TritonModelException(
                f"parameter intra_op_num_threads must be an integer, got {threads!r}"
            ) from None
        options = ort.SessionOptions()
        options.intra_op_num_threads = intra_op
        if intra_op > 1:
            # Instances, tritonserver and clients share the cores: idle pool threads must sleep,
            # not spin (onnxruntime's default spins them, burning cores other instances need).
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        path = os.path.join(args["model_repository"], args["model_version"], "model.onnx")
        self.session = ort.InferenceSession(
            path, sess_options=options, providers=["CPUExecutionProvider"]
        )

    def _request_inputs(self, request: Any) -> dict[str, np.ndarray]:
        """The request's inputs as arrays of the config's dtypes; ValueError when unusable."""
        arrays = {}
        for name, dtype, dims in self.inputs:
            tensor = pb_utils.get_input_tensor_by_name(request, name)
            if tensor is None:
                raise ValueError(f"missing input {name!r}")
            array = np.asarray(tensor.as_numpy())
            if array.dtype != dtype:
                raise ValueError(
                    f"input {name!r} has type {array.dtype}, expected {np.dtype(dtype)}"
                )
            shape = array.shape[1:] if self.max_batch_size > 0 else array.shape
            if len(shape) != len(dims) or any(
                d not in (-1, s) for d, s in zip(dims, shape, strict=True)
            ):
                raise ValueError(
                    f"input {name!r} has shape {list(array.shape)}, expected dims {dims}"
                    + (" after the batch dim" if self.max_batch_size > 0 else "")
                )
            arrays[name] = array
        return arrays

    def _run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        names = [name for name, _ in self.outputs]
        results = self.session.run(names, feeds)
        return [
            np.asarray(r, dtype=dtype) for r, (_, dtype) in zip(results, self.outputs, strict=True)
        ]

    def _response(self, arrays: list[np.ndarray]) -> Any:
        tensors = [
            pb_utils.Tensor(name, a) for (name, _), a in zip(self.outputs, arrays, strict=True)
        ]
        return pb_utils.InferenceResponse(output_tensors=tensors)

    @staticmethod
    def _error(message: str) -> Any:
        return pb_utils.InferenceResponse(output_tensors=[], error=pb_utils.TritonError(message))

    def execute(self, requests: list[Any]) -> list[Any]:
        responses: list[Any] = [None] * len(requests)
        groups: dict[tuple[Any, ...], list[tuple[int, dict[str, np.ndarray]]]] = {}
        for index, request in enumerate(requests):
            try:
                arrays = self._request_inputs(request)
            except ValueError as exc:
                responses[index] = self._error(str(exc))
                continue
            # Without a batch dim (max_batch_size 0) every request runs alone.
            batched = self.max_batch_size > 0 and bool(arrays)
            key: tuple[Any, ...] = (
                tuple(a.shape[1:] for a in arrays.values()) if batched else ("alone", index)
            )
            groups.setdefault(key, []).append((index, arrays))

        for members in groups.values():
            names = [name for name, _, _ in self.inputs]
            if len(members) == 1:
                feeds = members[0][1]
            else:
                feeds = {n: np.concatenate([arrays[n] for _, arrays in members]) for n in names}
            try:
                outputs = self._run(feeds)
            except Exception as exc:  # onnxruntime raises its own exception types
                for index, _ in members:
                    responses[index] = self._error(f"onnxruntime failed: {exc}")
                continue
            if len(members) == 1:
                responses[members[0][0]] = self._response(outputs)
                continue
            sizes = [arrays[names[0]].shape[0] for _, arrays in members]
            offsets = np.cumsum([0] + sizes)
            for (index, _), start, stop in zip(members, offsets[:-1], offsets[1:], strict=True):
                responses[index] = self._response([out[start:stop] for out in outputs])
        return responses

    def finalize(self) -> None:
        self.session = None
