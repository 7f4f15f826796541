"""The inputs a run sends: the reference ONNX file and samples (options, manifest or the
reference directory), read and checked, or generated from the ONNX signature or the metadata.
"""

from __future__ import annotations

import time

import numpy as np

from dltk.errors import DltkError
from dltk.verify.data import onnx_signature, read_npz
from dltk.verify.models import (
    generated_feeds,
    pipeline_images,
    pipeline_params,
    sample_feeds,
    synthetic_batch,
)
from dltk.verify.records import (
    FAIL,
    PASS,
    SKIP,
    SYNTHETIC_BATCH,
    Check,
    Inputs,
    ModelInfo,
    TensorSpec,
    check_sample_shape,
)
from dltk.verify.state import VerifierState


def locate_references(run: VerifierState) -> None:
    """The reference ONNX file, the samples and the manifest's batch for this model."""
    opts = run.opts
    ref = run.served.reference
    onnx, samples = opts.onnx, opts.samples
    onnx_name = f"{ref}.onnx"
    if opts.manifest is not None:
        from dltk.manifest.load import load_manifest

        manifest = load_manifest(opts.manifest, read_onnx=False)
        entry = next((m for m in manifest.models if m.name == ref), None)
        if entry is not None:
            run.manifest_opt = entry.batch.opt if entry.batch.max > 0 else None
            run.manifest_min = max(1, entry.batch.min)
            onnx_name = entry.onnx.name
            if opts.reference_dir is None:
                onnx = onnx or entry.onnx
                samples = samples or entry.samples
    if opts.reference_dir is not None:
        # reference/<model>/<its ONNX file> beside its external data (the role's layout,
        # `dltk repo references`), else reference/<model>.onnx.
        in_dir = opts.reference_dir / ref / onnx_name
        onnx = onnx or (in_dir if in_dir.is_file() else opts.reference_dir / f"{ref}.onnx")
        found = opts.reference_dir / f"{ref}.samples.npz"
        samples = samples or (found if found.is_file() else None)
    run.onnx, run.samples_path = onnx, samples


def samples_check(run: VerifierState, info: ModelInfo) -> Inputs:
    t = time.monotonic()
    try:
        inputs = make_inputs(run, info)
    except DltkError as exc:
        raise run.fatal(Check("samples", FAIL, str(exc)), t) from None
    rows = len(next(iter(inputs.feeds.values())))
    shapes = ", ".join(f"{n} {list(a.shape)}" for n, a in inputs.feeds.items())
    if inputs.generated:
        run.add(Check("samples", SKIP, f"{inputs.source}: {shapes}, no accuracy check"), t)
    else:
        labels = "with labels" if inputs.labels is not None else "without labels"
        if len(inputs.feeds) == 1:
            shapes = str(list(next(iter(inputs.feeds.values())).shape))
        run.add(Check("samples", PASS, f"{rows} samples {shapes} {labels} from {inputs.source}"), t)
    return inputs


def make_inputs(run: VerifierState, info: ModelInfo) -> Inputs:
    from tritonclient.utils import triton_to_np_dtype

    opts = run.opts
    dtypes = {s.name: np.dtype(triton_to_np_dtype(s.datatype)) for s in info.inputs}
    pipeline = pipeline_params(info) if run.served.kind == "pipeline" else None
    if run.samples_path is not None:
        converted = ""
        arrays, labels = read_npz(run.samples_path)
        if pipeline is not None and info.inputs[0].name not in arrays:
            # The model's normalized float samples -> the uint8 images behind them.
            base = sample_feeds(
                arrays, [TensorSpec(pipeline.target_input, "FP32", ())], str(run.samples_path)
            )
            arrays = {info.inputs[0].name: pipeline_images(base[pipeline.target_input], pipeline)}
            converted = " (uint8 images behind the model's normalized samples)"
        feeds = sample_feeds(arrays, info.inputs, str(run.samples_path))
        for spec in info.inputs:
            check_sample_shape(spec, tuple(feeds[spec.name].shape), info.batched)
        if labels is not None and len(labels) != len(next(iter(feeds.values()))):
            raise DltkError(f"{run.samples_path}: {len(labels)} labels for other sample counts")
        source = f"{run.samples_path}{converted}"
        return Inputs({n: a.astype(dtypes[n]) for n, a in feeds.items()}, labels, source)
    batch = synthetic_batch(info, run.manifest_opt, opts.synthetic_batch or SYNTHETIC_BATCH)
    if pipeline is None and run.onnx is not None and run.onnx.is_file():
        signature = [
            (name, dtype, dims) for name, dtype, dims in onnx_signature(run.onnx) if name in dtypes
        ]
        if {n for n, _, _ in signature} != set(dtypes):
            raise DltkError(
                f"{run.onnx} inputs do not match the served model's "
                f"({', '.join(dtypes)}); pass this model's ONNX file"
            )
        source = f"no samples: generated from the ONNX signature of {run.onnx.name}"
    else:
        signature = [(s.name, dtypes[s.name], s.shape) for s in info.inputs]
        source = "no samples: generated from the model's metadata"
    feeds = generated_feeds(signature, batch if info.batched else None)
    return Inputs({n: a.astype(dtypes[n]) for n, a in feeds.items()}, None, source, generated=True)
