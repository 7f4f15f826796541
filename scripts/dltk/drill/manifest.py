"""Bad model versions for the rollout drills, and the manifest override that deploys one.

deploy.yml takes `-e dltk_manifest=FILE`: the override is the project's manifest
with one model's `onnx` replaced and every other relative path made absolute (the override
lives elsewhere, and paths in a manifest are relative to the manifest's folder).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from dltk.errors import DltkError

PATH_KEYS = ("onnx", "samples")


def override(
    doc: dict[str, Any],
    base: Path,
    model: str,
    onnx: Path | None = None,
    fields: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """`doc` with every path absolute and `model` changed (pure): its onnx set to `onnx` (its
    `export` dropped: the bad file is given, never rebuilt) and/or its entry updated with
    `fields` (e.g. a warmup the server refuses)."""
    models = []
    found = False
    for entry in doc.get("models") or []:
        entry = dict(entry)
        for key in PATH_KEYS:
            if key in entry and not Path(str(entry[key])).is_absolute():
                entry[key] = str((base / str(entry[key])).resolve())
        if entry.get("name") == model:
            found = True
            if onnx is not None:
                entry["onnx"] = str(onnx)
                entry.pop("export", None)
            entry.update(fields or {})
        models.append(entry)
    if not found:
        raise DltkError(f"the manifest has no model {model!r}")
    return {**doc, "models": models}


def write_override(
    manifest: Path,
    out_dir: Path,
    model: str,
    onnx: Path | None = None,
    fields: Mapping[str, Any] | None = None,
) -> Path:
    doc = yaml.safe_load(manifest.read_text())
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "models.yml"
    changed = override(doc, manifest.parent, model, onnx, fields)
    path.write_text(yaml.safe_dump(changed, sort_keys=False))
    return path


def unfit_warmup(input_name: str, dims: list[int]) -> dict[str, Any]:
    """A manifest `warmup` whose shape does not fit the input: Triton refuses to load the model
    (2.51: "unexpected shape for input ... Expected [-1,1,28,28], got [1,1,29,29]")."""
    wrong = [*dims[:-1], dims[-1] + 1]
    return {"warmup": {"batch_size": 1, "data": "zero", "dims": {input_name: wrong}}}


def corrupt_copy(source: Path, path: Path) -> Path:
    """The first half of `source`: a truncated ONNX file, as an interrupted download leaves."""
    data = source.read_bytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data[: len(data) // 2])
    return path


def broken_variant(source: Path, path: Path) -> Path:
    """Same interface (passes `dltk validate`), but onnxruntime cannot load it: an unknown op."""
    import onnx
    from onnx import helper

    model = onnx.load(str(source))
    output = model.graph.output[0].name
    model.graph.node[-1].output[0] = f"{output}_before"
    model.graph.node.append(
        helper.make_node("NoSuchOp", [f"{output}_before"], [output], domain="dltk.drill")
    )
    model.opset_import.append(helper.make_opsetid("dltk.drill", 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


def big_variant(source: Path, path: Path, extra_mb: int) -> Path:
    """A valid, loadable version `extra_mb` MB larger: an unused initializer of zeros."""
    import numpy as np
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(source))
    pad = np.zeros(extra_mb * 1024 * 1024 // 4, dtype=np.float32)
    model.graph.initializer.append(numpy_helper.from_array(pad, "dltk_drill_padding"))
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


def _edited_initializers(source: Path, path: Path, edits: Mapping[str, Any]) -> Path:
    """A copy of SOURCE with each named initializer replaced by EDITS[name](its array)."""
    import numpy as np
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(source))
    missing = set(edits)
    for i, init in enumerate(model.graph.initializer):
        if init.name in edits:
            array = np.asarray(edits[init.name](numpy_helper.to_array(init)), dtype=np.float32)
            model.graph.initializer[i].CopyFrom(numpy_helper.from_array(array, init.name))
            missing.discard(init.name)
    if missing:
        raise DltkError(f"{source}: no initializer {', '.join(sorted(missing))}")
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


def new_weights_variant(source: Path, path: Path, bias: str = "9.bias") -> Path:
    """A new version that answers differently and as well: the last layer's bias shifted by the
    same amount for every class (logits move, the predicted class does not)."""
    return _edited_initializers(source, path, {bias: lambda a: a + 0.25})


def wrong_answers_variant(
    source: Path, path: Path, weight: str = "9.weight", bias: str = "9.bias"
) -> Path:
    """A version that loads and answers, wrongly: the last layer's classes rotated by one (its
    weight rows and biases), so every prediction names the next class; verification on labelled
    samples fails."""
    import numpy as np

    roll = lambda a: np.roll(a, 1, axis=0)  # noqa: E731
    return _edited_initializers(source, path, {weight: roll, bias: roll})
