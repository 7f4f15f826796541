"""Model specs shared by unit tests: mnist's interface as the manifest parses it."""

from __future__ import annotations

from pathlib import Path

from dltk.manifest.model import BatchRange, ModelSpec
from dltk.onnx_graph import TensorSpec

# input [B,1,28,28] FP32 -> logits [B,10], batch 1/16/64, served by onnxruntime.
MNIST = ModelSpec(
    name="mnist",
    onnx=Path("mnist.onnx"),
    batch=BatchRange(1, 16, 64),
    runtimes=("onnxruntime",),
    inputs=(TensorSpec("input", "FLOAT", (1, 28, 28)),),
    outputs=(TensorSpec("logits", "FLOAT", (10,)),),
)
