"""Does the server answer correctly: HTTP and gRPC inference, outputs against onnxruntime on
the reference ONNX (BLS pipelines: probabilities and classes), accuracy against the labels, and
a wrong-shape request rejected while the server keeps serving.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict

import numpy as np

from dltk.verify.data import onnxruntime_outputs
from dltk.verify.models import (
    classes_check,
    compare_outputs,
    numeric_precision,
    pipeline_normalize,
    pipeline_params,
    softmax,
    tolerance_for,
)
from dltk.verify.readiness import served_model_info
from dltk.verify.records import (
    FAIL,
    PASS,
    SKIP,
    Check,
    Inputs,
    TensorSpec,
    accuracy_of_classes,
    chunk_size,
)
from dltk.verify.state import VerifierState, console
from dltk.verify.triton_client import Triton, _server_message, infer_all, probe_bad_input


def inference_checks(
    run: VerifierState, triton: Triton, inputs: Inputs
) -> dict[str, dict[str, np.ndarray]]:
    from tritonclient.utils import InferenceServerException

    info = run.info
    assert info is not None
    rows = len(next(iter(inputs.feeds.values())))
    size = chunk_size(info, rows) if info.batched else rows
    results: dict[str, dict[str, np.ndarray]] = {}
    protocols: list[tuple[str, Callable[..., dict], str | None]] = [
        ("http", triton.infer_http, run.opts.url)
    ]
    if run.opts.grpc_url:
        protocols.append(("grpc", triton.infer_grpc, run.opts.grpc_url))
    for proto, infer, url in protocols:
        t = time.monotonic()
        try:
            out = infer_all(infer, run.opts.model, info.inputs, inputs.feeds, size)
        except InferenceServerException as exc:
            run.add(Check(f"{proto} inference", FAIL, _server_message(exc)), t)
            continue
        shapes = ", ".join(f"{k} {list(v.shape)}" for k, v in out.items())
        requests = math.ceil(rows / max(size, 1))
        run.add(
            Check(
                f"{proto} inference",
                PASS,
                f"{rows} samples in {requests} "
                f"request(s) to {url} -> {shapes} in "
                f"{(time.monotonic() - t) * 1000:.0f} ms",
            ),
            t,
        )
        results[proto] = out
    if not run.opts.grpc_url:
        run.checks.append(Check("grpc inference", SKIP, "no --grpc-url given"))
    return results


def reference_outputs(
    run: VerifierState, feeds: dict[str, np.ndarray]
) -> dict[str, np.ndarray] | str:
    """onnxruntime's outputs on the reference ONNX, or why there are none."""
    if run.onnx is None:
        return "no --onnx given"
    if not run.onnx.is_file():
        return f"no reference ONNX file {run.onnx}"
    with console.status(f"onnxruntime on {run.onnx}"):
        return onnxruntime_outputs(run.onnx, feeds)


def reference_checks(
    run: VerifierState, inputs: Inputs, outputs: dict[str, dict[str, np.ndarray]]
) -> None:
    t = time.monotonic()
    if not outputs:
        run.add(Check("outputs vs onnxruntime", FAIL, "no inference succeeded"), t)
        return
    ref = reference_outputs(run, inputs.feeds)
    if isinstance(ref, str):
        result = SKIP if run.onnx is None else FAIL
        run.add(Check("outputs vs onnxruntime", result, ref), t)
    else:
        run.add(compare_outputs(outputs, ref, run.tolerance, run.served.precision), t)
    first = run.info.outputs[0].name if run.info else ""
    accuracy_check(
        run,
        inputs,
        {
            p: o[first].reshape(len(o[first]), -1).argmax(-1)
            for p, o in outputs.items()
            if first in o
        },
    )


def accuracy_check(run: VerifierState, inputs: Inputs, classes: dict[str, np.ndarray]) -> None:
    opts = run.opts
    t = time.monotonic()
    if inputs.labels is None:
        run.add(Check("accuracy", SKIP, "no labels in the samples"), t)
        return
    n = len(inputs.labels)
    accs = {p: accuracy_of_classes(c, inputs.labels) for p, c in classes.items()}
    low = {p: a for p, a in accs.items() if a < opts.min_accuracy}
    detail = ", ".join(f"{p} {a:.3f}" for p, a in accs.items())
    run.add(
        Check(
            "accuracy",
            FAIL if low or not accs else PASS,
            f"{detail} on {n} samples (min {opts.min_accuracy:g})",
            {
                "accuracy": min(accs.values()) if accs else None,
                "by_protocol": accs,
                "samples": n,
                "min_accuracy": opts.min_accuracy,
            },
        ),
        t,
    )


def pipeline_checks(
    run: VerifierState, triton: Triton, inputs: Inputs, outputs: dict[str, dict[str, np.ndarray]]
) -> None:
    """Probabilities vs softmax(onnxruntime) after the same normalization; classes vs the
    reference's argmax (near ties within the tolerance allowed) and the labels."""
    info = run.info
    assert info is not None
    params = pipeline_params(info)
    t = time.monotonic()
    if not outputs:
        run.add(Check("outputs vs onnxruntime", FAIL, "no inference succeeded"), t)
        return
    images = inputs.feeds[info.inputs[0].name]
    ref = reference_outputs(run, {params.target_input: pipeline_normalize(images, params)})
    served_by = served_by_model(outputs)
    precision, tol = "fp32", run.tolerance
    if served_by and run.opts.atol is None:
        precision, _ = numeric_precision(served_model_info(triton, served_by))
        tol = tolerance_for(precision, run.opts.tolerances, None)
    if isinstance(ref, str):
        run.add(Check("outputs vs onnxruntime", SKIP if run.onnx is None else FAIL, ref), t)
        scores = None
    else:
        scores = (
            ref[params.target_output] if params.target_output in ref else next(iter(ref.values()))
        )
        expected = softmax(scores) if params.softmax else scores.reshape(len(scores), -1)
        check = compare_outputs(outputs, {"probabilities": expected}, tol, precision)
        check.detail += f"; served by {served_by or '?'}"
        check.data["served_by"] = served_by
        run.add(check, t)
    t = time.monotonic()
    if scores is None:
        run.add(Check("classes vs onnxruntime", SKIP, "no onnxruntime reference"), t)
    else:
        reference = softmax(scores) if params.softmax else scores
        run.add(classes_check(outputs, reference, tol), t)
    accuracy_check(
        run, inputs, {p: o["class"].reshape(-1) for p, o in outputs.items() if "class" in o}
    )


def served_by_model(outputs: dict[str, dict[str, np.ndarray]]) -> str | None:
    for out in outputs.values():
        if "served_by" in out and len(out["served_by"]):
            value = out["served_by"].reshape(-1)[0]
            return value.decode() if isinstance(value, bytes) else str(value)
    return None


def bad_input_check(run: VerifierState, triton: Triton, inputs: Inputs) -> None:
    t = time.monotonic()
    info = run.info
    assert info is not None
    first, *rest = info.inputs

    def good(spec: TensorSpec) -> np.ndarray:
        array = inputs.feeds[spec.name]
        return array[: run.manifest_min] if info.batched else array

    probe = probe_bad_input(
        triton,
        run.opts.model,
        first,
        good(first),
        info.batched,
        run.opts.timeout,
        [(s, good(s)) for s in rest],
    )
    detail = (
        f"shape {list(probe.sent_shape)} -> {'rejected' if probe.rejected else 'ACCEPTED'} "
        f"({probe.status}: {probe.message[:160]}); ready after: {probe.ready_after}; "
        f"correct request after: {probe.good_request_after}"
    )
    run.add(Check("wrong shape rejected", PASS if probe.ok else FAIL, detail, asdict(probe)), t)


def quick_check_note(run: VerifierState) -> None:
    """The quick check compares nothing with onnxruntime: loading the reference ONNX costs as
    much as the model is big (a 1 GB model, ~10 s), and the full verification of this very
    deployment compared it (triton_verify runs the quick check only when nothing changed since)."""
    run.checks.append(
        Check("outputs vs onnxruntime", SKIP, "quick check: compared by the last full verification")
    )
