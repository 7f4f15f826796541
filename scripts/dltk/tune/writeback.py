"""Write the tuned settings back into models.yml: a unified diff first, the file only on
request. ruamel.yaml's round trip keeps the manifest's comments, key order and flow mappings;
only the three values change (instances, batch.max, dynamic_batching's queue delay), with
batch.opt/min lowered when they would exceed the new max. The new text is parsed by the
manifest's own checks before anything is written (e.g. a warmup batch above the new max)."""

from __future__ import annotations

import difflib
import io
from pathlib import Path
from typing import Any

from dltk.errors import DltkError
from dltk.tune.space import Variant


def _yaml() -> Any:
    from ruamel.yaml import YAML

    yaml = YAML()  # round trip
    yaml.preserve_quotes = True
    yaml.width = 4096
    yaml.indent(mapping=2, sequence=4, offset=2)
    return yaml


def _entry(data: Any, model: str, path: Path) -> Any:
    for entry in (data or {}).get("models") or []:
        if isinstance(entry, dict) and entry.get("name") == model:
            return entry
    raise DltkError(f"{path}: no model named {model!r} to write the tuned settings to")


def apply_variant(text: str, model: str, variant: Variant, path: Path) -> str:
    """`text` (models.yml) with `model`'s settings set to `variant` (pure)."""
    from ruamel.yaml.comments import CommentedMap

    yaml = _yaml()
    yaml.explicit_start = text.lstrip().startswith("---")
    data = yaml.load(text)
    entry = _entry(data, model, path)
    batch = entry.get("batch")
    if not isinstance(batch, dict):
        raise DltkError(f"{path}: model {model!r} has no batch mapping to set max in")
    if batch.get("max") == 0:
        raise DltkError(f"{path}: model {model!r} is a fixed-batch model (batch.max 0)")
    batch["max"] = variant.max_batch
    for key in ("opt", "min"):
        if key in batch and batch[key] > variant.max_batch:
            batch[key] = variant.max_batch
    if "instances" in entry:
        entry["instances"] = variant.instances
    else:
        entry.insert(_position_after(entry, "batch"), "instances", variant.instances)
    dynamic = entry.get("dynamic_batching")
    if not isinstance(dynamic, dict):
        dynamic = CommentedMap()
        dynamic.fa.set_flow_style()
        entry.insert(_position_after(entry, "batch"), "dynamic_batching", dynamic)
    dynamic["max_queue_delay_microseconds"] = variant.delay_us
    preferred = dynamic.get("preferred_batch_size")
    if preferred:
        kept = [p for p in preferred if p <= variant.max_batch]
        if kept:
            dynamic["preferred_batch_size"] = kept
        else:
            del dynamic["preferred_batch_size"]
    out = io.StringIO()
    yaml.dump(data, out)
    return out.getvalue()


def _position_after(entry: Any, key: str) -> int:
    keys = list(entry)
    return keys.index(key) + 1 if key in keys else len(keys)


def unified_diff(old: str, new: str, path: Path) -> str:
    return "".join(
        difflib.unified_diff(
            old.splitlines(keepends=True),
            new.splitlines(keepends=True),
            fromfile=f"{path}",
            tofile=f"{path} (tuned)",
        )
    )


def write_back(path: Path, model: str, variant: Variant, write: bool) -> tuple[str, bool]:
    """(the diff, whether the file was written). Checks the new manifest first."""
    from dltk.manifest.load import parse_manifest

    try:
        old = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise DltkError(f"cannot read manifest {path}: {exc.strerror}") from None
    new = apply_variant(old, model, variant, path)
    parse_manifest(new, path)  # the manifest's own checks, before anything is written
    diff = unified_diff(old, new, path)
    if write and diff:
        try:
            path.write_text(new, encoding="utf-8")
        except OSError as exc:
            raise DltkError(f"cannot write {path}: {exc.strerror}") from None
    return diff, bool(write and diff)
