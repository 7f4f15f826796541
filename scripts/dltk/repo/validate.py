"""What `dltk validate DIR` checks (the command: repo/validate_cli.py): every DIR/*/config.pbtxt
against Triton's schema and value rules.

The schema check is Triton's own protobuf (`tritonclient.grpc.model_config_pb2.ModelConfig`
parsed by `google.protobuf.text_format`): unknown fields, enums and types are reported with
their line and column. Protobuf does not check values (`max_batch_size: -3` parses), so the
rules Triton applies when it loads a model are checked here too. `validate_repo(path)` is the
function other modules call; it reports every problem, not just the first. Model names are
unique because each `name` must equal its directory's name.

TensorRT plans are built on the GPU host and copied there into `<model>/1/`, never into the
repository rendered on the control node. `--engines` (the same JSON list, or `dltk engines plan
--json` output, that `dltk repo render --engines` takes) names them: a plan file in that list
counts as present for the cc_model_filenames rule; a listed plan that no config names, or a
config's plan file that is neither present nor listed, is a problem.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2

from dltk.engines.plan import engine_filename
from dltk.errors import DltkError
from dltk.manifest.model import trt_model_name
from dltk.onnx_graph import TensorSpec, external_data_files, read_onnx_tensors
from dltk.repo.config import ONNX_TO_TRITON
from dltk.repo.pbtxt_locations import FieldPath, field_locations
from dltk.repo.plan import VERSION, EngineRef

__all__ = ["Problem", "check_config", "engine_files", "field_locations", "validate_repo"]

# Default model file per platform/backend (Triton's names; default_model_filename overrides).
MODEL_FILES = {
    "onnxruntime_onnx": "model.onnx",
    "onnxruntime": "model.onnx",
    "tensorrt_plan": "model.plan",
    "tensorrt": "model.plan",
    "python": "model.py",
    "pytorch_libtorch": "model.pt",
    "pytorch": "model.pt",
    "openvino": "model.xml",
    "tensorflow_savedmodel": "model.savedmodel",
    "tensorflow_graphdef": "model.graphdef",
}
# Platforms/backends that need no model file in the version directory.
NO_MODEL_FILE = {"ensemble"}
# Kinds whose version directory's model.onnx must match the config's tensors (python: the
# python-onnxruntime model feeds the ONNX graph with the config's names).
ONNX_KINDS = {"onnxruntime_onnx", "onnxruntime", "python"}


@dataclass(frozen=True)
class Problem:
    """One thing wrong in a model repository; `str()` is `FILE:LINE:COL: message`."""

    file: Path
    message: str
    line: int | None = None
    column: int | None = None

    def __str__(self) -> str:
        where = str(self.file)
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        return f"{where}: {self.message}"


class _Checker:
    """Collects the problems of one config.pbtxt, placing each at its field when known."""

    def __init__(self, file: Path, text: str) -> None:
        self.file = file
        self.locations = field_locations(text)
        self.problems: list[Problem] = []

    def add(self, path: FieldPath, message: str) -> None:
        # The field itself, else its nearest parent that was written down.
        for cut in range(len(path), 0, -1):
            key = path[:cut]
            if isinstance(key[-1], str):
                key = (*key, 0)
            if key in self.locations:
                line, column = self.locations[key]
                self.problems.append(Problem(self.file, message, line, column))
                return
        self.problems.append(Problem(self.file, message))


def _check_tensors(check: _Checker, kind: str, tensors: list, max_batch_size: int) -> None:
    seen: set[str] = set()
    for i, tensor in enumerate(tensors):
        label = f"{kind} {tensor.name!r}" if tensor.name else f"{kind} #{i + 1}"
        if not tensor.name:
            check.add((kind, i), f"{label} has no name")
        elif tensor.name in seen:
            check.add((kind, i, "name"), f"{kind} name {tensor.name!r} is used twice")
        seen.add(tensor.name)
        if tensor.data_type == model_config_pb2.TYPE_INVALID:
            check.add((kind, i, "data_type"), f"{label} needs a data_type (TYPE_FP32, ...)")
        if not tensor.dims and not tensor.HasField("reshape"):
            check.add(
                (kind, i),
                f"{label} has empty dims; list its shape"
                + (" without the batch dim" if max_batch_size > 0 else ""),
            )
        for j, dim in enumerate(tensor.dims):
            if dim == 0 or dim < -1:
                check.add(
                    (kind, i, "dims", j),
                    f"{label} dim {j} is {dim}; each dim must be -1 (variable) or > 0",
                )


def _parse_problem(file: Path, text: str, exc: text_format.ParseError) -> Problem:
    """protobuf's `LINE:COL : 'the line': message` as a Problem with just the message."""
    message = str(exc)
    line = exc.GetLine()
    if line is not None:
        message = message.split(" : ", 1)[-1]
        # text_format.Parse numbers and quotes the lines of text.split("\n"); splitlines()
        # would drop the empty line after a final newline, where "Expected ..." errors point.
        lines = text.split("\n")
        quoted = f"'{lines[line - 1]}': " if 0 < line <= len(lines) else None
        if quoted and message.startswith(quoted):
            message = message[len(quoted) :]
    return Problem(file, message, line, exc.GetColumn())


def engine_files(engines: Iterable[EngineRef]) -> dict[str, frozenset[str]]:
    """Triton model -> the plan files the GPU host places in its version directory `1/`."""
    files: dict[str, set[str]] = {}
    for engine in engines:
        model = trt_model_name(engine.model, engine.precision)
        files.setdefault(model, set()).add(engine_filename(engine.cc))
    return {model: frozenset(names) for model, names in files.items()}


def check_config(
    file: Path, text: str, model_dir: Path, on_host: frozenset[str] = frozenset()
) -> list[Problem]:
    """All problems of one config.pbtxt (`text`) of the model in `model_dir`.

    `on_host`: files (TensorRT plans) the GPU host places in the model's `1/` directory; they
    count as present there.
    """
    config = model_config_pb2.ModelConfig()
    try:
        text_format.Parse(text, config)
    except text_format.ParseError as exc:
        return [_parse_problem(file, text, exc)]

    check = _Checker(file, text)
    if config.name and config.name != model_dir.name:
        check.add(
            ("name",),
            f"name {config.name!r} differs from the directory name "
            f"{model_dir.name!r}; Triton requires them to match",
        )
    if config.platform and config.backend and config.platform != _platform_of(config.backend):
        check.add(
            ("backend",),
            f"platform {config.platform!r} and backend {config.backend!r} "
            "disagree; set one of them",
        )
    mbs = config.max_batch_size
    if mbs < 0:
        check.add(("max_batch_size",), f"max_batch_size is {mbs}; use 0 (no batching) or > 0")
    _check_tensors(check, "input", list(config.input), mbs)
    _check_tensors(check, "output", list(config.output), mbs)

    if config.HasField("dynamic_batching"):
        if mbs == 0:
            check.add(
                ("dynamic_batching",),
                "dynamic_batching needs max_batch_size > 0; remove it or set max_batch_size",
            )
        for j, size in enumerate(config.dynamic_batching.preferred_batch_size):
            if size < 1 or (mbs > 0 and size > mbs):
                check.add(
                    ("dynamic_batching", 0, "preferred_batch_size", j),
                    f"preferred_batch_size {size} is outside 1..max_batch_size ({mbs})",
                )

    for i, group in enumerate(config.instance_group):
        written = ("instance_group", i, "count", 0) in check.locations
        if group.count < 0 or (written and group.count == 0):
            check.add(
                ("instance_group", i, "count"),
                f"instance_group count is {group.count}; it must be >= 1",
            )

    _check_warmup(check, config)
    _check_cc_model_filenames(check, config)
    check.problems.extend(_check_versions(file, config, model_dir, on_host))
    _check_against_onnx(check, config, model_dir)
    return check.problems


def _check_warmup(check: _Checker, config: model_config_pb2.ModelConfig) -> None:
    """Triton warms a model up while loading it and refuses to load it when a warmup input is
    not one of the config's inputs or its dims do not fit the input's dims (-1: any size)."""
    inputs = {tensor.name: list(tensor.dims) for tensor in config.input}
    for i, warmup in enumerate(config.model_warmup):
        label = f"model_warmup {warmup.name!r}" if warmup.name else f"model_warmup #{i + 1}"
        for name in sorted(warmup.inputs):
            dims = list(warmup.inputs[name].dims)
            if name not in inputs:
                check.add(
                    ("model_warmup", i),
                    f"{label} gives input {name!r}, which the config does not have "
                    f"(inputs: {', '.join(sorted(inputs)) or 'none'}); Triton would not load it",
                )
            elif len(dims) != len(inputs[name]) or any(
                want != -1 and got != want for got, want in zip(dims, inputs[name], strict=False)
            ):
                check.add(
                    ("model_warmup", i),
                    f"{label}: dims of input {name!r} are {dims}, the config's are "
                    f"{inputs[name]} (-1: any size); Triton would not load the model",
                )


def _check_cc_model_filenames(check: _Checker, config: model_config_pb2.ModelConfig) -> None:
    for cc, filename in sorted(config.cc_model_filenames.items()):
        if not re.fullmatch(r"\d{1,2}\.\d", cc):
            check.add(
                ("cc_model_filenames",),
                f"cc_model_filenames key {cc!r} is not a compute capability like 8.6",
            )
        if not filename or "/" in filename or filename.startswith("."):
            check.add(
                ("cc_model_filenames",),
                f"cc_model_filenames[{cc!r}] = {filename!r} must be a file name in the version "
                "directory",
            )


def _check_against_onnx(
    check: _Checker, config: model_config_pb2.ModelConfig, model_dir: Path
) -> None:
    """Config tensors vs the newest version's model.onnx: names, types and dims must agree."""
    if (config.backend or config.platform) not in ONNX_KINDS or config.default_model_filename:
        return
    if config.max_batch_size < 0:  # already reported; the dims cannot be compared
        return
    versions = [p for p in model_dir.iterdir() if p.is_dir() and p.name.isdigit()]
    if not versions:
        return
    onnx_file = max(versions, key=lambda p: int(p.name)) / "model.onnx"
    if not onnx_file.is_file():
        return
    try:
        onnx_inputs, onnx_outputs = read_onnx_tensors(onnx_file)
        external_data_files(onnx_file)
    except DltkError as exc:
        check.problems.append(Problem(onnx_file, str(exc).split(": ", 1)[-1]))
        return
    batched = config.max_batch_size > 0
    for kind, tensors, graph in (
        ("input", config.input, onnx_inputs),
        ("output", config.output, onnx_outputs),
    ):
        by_name = {t.name: t for t in graph}
        for i, tensor in enumerate(tensors):
            found = by_name.get(tensor.name)
            if found is None:
                known = ", ".join(by_name) or "none"
                check.add(
                    (kind, i, "name"),
                    f"{kind} {tensor.name!r} is not an {kind} of {onnx_file} (it has: {known})",
                )
                continue
            _compare_tensor(check, kind, i, tensor, found, batched, onnx_file)


def _compare_tensor(
    check: _Checker,
    kind: str,
    index: int,
    tensor: model_config_pb2.ModelInput | model_config_pb2.ModelOutput,
    graph: TensorSpec,
    batched: bool,
    onnx_file: Path,
) -> None:
    label = f"{kind} {tensor.name!r}"
    data_type = model_config_pb2.DataType.Name(tensor.data_type)
    if tensor.data_type != model_config_pb2.TYPE_INVALID and ONNX_TO_TRITON.get(
        graph.dtype
    ) not in (None, data_type):
        check.add(
            (kind, index, "data_type"),
            f"{label} is {data_type} but {onnx_file.name} "
            f"has {graph.dtype} ({ONNX_TO_TRITON[graph.dtype]})",
        )
    if tensor.HasField("reshape") or not all(d == -1 or d > 0 for d in tensor.dims or [0]):
        return  # reshaped, or empty/invalid dims (already reported)
    dims = graph.dims
    if batched:
        if dims and dims[0] != -1:
            check.add(
                ("max_batch_size",),
                f"max_batch_size > 0 but {label} of "
                f"{onnx_file.name} has a fixed first dim {dims[0]}; use max_batch_size 0",
            )
            return
        dims = dims[1:]
    wanted = list(tensor.dims)
    if len(dims) != len(wanted) or any(
        -1 not in (a, b) and a != b for a, b in zip(dims, wanted, strict=False)
    ):
        check.add(
            (kind, index, "dims"),
            f"{label} dims {wanted} do not match {onnx_file.name}'s "
            f"{list(dims)}" + (" (without the batch dim)" if batched else ""),
        )


def _platform_of(backend: str) -> str:
    return {"onnxruntime": "onnxruntime_onnx", "tensorrt": "tensorrt_plan"}.get(backend, backend)


def _check_versions(
    file: Path, config: model_config_pb2.ModelConfig, model_dir: Path, on_host: frozenset[str]
) -> list[Problem]:
    kind = config.backend or config.platform
    if not kind:
        return [
            Problem(
                file,
                "neither platform nor backend is set; Triton cannot tell which "
                "backend runs this model",
            )
        ]
    found = {p for p in model_dir.iterdir() if p.is_dir() and p.name.isdigit()}
    if on_host:  # the host creates 1/ when it copies the plans in
        found.add(model_dir / VERSION)
    versions = sorted(found, key=lambda p: int(p.name))
    if not versions:
        return [Problem(model_dir, "no numeric version directory (e.g. 1/) with the model file")]
    if kind in NO_MODEL_FILE:
        return []

    def present(version: Path, name: str) -> bool:
        return (version / name).exists() or (version.name == VERSION and name in on_host)

    if config.cc_model_filenames:  # one file per GPU generation: at least one must be there
        names = sorted(set(config.cc_model_filenames.values()))
        problems = [
            Problem(
                model_dir / VERSION,
                f"{name} is in the engine list but cc_model_filenames names only "
                f"{', '.join(names)}; render the repository with the same --engines",
            )
            for name in sorted(on_host - set(names))
        ]
        return problems + [
            Problem(
                version,
                f"none of the cc_model_filenames ({', '.join(names)}) is here or in the engine "
                "list; build the engines on the GPU host (trt_engines role) and copy them in",
            )
            for version in versions
            if not any(present(version, name) for name in names)
        ]
    wanted = config.default_model_filename or MODEL_FILES.get(kind)
    if wanted is None:  # a custom backend: its file name is its own business
        return []
    return [
        Problem(version, f"missing {wanted} (required by {kind!r}); re-render the repository")
        for version in versions
        if not present(version, wanted)
    ]


def model_dirs(repo: Path) -> Iterator[Path]:
    for entry in sorted(repo.iterdir()):
        if entry.is_dir() and not entry.name.startswith("."):
            yield entry


def validate_repo(path: Path, engines: Iterable[EngineRef] = ()) -> list[Problem]:
    """Every problem of the model repository at `path` (empty list = valid).

    `engines`: TensorRT engines built on the GPU host; their plan files count as present in
    `<model>_trt_<precision>/1/` (see `engine_files`).
    """
    repo = Path(path)
    if not repo.is_dir():
        raise DltkError(
            f"model repository {repo} is not a directory; render one with `dltk repo render`"
        )
    problems: list[Problem] = []
    models = list(model_dirs(repo))
    if not models:
        return [Problem(repo, "no model directories; render some with `dltk repo render`")]
    on_host = engine_files(engines)
    problems.extend(_unplaced_engines(repo, on_host, {m.name for m in models}))
    for model_dir in models:
        config_file = model_dir / "config.pbtxt"
        if not config_file.is_file():
            problems.append(Problem(model_dir, "no config.pbtxt; every model needs one"))
            continue
        try:
            text = config_file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            problems.append(Problem(config_file, f"cannot read: {exc}"))
            continue
        problems.extend(
            check_config(config_file, text, model_dir, on_host.get(model_dir.name, frozenset()))
        )
    return problems


def _unplaced_engines(
    repo: Path, on_host: Mapping[str, frozenset[str]], models: set[str]
) -> list[Problem]:
    """Listed engines whose model the repository lacks: the host would have no config."""
    return [
        Problem(
            repo,
            f"the engine list has {', '.join(sorted(on_host[name]))} for {name}, which is not "
            "in the repository; render it with the same --engines",
        )
        for name in sorted(set(on_host) - models)
    ]
