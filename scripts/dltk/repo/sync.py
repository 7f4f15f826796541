"""`dltk repo sync`: bring a running tritonserver's loaded models back to the wanted list.

For a server in explicit model-control mode, whose live state can drift from the deployment:
someone unloads a model through the repository API, a model stays loaded after the manifest
dropped it. The server's repository index (POST /v2/repository/index, Triton's model repository
extension:
https://docs.nvidia.com/deeplearning/triton-inference-server/user-guide/docs/protocol/extension_model_repository.html)
says which models are READY; every wanted model that is not READY is validated and loaded, every
READY model that is not wanted is unloaded (model management, explicit mode:
https://docs.nvidia.com/deeplearning/triton-inference-server/user-guide/docs/user_guide/model_management.html).
The loads and unloads are `dltk repo load`'s (same HTTP calls, same key header, same bounded
ready check). The answer, as JSON with `--json`: {"loaded": [...], "unloaded": [...],
"unchanged": [...]}; a model that fails to load is one error line and exit code 1.

The index lists the models of the repository directory only: a model still loaded after its
directory was removed is missing from it (seen with Triton 2.51), so the loaded models are the
index's READY ones plus those the statistics API reports (GET /v2/models/stats lists every
loaded model: https://docs.nvidia.com/deeplearning/triton-inference-server/user-guide/docs/protocol/extension_statistics.html).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from tritonclient.utils import InferenceServerException

from dltk.api_key import http_headers, read_api_key
from dltk.errors import DltkError
from dltk.repo.load import (
    DEFAULT_TIMEOUT_S,
    _print,
    check_models,
    connect,
    console,
    error_line,
    load_models,
    server_base,
    unreachable,
)

READY = "READY"
INDEX = "POST /v2/repository/index"
STATS = "GET /v2/models/stats"


@dataclass(frozen=True)
class SyncPlan:
    load: tuple[str, ...]
    unload: tuple[str, ...]
    unchanged: tuple[str, ...]


def ready_models(index: Iterable[Mapping[str, object]]) -> set[str]:
    """Names of the index entries whose state is READY (any version)."""
    return {str(entry["name"]) for entry in index if entry.get("state") == READY}


def stats_models(stats: Mapping[str, object]) -> set[str]:
    """Names in a GET /v2/models/stats answer (the statistics API lists loaded models only)."""
    entries = stats.get("model_stats", [])
    if not isinstance(entries, list):
        return set()
    return {str(e["name"]) for e in entries if isinstance(e, dict) and "name" in e}


def plan_sync(ready: Iterable[str], wanted: Iterable[str]) -> SyncPlan:
    """What to load (wanted, not READY) and unload (READY, not wanted); sorted, pure."""
    ready_set, wanted_set = set(ready), set(wanted)
    return SyncPlan(
        load=tuple(sorted(wanted_set - ready_set)),
        unload=tuple(sorted(ready_set - wanted_set)),
        unchanged=tuple(sorted(wanted_set & ready_set)),
    )


def parse_models(text: str) -> list[str]:
    """`a,b,c` → ['a', 'b', 'c'] (order kept, blanks and repeats dropped)."""
    names = [name.strip() for name in text.split(",")]
    return list(dict.fromkeys(name for name in names if name))


def _fetch(url: str, what: str, timeout: float, key: str | None) -> object:
    """Triton's answer to `what` (POST /v2/repository/index: tritonclient's
    get_model_repository_index; GET /v2/models/stats: get_inference_statistics), as JSON; one
    DltkError line when it cannot be read."""
    base = server_base(url)
    try:
        with connect(url, timeout) as client:
            if what == INDEX:
                return client.get_model_repository_index(headers=http_headers(key))
            return client.get_inference_statistics(headers=http_headers(key))
    except OSError as exc:
        raise unreachable(url, exc) from None
    except InferenceServerException as exc:
        if exc.status() == "403":
            raise DltkError(
                f"{base} refused {what} (HTTP 403: the API is restricted; pass the deployment's "
                "key with --api-key-file)"
            ) from None
        raise DltkError(
            f"{base} answered HTTP {exc.status()} to {what}: {error_line(exc)}"
        ) from None
    except ValueError:  # tritonclient's json.loads of the body
        raise DltkError(f"{base} answered {what} with something that is not JSON") from None


def fetch_index(url: str, timeout: float, key: str | None) -> list[dict]:
    """The server's repository index (POST /v2/repository/index)."""
    index = _fetch(url, INDEX, timeout, key)
    if not isinstance(index, list) or not all(isinstance(e, dict) and "name" in e for e in index):
        raise DltkError(
            f"{server_base(url)} answered a repository index that is not a list of models"
        )
    return index


def fetch_loaded(url: str, timeout: float, key: str | None) -> set[str]:
    """Every model the server has loaded: READY in the index, or listed by GET /v2/models/stats
    (which also knows loaded models whose directory is gone)."""
    stats = _fetch(url, STATS, timeout, key)
    if not isinstance(stats, dict):
        raise DltkError(f"{server_base(url)} answered {STATS} with no model_stats object")
    return ready_models(fetch_index(url, timeout, key)) | stats_models(stats)


def sync(
    url: str,
    repo: Path,
    wanted: Sequence[str],
    timeout: float = DEFAULT_TIMEOUT_S,
    key: str | None = None,
) -> tuple[SyncPlan, list]:
    """Read the index, load/unload the difference; (plan, dltk repo load results)."""
    plan = plan_sync(fetch_loaded(url, timeout, key), wanted)
    if not plan.load and not plan.unload:
        return plan, []
    check_models(repo, list(plan.load))
    return plan, load_models(url, list(plan.load), list(plan.unload), timeout, key)


def run(args: argparse.Namespace) -> int:
    wanted = parse_models(args.models)
    key = read_api_key(args.api_key_file)
    plan, results = sync(args.url, Path(args.repo), wanted, args.timeout, key)
    failed = [r for r in results if not r.ok]
    if failed:
        if not args.json:
            _print(results, args.url)
        first = failed[0]
        raise DltkError(
            f"model {first.model!r} failed to {first.action}: {first.detail}"
            + (f" (+{len(failed) - 1} more)" if len(failed) > 1 else "")
        )
    answer = {
        "loaded": list(plan.load),
        "unloaded": list(plan.unload),
        "unchanged": list(plan.unchanged),
    }
    if args.json:
        print(json.dumps(answer, sort_keys=True))
    else:
        if results:
            _print(results, args.url)
        for what, names in answer.items():
            console.print(f"{what}: {', '.join(names) or 'none'}", markup=False, highlight=False)
    return 0


def add_verb(verbs: argparse._SubParsersAction) -> None:
    cmd = verbs.add_parser(
        "sync",
        help="load the wanted models that are not READY, unload the loaded ones not wanted",
        description="Read which models a running tritonserver has loaded (repository index and "
        "statistics; explicit model control); "
        "load every wanted model that is not READY (validated first) and unload every loaded "
        "model that is not wanted; fail with the server's error when a load fails.",
    )
    cmd.add_argument("--url", required=True, help="Triton HTTP endpoint HOST:PORT")
    cmd.add_argument("--repo", required=True, metavar="DIR", help="the repository the server reads")
    cmd.add_argument(
        "--models", required=True, metavar="A,B,C", help="the models that must be loaded"
    )
    cmd.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT_S,
        help=f"seconds per model (default {DEFAULT_TIMEOUT_S:g})",
    )
    cmd.add_argument(
        "--api-key-file",
        metavar="FILE",
        help="file holding the deployment's API key, sent as the dltk-api-key header",
    )
    cmd.add_argument("--json", action="store_true", help="print the answer as one JSON line")
    cmd.set_defaults(func=run)
