"""`dltk repo backends`: which models of a repository a Triton image can load.

Each model's backend comes from its config.pbtxt (`backend`, else the backend of its `platform`:
tensorrt_plan -> tensorrt, onnxruntime_onnx -> onnxruntime, ...); an ensemble needs no backend of
its own but every model of its steps. The triton_server role compares them with the backends the
image has (its /opt/tritonserver/backends directory): with `--skip-missing` the models it cannot
load are listed as skipped (their files stay deployed and validated), else they are an error.
Triton's backend/platform names: https://github.com/triton-inference-server/backend#backends
and the model configuration guide,
https://github.com/triton-inference-server/server/blob/main/docs/user_guide/model_configuration.md
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, field
from pathlib import Path

from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2

from dltk.errors import DltkError

# Triton's platform names and the backend that serves each.
PLATFORM_BACKENDS = {
    "tensorrt_plan": "tensorrt",
    "onnxruntime_onnx": "onnxruntime",
    "pytorch_libtorch": "pytorch",
    "tensorflow_savedmodel": "tensorflow",
    "tensorflow_graphdef": "tensorflow",
}
ENSEMBLE = "ensemble"


@dataclass(frozen=True)
class ModelNeeds:
    """What one model needs to load: a backend (None for an ensemble) and other models."""

    backend: str | None
    models: tuple[str, ...] = ()


@dataclass(frozen=True)
class LoadPlan:
    """Models the image can load, and the skipped ones with the backend each lacks."""

    loadable: tuple[str, ...]
    skipped: dict[str, str] = field(default_factory=dict)


def model_needs(name: str, text: str) -> ModelNeeds:
    """Parse one config.pbtxt (Triton's protobuf schema) into what the model needs."""
    config = model_config_pb2.ModelConfig()
    try:
        text_format.Parse(text, config)
    except text_format.ParseError as exc:
        raise DltkError(f"{name}/config.pbtxt does not parse ({exc}): run dltk validate") from exc
    kind = config.backend or PLATFORM_BACKENDS.get(config.platform, config.platform)
    if not kind:
        raise DltkError(f"{name}/config.pbtxt sets neither backend nor platform")
    if kind == ENSEMBLE:
        steps = tuple(sorted({s.model_name for s in config.ensemble_scheduling.step}))
        return ModelNeeds(None, steps)
    return ModelNeeds(kind)


def plan_loading(needs: dict[str, ModelNeeds], available: list[str]) -> LoadPlan:
    """Split the models into loadable and skipped (pure). An ensemble is skipped when a model
    of its steps is skipped or absent; the reason names the missing backend (or model)."""
    have = set(available)
    skipped: dict[str, str] = {
        name: need.backend
        for name, need in needs.items()
        if need.backend is not None and need.backend not in have
    }
    changed = True
    while changed:  # ensembles of ensembles: at most len(needs) rounds
        changed = False
        for name, need in needs.items():
            if name in skipped or need.backend is not None:
                continue
            missing = [m for m in need.models if m in skipped or m not in needs]
            if missing:
                first = missing[0]
                skipped[name] = skipped.get(first, f"model {first}")
                changed = True
    loadable = tuple(sorted(name for name in needs if name not in skipped))
    return LoadPlan(loadable, dict(sorted(skipped.items())))


def missing_error(plan: LoadPlan, available: list[str]) -> str:
    """One line for a run that must not skip models."""
    listed = ", ".join(f"{model} ({backend})" for model, backend in plan.skipped.items())
    return (
        f"the Triton image cannot load {listed}: it has the backends "
        f"{', '.join(sorted(available)) or 'none'}. Use an image with them (NGC tritonserver "
        "has onnxruntime and tensorrt), drop those runtimes from triton_model_repo_runtimes, or "
        "set triton_server_skip_missing_backends: true to deploy them without loading them"
    )


def _read_configs(value: str) -> dict[str, str]:
    text = value
    if value.startswith("@"):
        try:
            text = Path(value[1:]).read_text()
        except OSError as exc:
            raise DltkError(f"cannot read {value[1:]}: {exc.strerror}") from exc
    try:
        configs = json.loads(text)
    except ValueError as exc:
        raise DltkError(f"--configs is not JSON ({exc})") from exc
    if not isinstance(configs, dict) or not all(isinstance(v, str) for v in configs.values()):
        raise DltkError('--configs must be a JSON object {"model": "config.pbtxt text", ...}')
    return configs


def run(args: argparse.Namespace) -> int:
    configs = _read_configs(args.configs)
    if args.repo:
        for path in sorted(Path(args.repo).glob("*/config.pbtxt")):
            configs.setdefault(path.parent.name, path.read_text())
    available = [b for b in args.available.split(",") if b]
    plan = plan_loading({n: model_needs(n, t) for n, t in configs.items()}, available)
    if plan.skipped and not args.skip_missing:
        raise DltkError(missing_error(plan, available))
    print(json.dumps({"loadable": list(plan.loadable), "skipped": plan.skipped}, sort_keys=True))
    return 0


def add_verb(verbs: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    backends = verbs.add_parser(
        "backends",
        help="which models of a repository a Triton image can load (JSON)",
        description="Read each model's backend from its config.pbtxt and compare with the "
        "backends the Triton image has; print {loadable: [...], skipped: {model: backend}}.",
    )
    backends.add_argument(
        "--configs",
        default="{}",
        metavar="JSON|@FILE",
        help='{"model": "config.pbtxt text"} (the triton_server role sends the host\'s)',
    )
    backends.add_argument("--repo", metavar="DIR", help="or read DIR/*/config.pbtxt")
    backends.add_argument(
        "--available", required=True, metavar="B1,B2", help="backends the image has"
    )
    backends.add_argument(
        "--skip-missing",
        action="store_true",
        help="list models whose backend is missing as skipped instead of failing",
    )
    backends.set_defaults(func=run)
