"""Which rendered model directories differ from the host's, from two ansible.builtin.find listings
with checksums: the role copies only those (a converged re-run copies nothing, issue 12 item 7).

A model differs when one of its rendered files is missing on the host or has another checksum or
mode. Files only the host has (the TensorRT plans placed from the engine cache, which are never
rendered) do not count, as with ansible.builtin.copy of a directory.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any


def _by_relpath(files: Iterable[Mapping[str, Any]], root: str) -> dict[str, tuple[str, str]]:
    base = os.path.normpath(root)
    listing = {}
    for entry in files:
        rel = os.path.relpath(os.path.normpath(str(entry["path"])), base)
        listing[rel] = (str(entry.get("checksum", "")), str(entry.get("mode", "")))
    return listing


def models_to_copy(
    staged: Iterable[Mapping[str, Any]],
    on_host: Iterable[Mapping[str, Any]],
    stage_dir: str,
    repo_dir: str,
) -> list[str]:
    """Sorted names of the model directories (first path component) whose rendered files are not
    all on the host with the same checksum and mode (pure)."""
    host = _by_relpath(on_host, repo_dir)
    return sorted(
        {
            rel.split(os.sep, 1)[0]
            for rel, digest in _by_relpath(staged, stage_dir).items()
            if os.sep in rel and host.get(rel) != digest
        }
    )


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"models_to_copy": models_to_copy}
