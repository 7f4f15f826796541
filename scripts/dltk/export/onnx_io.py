"""What every exporter shares: the options, the result record, the ONNX export with a
dynamic batch axis, the samples file and atomic writes (mnist: export/mnist.py, resnet:
export/resnet.py).
"""

from __future__ import annotations

import os
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

OPSET = 17


@dataclass(frozen=True)
class ExportOptions:
    out: Path
    epochs: int | None = None  # None: the dataset's default
    seed: int = 0
    dataset: str = "auto"  # auto: real MNIST when downloadable, else sklearn digits
    depth: int = 50  # resnet50: ResNet depth (18 keeps CI fast)
    weights: Path | None = None  # resnet50: a torchvision-style state dict; None = random
    external_data: bool = False  # resnet50: weights in a .onnx.data side file


@dataclass(frozen=True)
class ExportResult:
    model: str
    onnx: str
    dataset: str
    accuracy: float | None  # None: no labelled data (random weights)
    max_abs_diff: float
    opset: int
    sha256: str
    epochs: int
    seed: int
    train_size: int
    test_size: int


def export_onnx(model: Any, path: Path, example_shape: tuple[int, ...] = (1, 1, 28, 28)) -> None:
    """ONNX with input `input`, output `logits` and a dynamic batch axis (every exporter)."""
    import torch

    example = torch.zeros(*example_shape)
    with warnings.catch_warnings():
        # The TorchScript exporter is deprecated, but dynamo=True needs onnxscript and writes
        # an external-data side file (docs/machine-facts.md): keep the legacy path, quietly.
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            model,
            (example,),
            str(path),
            dynamo=False,
            opset_version=OPSET,
            input_names=["input"],
            output_names=["logits"],
            dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
        )


def write_atomic(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def npz_bytes(inputs: np.ndarray, labels: np.ndarray | None) -> bytes:
    """The samples file: `inputs` float32 and, when known, `labels` int64."""
    import io

    buffer = io.BytesIO()
    arrays = {"inputs": np.ascontiguousarray(inputs, np.float32)}
    if labels is not None:
        arrays["labels"] = labels.astype(np.int64)
    np.savez(buffer, **arrays)
    return buffer.getvalue()
