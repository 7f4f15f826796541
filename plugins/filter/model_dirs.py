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


def _names(found: Iterable[Mapping[str, Any]]) -> list[str]:
    """Sorted basenames of ansible.builtin.find's entries."""
    return sorted(os.path.basename(os.path.normpath(str(f["path"]))) for f in found)


def triton_model_repo_changes(v: Mapping[str, Any]) -> dict[str, list[str]]:
    """What triton_model_repo does to the host's repository (issue 12 item 5: in Python, tested):
    models (rendered), present (on the host), differing (rendered models whose files differ:
    copied), changing (present models whose files this run changes, rendered ones or TensorRT
    plans: their serving version is kept first), remove (present models the manifest no longer
    produces).

    v: staged / present (find of the model directories, control node / host), stage_files /
    host_files (find with checksums), engine_preview (the check-mode copy's loop results),
    stage_dir, repo_dir."""
    models = _names(v["staged"])
    present = _names(v.get("present") or [])
    differing = [
        m
        for m in models_to_copy(
            v["stage_files"], v.get("host_files") or [], v["stage_dir"], v["repo_dir"]
        )
        if m in models
    ]
    engines = [r["item"]["triton_model"] for r in v.get("engine_preview") or [] if r.get("changed")]
    changing = sorted({m for m in differing + engines if m in present})
    return {
        "models": models,
        "present": present,
        "differing": differing,
        "changing": changing,
        "remove": [m for m in present if m not in models],
    }


def triton_model_repo_published(v: Mapping[str, Any]) -> dict[str, list[str]]:
    """dltk_model_repo_changed / _removed from the copy, engine copy and removal loop results."""
    copied = [r["item"] for r in v.get("copy") or [] if r.get("changed")]
    engines = [r["item"]["triton_model"] for r in v.get("engine_copy") or [] if r.get("changed")]
    removed = sorted(r["item"] for r in v.get("remove") or [] if r.get("changed"))
    return {"changed": sorted(set(copied + engines)), "removed": removed}


def triton_model_repo_instance_kind(kind: str, gpu_present: Any) -> str:
    """auto: KIND_GPU instances where trt_engines found a GPU (dltk_gpu_present), else KIND_CPU."""
    if kind != "auto":
        return kind
    return (
        "gpu" if gpu_present is True or str(gpu_present).lower() in ("true", "yes", "1") else "cpu"
    )


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {
            "models_to_copy": models_to_copy,
            "triton_model_repo_changes": triton_model_repo_changes,
            "triton_model_repo_published": triton_model_repo_published,
            "triton_model_repo_instance_kind": triton_model_repo_instance_kind,
        }
