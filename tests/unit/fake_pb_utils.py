"""Test doubles of `triton_python_backend_utils` for the python-backend models' unit tests.

The real module exists only inside tritonserver's python stub, so the tests of
python_models/*.py install FakePbUtils (`fake_pb_utils()`), a test double with the names the
models use, and load the model file the way the stub does (`load_python_model`). A test adds
what only it needs to the returned module (the BLS test: InferenceRequest and is_model_ready).
The real module is exercised in tests/integration/test_models.py against the CPU tritonserver.

Where a BLS output lives follows the real python backend (r24.10, the one in Triton 2.51):
`InferenceRequest(..., preferred_memory=PreferredMemory(TRITONSERVER_MEMORY_CPU, 0))` asks for
outputs in CPU memory; without it "the output tensors will be allocated on the same device where
the output tensors were received from the model to which the BLS call is made"
(https://github.com/triton-inference-server/python_backend/blob/r24.10/README.md, "Business
Logic Scripting"), so a KIND_GPU model (a TensorRT engine) answers with GPU tensors, and
`Tensor.as_numpy()` on a GPU tensor raises TritonModelException "Tensor is stored in GPU and
cannot be converted to NumPy." (src/pb_tensor.cc, PbTensor::AsNumpy; PythonBackendException is
registered as TritonModelException in src/pb_stub.cc). FakeTensor and `bls_output` do the same.
"""

from __future__ import annotations

import importlib.util
import sys
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest


class FakeTritonError:
    """Test double of pb_utils.TritonError: a value (not an exception) with message()."""

    def __init__(self, message: str) -> None:
        self._message = message

    def message(self) -> str:
        return self._message

    def __repr__(self) -> str:
        return f"FakeTritonError({self._message!r})"


class FakeTritonModelException(Exception):
    """Test double of pb_utils.TritonModelException."""


# The real module's pybind enum values (pb_utils.TRITONSERVER_MEMORY_GPU / _CPU).
TRITONSERVER_MEMORY_GPU = "TRITONSERVER_MEMORY_GPU"
TRITONSERVER_MEMORY_CPU = "TRITONSERVER_MEMORY_CPU"
GPU_AS_NUMPY_ERROR = "Tensor is stored in GPU and cannot be converted to NumPy."


@dataclass
class FakeTensor:
    """Test double of pb_utils.Tensor; `on_gpu`: stored in GPU memory, as_numpy() raises."""

    name: str
    array: np.ndarray
    on_gpu: bool = False

    def is_cpu(self) -> bool:
        return not self.on_gpu

    def as_numpy(self) -> np.ndarray:
        if self.on_gpu:
            raise FakeTritonModelException(GPU_AS_NUMPY_ERROR)
        return self.array


@dataclass(frozen=True)
class FakePreferredMemory:
    """Test double of pb_utils.PreferredMemory(preferred_memory_type, preferred_device_id=0)."""

    preferred_memory_type: str
    preferred_device_id: int = 0


def bls_output(
    name: str, array: np.ndarray, target_kind: str, preferred: FakePreferredMemory | None
) -> FakeTensor:
    """A BLS call's output tensor where the real python backend puts it (see the docstring).

    `target_kind`: the instance kind of the model the call went to (KIND_GPU or KIND_CPU).
    """
    if preferred is None:
        on_gpu = target_kind == "KIND_GPU"
    else:
        on_gpu = preferred.preferred_memory_type == TRITONSERVER_MEMORY_GPU
    return FakeTensor(name, array, on_gpu)


class FakeResponse:
    """Test double of pb_utils.InferenceResponse: what a model returns and what a BLS `exec()`
    answers. As in the real binding (src/pb_stub.cc of python_backend r24.10:
    `.def("output_tensors", ...)`, `.def("has_error", ...)`, `.def("error", ...)`),
    output_tensors(), has_error() and error() are METHODS; error() is None without an error.
    """

    def __init__(
        self, output_tensors: list[FakeTensor], error: FakeTritonError | None = None
    ) -> None:
        self._output_tensors = list(output_tensors)
        self._error = error

    def output_tensors(self) -> list[FakeTensor]:
        return self._output_tensors

    def has_error(self) -> bool:
        return self._error is not None

    def error(self) -> FakeTritonError | None:
        return self._error


@dataclass
class FakeRequest:
    """Test double of pb_utils.InferenceRequest as the model receives it: its input tensors."""

    inputs: dict[str, np.ndarray] = field(default_factory=dict)


def get_input_tensor_by_name(request: FakeRequest, name: str) -> FakeTensor | None:
    array = request.inputs.get(name)
    return None if array is None else FakeTensor(name, array)


def get_output_tensor_by_name(response: FakeResponse, name: str) -> FakeTensor:
    return next(t for t in response.output_tensors() if t.name == name)


NUMPY_OF = {"TYPE_FP32": np.float32, "TYPE_INT64": np.int64, "TYPE_FP16": np.float16}


def fake_pb_utils() -> types.ModuleType:
    """FakePbUtils: a test double of triton_python_backend_utils (real one: tritonserver only)."""
    fake = types.ModuleType("triton_python_backend_utils")
    fake.Tensor = FakeTensor  # type: ignore[attr-defined]
    fake.InferenceResponse = FakeResponse  # type: ignore[attr-defined]
    fake.TritonError = FakeTritonError  # type: ignore[attr-defined]
    fake.TritonModelException = FakeTritonModelException  # type: ignore[attr-defined]
    fake.PreferredMemory = FakePreferredMemory  # type: ignore[attr-defined]
    fake.TRITONSERVER_MEMORY_GPU = TRITONSERVER_MEMORY_GPU  # type: ignore[attr-defined]
    fake.TRITONSERVER_MEMORY_CPU = TRITONSERVER_MEMORY_CPU  # type: ignore[attr-defined]
    fake.get_input_tensor_by_name = get_input_tensor_by_name  # type: ignore[attr-defined]
    fake.get_output_tensor_by_name = get_output_tensor_by_name  # type: ignore[attr-defined]
    fake.triton_string_to_numpy = NUMPY_OF.__getitem__  # type: ignore[attr-defined]
    return fake


def load_python_model(
    monkeypatch: pytest.MonkeyPatch, model_file: Path, fake: types.ModuleType
) -> Any:
    """A new TritonPythonModel of `model_file` (not initialized), importing `fake` as pb_utils."""
    monkeypatch.setitem(sys.modules, "triton_python_backend_utils", fake)
    spec = importlib.util.spec_from_file_location(f"dltk_test_{model_file.stem}", model_file)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.TritonPythonModel()
