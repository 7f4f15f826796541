"""The BLS pipeline model (python_models/bls_pipeline.py) outside tritonserver.

`triton_python_backend_utils` exists only inside tritonserver's python stub, so these tests
install FakeBlsPbUtils: the FakePbUtils test double of fake_pb_utils.py plus BLS, its calls
answered by a real onnxruntime session of the target model. The real thing runs in
tests/integration/test_models.py against the CPU tritonserver.
"""

from __future__ import annotations

import json
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
from fake_pb_utils import (
    GPU_AS_NUMPY_ERROR,
    TRITONSERVER_MEMORY_CPU,
    FakePreferredMemory,
    FakeRequest,
    FakeResponse,
    FakeTensor,
    FakeTritonError,
    FakeTritonModelException,
    bls_output,
    fake_pb_utils,
    load_python_model,
)

from dltk.manifest.model import BatchRange, ModelSpec
from dltk.manifest.options import DynamicBatching, PipelineSpec
from dltk.onnx_graph import TensorSpec
from dltk.repo.cli import BLS_MODEL
from dltk.repo.config import Target, render_pipeline_config


@dataclass
class FakeServer:
    """Which models are ready and what answers them (a test double of tritonserver)."""

    sessions: dict[str, ort.InferenceSession]
    ready: set[str]
    calls: list[tuple[str, np.dtype]] = field(default_factory=list)
    failing: dict[str, str] = field(default_factory=dict)  # model -> the error its BLS call gets
    gpu_models: set[str] = field(default_factory=set)  # KIND_GPU models (TensorRT engines)
    memory: list[FakePreferredMemory | None] = field(default_factory=list)  # per BLS call
    sizes: list[tuple[str, int]] = field(default_factory=list)  # per BLS call: model, rows


def fake_bls_pb_utils(server: FakeServer) -> types.ModuleType:
    """FakeBlsPbUtils: FakePbUtils plus BLS requests and readiness answered by `server`."""
    fake = fake_pb_utils()

    class InferenceRequest:
        def __init__(
            self,
            model_name: str,
            requested_output_names: list[str],
            inputs: list,
            preferred_memory: FakePreferredMemory | None = None,
        ):
            self.model, self.outputs, self.inputs = model_name, requested_output_names, inputs
            self.preferred_memory = preferred_memory

        def exec(self) -> FakeResponse:
            (tensor,) = self.inputs
            server.calls.append((self.model, tensor.array.dtype))
            server.memory.append(self.preferred_memory)
            server.sizes.append((self.model, len(tensor.array)))
            if self.model in server.failing:
                return FakeResponse([], FakeTritonError(server.failing[self.model]))
            session = server.sessions[self.model]
            feed = {tensor.name: tensor.array.astype(np.float32)}
            result = session.run(self.outputs, feed)
            kind = "KIND_GPU" if self.model in server.gpu_models else "KIND_CPU"
            return FakeResponse(
                [
                    bls_output(n, r, kind, self.preferred_memory)
                    for n, r in zip(self.outputs, result, strict=True)
                ]
            )

    fake.InferenceRequest = InferenceRequest  # type: ignore[attr-defined]
    fake.is_model_ready = lambda model_name: model_name in server.ready  # type: ignore[attr-defined]
    return fake


MODEL = ModelSpec(
    name="mnist",
    onnx=Path("mnist.onnx"),
    batch=BatchRange(1, 16, 64),
    runtimes=("tensorrt", "python-onnxruntime"),
    precisions=("fp16",),
    inputs=(TensorSpec("input", "FLOAT", (1, 28, 28)),),
    outputs=(TensorSpec("logits", "FLOAT", (10,)),),
)
PIPELINE = PipelineSpec("digits", "mnist", mean=(0.1307,), std=(0.3081,))
TARGETS = (Target("mnist_trt_fp16", "TYPE_FP16"), Target("mnist", "TYPE_FP32"))


def config_json(pipeline: PipelineSpec = PIPELINE, model: ModelSpec = MODEL) -> str:
    """The rendered config.pbtxt as the JSON Triton hands to initialize()."""
    from google.protobuf import json_format, text_format
    from tritonclient.grpc import model_config_pb2

    text = render_pipeline_config(pipeline, model, TARGETS)
    config = text_format.Parse(text, model_config_pb2.ModelConfig())
    data = json_format.MessageToDict(config, preserving_proto_field_name=True)
    for tensor in data["input"] + data["output"]:
        tensor["dims"] = [int(d) for d in tensor["dims"]]
    return json.dumps(data)


@pytest.fixture
def server(tmp_path: Path, build_onnx: Callable[..., Path]) -> FakeServer:
    session = ort.InferenceSession(str(build_onnx(tmp_path / "mnist.onnx")))
    # The TensorRT engine runs on KIND_GPU instances: its outputs are GPU tensors by default.
    return FakeServer(
        {"mnist": session, "mnist_trt_fp16": session}, {"mnist"}, gpu_models={"mnist_trt_fp16"}
    )


def load(monkeypatch: pytest.MonkeyPatch, server: FakeServer, config: str | None = None) -> Any:
    model = load_python_model(monkeypatch, BLS_MODEL, fake_bls_pb_utils(server))
    model.initialize({"model_config": config or config_json()})
    return model


def images(n: int) -> np.ndarray:
    return np.random.default_rng(n).integers(0, 256, size=(n, 1, 28, 28), dtype=np.uint8)


def test_normalizes_calls_the_onnx_model_and_answers_class_and_probabilities(
    monkeypatch: pytest.MonkeyPatch, server: FakeServer
) -> None:
    model = load(monkeypatch, server)
    pixels = images(3)
    (response,) = model.execute([FakeRequest({"image": pixels})])
    assert response.error() is None
    out = {t.name: t.array for t in response.output_tensors()}
    x = ((pixels.astype(np.float32) / 255 - 0.1307) / 0.3081).astype(np.float32)
    logits = server.sessions["mnist"].run(["logits"], {"input": x})[0]
    expected = np.exp(logits - logits.max(1, keepdims=True))
    expected /= expected.sum(1, keepdims=True)
    np.testing.assert_allclose(out["probabilities"], expected, rtol=1e-5, atol=1e-6)
    assert out["class"].tolist() == [[int(i)] for i in logits.argmax(1)]
    assert out["served_by"].tolist() == [[b"mnist"]] * 3
    assert server.calls == [("mnist", np.dtype(np.float32))]


def test_prefers_a_ready_engine_and_sends_its_dtype(
    monkeypatch: pytest.MonkeyPatch, server: FakeServer
) -> None:
    model = load(monkeypatch, server)
    server.ready.add("mnist_trt_fp16")
    (response,) = model.execute([FakeRequest({"image": images(2)})])
    assert response.output_tensors()[2].array.tolist() == [[b"mnist_trt_fp16"]] * 2
    assert server.calls == [("mnist_trt_fp16", np.dtype(np.float16))]
    server.ready.discard("mnist_trt_fp16")  # unloaded: the next request goes to ONNX
    model.execute([FakeRequest({"image": images(1)})])
    assert server.calls[-1] == ("mnist", np.dtype(np.float32))


def test_bad_requests_get_their_own_errors(
    monkeypatch: pytest.MonkeyPatch, server: FakeServer
) -> None:
    model = load(monkeypatch, server)
    requests = [{"image": images(1).astype(np.float32)}, {}, {"image": images(1)}]
    responses = model.execute([FakeRequest(inputs) for inputs in requests])
    assert responses[0].error().message() == "input 'image' has type float32, expected uint8"
    assert responses[1].error().message() == "missing input 'image'"
    assert responses[2].error() is None
    server.ready.clear()
    (response,) = model.execute([FakeRequest({"image": images(1)})])
    assert (
        response.error().message()
        == "none of the pipeline's models is ready (mnist_trt_fp16, mnist)"
    )


def test_hwc_layout_is_transposed_with_per_channel_mean(monkeypatch: pytest.MonkeyPatch) -> None:
    server = FakeServer({}, set())
    model = load(monkeypatch, server)
    model.layout, model.mean, model.std = (
        "HWC",
        np.array([0.0, 0.5, 1.0]),
        np.array([1.0, 0.5, 2.0]),
    )
    pixels = np.full((1, 2, 2, 3), 255, np.uint8)
    x = model.normalize(pixels)
    assert x.shape == (1, 3, 2, 2)
    assert x[0, :, 0, 0].tolist() == [1.0, 1.0, 0.0]


def test_a_failing_target_model_fails_only_that_request(
    monkeypatch: pytest.MonkeyPatch, server: FakeServer
) -> None:
    model = load(monkeypatch, server)
    server.failing["mnist"] = "model 'mnist' is unavailable"
    (failed,) = model.execute([FakeRequest({"image": images(1)})])
    assert failed.error().message() == "mnist: model 'mnist' is unavailable"
    assert failed.output_tensors() == []
    del server.failing["mnist"]
    (answered,) = model.execute([FakeRequest({"image": images(1)})])
    assert answered.error() is None and answered.output_tensors()[0].array.shape == (1, 1)


def test_gpu_engine_outputs_are_requested_in_cpu_memory(
    monkeypatch: pytest.MonkeyPatch, server: FakeServer
) -> None:
    """Issue 9 defect 3: a KIND_GPU target's outputs stay on the GPU unless CPU is asked for."""
    model = load(monkeypatch, server)
    server.ready.add("mnist_trt_fp16")
    (response,) = model.execute([FakeRequest({"image": images(2)})])
    assert response.error() is None
    assert response.output_tensors()[2].array.tolist() == [[b"mnist_trt_fp16"]] * 2
    assert server.memory == [FakePreferredMemory(TRITONSERVER_MEMORY_CPU, 0)]


def test_the_test_double_keeps_gpu_outputs_on_the_gpu_without_preferred_memory(
    monkeypatch: pytest.MonkeyPatch, server: FakeServer
) -> None:
    """FakeBlsPbUtils is only a fair stand-in if it fails the way the real backend does."""
    fake = fake_bls_pb_utils(server)
    x = FakeTensor("input", np.zeros((1, 1, 28, 28), np.float32))
    (gpu,) = fake.InferenceRequest("mnist_trt_fp16", ["logits"], [x]).exec().output_tensors()
    assert not gpu.is_cpu()
    with pytest.raises(FakeTritonModelException, match=GPU_AS_NUMPY_ERROR):
        gpu.as_numpy()
    (cpu,) = fake.InferenceRequest("mnist", ["logits"], [x]).exec().output_tensors()
    assert cpu.is_cpu() and cpu.as_numpy().shape == (1, 10)


def test_requests_batched_together_share_calls_of_at_most_max_batch_size(
    monkeypatch: pytest.MonkeyPatch, server: FakeServer
) -> None:
    """With dynamic batching, one execute() gets several requests: they go to the model
    together (at most max_batch_size rows per call), and each gets its own rows back."""
    batched = PipelineSpec(
        "digits",
        "mnist",
        mean=(0.1307,),
        std=(0.3081,),
        max_batch_size=4,
        dynamic_batching=DynamicBatching(100),
    )
    model = load(monkeypatch, server, config_json(batched))
    assert model.max_batch_size == 4
    sizes = (2, 1, 2)
    pixels = [images(n) for n in sizes]
    requests = [FakeRequest({"image": p}) for p in pixels]
    requests.insert(1, FakeRequest({}))  # a bad request keeps its own error
    responses = model.execute(requests)
    assert responses[1].error().message() == "missing input 'image'"
    assert [(name, n) for name, n in server.sizes] == [("mnist", 3), ("mnist", 2)]
    alone = load(monkeypatch, FakeServer(server.sessions, {"mnist"}))
    for response, p in zip([responses[0], *responses[2:]], pixels, strict=True):
        assert response.error() is None
        (expected,) = alone.execute([FakeRequest({"image": p})])
        got = {t.name: t.array for t in response.output_tensors()}
        want = {t.name: t.array for t in expected.output_tensors()}
        assert got["class"].tolist() == want["class"].tolist()
        np.testing.assert_allclose(got["probabilities"], want["probabilities"], rtol=1e-5)
        assert got["served_by"].tolist() == [[b"mnist"]] * len(p)


def test_a_fixed_batch_pipeline_calls_once_per_request(
    monkeypatch: pytest.MonkeyPatch, server: FakeServer
) -> None:
    model = load(monkeypatch, server)
    model.max_batch_size = 0  # the config of a fixed-batch model's pipeline
    model.execute([FakeRequest({"image": images(1)}), FakeRequest({"image": images(1)})])
    assert [name for name, _ in server.sizes] == ["mnist", "mnist"]


def test_the_response_double_has_the_methods_of_the_real_inference_response() -> None:
    """pb_utils.InferenceResponse binds output_tensors(), has_error() and error() as methods
    (python_backend src/pb_stub.cc); a model reading them as attributes must fail here too."""
    tensor = FakeTensor("logits", np.zeros((1, 10), np.float32))
    ok, failed = FakeResponse([tensor]), FakeResponse([], FakeTritonError("boom"))
    assert ok.output_tensors() == [tensor] and not ok.has_error() and ok.error() is None
    assert failed.has_error() and failed.error().message() == "boom"
    assert failed.output_tensors() == []
    assert callable(ok.error) and callable(ok.output_tensors)
