"""triton_verify's record of what it verified in full, so that a re-run with nothing changed runs
the quick check (readiness and answers) instead of the perf sweep (issue 12: a converged re-run
costs seconds).

What decides "nothing changed": the verifier's options and image, the tritonserver container
(its id, image and start time: a recreated or restarted server is verified in full again), and the
files of the host's model repository and of the verifier's references (path, size, mtime).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any


def verify_fingerprint(
    options: Mapping[str, Any], container: Mapping[str, Any], files: Iterable[Mapping[str, Any]]
) -> str:
    """sha256 of what the last full verification covered (pure; file order does not matter).

    `container` is docker's inspect output (or {} when there is none); `files` are
    ansible.builtin.find results (path, size, mtime)."""
    state = container.get("State") or {}
    server = {
        "Id": container.get("Id", ""),
        "Image": container.get("Image", ""),
        "StartedAt": state.get("StartedAt", ""),
    }
    listing = sorted((str(f["path"]), int(f["size"]), float(f["mtime"])) for f in files)
    text = json.dumps({"options": options, "server": server, "files": listing}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def verify_record(content_b64: str | None) -> dict[str, Any]:
    """The record on the host (slurp's base64) as a dict; {} when missing or unreadable."""
    if not content_b64:
        return {}
    try:
        record = json.loads(base64.b64decode(content_b64))
    except (ValueError, binascii.Error):
        return {}
    return record if isinstance(record, dict) else {}


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"verify_fingerprint": verify_fingerprint, "verify_record": verify_record}
