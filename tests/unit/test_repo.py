"""`dltk repo render` / `dltk repo add`: exact contents, determinism, refusals."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from dltk.cli import main
from dltk.errors import DltkError
from dltk.repo import PYTHON_MODEL, add_model, parse_runtimes, render_repo

WriteManifest = Callable[[str], Path]
ALL = ("onnxruntime", "python-onnxruntime")


def snapshot(root: Path) -> dict[str, tuple[bytes | None, int]]:
    """Every path under root -> (bytes or None for a dir, permission bits)."""
    result = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            content = None if path.is_dir() else path.read_bytes()
            result[str(path.relative_to(root))] = (content, stat.S_IMODE(path.stat().st_mode))
    return result


@pytest.fixture
def manifest(tiny_onnx: Path, write_manifest: WriteManifest, manifest_text: str) -> Path:
    return write_manifest(manifest_text)


def test_render_writes_exactly_the_contract_files(
    manifest: Path, tiny_onnx: Path, tmp_path: Path
) -> None:
    out = tmp_path / "repo"
    render_repo(manifest, out, ("python-onnxruntime",))
    assert sorted(snapshot(out)) == [
        "mnist",
        "mnist/1",
        "mnist/1/model.onnx",
        "mnist/1/model.py",
        "mnist/config.pbtxt",
    ]
    assert (out / "mnist/1/model.onnx").read_bytes() == tiny_onnx.read_bytes()
    assert (out / "mnist/1/model.py").read_bytes() == PYTHON_MODEL.read_bytes()
    config = (out / "mnist/config.pbtxt").read_text()
    assert 'backend: "python"' in config
    assert "max_batch_size: 64" in config


def test_render_twice_gives_identical_bytes_and_modes(manifest: Path, tmp_path: Path) -> None:
    out = tmp_path / "repo"
    _, changed_first = render_repo(manifest, out, ALL)
    first = snapshot(out)
    _, changed_second = render_repo(manifest, out, ALL)
    assert snapshot(out) == first
    assert (changed_first, changed_second) == (2, 0)
    other = tmp_path / "other"
    render_repo(manifest, other, ALL)
    assert snapshot(other) == first
    assert {mode for _, mode in first.values()} == {0o644, 0o755}


def test_first_manifest_runtime_allowed_by_runtimes_wins(manifest: Path, tmp_path: Path) -> None:
    planned, _ = render_repo(manifest, tmp_path / "a", ("python-onnxruntime", "onnxruntime"))
    assert [p.runtime for p in planned] == ["onnxruntime"]
    assert 'platform: "onnxruntime_onnx"' in (tmp_path / "a/mnist/config.pbtxt").read_text()
    assert not (tmp_path / "a/mnist/1/model.py").exists()


def test_switching_runtime_removes_the_stale_python_model(manifest: Path, tmp_path: Path) -> None:
    out = tmp_path / "repo"
    render_repo(manifest, out, ("python-onnxruntime",))
    (out / "mnist" / "2").mkdir()
    render_repo(manifest, out, ("onnxruntime",))
    assert sorted(snapshot(out)) == ["mnist", "mnist/1", "mnist/1/model.onnx", "mnist/config.pbtxt"]


def test_foreign_directory_is_refused_and_nothing_is_written(
    manifest: Path, tmp_path: Path
) -> None:
    out = tmp_path / "repo"
    (out / "resnet50").mkdir(parents=True)
    with pytest.raises(DltkError) as exc:
        render_repo(manifest, out, ALL)
    assert str(exc.value) == (
        f"{out} has directories the manifest does not produce (resnet50); pass --clean to remove "
        "them or render into an empty directory"
    )
    assert sorted(snapshot(out)) == ["resnet50"]
    render_repo(manifest, out, ALL, clean=True)
    assert sorted(p.name for p in out.iterdir()) == ["mnist"]


def test_runtime_not_allowed_by_target_is_an_error(manifest: Path, tmp_path: Path) -> None:
    text = manifest.read_text().replace("[onnxruntime, python-onnxruntime]", "[onnxruntime]")
    manifest.write_text(text)
    with pytest.raises(DltkError) as exc:
        render_repo(manifest, tmp_path / "repo", ("python-onnxruntime",))
    assert str(exc.value) == (
        "model 'mnist' can run on onnxruntime but --runtimes allows only python-onnxruntime; add "
        "one of the model's runtimes to --runtimes or to the manifest"
    )
    assert not (tmp_path / "repo").exists()


def test_parse_runtimes() -> None:
    assert parse_runtimes(None) == ALL
    assert parse_runtimes("python-onnxruntime, onnxruntime") == (
        "python-onnxruntime",
        "onnxruntime",
    )
    with pytest.raises(DltkError, match=r"--runtimes: unknown runtime 'trt'; known runtimes: "):
        parse_runtimes("onnxruntime,trt")
    with pytest.raises(DltkError, match="--runtimes is empty"):
        parse_runtimes(",")


def test_missing_onnx_fails_before_writing(
    tmp_path: Path,
    write_manifest: WriteManifest,
    manifest_text: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    manifest = write_manifest(manifest_text)
    out = tmp_path / "repo"
    code = main(["repo", "render", "--manifest", str(manifest), "--out", str(out)])
    assert code == 1
    assert capsys.readouterr().err == (
        f"dltk repo: error: {manifest}: model 'mnist': ONNX file {tmp_path / 'models/mnist.onnx'} "
        "does not exist; run `dltk export --model mnist`\n"
    )
    assert not out.exists()


def test_cli_render_prints_a_table(
    manifest: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "repo"
    args = ["repo", "render", "--manifest", str(manifest), "--out", str(out)]
    assert main([*args, "--runtimes", "python-onnxruntime", "--instance-kind", "gpu"]) == 0
    printed = capsys.readouterr().out
    assert "mnist" in printed and "python-onnxruntime" in printed
    assert "kind: KIND_GPU" in (out / "mnist/config.pbtxt").read_text()


def test_add_infers_batching_from_the_graph(
    tiny_onnx: Path, tmp_path: Path, build_onnx: Callable[..., Path]
) -> None:
    repo = tmp_path / "repo"
    plan = add_model(tiny_onnx, "digits", repo)
    assert plan.model.batch.max == 64
    config = (repo / "digits/config.pbtxt").read_text()
    assert 'name: "digits"' in config and "max_batch_size: 64" in config
    assert "dynamic_batching" in config

    fixed = build_onnx(tmp_path / "fixed.onnx", batch=1)
    add_model(fixed, "fixed", repo, runtime="python-onnxruntime")
    config = (repo / "fixed/config.pbtxt").read_text()
    assert "max_batch_size: 0" in config and "dims: [ 1, 1, 28, 28 ]" in config
    assert "dynamic_batching" not in config
    assert (repo / "fixed/1/model.py").is_file()


def test_add_refuses_to_overwrite_without_force(tiny_onnx: Path, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    add_model(tiny_onnx, "digits", repo, max_batch_size=8)
    before = snapshot(repo)
    with pytest.raises(DltkError, match=r"digits already exists; pass --force to replace it$"):
        add_model(tiny_onnx, "digits", repo, max_batch_size=16)
    assert snapshot(repo) == before
    add_model(tiny_onnx, "digits", repo, max_batch_size=16, force=True)
    assert "max_batch_size: 16" in (repo / "digits/config.pbtxt").read_text()


def test_add_rejects_batching_a_fixed_batch_model(
    tmp_path: Path, build_onnx: Callable[..., Path]
) -> None:
    fixed = build_onnx(tmp_path / "fixed.onnx", batch=1)
    with pytest.raises(DltkError, match="batch.max is 8 but tensor 'input' has first dim 1"):
        add_model(fixed, "fixed", tmp_path / "repo", max_batch_size=8)
    assert not (tmp_path / "repo" / "fixed").exists()


def test_cli_add_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope.onnx"
    args = ["repo", "add", str(missing), "--name", "n", "--repo", str(tmp_path / "r")]
    assert main(args) == 1
    assert capsys.readouterr().err == f"dltk repo: error: ONNX file {missing} does not exist\n"
