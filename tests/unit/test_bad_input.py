"""Bad input to the `dltk` command: exit 1, one line saying what to change, and nothing written.

Each case starts where a user stands after a good deploy: a repository rendered from a good
manifest (tmp_path/repo) next to the manifest and its ONNX file. It runs the real CLI with one
bad input and compares every file under tmp_path (bytes, permission bits, mtime) before and
after. docs/reliability.md ("Bad input") lists these cases with the message of each.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from dltk.cli import main

Snapshot = dict[str, tuple[bytes | None, int, int]]


def snapshot(root: Path) -> Snapshot:
    """Every path under root -> (bytes or None for a directory, permission bits, mtime_ns)."""
    result: Snapshot = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            info = path.stat()
            content = None if path.is_dir() else path.read_bytes()
            result[str(path.relative_to(root))] = (
                content,
                stat.S_IMODE(info.st_mode),
                info.st_mtime_ns,
            )
    return result


def edit_manifest(old: str, new: str) -> Callable[[Path], list[str]]:
    """A case that renders the manifest with `old` replaced by `new` into the deployed repo."""

    def case(tmp: Path) -> list[str]:
        manifest = tmp / "models.yml"
        text = manifest.read_text()
        assert old in text, old
        manifest.write_text(text.replace(old, new))
        return ["repo", "render", "--manifest", str(manifest), "--out", str(tmp / "repo")]

    return case


def render_manifest_text(text: str) -> Callable[[Path], list[str]]:
    def case(tmp: Path) -> list[str]:
        (tmp / "models.yml").write_text(text)
        return ["repo", "render", "--manifest", str(tmp / "models.yml"), "--out", str(tmp / "repo")]

    return case


def not_onnx(tmp: Path) -> list[str]:
    (tmp / "models" / "mnist.onnx").write_bytes(b"this is not an ONNX file\n")
    return ["repo", "render", "--manifest", str(tmp / "models.yml"), "--out", str(tmp / "repo")]


def add(*args: str) -> Callable[[Path], list[str]]:
    def case(tmp: Path) -> list[str]:
        onnx = str(tmp / "models" / "mnist.onnx")
        return ["repo", "add", *[a.format(onnx=onnx, tmp=tmp) for a in args]]

    return case


def add_not_onnx(tmp: Path) -> list[str]:
    fake = tmp / "models" / "fake.onnx"
    fake.write_bytes(b"\x00\x01 not a protobuf of a model")
    return ["repo", "add", str(fake), "--name", "fake", "--repo", str(tmp / "repo")]


def validate_unknown_field(tmp: Path) -> list[str]:
    config = tmp / "repo" / "mnist" / "config.pbtxt"
    lines = config.read_text().splitlines()
    config.write_text("\n".join([*lines[:3], "bogus_field: 3", *lines[3:]]) + "\n")
    return ["validate", str(tmp / "repo")]


def validate_negative_batch(tmp: Path) -> list[str]:
    config = tmp / "repo" / "mnist" / "config.pbtxt"
    config.write_text(config.read_text().replace("max_batch_size: 64", "max_batch_size: -3"))
    return ["validate", str(tmp / "repo")]


# name -> (what the user does, the one line dltk prints: {tmp} is tmp_path)
CASES: dict[str, tuple[Callable[[Path], list[str]], str]] = {
    "model name with a space": (
        edit_manifest("name: mnist", "name: my model"),
        "dltk repo: error: {tmp}/models.yml:2:5: models[0]: bad name: use ASCII letters, digits, "
        "'_', '.' or '-' (not first: '.' or '-'), at most 128 characters: it is a directory, a "
        "URL path segment and a command-line argument; got 'my model'",
    ),
    "model name with a slash": (
        edit_manifest("name: mnist", "name: vision/mnist"),
        "dltk repo: error: {tmp}/models.yml:2:5: models[0]: bad name: use ASCII letters, digits, "
        "'_', '.' or '-' (not first: '.' or '-'), at most 128 characters: it is a directory, a "
        "URL path segment and a command-line argument; got 'vision/mnist'",
    ),
    "model name not ASCII": (
        edit_manifest("name: mnist", "name: mnïst"),
        "dltk repo: error: {tmp}/models.yml:2:5: models[0]: bad name: use ASCII letters, digits, "
        "'_', '.' or '-' (not first: '.' or '-'), at most 128 characters: it is a directory, a "
        "URL path segment and a command-line argument; got 'mnïst'",
    ),
    "model name like an option": (
        edit_manifest("name: mnist", "name: --help"),
        "dltk repo: error: {tmp}/models.yml:2:5: models[0]: bad name: use ASCII letters, digits, "
        "'_', '.' or '-' (not first: '.' or '-'), at most 128 characters: it is a directory, a "
        "URL path segment and a command-line argument; got '--help'",
    ),
    "pipeline name with a space": (
        edit_manifest(
            "    instances: 1\n",
            "    instances: 1\npipelines:\n  - {name: my digits, model: mnist}\n",
        ),
        "dltk repo: error: {tmp}/models.yml:10:5: pipelines[0]: bad name: use ASCII letters, "
        "digits, '_', '.' or '-' (not first: '.' or '-'), at most 128 characters: it is a "
        "directory, a URL path segment and a command-line argument; got 'my digits'",
    ),
    "empty manifest": (
        render_manifest_text(""),
        "dltk repo: error: {tmp}/models.yml: expected a mapping with a `models:` list (see "
        "docs/contract.md)",
    ),
    "duplicate model names": (
        edit_manifest(
            "    instances: 1\n",
            "    instances: 1\n  - name: mnist\n    onnx: models/mnist.onnx\n"
            "    batch: {max: 0}\n    runtimes: [onnxruntime]\n",
        ),
        "dltk repo: error: {tmp}/models.yml:9:5: duplicate model name 'mnist' (first at line 2); "
        "names must be unique",
    ),
    "negative max batch size": (
        edit_manifest("max: 64", "max: -8"),
        "dltk repo: error: {tmp}/models.yml:5:30: model 'mnist' batch: max must be >= 0, got -8",
    ),
    "unknown runtime": (
        edit_manifest("[onnxruntime, python-onnxruntime]", "[tensorflow-magic]"),
        "dltk repo: error: {tmp}/models.yml:6:5: model 'mnist': unknown runtime "
        "'tensorflow-magic'; known runtimes: onnxruntime, python-onnxruntime, tensorrt",
    ),
    "missing ONNX file": (
        edit_manifest("onnx: models/mnist.onnx", "onnx: models/nope.onnx"),
        "dltk repo: error: {tmp}/models.yml: model 'mnist': ONNX file {tmp}/models/nope.onnx "
        "does not exist; run `dltk export --model mnist`",
    ),
    "ONNX file that is not ONNX": (
        not_onnx,
        "dltk repo: error: {tmp}/models/mnist.onnx: not a readable ONNX model (Error parsing "
        "message); re-export it",
    ),
    "add with a name with a space": (
        add("{onnx}", "--name", "my model", "--repo", "{tmp}/repo"),
        "dltk repo: error: bad --name: use ASCII letters, digits, '_', '.' or '-' (not first: '.' "
        "or '-'), at most 128 characters: it is a directory, a URL path segment and a "
        "command-line argument; got 'my model'",
    ),
    "add with a name with a slash": (
        add("{onnx}", "--name", "../mnist", "--repo", "{tmp}/repo/mnist"),
        "dltk repo: error: bad --name: use ASCII letters, digits, '_', '.' or '-' (not first: '.' "
        "or '-'), at most 128 characters: it is a directory, a URL path segment and a "
        "command-line argument; got '../mnist'",
    ),
    "add a file that is not ONNX": (
        add_not_onnx,
        "dltk repo: error: {tmp}/models/fake.onnx: not a readable ONNX model (Error parsing "
        "message); re-export it",
    ),
    "add with a negative max batch size": (
        add("{onnx}", "--name", "other", "--repo", "{tmp}/repo", "--max-batch-size", "-1"),
        "dltk repo: error: --max-batch-size must be >= 0, got -1",
    ),
    "add over a deployed model": (
        add("{onnx}", "--name", "mnist", "--repo", "{tmp}/repo"),
        "dltk repo: error: {tmp}/repo/mnist already exists; pass --force to replace it",
    ),
    "config.pbtxt with an unknown field": (
        validate_unknown_field,
        '{tmp}/repo/mnist/config.pbtxt:4:1: Message type "inference.ModelConfig" has no field '
        'named "bogus_field".\ndltk validate: error: 1 problem(s) in {tmp}/repo',
    ),
    "config.pbtxt with a negative max_batch_size": (
        validate_negative_batch,
        "{tmp}/repo/mnist/config.pbtxt:4:1: max_batch_size is -3; use 0 (no batching) or > 0\n"
        "dltk validate: error: 1 problem(s) in {tmp}/repo",
    ),
}


@pytest.fixture
def deployed(
    tmp_path: Path, tiny_onnx: Path, write_manifest: Callable[[str], Path], manifest_text: str
) -> Path:
    """tmp_path with models.yml, models/mnist.onnx (tiny_onnx) and repo/ rendered from them."""
    manifest = write_manifest(manifest_text)
    args = ["repo", "render", "--manifest", str(manifest), "--out", str(tmp_path / "repo")]
    assert main(args) == 0
    return tmp_path


@pytest.mark.parametrize("make_case, expected", CASES.values(), ids=list(CASES))
def test_bad_input_is_one_clear_line_and_changes_nothing(
    make_case: Callable[[Path], list[str]],
    expected: str,
    deployed: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = make_case(deployed)  # writes the bad input, if it is a file
    before = snapshot(deployed / "repo")
    capsys.readouterr()
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err == expected.format(tmp=deployed) + "\n"
    assert snapshot(deployed / "repo") == before
