"""triton_verify's record of the last full verification (plugins/filter/verify_state.py):
what makes a re-run verify in full again, and what lets it run the quick check (issue 12 item 7).

The filter lives in the role (it travels with it); it is loaded here by path.
"""

from __future__ import annotations

import base64
import json

import pytest
from role_plugins import load_role_plugin

vs = load_role_plugin("plugins/filter/verify_state.py")

OPTIONS = {"models": ["mnist"], "perf": True, "concurrency": "auto"}
SERVER = {"Id": "c1", "Image": "sha256:i1", "State": {"StartedAt": "2026-12-02T04:00:00Z"}}
FILES = [
    {"path": "/repo/mnist/config.pbtxt", "size": 500, "mtime": 1.5},
    {"path": "/repo/mnist/1/model.onnx", "size": 90000, "mtime": 2.5},
]


def fingerprint(options=OPTIONS, server=SERVER, files=FILES) -> str:
    return vs.verify_fingerprint(options, server, files)


def test_the_same_deployment_has_the_same_fingerprint_in_any_file_order() -> None:
    """Rule: nothing changed -> same fingerprint (the quick check), however find lists files."""
    assert fingerprint() == fingerprint(files=list(reversed(FILES)))
    extra = {**SERVER, "Name": "/tritonserver", "State": {**SERVER["State"], "Pid": 42}}
    assert fingerprint() == fingerprint(server=extra), "only id, image and start time count"


@pytest.mark.parametrize(
    "change",
    [
        {"server": {**SERVER, "Id": "c2"}},  # container recreated
        {"server": {**SERVER, "Image": "sha256:i2"}},  # another tritonserver image
        {"server": {**SERVER, "State": {"StartedAt": "2026-12-02T05:00:00Z"}}},  # restarted
        {"server": {}},  # no container
        {"files": [FILES[0], {**FILES[1], "mtime": 3.0}]},  # a model file rewritten
        {"files": [FILES[0], {**FILES[1], "size": 90001}]},
        {"files": FILES[:1]},  # a file removed
        {"files": [*FILES, {"path": "/repo/m2/config.pbtxt", "size": 1, "mtime": 1}]},
        {"options": {**OPTIONS, "concurrency": "1:8"}},  # the verifier asked something else
        {"options": {**OPTIONS, "models": ["mnist", "mnist_classifier"]}},
    ],
)
def test_any_change_of_server_files_or_options_means_a_full_verification(change: dict) -> None:
    """Rule: a recreated, restarted or different server, a changed repository or reference
    file, or different verifier options -> another fingerprint (the full verification)."""
    assert fingerprint(**change) != fingerprint()


def test_the_record_is_read_from_slurp_and_anything_unreadable_is_no_record() -> None:
    record = {"fingerprint": "abc", "at": "20261202T040000Z"}
    encoded = base64.b64encode(json.dumps(record).encode()).decode()
    assert vs.verify_record(encoded) == record
    for bad in ("", None, "bm90IGpzb24=", base64.b64encode(b"[1, 2]").decode(), "%%%"):
        assert vs.verify_record(bad) == {}, bad


def test_the_filters_are_registered_under_their_names() -> None:
    assert set(vs.FilterModule().filters()) == {"verify_fingerprint", "verify_record"}
