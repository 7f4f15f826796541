"""`dltk verify`'s inputs and reference: sample NPZ files, ONNX signatures, onnxruntime on CPU."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from dltk.errors import DltkError
from dltk.verify.records import Samples


def read_npz(path: Path) -> tuple[dict[str, np.ndarray], np.ndarray | None]:
    """Every array of a samples NPZ except `labels`, and the labels (None when absent)."""
    try:
        with np.load(path) as data:
            arrays = {k: np.asarray(data[k]) for k in data.files if k != "labels"}
            labels = np.asarray(data["labels"]) if "labels" in data.files else None
    except (OSError, ValueError) as exc:
        raise DltkError(f"cannot read samples {path}: {exc}") from None
    if not arrays or any(len(a) == 0 for a in arrays.values() if a.ndim):
        raise DltkError(f"{path} holds no samples")
    return arrays, labels


def load_samples(path: Path) -> Samples:
    """A one-input samples NPZ (`inputs`, optional `labels`) as `dltk export` writes it."""
    arrays, labels = read_npz(path)
    if "inputs" not in arrays:
        raise DltkError(
            f"{path} has no 'inputs' array (keys: {', '.join(arrays)}); "
            "use the .samples.npz from `dltk export`"
        )
    return Samples(inputs=arrays["inputs"], labels=labels, source=str(path))


def onnx_signature(onnx_path: Path) -> list[tuple[str, np.dtype[Any], tuple[int, ...]]]:
    """The ONNX graph's inputs: (name, numpy dtype, dims with -1 for symbolic dims)."""
    from dltk.onnx_graph import read_onnx_tensors
    from dltk.verify.models import onnx_numpy_dtype

    inputs, _ = read_onnx_tensors(onnx_path)
    return [(t.name, onnx_numpy_dtype(t.dtype), tuple(t.dims)) for t in inputs]


def onnxruntime_outputs(onnx_path: Path, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Reference outputs from onnxruntime on CPU, in-process; feeds cast to the graph's types."""
    import onnxruntime as ort

    try:
        session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types
        raise DltkError(
            f"onnxruntime cannot load {onnx_path}: {str(exc).splitlines()[0]}"
        ) from None
    graph_inputs = session.get_inputs()
    if len(graph_inputs) == 1 and len(feeds) == 1:  # one input: its name may differ
        feeds = {graph_inputs[0].name: next(iter(feeds.values()))}
    missing = [i.name for i in graph_inputs if i.name not in feeds]
    if missing:
        raise DltkError(
            f"{onnx_path} needs input(s) {', '.join(missing)} that the served model does not "
            f"take (it takes {', '.join(feeds)}); pass the ONNX file of this model"
        )
    types = {i.name: _ort_dtype(i.type) for i in graph_inputs}
    cast = {n: np.asarray(feeds[n]).astype(types[n] or feeds[n].dtype) for n in types}
    names = [o.name for o in session.get_outputs()]
    values = session.run(names, cast)
    return dict(zip(names, values, strict=True))


_ORT_TYPES = {
    "tensor(float)": np.float32,
    "tensor(float16)": np.float16,
    "tensor(double)": np.float64,
    "tensor(int64)": np.int64,
    "tensor(int32)": np.int32,
    "tensor(int16)": np.int16,
    "tensor(int8)": np.int8,
    "tensor(uint8)": np.uint8,
    "tensor(bool)": np.bool_,
}


def _ort_dtype(type_name: str) -> Any:
    return _ORT_TYPES.get(type_name)
