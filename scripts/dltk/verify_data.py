"""`dltk verify`'s inputs and reference: the samples NPZ and onnxruntime outputs on CPU."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dltk.errors import DltkError
from dltk.verify_records import Samples


def load_samples(path: Path) -> Samples:
    try:
        with np.load(path) as data:
            if "inputs" not in data:
                raise DltkError(
                    f"{path} has no 'inputs' array (keys: {', '.join(data.files)}); "
                    "use the .samples.npz from `dltk export`"
                )
            inputs = np.asarray(data["inputs"])
            labels = np.asarray(data["labels"]) if "labels" in data else None
    except (OSError, ValueError) as exc:
        raise DltkError(f"cannot read samples {path}: {exc}") from None
    if len(inputs) == 0:
        raise DltkError(f"{path} holds no samples")
    return Samples(inputs=inputs, labels=labels, source=str(path))


def onnxruntime_outputs(onnx_path: Path, input_name: str, inputs: np.ndarray) -> dict:
    """Reference outputs from onnxruntime on CPU, in-process."""
    import onnxruntime as ort

    try:
        session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types
        raise DltkError(
            f"onnxruntime cannot load {onnx_path}: {str(exc).splitlines()[0]}"
        ) from None
    names = [o.name for o in session.get_outputs()]
    feed_name = session.get_inputs()[0].name if len(session.get_inputs()) == 1 else input_name
    values = session.run(names, {feed_name: inputs})
    return dict(zip(names, values, strict=True))
