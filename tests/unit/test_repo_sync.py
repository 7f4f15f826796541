"""`dltk repo sync`: the diff between the server's READY models and the wanted list (pure),
and how the server's answers are read. The server is replaced by a test double of
tritonclient.http's client (repo.load.connect) that answers like Triton 2.51 through it:
POST /v2/repository/index (a list of {name, version, state, reason}) and GET /v2/models/stats
({"model_stats": [{name, ...}]})."""

from __future__ import annotations

import json
import socket

import pytest
from tritonclient.utils import InferenceServerException

from dltk.errors import DltkError
from dltk.repo import sync as repo_sync
from dltk.repo.sync import SyncPlan, parse_models, plan_sync, ready_models, stats_models

# Shaped like Triton's index after `POST /v2/repository/models/mnist/unload`, with an extra
# model loaded by hand and a model that failed to load.
INDEX = [
    {"name": "extra", "version": "1", "state": "READY"},
    {"name": "mnist", "version": "1", "state": "UNAVAILABLE", "reason": "unloaded"},
    {"name": "mnist_classifier", "version": "1", "state": "READY"},
    {"name": "broken", "version": "1", "state": "UNAVAILABLE", "reason": "load failed"},
    {"name": "never_loaded"},
]


def test_ready_models_are_the_ready_entries_only() -> None:
    assert ready_models(INDEX) == {"extra", "mnist_classifier"}


def test_a_model_with_one_ready_version_is_ready() -> None:
    index = [
        {"name": "m", "version": "1", "state": "UNAVAILABLE"},
        {"name": "m", "version": "2", "state": "READY"},
    ]
    assert ready_models(index) == {"m"}


def test_plan_loads_wanted_not_ready_and_unloads_ready_not_wanted() -> None:
    plan = plan_sync(ready_models(INDEX), ["mnist", "mnist_classifier"])
    assert plan == SyncPlan(load=("mnist",), unload=("extra",), unchanged=("mnist_classifier",))


def test_plan_is_empty_when_the_server_matches() -> None:
    plan = plan_sync({"a", "b"}, ["b", "a"])
    assert plan == SyncPlan(load=(), unload=(), unchanged=("a", "b"))


def test_plan_never_touches_unready_models_nobody_wants() -> None:
    # 'broken' and 'never_loaded' are in the repository but not wanted and not loaded.
    plan = plan_sync(ready_models(INDEX), [])
    assert plan.load == ()
    assert set(plan.unload) == {"extra", "mnist_classifier"}


def test_parse_models_drops_blanks_and_repeats() -> None:
    assert parse_models("mnist, mnist_classifier,,mnist") == ["mnist", "mnist_classifier"]
    assert parse_models("") == []


def test_stats_models_are_the_loaded_models() -> None:
    stats = {"model_stats": [{"name": "gone", "version": "1", "inference_count": 0}]}
    assert stats_models(stats) == {"gone"}
    assert stats_models({"model_stats": []}) == set()


class _Client:
    """Test double of tritonclient.http.InferenceServerClient over HTTP answers (status, body),
    read as tritonclient reads them: not 200 raises InferenceServerException with the JSON
    body's error and the status; 200 is the body's JSON (json.loads: ValueError otherwise)."""

    def __init__(self, answers: dict[str, tuple[int, str]]) -> None:
        self.answers = answers

    def __enter__(self) -> _Client:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def _answer(self, path: str) -> object:
        if path not in self.answers:
            raise AssertionError(f"unexpected call {path}")
        status, body = self.answers[path]
        if status != 200:
            raise InferenceServerException(msg=json.loads(body)["error"], status=str(status))
        return json.loads(body)

    def get_model_repository_index(self, headers: dict | None = None) -> object:
        return self._answer("/v2/repository/index")

    def get_inference_statistics(self, headers: dict | None = None) -> object:
        return self._answer("/v2/models/stats")


def _server(answers: dict[str, tuple[int, str]]):  # a test double of repo.load.connect
    def fake_connect(url: str, timeout: float) -> _Client:
        return _Client(answers)

    return fake_connect


INDEX_AFTER_RM = '[{"name": "mnist", "version": "1", "state": "READY"}]'
STATS_AFTER_RM = '{"model_stats": [{"name": "mnist", "version": "1"}, {"name": "gone"}]}'


def test_loaded_models_include_those_whose_directory_is_gone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Seen with Triton 2.51: after `rm -r repo/gone` the index no longer names 'gone' while
    # /v2/models/gone/ready still answers 200 and the statistics list it.
    answers = {
        "/v2/repository/index": (200, INDEX_AFTER_RM),
        "/v2/models/stats": (200, STATS_AFTER_RM),
    }
    monkeypatch.setattr(repo_sync, "connect", _server(answers))
    loaded = repo_sync.fetch_loaded("127.0.0.1:1", 1.0, None)
    assert loaded == {"mnist", "gone"}
    assert plan_sync(loaded, ["mnist"]).unload == ("gone",)


def test_fetch_index_reads_the_list(monkeypatch: pytest.MonkeyPatch) -> None:
    answers = {"/v2/repository/index": (200, '[{"name": "a", "state": "READY"}]')}
    monkeypatch.setattr(repo_sync, "connect", _server(answers))
    assert repo_sync.fetch_index("127.0.0.1:1", 1.0, None) == [{"name": "a", "state": "READY"}]


def test_a_403_says_to_pass_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    body = '{"error":"This API is restricted, expecting header \'dltk-api-key\'"}'
    answers = {"/v2/repository/index": (200, "[]"), "/v2/models/stats": (403, body)}
    monkeypatch.setattr(repo_sync, "connect", _server(answers))
    with pytest.raises(DltkError, match="GET /v2/models/stats.*HTTP 403.*--api-key-file"):
        repo_sync.fetch_loaded("127.0.0.1:1", 1.0, None)


@pytest.mark.parametrize(
    ("status", "body", "error"),
    [
        (400, '{"error":"explicit model load / unload is not allowed"}', "HTTP 400.*not allowed"),
        (200, "<html>", "not JSON"),
        (200, '{"models": []}', "not a list of models"),
    ],
)
def test_fetch_index_refuses_other_answers(
    monkeypatch: pytest.MonkeyPatch, status: int, body: str, error: str
) -> None:
    monkeypatch.setattr(repo_sync, "connect", _server({"/v2/repository/index": (status, body)}))
    with pytest.raises(DltkError, match=error):
        repo_sync.fetch_index("127.0.0.1:1", 1.0, None)


def test_fetch_index_unreachable_is_one_line() -> None:
    with socket.socket() as sock:  # a loopback port that was free a moment ago, now closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(DltkError, match="cannot reach Triton's repository API"):
        repo_sync.fetch_index(f"127.0.0.1:{port}", 2.0, None)
