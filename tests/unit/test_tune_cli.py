"""`dltk tune` and `dltk bench tune` refuse bad input in one line before starting anything."""

from __future__ import annotations

from pathlib import Path

import pytest

from dltk import cli


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["tune", "mnist", "--instances", "2,1"],
         "dltk tune: error: --instances values must be distinct and ascending, got (2, 1)"),
        (["tune", "mnist", "--concurrency", "x"],
         "dltk tune: error: --concurrency 'x' is not a comma-separated list of integers, "
         "e.g. 1,2,4"),
        (["tune", "mnist", "--budget-ms", "0"], "dltk tune: error: --budget-ms must be > 0"),
        (["bench", "tune", "mnist", "--rounds", "0"], "dltk bench: error: --rounds must be >= 1"),
        (["tune", "mnist", "--max-probes", "-1"], "dltk tune: error: --max-probes must be >= 0"),
    ],
)  # fmt: skip
def test_bad_input_is_one_line_and_nothing_runs(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out = tmp_path / "out"
    assert cli.main([*argv, "--out", str(out)]) == 1
    assert capsys.readouterr().err.strip().splitlines() == [message]
    assert not out.exists()


def test_a_manifest_problem_is_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    manifest = tmp_path / "models.yml"
    manifest.write_text(
        "models:\n  - {name: a, onnx: a.onnx, batch: {max: 8}, runtimes: [onnxruntime]}\n"
    )
    assert cli.main(["tune", "zz", "--manifest", str(manifest), "--out", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err.strip()
    assert err == (
        f"dltk tune: error: {manifest}: model 'a': ONNX file {tmp_path / 'a.onnx'} does not "
        "exist; fix the `onnx:` path in the manifest"
    )
