"""The python-backend model (python_models/onnxruntime_model.py) outside tritonserver.

`triton_python_backend_utils` exists only inside tritonserver's python stub, so these tests
install FakePbUtils (fake_pb_utils.py), a test double with the few names the model uses, in its
place. The model's real work - onnxruntime, batching several requests into one run,
per-request errors - is real.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
from fake_pb_utils import FakeRequest, FakeTritonModelException, fake_pb_utils, load_python_model

from dltk.repo.cli import PYTHON_MODEL


def _config(max_batch_size: int, threads: str | None = None) -> dict[str, Any]:
    batch_dims = [] if max_batch_size else [1]
    config: dict[str, Any] = {
        "name": "mnist",
        "max_batch_size": max_batch_size,
        "input": [{"name": "input", "data_type": "TYPE_FP32", "dims": [*batch_dims, 1, 28, 28]}],
        "output": [{"name": "logits", "data_type": "TYPE_FP32", "dims": [*batch_dims, 10]}],
    }
    if threads is not None:
        config["parameters"] = {"intra_op_num_threads": {"string_value": threads}}
    return config


class CountingSession:
    """Wraps the real onnxruntime session to count runs and their batch sizes."""

    def __init__(self, session: ort.InferenceSession) -> None:
        self.session = session
        self.batches: list[int] = []

    def run(self, names: list[str], feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        self.batches.append(len(next(iter(feeds.values()))))
        return self.session.run(names, feeds)


def load_model(
    monkeypatch: pytest.MonkeyPatch, repo: Path, config: dict[str, Any]
) -> tuple[Any, CountingSession]:
    model = load_python_model(monkeypatch, PYTHON_MODEL, fake_pb_utils())
    model.initialize(
        {"model_config": json.dumps(config), "model_repository": str(repo), "model_version": "1"}
    )
    counting = CountingSession(model.session)
    model.session = counting
    return model, counting


@pytest.fixture
def repo(tmp_path: Path, build_onnx: Callable[..., Path]) -> Path:
    build_onnx(tmp_path / "mnist" / "1" / "model.onnx")
    return tmp_path / "mnist"


def reference(repo: Path, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(repo / "1" / "model.onnx"))
    return session.run(["logits"], {"input": x})[0]


def images(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, 1, 28, 28)).astype(np.float32)


def test_requests_are_batched_into_one_run_and_split_back(
    monkeypatch: pytest.MonkeyPatch, repo: Path
) -> None:
    model, session = load_model(monkeypatch, repo, _config(64))
    inputs = [images(1, 0), images(3, 1), images(2, 2)]
    responses = model.execute([FakeRequest({"input": x}) for x in inputs])
    assert session.batches == [6]
    for x, response in zip(inputs, responses, strict=True):
        assert response.error() is None
        (tensor,) = response.output_tensors()
        assert tensor.name == "logits" and tensor.array.dtype == np.float32
        np.testing.assert_allclose(tensor.array, reference(repo, x), rtol=1e-5, atol=1e-5)


def test_a_bad_request_fails_alone(monkeypatch: pytest.MonkeyPatch, repo: Path) -> None:
    model, session = load_model(monkeypatch, repo, _config(64))
    good = images(2, 0)
    requests = [
        FakeRequest({"input": good}),
        FakeRequest({"input": images(2, 1)[:, :, :14]}),
        FakeRequest({}),
        FakeRequest({"input": good.astype(np.float64)}),
        FakeRequest({"input": good}),
    ]
    responses = model.execute(requests)
    assert session.batches == [4]
    assert [r.error() is None for r in responses] == [True, False, False, False, True]
    assert responses[1].error().message() == (
        "input 'input' has shape [2, 1, 14, 28], expected dims [1, 28, 28] after the batch dim"
    )
    assert responses[2].error().message() == "missing input 'input'"
    assert responses[3].error().message() == "input 'input' has type float64, expected float32"
    np.testing.assert_allclose(
        responses[4].output_tensors()[0].array, reference(repo, good), rtol=1e-5, atol=1e-5
    )


def test_onnxruntime_failure_answers_every_request_of_the_batch(
    monkeypatch: pytest.MonkeyPatch, repo: Path
) -> None:
    model, session = load_model(monkeypatch, repo, _config(64))

    def broken(names: list[str], feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        raise RuntimeError("out of memory")

    session.run = broken  # type: ignore[method-assign]
    responses = model.execute([FakeRequest({"input": images(1, i)}) for i in range(3)])
    assert [r.error().message() for r in responses] == ["onnxruntime failed: out of memory"] * 3


def test_without_batching_each_request_runs_alone(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, build_onnx: Callable[..., Path]
) -> None:
    build_onnx(tmp_path / "fixed" / "1" / "model.onnx", batch=1)
    model, session = load_model(monkeypatch, tmp_path / "fixed", _config(0))
    responses = model.execute([FakeRequest({"input": images(1, i)}) for i in range(3)])
    assert session.batches == [1, 1, 1]
    assert all(
        r.error() is None and r.output_tensors()[0].array.shape == (1, 10) for r in responses
    )


def test_thread_count_comes_from_the_config(monkeypatch: pytest.MonkeyPatch, repo: Path) -> None:
    model, session = load_model(monkeypatch, repo, _config(64, threads="2"))
    options = session.session.get_session_options()
    assert options.intra_op_num_threads == 2
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    model, session = load_model(monkeypatch, repo, _config(64))
    options = session.session.get_session_options()
    assert options.intra_op_num_threads == 1
    with pytest.raises(RuntimeError, match="allow_spinning"):  # not set: onnxruntime's default
        options.get_session_config_entry("session.intra_op.allow_spinning")
    with pytest.raises(FakeTritonModelException, match="intra_op_num_threads must be an integer"):
        load_model(monkeypatch, repo, _config(64, threads="many"))
