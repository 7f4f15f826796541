"""`dltk repo render` / `dltk repo add`: write a Triton model repository, then validate it.

render: for each manifest model, the first of its ONNX runtimes that is in `--runtimes` is
deployed under the model's name: `<out>/<name>/config.pbtxt`, `<out>/<name>/1/model.onnx`
(with its `.onnx.data` side files under their own names) and, for python-onnxruntime,
`<out>/<name>/1/model.py`. With `--engines` (TensorRT engines built on the host) each engine
gets `<out>/<name>_trt_<precision>/config.pbtxt`; the plan files are copied into its `1/` on
the host. Each pipeline gets a BLS model `<out>/<pipeline>/` that calls the best of them.
The output is byte-identical across runs (files are only rewritten when their bytes change;
modes are fixed), so Ansible's copy is idempotent. Directories in `<out>` that the manifest
does not produce are refused unless `--clean` removes them; everything is checked before
anything is written.
add: the same for one ONNX file without a manifest.
"""

from __future__ import annotations

import argparse
import filecmp
import os
import shutil
import tempfile
from pathlib import Path

from rich.console import Console
from rich.table import Table

from dltk.errors import DltkError
from dltk.manifest.load import load_manifest, with_tensors
from dltk.manifest.model import ONNX_RUNTIMES, RUNTIMES, BatchRange, ModelSpec
from dltk.manifest.options import DynamicBatching
from dltk.names import name_problem
from dltk.onnx_graph import TensorSpec
from dltk.repo.backends import add_verb as add_backends_verb
from dltk.repo.config import INSTANCE_KINDS, triton_dtype
from dltk.repo.load import add_verb as add_load_verb
from dltk.repo.plan import (
    BLS_MODEL,
    PYTHON_MODEL,
    VERSION,
    Content,
    EngineRef,
    PlannedModel,
    parse_engines,
    parse_runtimes,
    plan_model,
    plan_repo,
)
from dltk.repo.references import add_verb as add_references_verb
from dltk.repo.sync import add_verb as add_sync_verb
from dltk.repo.validate import validate_repo

__all__ = ["BLS_MODEL", "PYTHON_MODEL", "VERSION", "add_model", "parse_runtimes", "render_repo"]

FILE_MODE = 0o644
DIR_MODE = 0o755
DEFAULT_MAX_BATCH_SIZE = 64
DEFAULT_QUEUE_DELAY_US = 100

console = Console()


# --- writing ---------------------------------------------------------------------------------


def _same(path: Path, content: bytes | Path) -> bool:
    if not path.is_file() or path.is_symlink():
        return False
    if isinstance(content, Path):
        return filecmp.cmp(path, content, shallow=False)
    return path.stat().st_size == len(content) and path.read_bytes() == content


def _write_file(path: Path, content: bytes | Path) -> bool:
    """Make `path` hold `content` with FILE_MODE; True when the bytes changed."""
    changed = not _same(path, content)
    if changed:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        try:
            with os.fdopen(fd, "wb") as handle:
                if isinstance(content, Path):
                    with content.open("rb") as source:
                        shutil.copyfileobj(source, handle)
                else:
                    handle.write(content)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    os.chmod(path, FILE_MODE)
    return changed


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()


def sync_model_dir(target: Path, files: dict[str, Content]) -> int:
    """Make `target` contain exactly `files`; returns how many files changed or went away."""
    changed = 0
    target.mkdir(parents=True, exist_ok=True)
    for rel, content in sorted(files.items()):
        if content is None:
            changed += not (target / rel).is_dir()
            (target / rel).mkdir(parents=True, exist_ok=True)
        else:
            changed += _write_file(target / rel, content)
    wanted_dirs = {target} | {(target / rel).parent for rel in files}
    wanted_dirs |= {target / rel for rel, content in files.items() if content is None}
    for rel in list(files):
        wanted_dirs |= set((target / rel).parents) - set(target.parents)
    for dirpath, dirnames, filenames in os.walk(target, topdown=True):
        here = Path(dirpath)
        os.chmod(here, DIR_MODE)
        for name in list(dirnames):
            if here / name not in wanted_dirs:
                _remove(here / name)
                dirnames.remove(name)
                changed += 1
        for name in filenames:
            if str((here / name).relative_to(target)) not in files:
                _remove(here / name)
                changed += 1
    return changed


def foreign_dirs(out: Path, names: set[str]) -> list[Path]:
    if not out.is_dir():
        return []
    return sorted(p for p in out.iterdir() if p.is_dir() and p.name not in names)


def _validate_written(
    out: Path, only: set[str] | None = None, engines: tuple[EngineRef, ...] = ()
) -> None:
    problems = validate_repo(out, engines)
    if only is not None:
        problems = [p for p in problems if set(p.file.relative_to(out).parts[:1]) & only]
    if problems:
        more = (
            f" (+{len(problems) - 1} more: run `dltk validate {out}`)" if len(problems) > 1 else ""
        )
        raise DltkError(f"rendered repository is invalid: {problems[0]}{more}")


def _tensor_text(tensors: tuple[TensorSpec, ...]) -> str:
    return "\n".join(
        f"{t.name} {triton_dtype(t.dtype).removeprefix('TYPE_')} [{','.join(map(str, t.dims))}]"
        for t in tensors
    )


def _print_table(out: Path, planned: list[PlannedModel], changed: int) -> None:
    table = Table(title=f"Triton model repository {out}")
    table.add_column("model", no_wrap=True)
    table.add_column("runtime", no_wrap=True)
    table.add_column("max batch", justify="right")
    table.add_column("instances", justify="right")
    table.add_column("inputs")
    table.add_column("outputs")
    for plan in planned:
        m = plan.model
        if plan.runtime in ONNX_RUNTIMES:
            table.add_row(
                plan.name,
                plan.runtime,
                str(m.batch.max),
                str(m.instances),
                _tensor_text(m.inputs),
                _tensor_text(m.outputs),
            )
        else:
            table.add_row(plan.name, plan.runtime, str(m.batch.max), "", plan.detail, "")
    console.print(table)
    console.print(f"{changed} file(s) changed; repository validated", soft_wrap=True)


def render_repo(
    manifest_path: Path,
    out: Path,
    runtimes: tuple[str, ...],
    instance_kind: str = "cpu",
    clean: bool = False,
    engines: tuple[EngineRef, ...] = (),
) -> tuple[list[PlannedModel], int]:
    """Render the manifest into `out`; returns the plan and how many files changed."""
    manifest = load_manifest(manifest_path)
    planned = plan_repo(manifest, runtimes, instance_kind, engines)
    strangers = foreign_dirs(out, {p.name for p in planned})
    if strangers and not clean:
        listed = ", ".join(p.name for p in strangers)
        raise DltkError(
            f"{out} has directories the manifest does not produce ({listed}); pass --clean to "
            "remove them or render into an empty directory"
        )
    out.mkdir(parents=True, exist_ok=True)
    changed = 0
    for stranger in strangers:
        shutil.rmtree(stranger)
        changed += 1
    for plan in planned:
        changed += sync_model_dir(out / plan.name, plan.files)
    _validate_written(out, engines=engines)
    return planned, changed


def add_model(
    onnx: Path,
    name: str,
    repo: Path,
    runtime: str = "onnxruntime",
    max_batch_size: int | None = None,
    instance_kind: str = "cpu",
    force: bool = False,
) -> PlannedModel:
    """Add one ONNX model to `repo` as `<repo>/<name>/` (no manifest)."""
    if runtime not in ONNX_RUNTIMES:
        raise DltkError(f"unknown runtime {runtime!r}; known runtimes: {', '.join(ONNX_RUNTIMES)}")
    problem = name_problem(name)
    if problem:
        raise DltkError(f"bad --name: {problem}")
    if max_batch_size is not None and max_batch_size < 0:
        raise DltkError(f"--max-batch-size must be >= 0, got {max_batch_size}")
    target = repo / name
    if target.exists() and not force:
        raise DltkError(f"{target} already exists; pass --force to replace it")
    if max_batch_size is None:
        max_batch_size = _default_max_batch_size(onnx, name)
    batch = BatchRange(1, max_batch_size, max_batch_size) if max_batch_size else BatchRange(0, 0, 0)
    dynamic = DynamicBatching(DEFAULT_QUEUE_DELAY_US) if max_batch_size else None
    model = with_tensors(
        ModelSpec(name=name, onnx=onnx, batch=batch, runtimes=(runtime,), dynamic_batching=dynamic)
    )
    plan = plan_model(model, runtime, instance_kind)
    repo.mkdir(parents=True, exist_ok=True)
    sync_model_dir(target, plan.files)
    _validate_written(repo, only={name})
    return plan


def _default_max_batch_size(onnx: Path, name: str) -> int:
    """DEFAULT_MAX_BATCH_SIZE when every tensor has a dynamic first dim, else 0 (fixed batch)."""
    probe = ModelSpec(name=name, onnx=onnx, batch=BatchRange(0, 0, 0), runtimes=("onnxruntime",))
    model = with_tensors(probe)
    dynamic = all(t.dims and t.dims[0] == -1 for t in model.inputs + model.outputs)
    return DEFAULT_MAX_BATCH_SIZE if dynamic else 0


# --- CLI -------------------------------------------------------------------------------------


def run_render(args: argparse.Namespace) -> int:
    out = Path(args.out)
    planned, changed = render_repo(
        Path(args.manifest),
        out,
        parse_runtimes(args.runtimes),
        args.instance_kind,
        args.clean,
        parse_engines(args.engines),
    )
    _print_table(out, planned, changed)
    return 0


def run_add(args: argparse.Namespace) -> int:
    onnx = Path(args.onnx)
    if not onnx.is_file():
        raise DltkError(f"ONNX file {onnx} does not exist")
    plan = add_model(
        onnx,
        args.name,
        Path(args.repo),
        args.runtime,
        args.max_batch_size,
        args.instance_kind,
        args.force,
    )
    _print_table(Path(args.repo), [plan], len(plan.files))
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "repo",
        help="render or extend a Triton model repository",
        description="Write Triton model repositories (config.pbtxt + version directories), "
        "validate what was written, load changed models into a running server.",
    )
    verbs = parser.add_subparsers(dest="repo_command", metavar="VERB", required=True)

    render = verbs.add_parser(
        "render",
        help="render the manifest's models into DIR",
        description="Render every model of the manifest into DIR, each with the first of its "
        "runtimes that is in --runtimes. Deterministic: same input, byte-identical output.",
    )
    render.add_argument("--manifest", default="model_repo/models.yml", help="the model manifest")
    render.add_argument("--out", required=True, metavar="DIR", help="the repository to write")
    render.add_argument(
        "--runtimes",
        metavar="R1,R2",
        help=f"runtimes the target Triton can serve (default: all: {','.join(RUNTIMES)})",
    )
    render.add_argument("--instance-kind", choices=tuple(INSTANCE_KINDS), default="cpu")
    render.add_argument(
        "--clean", action="store_true", help="remove directories of DIR the manifest does not make"
    )
    render.add_argument(
        "--engines",
        metavar="JSON|@FILE",
        help="TensorRT engines built on the host: a JSON list of {model, precision, cc} (or "
        "`dltk engines plan --json` output); each gets a <model>_trt_<precision> model",
    )
    render.set_defaults(func=run_render)

    add = verbs.add_parser(
        "add",
        help="add one ONNX model to a repository",
        description="Add MODEL.onnx to DIR as DIR/NAME (config.pbtxt inferred from the graph).",
    )
    add.add_argument("onnx", metavar="MODEL.onnx")
    add.add_argument("--name", required=True, help="model name (its directory)")
    add.add_argument("--repo", required=True, metavar="DIR", help="the model repository")
    add.add_argument("--runtime", choices=ONNX_RUNTIMES, default="onnxruntime")
    add.add_argument(
        "--max-batch-size",
        type=int,
        default=None,
        help=f"0 = fixed batch (default: {DEFAULT_MAX_BATCH_SIZE} when the first dim is "
        "dynamic, else 0)",
    )
    add.add_argument("--instance-kind", choices=tuple(INSTANCE_KINDS), default="cpu")
    add.add_argument("--force", action="store_true", help="replace an existing DIR/NAME")
    add.set_defaults(func=run_add)
    add_load_verb(verbs)  # `dltk repo load` (repo/load.py)
    add_sync_verb(verbs)  # `dltk repo sync` (repo/sync.py)
    add_backends_verb(verbs)  # `dltk repo backends` (repo/backends.py)
    add_references_verb(verbs)  # `dltk repo references` (repo/references.py)
