"""Checks of a manifest model that need its tensors (read from the ONNX graph).

`check_warmup` makes sure every warmup input has concrete dims; `check_pipeline` that a
pipeline's model is a classifier the BLS model can feed (one float image input, one output).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dltk.errors import DltkError
from dltk.manifest.options import PipelineSpec

if TYPE_CHECKING:
    from dltk.manifest.model import ModelSpec


def check_warmup(model: ModelSpec, prefix: str) -> None:
    if model.warmup is None:
        return
    names = {t.name for t in model.inputs}
    given = dict(model.warmup.dims)
    for name in given:
        if name not in names:
            raise DltkError(
                f"{prefix}model {model.name!r} warmup: dims name {name!r}, which is not an "
                f"input (inputs: {', '.join(sorted(names))})"
            )
    for tensor in model.inputs:
        if tensor.name not in given and -1 in tensor.dims:
            raise DltkError(
                f"{prefix}model {model.name!r} warmup: input {tensor.name!r} has variable dims "
                f"{list(tensor.dims)}; give them as warmup: {{dims: {{{tensor.name}: [...]}}}}"
            )
        if tensor.name in given and len(given[tensor.name]) != len(tensor.dims):
            raise DltkError(
                f"{prefix}model {model.name!r} warmup: dims of {tensor.name!r} need "
                f"{len(tensor.dims)} sizes like {list(tensor.dims)}"
            )


def check_pipeline(pipeline: PipelineSpec, model: ModelSpec, where_: str = "") -> None:
    """A pipeline's model must be a classifier it can feed: one float input, one output."""
    prefix = f"{where_}: pipeline {pipeline.name!r}: model {model.name!r}"
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise DltkError(
            f"{prefix} has {len(model.inputs)} inputs and {len(model.outputs)} outputs; a "
            "pipeline calls a classifier with one image input and one scores output"
        )
    (tensor,) = model.inputs
    if tensor.dtype not in ("FLOAT", "FLOAT16"):
        raise DltkError(f"{prefix} input {tensor.name!r} is {tensor.dtype}; it must be FLOAT")
    dims = tensor.dims if model.batch.max > 0 else tensor.dims[1:]
    if -1 in tensor.dims or len(dims) not in (2, 3):
        raise DltkError(
            f"{prefix} input dims {list(tensor.dims)} must be fixed [C,H,W] or [H,W] after the "
            "batch dim"
        )
    channels = dims[0] if len(dims) == 3 else 1
    for key in ("mean", "std"):
        values = getattr(pipeline, key)
        if len(values) not in (1, channels):
            raise DltkError(
                f"{where_}: pipeline {pipeline.name!r}: {key} has {len(values)} values; give 1 "
                f"or {channels} (one per channel of {model.name!r})"
            )
    if pipeline.layout == "HWC" and len(dims) != 3:
        raise DltkError(f"{where_}: pipeline {pipeline.name!r}: layout HWC needs a [C,H,W] model")
