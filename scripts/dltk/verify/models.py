"""What `dltk verify` compares for each kind of served model, and with what inputs (pure).

A model the server serves is one of:
- an ONNX deployment (onnxruntime, python-onnxruntime): its outputs against onnxruntime on CPU
  on the same ONNX file;
- a TensorRT engine `<model>_trt_<precision>` (platform tensorrt_plan, see
  `dltk.manifest.trt_model_name`): its outputs against onnxruntime on `<model>`'s ONNX file,
  within the tolerance of its precision (DEFAULT_TOLERANCES in verify_records);
- a BLS pipeline (python backend whose config carries the `targets` parameter written by
  `dltk.config.render_pipeline_config`): uint8 images in, class and probabilities out; the
  reference is onnxruntime on its model's ONNX file after the same normalization
  (python_models/bls_pipeline.py: x/255, then (x - mean) / std per channel), and the classes
  must agree with the reference's argmax and the labels.

Inputs: samples from an NPZ (one array per input, keyed by input name; a single-input model also
takes `inputs`, as `dltk export` writes them), else generated from the ONNX signature (dtype and
shape; symbolic dims other than the batch -> 1) with the batch size from the manifest.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from dltk.errors import DltkError
from dltk.manifest.options import PRECISIONS as TRT_PRECISIONS
from dltk.verify.records import (
    DEFAULT_TOLERANCES,
    FAIL,
    PASS,
    PRECISIONS,
    Check,
    Diff,
    ModelInfo,
    TensorSpec,
    Tolerance,
    compare,
)

TRT_NAME = re.compile(rf"^(?P<model>.+)_trt_(?P<precision>{'|'.join(TRT_PRECISIONS)})$")
PIPELINE_KEYS = ("targets", "target_input", "target_output", "mean", "std", "layout")


@dataclass(frozen=True)
class Served:
    """How to verify one served model."""

    kind: str  # onnx | tensorrt | pipeline
    reference: str  # the manifest model whose ONNX file (and samples) are the reference
    precision: str  # fp32 | tf32 | fp16: picks the tolerance
    why: str  # one phrase: where the precision comes from


# --- kinds and precisions -------------------------------------------------------------------


def strip_trt(name: str) -> str:
    """`mnist_trt_fp16` -> `mnist`; other names unchanged."""
    match = TRT_NAME.match(name)
    return match["model"] if match else name


def numeric_precision(info: ModelInfo) -> tuple[str, str]:
    """(fp32 | tf32 | fp16, why) of a model that is not a pipeline."""
    if info.platform == "tensorrt_plan":
        match = TRT_NAME.match(info.name)
        if match:
            return match["precision"], f"TensorRT {match['precision']} engine"
        return "fp16", "TensorRT engine of unknown precision (name not <model>_trt_<precision>)"
    on_gpu = any("KIND_GPU" in g for g in info.instance_groups)
    if info.platform == "onnxruntime_onnx" and on_gpu:
        accelerators = (
            info.optimization.get("execution_accelerators", {}).get("gpu_execution_accelerator")
            or []
        )
        for acc in accelerators:
            mode = str((acc.get("parameters") or {}).get("precision_mode", "")).upper()
            if acc.get("name") == "tensorrt" and mode == "FP16":
                return "fp16", "onnxruntime with the TensorRT accelerator in FP16"
        # onnxruntime's CUDA execution provider may run float32 matrix products in TF32
        # (its use_tf32 option, https://onnxruntime.ai/docs/execution-providers/CUDA-ExecutionProvider.html)
        return "tf32", "onnxruntime on GPU instances (CUDA kernels may use TF32)"
    return "fp32", f"{info.backend or info.platform} in float32"


def is_pipeline(info: ModelInfo) -> bool:
    return info.backend == "python" and all(k in info.parameters for k in PIPELINE_KEYS)


def classify(info: ModelInfo) -> Served:
    if is_pipeline(info):
        params = pipeline_params(info)
        return Served("pipeline", strip_trt(params.targets[-1]), "fp32", "BLS pipeline")
    precision, why = numeric_precision(info)
    if info.platform == "tensorrt_plan":
        return Served("tensorrt", strip_trt(info.name), precision, why)
    return Served("onnx", info.name, precision, why)


def parse_tolerances(
    values: Sequence[str], base: Mapping[str, Tolerance], what: str = "--tolerance"
) -> dict[str, Tolerance]:
    """`--tolerance` values over `base`: PRECISION=ATOL[:RTOL] or a JSON object
    {"fp16": {"atol": 0.05, "rtol": 0.05}, ...} (what the triton_verify role passes).
    `what` names the setting in errors."""
    result = dict(base)
    for text in values:
        text = text.strip()
        items: list[tuple[str, Any, Any]] = []
        if text.startswith("{"):
            try:
                data = json.loads(text)
            except json.JSONDecodeError as exc:
                raise DltkError(f"{what} {text!r} is not JSON ({exc.msg})") from None
            if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
                raise DltkError(
                    f'{what} JSON must map a precision to {{"atol": A, "rtol": R}}, e.g. '
                    '{"fp16": {"atol": 0.05, "rtol": 0.05}}'
                )
            items = [(k, v.get("atol"), v.get("rtol", 0.0)) for k, v in data.items()]
        else:
            name, sep, numbers = text.partition("=")
            atol, _, rtol = numbers.partition(":")
            if not sep:
                raise DltkError(f"{what} {text!r} is not PRECISION=ATOL[:RTOL], e.g. fp16=0.05")
            items = [(name.strip(), atol, rtol or 0.0)]
        for name, atol, rtol in items:
            if name not in PRECISIONS:
                raise DltkError(
                    f"{what}: unknown precision {name!r}; use one of {', '.join(PRECISIONS)}"
                )
            try:
                tol = Tolerance(float(atol), float(rtol))
            except (TypeError, ValueError):
                raise DltkError(
                    f"{what} {name}: atol {atol!r} and rtol {rtol!r} must be numbers"
                ) from None
            if not (tol.atol >= 0 and tol.rtol >= 0):
                raise DltkError(f"{what} {name}: atol and rtol must be >= 0")
            result[name] = tol
    return result


def tolerance_for(
    precision: str, tolerances: Mapping[str, Tolerance], forced_atol: float | None
) -> Tolerance:
    """The tolerance of a precision; `--atol` forces one absolute tolerance for every model."""
    if forced_atol is not None:
        return Tolerance(forced_atol, 0.0)
    return tolerances.get(precision, DEFAULT_TOLERANCES[precision])


# --- pipelines ------------------------------------------------------------------------------


@dataclass(frozen=True)
class PipelineParams:
    targets: tuple[str, ...]
    target_input: str
    target_output: str
    layout: str  # CHW | HWC
    mean: tuple[float, ...]
    std: tuple[float, ...]
    softmax: bool


def pipeline_params(info: ModelInfo) -> PipelineParams:
    p = info.parameters
    try:
        targets = tuple(str(t["model"]) for t in json.loads(p["targets"]))
        mean = tuple(float(v) for v in json.loads(p["mean"]))
        std = tuple(float(v) for v in json.loads(p["std"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise DltkError(f"pipeline {info.name!r}: unreadable config parameters ({exc})") from None
    if not targets or not mean or len(mean) != len(std):
        raise DltkError(f"pipeline {info.name!r}: config parameters name no target or mean/std")
    return PipelineParams(
        targets=targets,
        target_input=p["target_input"],
        target_output=p["target_output"],
        layout=p["layout"],
        mean=mean,
        std=std,
        softmax=p.get("softmax", "true") == "true",
    )


def _per_channel(values: tuple[float, ...], ndim: int) -> np.ndarray:
    array = np.asarray(values, dtype=np.float32)
    return array.reshape((1, -1, 1, 1)) if ndim == 4 else array[:1].reshape(())


def pipeline_normalize(images: np.ndarray, params: PipelineParams) -> np.ndarray:
    """What the pipeline feeds its model: uint8 [N,(C,)H,W] or [N,H,W,C] -> float32 CHW."""
    x = images.astype(np.float32) / np.float32(255.0)
    if params.layout == "HWC":
        x = np.moveaxis(x, -1, 1)
    mean, std = _per_channel(params.mean, x.ndim), _per_channel(params.std, x.ndim)
    return ((x - mean) / std).astype(np.float32)


def pipeline_images(normalized: np.ndarray, params: PipelineParams) -> np.ndarray:
    """The uint8 images whose normalization gives `normalized` (the model's float samples)."""
    x = normalized.astype(np.float32)
    mean, std = _per_channel(params.mean, x.ndim), _per_channel(params.std, x.ndim)
    pixels = np.clip(np.rint((x * std + mean) * 255.0), 0, 255).astype(np.uint8)
    return np.moveaxis(pixels, 1, -1) if params.layout == "HWC" else pixels


def softmax(scores: np.ndarray) -> np.ndarray:
    """Row-wise softmax in float64 (the reference for the pipeline's probabilities)."""
    rows = scores.reshape(scores.shape[0], -1).astype(np.float64)
    exp = np.exp(rows - rows.max(axis=1, keepdims=True))
    return exp / exp.sum(axis=1, keepdims=True)


@dataclass(frozen=True)
class ClassAgreement:
    agree: int
    near_ties: int  # rows whose class differs from the reference's argmax within the tolerance
    wrong: tuple[int, ...]  # rows whose class is not within tolerance of the reference's best

    @property
    def ok(self) -> bool:
        return not self.wrong


def class_agreement(classes: np.ndarray, reference: np.ndarray, tol: Tolerance) -> ClassAgreement:
    """Classes against the reference scores [N, C]: a different class is allowed only when the
    reference scores it within the tolerance of its best (a near tie)."""
    ref = reference.reshape(reference.shape[0], -1).astype(np.float64)
    got = classes.reshape(-1).astype(np.int64)
    if len(got) != len(ref):
        return ClassAgreement(0, 0, tuple(range(max(len(got), len(ref)))))
    best = ref.argmax(axis=1)
    agree, ties, wrong = 0, 0, []
    for i, (c, b) in enumerate(zip(got, best, strict=True)):
        if c == b:
            agree += 1
        elif 0 <= c < ref.shape[1] and ref[i, b] - ref[i, c] <= tol.atol + tol.rtol * abs(
            ref[i, b]
        ):
            ties += 1
        else:
            wrong.append(i)
    return ClassAgreement(agree, ties, tuple(wrong))


def compare_outputs(
    outputs: Mapping[str, Mapping[str, np.ndarray]],
    ref: Mapping[str, np.ndarray],
    tol: Tolerance,
    precision: str,
) -> Check:
    """`outputs vs onnxruntime`: every reference output, per protocol, within `tol`."""
    worst: Diff | None = None
    data: dict[str, Any] = {"atol": tol.atol, "rtol": tol.rtol, "precision": precision}
    problems: list[str] = []
    for proto, out in outputs.items():
        for name, ref_value in ref.items():
            if name not in out:
                problems.append(f"{proto}: server returned no output {name!r}")
                continue
            diff = compare(out[name], ref_value, tol.atol, tol.rtol)
            data[f"{proto}_{name}_max_abs_diff"] = diff.max_abs
            data[f"{proto}_{name}_argmax_agreement"] = diff.argmax_agreement
            if not diff.ok:
                problems.append(f"{proto} {name} outside the tolerance")
            if worst is None or not diff.max_abs <= worst.max_abs:
                worst = diff
    data["max_abs_diff"] = worst.max_abs if worst else None
    detail = (
        f"max |triton - onnxruntime| = {worst.max_abs:.3g} ({tol.describe(precision)}) over "
        f"{', '.join(outputs)}; argmax agreement {worst.argmax_agreement:.3f}"
        if worst
        else "nothing compared"
    )
    ok = worst is not None and not problems
    return Check(
        "outputs vs onnxruntime", PASS if ok else FAIL, "; ".join([detail, *problems]), data
    )


def classes_check(
    outputs: Mapping[str, Mapping[str, np.ndarray]], reference: np.ndarray, tol: Tolerance
) -> Check:
    """`classes vs onnxruntime` of a pipeline: its `class` output per protocol against the
    reference scores' argmax (near ties within the tolerance allowed)."""
    parts: list[str] = []
    bad: list[str] = []
    data: dict[str, Any] = {}
    for proto, out in outputs.items():
        if "class" not in out:
            bad.append(f"{proto}: no output 'class'")
            continue
        agreement = class_agreement(out["class"], reference, tol)
        data[proto] = {
            "agree": agreement.agree,
            "near_ties": agreement.near_ties,
            "wrong": list(agreement.wrong),
        }
        ties = f", {agreement.near_ties} near ties" if agreement.near_ties else ""
        parts.append(f"{proto} {agreement.agree}/{len(reference)} equal{ties}")
        if not agreement.ok:
            bad.append(
                f"{proto}: class of rows {list(agreement.wrong)[:8]} is not onnxruntime's argmax"
            )
    if not outputs:
        bad.append("no inference succeeded")
    return Check("classes vs onnxruntime", FAIL if bad else PASS, "; ".join(bad + parts), data)


# --- inputs ---------------------------------------------------------------------------------


def sample_feeds(
    arrays: Mapping[str, np.ndarray], inputs: Sequence[TensorSpec], source: str
) -> dict[str, np.ndarray]:
    """The NPZ arrays for each input: keyed by input name, or `inputs` for a one-input model."""
    names = [t.name for t in inputs]
    if all(n in arrays for n in names):
        feeds = {n: np.asarray(arrays[n]) for n in names}
    elif len(names) == 1 and "inputs" in arrays:
        feeds = {names[0]: np.asarray(arrays["inputs"])}
    else:
        missing = [n for n in names if n not in arrays]
        raise DltkError(
            f"{source} has no array for input(s) {', '.join(missing)} (keys: "
            f"{', '.join(arrays)}); save one array per input, keyed by its name"
        )
    rows = {len(a) for a in feeds.values()}
    if len(rows) != 1 or 0 in rows:
        raise DltkError(
            f"{source}: the input arrays hold different numbers of samples "
            f"({', '.join(f'{n} {len(a)}' for n, a in feeds.items())})"
        )
    return feeds


def onnx_numpy_dtype(onnx_dtype: str) -> np.dtype[Any]:
    """FLOAT -> float32, INT64 -> int64, ... (ONNX element type names)."""
    import onnx

    try:
        return np.dtype(
            onnx.helper.tensor_dtype_to_np_dtype(onnx.TensorProto.DataType.Value(onnx_dtype))
        )
    except (ValueError, KeyError, TypeError):
        raise DltkError(f"cannot generate inputs of ONNX type {onnx_dtype}") from None


def generated_array(
    dims: Sequence[int], dtype: np.dtype[Any], rng: np.random.Generator
) -> np.ndarray:
    """Deterministic values of `dims` (no dynamic dim left): [0, 1) floats, small
    non-negative integers (safe as indices), random booleans, and uint8 pixels."""
    shape = tuple(int(d) for d in dims)
    if dtype == np.bool_:
        return rng.random(shape) < 0.5
    if dtype == np.uint8:
        return rng.integers(0, 256, shape, dtype=np.uint8)
    if np.issubdtype(dtype, np.integer):
        return rng.integers(0, 10, shape).astype(dtype)
    return rng.random(shape).astype(dtype)


Signature = Sequence[tuple[str, "np.dtype[Any]", tuple[int, ...]]]


def generated_feeds(
    signature: Signature, batch: int | None, seed: int = 0
) -> dict[str, np.ndarray]:
    """Inputs from a signature [(name, dtype, dims with -1 for symbolic)]: the first dim of a
    batched model is `batch`; any other symbolic dim is 1. `batch` None: fixed-batch model."""
    rng = np.random.default_rng(seed)
    feeds = {}
    for name, dtype, dims in signature:
        rest = dims[1:] if batch is not None else dims
        shape = [d if d > 0 else 1 for d in rest]
        if batch is not None:
            shape = [batch, *shape]
        feeds[name] = generated_array(shape, np.dtype(dtype), rng)
    return feeds


def synthetic_batch(info: ModelInfo, manifest_opt: int | None, default: int) -> int:
    """Rows of generated inputs: the manifest's opt batch, else `default`, within the model's
    max_batch_size."""
    rows = manifest_opt if manifest_opt else default
    return max(1, min(rows, info.max_batch_size)) if info.batched else rows
