"""dltk.tune.writeback: the tuned settings go into models.yml keeping comments and order; a
diff first, the file only with write=True, and never a manifest its own checks refuse."""

from __future__ import annotations

from pathlib import Path

import pytest

from dltk.errors import DltkError
from dltk.tune.space import Variant
from dltk.tune.writeback import apply_variant, write_back

REPO_MANIFEST = Path(__file__).resolve().parents[2] / "model_repo" / "models.yml"
SMALL = """\
---
# top comment
models:
  - name: a                 # the first model
    onnx: a.onnx
    batch: {min: 1, opt: 16, max: 64}    # max -> max_batch_size
    runtimes: [onnxruntime]
    dynamic_batching: {max_queue_delay_microseconds: 100, preferred_batch_size: [4, 32]}
    instances: 1
  - name: b
    onnx: b.onnx
    batch:
      max: 32   # block style stays block style
    runtimes: [onnxruntime]
"""


def test_only_the_three_settings_change_comments_and_order_stay() -> None:
    new = apply_variant(SMALL, "a", Variant(2, 8, 0), Path("m.yml"))
    assert new.splitlines() == [
        "---",
        "# top comment",
        "models:",
        "  - name: a                 # the first model",
        "    onnx: a.onnx",
        "    batch: {min: 1, opt: 8, max: 8}      # max -> max_batch_size",
        "    runtimes: [onnxruntime]",
        "    dynamic_batching: {max_queue_delay_microseconds: 0, preferred_batch_size: [4]}",
        "    instances: 2",
        *SMALL.splitlines()[9:],
    ]


def test_missing_keys_are_added_after_batch() -> None:
    new = apply_variant(SMALL, "b", Variant(3, 16, 50), Path("m.yml"))
    assert new.splitlines()[10:] == [
        "    onnx: b.onnx",
        "    batch:",
        "      max: 16   # block style stays block style",
        "    dynamic_batching: {max_queue_delay_microseconds: 50}",
        "    instances: 3",
        "    runtimes: [onnxruntime]",
    ]


def test_the_same_settings_give_the_same_text_for_the_repository_manifest() -> None:
    text = REPO_MANIFEST.read_text()
    assert apply_variant(text, "mnist", Variant(1, 64, 100), REPO_MANIFEST) == text


def test_write_back_shows_a_diff_and_writes_only_when_asked(tmp_path: Path) -> None:
    path = tmp_path / "models.yml"
    path.write_text(SMALL)
    diff, written = write_back(path, "a", Variant(2, 64, 100), write=False)
    assert not written and path.read_text() == SMALL
    assert "-    instances: 1\n+    instances: 2\n" in diff
    assert diff.startswith(f"--- {path}\n+++ {path} (tuned)\n")
    diff2, written = write_back(path, "a", Variant(2, 64, 100), write=True)
    assert written and diff2 == diff
    assert "instances: 2" in path.read_text()
    assert write_back(path, "a", Variant(2, 64, 100), write=True) == ("", False)


def test_a_manifest_its_checks_refuse_is_not_written(tmp_path: Path) -> None:
    path = tmp_path / "models.yml"
    text = SMALL.replace("    instances: 1\n", "    instances: 1\n    warmup: {batch_size: 32}\n")
    path.write_text(text)
    with pytest.raises(DltkError, match="warmup: batch_size 32 exceeds the model's batch.max"):
        write_back(path, "a", Variant(2, 8, 0), write=True)
    assert path.read_text() == text


def test_unknown_model_and_fixed_batch_are_one_line_errors() -> None:
    with pytest.raises(DltkError, match="no model named 'zz'"):
        apply_variant(SMALL, "zz", Variant(1, 8, 0), Path("m.yml"))
    fixed = SMALL.replace("max: 32   #", "max: 0   #")
    with pytest.raises(DltkError, match="fixed-batch model"):
        apply_variant(fixed, "b", Variant(1, 8, 0), Path("m.yml"))
