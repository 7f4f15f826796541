"""What DLTK reads from an ONNX file: its tensors and the external-data files it needs.

Reading never loads the weights (`load_external_data=False`), so a 100 MB model with a
`.onnx.data` side file is inspected in milliseconds. `external_data_files(path)` names the side
files, relative to the model's directory, so they travel with the model (into a repository
version directory, to a GPU host for trtexec) and enter the engine cache key.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from dltk.errors import DltkError


@dataclass(frozen=True)
class TensorSpec:
    """One model input or output; `dims` exclude the batch dim when the model batches."""

    name: str
    dtype: str  # ONNX element type name: FLOAT, INT64, ...
    dims: tuple[int, ...]  # -1 for a symbolic or unknown dim


def _load(path: Path) -> Any:
    import onnx  # lazy: importing onnx costs ~0.3 s

    try:
        return onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # onnx raises DecodeError, OSError, ...
        raise DltkError(f"{path}: not a readable ONNX model ({exc}); re-export it") from None


def read_onnx_tensors(path: Path) -> tuple[tuple[TensorSpec, ...], tuple[TensorSpec, ...]]:
    """The graph's inputs (minus initializers) and outputs with their full dims (-1 = symbolic)."""
    import onnx

    graph = _load(path).graph
    initializers = {init.name for init in graph.initializer}

    def spec(value: Any) -> TensorSpec:
        tensor = value.type.tensor_type
        dtype = onnx.TensorProto.DataType.Name(tensor.elem_type)
        dims = tuple(
            d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else -1
            for d in tensor.shape.dim
        )
        return TensorSpec(value.name, dtype, dims)

    inputs = tuple(spec(v) for v in graph.input if v.name not in initializers)
    outputs = tuple(spec(v) for v in graph.output)
    return inputs, outputs


def external_data_files(path: Path) -> tuple[str, ...]:
    """Side files holding the model's weights, relative to its directory, sorted; checked."""
    import onnx

    model = _load(path)
    locations: set[str] = set()
    tensors = list(model.graph.initializer)
    for node in model.graph.node:  # Constant nodes may hold external data too
        tensors.extend(a.t for a in node.attribute if a.type == onnx.AttributeProto.TENSOR)
    for tensor in tensors:
        if tensor.data_location != onnx.TensorProto.EXTERNAL:
            continue
        entries = {e.key: e.value for e in tensor.external_data}
        location = entries.get("location", "")
        relative = PurePosixPath(location)
        if not location or relative.is_absolute() or ".." in relative.parts:
            raise DltkError(
                f"{path}: tensor {tensor.name!r} keeps its data at {location!r}; external data "
                "must sit next to the model (a relative path without '..'): re-save it with "
                "onnx.save_model(..., save_as_external_data=True, location='NAME.onnx.data')"
            )
        locations.add(str(relative))
    for location in sorted(locations):
        if not (path.parent / location).is_file():
            raise DltkError(
                f"{path}: external data file {location} is missing next to the model; copy it "
                f"to {path.parent / location}"
            )
    return tuple(sorted(locations))


def model_files(path: Path) -> tuple[Path, ...]:
    """The ONNX file and its external-data files: what must travel together."""
    return (path, *(path.parent / name for name in external_data_files(path)))


def content_sha256(path: Path) -> str:
    """sha256 over the ONNX bytes and every external-data file (name and bytes), in order."""
    digest = hashlib.sha256()
    for index, file in enumerate(model_files(path)):
        name = "" if index == 0 else file.relative_to(path.parent).as_posix()
        digest.update(f"{name}\0{file.stat().st_size}\0".encode())
        with file.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()
