"""verify/models.py: kinds of served models, tolerance per precision, pipelines, inputs;
verify_perf.default_concurrency (perf sweep sized to the GPU count)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from onnx_builders import two_input_model

from dltk.errors import DltkError
from dltk.perf import MAX_CONCURRENCY, MAX_LEVELS, ConcurrencyRange
from dltk.verify.data import onnx_signature, onnxruntime_outputs, read_npz
from dltk.verify.models import (
    class_agreement,
    classes_check,
    classify,
    compare_outputs,
    generated_feeds,
    numeric_precision,
    parse_tolerances,
    pipeline_images,
    pipeline_normalize,
    pipeline_params,
    sample_feeds,
    softmax,
    synthetic_batch,
    tolerance_for,
)
from dltk.verify.perf import default_concurrency
from dltk.verify.records import (
    DEFAULT_ATOL,
    DEFAULT_TOLERANCES,
    FAIL,
    PASS,
    TensorSpec,
    Tolerance,
    model_info,
)

MNIST_IO = {
    "inputs": [{"name": "input", "datatype": "FP32", "shape": [-1, 1, 28, 28]}],
    "outputs": [{"name": "logits", "datatype": "FP32", "shape": [-1, 10]}],
}


def trt_info(name: str, kind: str = "KIND_GPU") -> object:
    """What Triton answers for a TensorRT engine model rendered by `dltk repo render`."""
    return model_info(
        {"name": name, "platform": "tensorrt_plan", **MNIST_IO},
        {
            "name": name,
            "platform": "tensorrt_plan",
            "backend": "tensorrt",
            "max_batch_size": 64,
            "instance_group": [{"count": 1, "kind": kind}],
        },
    )


# The mnist_classifier pipeline as tritonserver 2.51 answered its metadata and config (CPU
# sandbox: no engine, so its only target is the ONNX deployment).
PIPELINE_METADATA = {
    "name": "mnist_classifier",
    "platform": "python",
    "inputs": [{"name": "image", "datatype": "UINT8", "shape": [-1, 1, 28, 28]}],
    "outputs": [
        {"name": "class", "datatype": "INT64", "shape": [-1, 1]},
        {"name": "probabilities", "datatype": "FP32", "shape": [-1, 10]},
        {"name": "served_by", "datatype": "BYTES", "shape": [-1, 1]},
    ],
}


def pipeline_config(targets: list[str], layout: str = "CHW") -> dict:
    return {
        "name": "mnist_classifier",
        "backend": "python",
        "max_batch_size": 64,
        "instance_group": [{"count": 1, "kind": "KIND_CPU"}],
        "parameters": {
            "targets": {
                "string_value": json.dumps(
                    [{"model": t, "data_type": "TYPE_FP32"} for t in targets]
                )
            },
            "target_input": {"string_value": "input"},
            "target_output": {"string_value": "logits"},
            "mean": {"string_value": "[0.1307]"},
            "std": {"string_value": "[0.3081]"},
            "softmax": {"string_value": "true"},
            "layout": {"string_value": layout},
        },
    }


# --- kinds and the tolerance per precision ---------------------------------------------------


def test_tensorrt_engines_are_compared_with_their_models_onnx_at_their_precision() -> None:
    fp16, tf32 = classify(trt_info("mnist_trt_fp16")), classify(trt_info("mnist_trt_tf32"))
    assert (fp16.kind, fp16.reference, fp16.precision) == ("tensorrt", "mnist", "fp16")
    assert (tf32.kind, tf32.reference, tf32.precision) == ("tensorrt", "mnist", "tf32")
    odd = classify(trt_info("my_engine"))
    assert odd.precision == "fp16" and "unknown precision" in odd.why


def test_onnx_deployments_precision_from_their_instances_and_accelerator() -> None:
    cpu = model_info(
        {"name": "mnist", "platform": "python", **MNIST_IO},
        {"backend": "python", "max_batch_size": 64, "instance_group": [{"kind": "KIND_CPU"}]},
    )
    assert classify(cpu).kind == "onnx" and numeric_precision(cpu)[0] == "fp32"
    gpu_config = {
        "platform": "onnxruntime_onnx",
        "backend": "onnxruntime",
        "max_batch_size": 64,
        "instance_group": [{"count": 1, "kind": "KIND_GPU"}],
    }
    gpu = model_info({"name": "mnist", "platform": "onnxruntime_onnx", **MNIST_IO}, gpu_config)
    assert numeric_precision(gpu)[0] == "tf32"
    accelerated = model_info(
        {"name": "mnist", "platform": "onnxruntime_onnx", **MNIST_IO},
        {
            **gpu_config,
            "optimization": {
                "execution_accelerators": {
                    "gpu_execution_accelerator": [
                        {"name": "tensorrt", "parameters": {"precision_mode": "FP16"}}
                    ]
                }
            },
        },
    )
    assert numeric_precision(accelerated)[0] == "fp16"


def test_fp16_tolerance_is_looser_than_tf32_which_is_looser_than_fp32() -> None:
    fp32, tf32, fp16 = (DEFAULT_TOLERANCES[p] for p in ("fp32", "tf32", "fp16"))
    assert fp32.atol == DEFAULT_ATOL and fp32.rtol == 0
    assert fp32.atol < tf32.atol < fp16.atol and fp32.rtol <= tf32.rtol < fp16.rtol
    # Logits of magnitude ~10 as MNIST's: an error of 0.05 is fine for TF32, not for FP32;
    # an error of 0.5 only for FP16.
    ref = np.array([[10.0, -3.0, 0.5], [2.0, 9.0, -1.0]], np.float32)
    small, large = ref.copy(), ref.copy()
    small[0, 0] += 0.05
    large[0, 0] += 0.5
    outcome = {
        p: [
            compare_outputs(
                {"http": {"logits": x}},
                {"logits": ref},
                tolerance_for(p, DEFAULT_TOLERANCES, None),
                p,
            ).result
            for x in (small, large)
        ]
        for p in ("fp32", "tf32", "fp16")
    }
    assert outcome == {"fp32": [FAIL, FAIL], "tf32": [PASS, FAIL], "fp16": [PASS, PASS]}


def test_forced_atol_overrides_the_precision() -> None:
    assert tolerance_for("fp16", DEFAULT_TOLERANCES, 1e-3) == Tolerance(1e-3, 0.0)


def test_tolerances_are_settings() -> None:
    tols = parse_tolerances(["fp16=0.1:0.2", "tf32=0.02"], DEFAULT_TOLERANCES)
    assert tols["fp16"] == Tolerance(0.1, 0.2) and tols["tf32"] == Tolerance(0.02, 0.0)
    assert tols["fp32"] == DEFAULT_TOLERANCES["fp32"]
    role = parse_tolerances(['{"fp16": {"atol": 0.03, "rtol": 0.04}}'], DEFAULT_TOLERANCES)
    assert role["fp16"] == Tolerance(0.03, 0.04)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("bf16=0.1", "unknown precision 'bf16'"),
        ("fp16", "is not PRECISION=ATOL"),
        ("fp16=x", "must be numbers"),
        ("fp16=-1", "must be >= 0"),
        ('{"fp16": 1}', "must map a precision"),
        ("{not json", "is not JSON"),
    ],
)
def test_bad_tolerances_are_one_line(value: str, message: str) -> None:
    with pytest.raises(DltkError, match=message):
        parse_tolerances([value], DEFAULT_TOLERANCES)


def test_outputs_missing_or_misshaped_fail() -> None:
    ref = {"a": np.zeros((2, 3), np.float32), "b": np.ones((2, 1), np.float32)}
    tol = DEFAULT_TOLERANCES["fp32"]
    missing = compare_outputs({"http": {"a": ref["a"]}}, ref, tol, "fp32")
    assert missing.result == FAIL and "no output 'b'" in missing.detail
    shaped = compare_outputs({"http": {"a": ref["a"], "b": np.ones((1, 1))}}, ref, tol, "fp32")
    assert shaped.result == FAIL and "b outside the tolerance" in shaped.detail
    both = compare_outputs({"http": dict(ref), "grpc": dict(ref)}, ref, tol, "fp32")
    assert both.result == PASS and both.data["max_abs_diff"] == 0.0


# --- pipelines --------------------------------------------------------------------------------


def test_a_pipeline_is_recognised_and_references_its_models_onnx() -> None:
    sandbox = classify(model_info(PIPELINE_METADATA, pipeline_config(["mnist"])))
    assert (sandbox.kind, sandbox.reference) == ("pipeline", "mnist")
    gpu = pipeline_config(["mnist_trt_fp16", "mnist_trt_tf32", "mnist"])
    assert classify(model_info(PIPELINE_METADATA, gpu)).reference == "mnist"
    plain_python = model_info(PIPELINE_METADATA, {"backend": "python", "max_batch_size": 64})
    assert classify(plain_python).kind == "onnx"


@pytest.mark.parametrize("layout", ["CHW", "HWC"])
def test_pipeline_images_invert_the_normalization(layout: str) -> None:
    params = pipeline_params(model_info(PIPELINE_METADATA, pipeline_config(["mnist"], layout)))
    pixels = np.random.default_rng(0).integers(0, 256, (4, 1, 28, 28), dtype=np.uint8)
    images = np.moveaxis(pixels, 1, -1) if layout == "HWC" else pixels
    x = pipeline_normalize(images, params)
    assert x.shape == (4, 1, 28, 28) and x.dtype == np.float32
    np.testing.assert_allclose(x, (pixels / 255.0 - 0.1307) / 0.3081, atol=1e-6)
    assert np.array_equal(pipeline_images(x, params), images)


def test_class_agreement_allows_only_near_ties() -> None:
    ref = softmax(np.array([[5.0, 1.0, 0.0], [2.0, 2.00001, 0.0], [0.0, 3.0, 1.0]]))
    tol = DEFAULT_TOLERANCES["fp16"]
    same = class_agreement(np.array([[0], [1], [1]]), ref, tol)
    assert same.ok and same.agree == 3
    tie = class_agreement(np.array([[0], [0], [1]]), ref, tol)
    assert tie.ok and tie.near_ties == 1
    wrong = class_agreement(np.array([[2], [1], [1]]), ref, tol)
    assert not wrong.ok and wrong.wrong == (0,)
    assert not class_agreement(np.array([[0]]), ref, tol).ok  # rows missing


def test_pipeline_classes_check_fails_on_a_wrong_class_and_names_the_rows() -> None:
    ref = softmax(np.array([[5.0, 1.0], [0.0, 4.0], [3.0, 0.0]]))
    good = {
        "http": {"class": np.array([[0], [1], [0]])},
        "grpc": {"class": np.array([[0], [1], [0]])},
    }
    check = classes_check(good, ref, DEFAULT_TOLERANCES["fp32"])
    assert check.result == PASS and "http 3/3 equal" in check.detail
    bad = {"http": {"class": np.array([[0], [0], [0]])}}
    check = classes_check(bad, ref, DEFAULT_TOLERANCES["fp32"])
    assert check.result == FAIL and "rows [1]" in check.detail
    assert classes_check({}, ref, DEFAULT_TOLERANCES["fp32"]).result == FAIL


def test_pipeline_probabilities_are_checked_against_softmax_of_the_reference() -> None:
    logits = np.array([[5.0, 1.0, 0.0], [0.0, 4.0, 1.0]])
    expected = softmax(logits)
    served = expected.astype(np.float32)
    tol = DEFAULT_TOLERANCES["fp32"]
    ok = compare_outputs(
        {"http": {"probabilities": served}}, {"probabilities": expected}, tol, "fp32"
    )
    assert ok.result == PASS
    unnormalized = logits.astype(np.float32)  # a pipeline that forgot its softmax
    bad = compare_outputs(
        {"http": {"probabilities": unnormalized}}, {"probabilities": expected}, tol, "fp32"
    )
    assert bad.result == FAIL


# --- inputs: several per model, from samples or from the ONNX signature ----------------------


def test_inputs_generated_from_the_onnx_signature_with_the_manifest_batch(tmp_path: Path) -> None:
    path = two_input_model(tmp_path / "two.onnx")
    signature = onnx_signature(path)
    assert [(n, d.name, dims) for n, d, dims in signature] == [
        ("x", "float32", (-1, 3)),
        ("k", "int64", (-1, 1)),
    ]
    feeds = generated_feeds(signature, batch=16)
    assert feeds["x"].shape == (16, 3) and feeds["x"].dtype == np.float32
    assert feeds["k"].shape == (16, 1) and feeds["k"].dtype == np.int64
    assert np.array_equal(feeds["x"], generated_feeds(signature, batch=16)["x"])  # seeded
    out = onnxruntime_outputs(path, feeds)
    np.testing.assert_allclose(out["scaled"], feeds["x"] * feeds["k"], rtol=1e-6)
    assert out["total"].shape == (16, 1)
    fixed = generated_feeds([("x", np.dtype(np.float32), (1, -1, 4))], batch=None)
    assert fixed["x"].shape == (1, 1, 4)


def test_synthetic_batch_is_the_manifest_opt_within_max_batch_size() -> None:
    info = trt_info("mnist_trt_fp16")
    assert synthetic_batch(info, 16, 8) == 16
    assert synthetic_batch(info, None, 8) == 8
    assert synthetic_batch(info, 256, 8) == 64


def test_samples_per_input_keyed_by_name(tmp_path: Path) -> None:
    specs = [TensorSpec("x", "FP32", (-1, 3)), TensorSpec("k", "INT64", (-1, 1))]
    np.savez(tmp_path / "s.npz", x=np.zeros((5, 3)), k=np.ones((5, 1)), labels=np.arange(5))
    arrays, labels = read_npz(tmp_path / "s.npz")
    feeds = sample_feeds(arrays, specs, "s.npz")
    assert sorted(feeds) == ["k", "x"] and list(labels) == [0, 1, 2, 3, 4]
    one = sample_feeds({"inputs": np.zeros((2, 3))}, specs[:1], "one.npz")
    assert list(one) == ["x"]
    with pytest.raises(DltkError, match=r"no array for input\(s\) k"):
        sample_feeds({"x": np.zeros((5, 3))}, specs, "s.npz")
    with pytest.raises(DltkError, match="different numbers of samples"):
        sample_feeds({"x": np.zeros((5, 3)), "k": np.zeros((4, 1))}, specs, "s.npz")


def test_onnxruntime_reference_names_a_missing_input(tmp_path: Path) -> None:
    path = two_input_model(tmp_path / "two.onnx")
    with pytest.raises(DltkError, match="needs input"):
        onnxruntime_outputs(path, {"x": np.zeros((1, 3), np.float32), "y": np.zeros(1)})


# --- perf sweep sized to the GPU count -------------------------------------------------------


def test_default_concurrency_is_sized_to_the_gpu_count() -> None:
    assert default_concurrency(0) == ConcurrencyRange(1, 4, 1)  # CPU hosts: as before
    assert default_concurrency(1) == ConcurrencyRange(1, 4, 1)
    assert default_concurrency(2) == ConcurrencyRange(1, 8, 1)
    assert default_concurrency(8) == ConcurrencyRange(4, 32, 4)  # HGX: 4 per GPU
    for gpus in range(0, 40):
        rng = default_concurrency(gpus)
        assert rng.levels[-1] == rng.end >= min(4 * max(gpus, 1), MAX_CONCURRENCY)
        assert rng.end <= MAX_CONCURRENCY and len(rng.levels) <= min(8, MAX_LEVELS)
