"""`dltk repo load`: load changed models into a running tritonserver through its repository API.

For a server in explicit model-control mode. The named models are validated first (the same
checks as `dltk validate`); when any is invalid nothing is loaded. Then each is loaded with
POST /v2/repository/models/<name>/load (tritonclient.http's load_model) and must be ready
afterwards; `--unload` names models
to unload (their directories went away). Triton keeps the previous version of a model serving
when its new version fails to load, so a broken update costs no request: this command then
fails with the server's own load error. With `--previous DIR` (where the deployment kept the
serving version of each model it changed) the failed model's directory is restored from there,
so the repository on disk matches what is serving and a restart brings back the same models;
a new model that fails to load is removed.
"""

from __future__ import annotations

import argparse
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table
from tritonclient.http import InferenceServerClient
from tritonclient.utils import InferenceServerException

from dltk.api_key import http_headers, read_api_key
from dltk.errors import DltkError
from dltk.repo.validate import validate_repo

DEFAULT_TIMEOUT_S = 300.0
READY_TIMEOUT_S = 10.0  # the ready check after a load
# What tritonclient.http says instead of the server's error when the answer is not Triton's JSON
# error (then the body is its debug details) or is empty.
TRITONCLIENT_DECODING_ERROR = "an exception occurred in the client while decoding the response"
TRITONCLIENT_EMPTY_ANSWER = "client received an empty response from the server."

console = Console()


@dataclass(frozen=True)
class LoadResult:
    model: str
    action: str  # load | unload
    ok: bool
    detail: str
    seconds: float


def server_base(url: str) -> str:
    """`url` with its scheme: how messages name the server."""
    return url if url.startswith("http") else f"http://{url}"


def connect(url: str, timeout: float) -> InferenceServerClient:
    """tritonclient's HTTP client of the server at HOST:PORT (or http[s]://HOST:PORT)."""
    hostport = url.split("://", 1)[1] if "://" in url else url
    return InferenceServerClient(
        hostport.rstrip("/"),
        connection_timeout=timeout,
        network_timeout=timeout,
        ssl=url.startswith("https://"),
    )


def unreachable(url: str, exc: BaseException) -> DltkError:
    return DltkError(
        f"cannot reach Triton's repository API at {server_base(url)}: {exc}; is tritonserver "
        "running with --model-control-mode=explicit?"
    )


def error_line(exc: InferenceServerException) -> str:
    """The server's error, first line only (python models append a traceback); the body itself
    when it was not Triton's JSON error."""
    text = exc.message() or ""
    if text.startswith(TRITONCLIENT_DECODING_ERROR):
        text = exc.debug_details() or ""
    elif text == TRITONCLIENT_EMPTY_ANSWER:
        text = ""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[0] if lines else "no error text from the server"


def _apply(client: InferenceServerClient, action: str, name: str, key: str | None) -> str:
    """Load or unload `name`: "" when the server did, else its error (one line)."""
    call = client.load_model if action == "load" else client.unload_model
    try:
        call(name, headers=http_headers(key))
    except InferenceServerException as exc:
        if exc.status() == "403":
            return (
                f"{error_line(exc)} (HTTP 403: the repository API is restricted; pass the "
                "deployment's key with --api-key-file)"
            )
        return error_line(exc)
    return ""


def _ready(url: str, model: str, key: str | None) -> bool:
    """Bounded (READY_TIMEOUT_S) model-ready check; False when the server does not answer."""
    try:
        with connect(url, READY_TIMEOUT_S) as client:
            return bool(client.is_model_ready(model, headers=http_headers(key)))
    except (InferenceServerException, OSError):
        return False


def check_models(repo: Path, models: list[str]) -> None:
    """Every named model directory exists and validates; else one error, nothing loaded."""
    for name in models:
        if not (repo / name / "config.pbtxt").is_file():
            raise DltkError(f"{repo / name} has no config.pbtxt; render the repository first")
    problems = [p for p in validate_repo(repo) if p.file.relative_to(repo).parts[0] in models]
    if problems:
        more = f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""
        raise DltkError(f"not loading anything: {problems[0]}{more}")


def load_models(
    url: str,
    models: list[str],
    unload: list[str],
    timeout: float = DEFAULT_TIMEOUT_S,
    key: str | None = None,
) -> list[LoadResult]:
    """Unload then load through the repository API; one result per model, in order."""
    results = []
    try:
        with connect(url, timeout) as client:
            for action, names in (("unload", unload), ("load", models)):
                for name in names:
                    started = time.monotonic()
                    detail = _apply(client, action, name, key)
                    if not detail and action == "load" and not _ready(url, name, key):
                        detail = "loaded but not ready"
                    seconds = time.monotonic() - started
                    results.append(LoadResult(name, action, not detail, detail, seconds))
    except OSError as exc:
        raise unreachable(url, exc) from None
    return results


def restore_model(repo: Path, previous: Path, name: str) -> str:
    """Put back the serving version of `name` (or remove a new model); says what it did."""
    target, kept = repo / name, previous / name
    if target.exists():
        shutil.rmtree(target)
    if kept.is_dir():
        shutil.copytree(kept, target, symlinks=True)
        return f"restored {name} from {kept}"
    return f"removed the new model {name} (no previous version)"


def _print(results: list[LoadResult], url: str) -> None:
    table = Table(title=f"repository API of {url}")
    for column in ("model", "action", "result", "seconds", "detail"):
        table.add_column(column)
    for r in results:
        table.add_row(
            r.model, r.action, "OK" if r.ok else "FAILED", f"{r.seconds:.1f}", r.detail or ""
        )
    console.print(table)


def run(args: argparse.Namespace) -> int:
    models = list(dict.fromkeys(args.models))
    unload = list(dict.fromkeys(args.unload))
    if not models and not unload:
        raise DltkError("name the models to load (or --unload NAME); nothing to do")
    check_models(Path(args.repo), models)
    key = read_api_key(args.api_key_file)
    results = load_models(args.url, models, unload, args.timeout, key)
    _print(results, args.url)
    failed = [r for r in results if not r.ok]
    if not failed:
        return 0
    if args.previous:
        for result in failed:
            if result.action == "load":
                note = restore_model(Path(args.repo), Path(args.previous), result.model)
                console.print(note, markup=False, highlight=False, soft_wrap=True)
    first = failed[0]
    keeps = " (the previous version keeps serving)" if first.action == "load" else ""
    raise DltkError(
        f"model {first.model!r} failed to {first.action}{keeps}: {first.detail}"
        + (f" (+{len(failed) - 1} more)" if len(failed) > 1 else "")
    )


def add_verb(verbs: argparse._SubParsersAction) -> None:
    load = verbs.add_parser(
        "load",
        help="load changed models into a running tritonserver (explicit model control)",
        description="Validate the named models of DIR, then load them through Triton's "
        "repository API (POST /v2/repository/models/NAME/load); fail with the server's error "
        "when one does not load (its previous version keeps serving).",
    )
    load.add_argument("models", nargs="*", metavar="MODEL", help="models to (re)load")
    load.add_argument("--url", required=True, help="Triton HTTP endpoint HOST:PORT")
    load.add_argument(
        "--repo", required=True, metavar="DIR", help="the repository the server reads"
    )
    load.add_argument(
        "--unload", action="append", default=[], metavar="MODEL", help="model to unload"
    )
    load.add_argument(
        "--previous",
        metavar="DIR",
        help="where the serving version of each changed model was kept: a model that fails to "
        "load is restored from DIR/MODEL (a new one is removed)",
    )
    load.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT_S,
        help=f"seconds per model (default {DEFAULT_TIMEOUT_S:g})",
    )
    load.add_argument(
        "--api-key-file",
        metavar="FILE",
        help="file holding the deployment's API key, sent as the dltk-api-key header "
        "(tritonserver restricts its repository API to it)",
    )
    load.set_defaults(func=run)
