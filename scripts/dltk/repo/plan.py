"""What a rendered repository contains, before anything is written (pure).

`plan_repo(manifest, runtimes, instance_kind, engines)` lists every model directory: each
manifest model's ONNX deployment (the first of its ONNX runtimes the target serves), one
`<model>_trt_<precision>` per TensorRT engine built on the host, one BLS model per pipeline.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from dltk.engines.plan import check_cc
from dltk.errors import DltkError
from dltk.manifest.model import ONNX_RUNTIMES, RUNTIMES, Manifest, ModelSpec, trt_model_name
from dltk.manifest.options import PipelineSpec
from dltk.onnx_graph import external_data_files
from dltk.repo.config import (
    pipeline_targets,
    render_config,
    render_pipeline_config,
    render_tensorrt_config,
)

VERSION = "1"
PYTHON_MODEL = Path(__file__).parents[1] / "python_models" / "onnxruntime_model.py"
BLS_MODEL = Path(__file__).parents[1] / "python_models" / "bls_pipeline.py"

# Directory entries of a model: bytes to write, a file to copy, or None for a directory
# whose files are placed later (TensorRT plans, copied on the host).
Content = bytes | Path | None


@dataclass(frozen=True)
class PlannedModel:
    """One model directory to write: relative path -> content."""

    name: str
    model: ModelSpec
    runtime: str
    files: dict[str, Content]
    detail: str = ""


@dataclass(frozen=True)
class EngineRef:
    """A TensorRT engine built on the host (from the trt_engines role or `dltk engines plan`)."""

    model: str
    precision: str
    cc: str


def plan_model(model: ModelSpec, runtime: str, instance_kind: str) -> PlannedModel:
    """What `<out>/<model.name>/` must contain (pure: files to copy are named by path)."""
    files: dict[str, Content] = {
        "config.pbtxt": render_config(model, runtime, instance_kind).encode(),
        f"{VERSION}/model.onnx": model.onnx,
    }
    for name in external_data_files(model.onnx):  # weights travel with the model
        files[f"{VERSION}/{name}"] = model.onnx.parent / name
    if RUNTIMES[runtime].backend == "python":
        files[f"{VERSION}/model.py"] = PYTHON_MODEL
    return PlannedModel(model.name, model, runtime, files)


def plan_engine(model: ModelSpec, precision: str, ccs: tuple[str, ...]) -> PlannedModel:
    """`<out>/<model>_trt_<precision>/`: the config; the plans arrive on the host."""
    files: dict[str, Content] = {
        "config.pbtxt": render_tensorrt_config(model, precision, ccs).encode(),
        VERSION: None,
    }
    detail = "engines for sm " + ", ".join(ccs)
    return PlannedModel(trt_model_name(model.name, precision), model, "tensorrt", files, detail)


def plan_pipeline(
    pipeline: PipelineSpec, model: ModelSpec, engines: tuple[str, ...]
) -> PlannedModel:
    """`<out>/<pipeline>/`: the BLS model calling `model`'s engines, then its ONNX deployment."""
    targets = pipeline_targets(model, engines)
    files: dict[str, Content] = {
        "config.pbtxt": render_pipeline_config(pipeline, model, targets).encode(),
        f"{VERSION}/model.py": BLS_MODEL,
    }
    detail = "calls " + " > ".join(t.model for t in targets)
    return PlannedModel(pipeline.name, model, "bls", files, detail)


def parse_engines(text: str | None) -> tuple[EngineRef, ...]:
    """`--engines`: JSON (or @FILE) list of objects with model, precision and cc."""
    if not text:
        return ()
    if text.startswith("@"):
        try:
            text = Path(text[1:]).read_text(encoding="utf-8")
        except OSError as exc:
            raise DltkError(f"--engines: cannot read {text[1:]}: {exc.strerror}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DltkError(
            f"--engines is not JSON ({exc.msg}); pass a list like "
            '[{"model": "mnist", "precision": "fp16", "cc": "8.6"}]'
        ) from None
    if isinstance(data, dict) and "engines" in data:  # the output of `dltk engines plan --json`
        data = data["engines"]
    if not isinstance(data, list) or not all(
        isinstance(e, dict) and {"model", "precision", "cc"} <= set(e) for e in data
    ):
        raise DltkError("--engines must be a JSON list of objects with model, precision and cc")
    return tuple(
        sorted(
            {EngineRef(str(e["model"]), str(e["precision"]), check_cc(str(e["cc"]))) for e in data},
            key=lambda e: (e.model, e.precision, e.cc),
        )
    )


def parse_runtimes(text: str | None) -> tuple[str, ...]:
    if text is None:
        return tuple(RUNTIMES)
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    if not names:
        raise DltkError(f"--runtimes is empty; use some of: {', '.join(RUNTIMES)}")
    for name in names:
        if name not in RUNTIMES:
            raise DltkError(
                f"--runtimes: unknown runtime {name!r}; known runtimes: {', '.join(RUNTIMES)}"
            )
    return names


def choose_runtime(model: ModelSpec, allowed: tuple[str, ...]) -> str:
    """The first of the model's ONNX runtimes that the target can serve."""
    for runtime in model.runtimes:
        if runtime in allowed and runtime in ONNX_RUNTIMES:
            return runtime
    onnx = [r for r in model.runtimes if r in ONNX_RUNTIMES]
    raise DltkError(
        f"model {model.name!r} can run on {', '.join(onnx)} but --runtimes allows "
        f"only {', '.join(allowed)}; add one of the model's runtimes to --runtimes or to the "
        "manifest"
    )


def plan_repo(
    manifest: Manifest,
    runtimes: tuple[str, ...],
    instance_kind: str = "cpu",
    engines: tuple[EngineRef, ...] = (),
) -> list[PlannedModel]:
    """Every model directory of the repository (pure apart from reading the ONNX files)."""
    built: dict[str, dict[str, list[str]]] = {}
    for engine in engines:
        model = manifest.model(engine.model)
        if "tensorrt" not in model.runtimes or engine.precision not in model.precisions:
            raise DltkError(
                f"--engines: model {model.name!r} has no tensorrt runtime with precision "
                f"{engine.precision!r} in the manifest (precisions: {', '.join(model.precisions)})"
            )
        if "tensorrt" not in runtimes:
            raise DltkError(
                f"--engines lists {model.name!r} but --runtimes ({', '.join(runtimes)}) does not "
                "allow tensorrt; add tensorrt to --runtimes or drop --engines"
            )
        built.setdefault(model.name, {}).setdefault(engine.precision, []).append(engine.cc)
    planned = []
    for model in manifest.models:
        planned.append(plan_model(model, choose_runtime(model, runtimes), instance_kind))
        for precision in model.precisions:
            ccs = built.get(model.name, {}).get(precision)
            if ccs:
                planned.append(plan_engine(model, precision, tuple(ccs)))
    for pipeline in manifest.pipelines:
        model = manifest.model(pipeline.model)
        planned.append(plan_pipeline(pipeline, model, tuple(built.get(model.name, {}))))
    return planned
