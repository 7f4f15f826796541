"""Small ONNX graphs built in code, shared by the unit and integration tests.

Integration tests import this module as `unit.onnx_builders` (tests/ is on their sys.path).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def two_input_model(path: Path, factor: float = 1.0) -> Path:
    """x float [N, 3], k int64 [N, 1] -> scaled = factor * x * k [N, 3], total = sum(x) [N, 1]."""
    graph = helper.make_graph(
        [
            helper.make_node("Cast", ["k"], ["kf"], to=TensorProto.FLOAT),
            helper.make_node("Mul", ["x", "kf"], ["xk"]),
            helper.make_node("Mul", ["xk", "factor"], ["scaled"]),
            helper.make_node("ReduceSum", ["x", "axes"], ["total"], keepdims=1),
        ],
        "two_inputs",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3]),
            helper.make_tensor_value_info("k", TensorProto.INT64, ["N", 1]),
        ],
        [
            helper.make_tensor_value_info("scaled", TensorProto.FLOAT, ["N", 3]),
            helper.make_tensor_value_info("total", TensorProto.FLOAT, ["N", 1]),
        ],
        [
            numpy_helper.from_array(np.array(factor, np.float32), "factor"),
            numpy_helper.from_array(np.array([1], np.int64), "axes"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)
    return path
