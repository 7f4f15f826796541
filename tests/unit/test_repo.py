"""`dltk repo render` / `dltk repo add`: exact contents, determinism, refusals."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from dltk.cli import main
from dltk.errors import DltkError
from dltk.repo.cli import BLS_MODEL, PYTHON_MODEL, add_model, parse_runtimes, render_repo
from dltk.repo.plan import EngineRef, parse_engines

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
    assert parse_runtimes(None) == (*ALL, "tensorrt")
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


ENGINES_MANIFEST = """\
models:
  - name: mnist
    onnx: models/mnist.onnx
    batch: {min: 1, opt: 16, max: 64}
    runtimes: [tensorrt, onnxruntime, python-onnxruntime]
    precisions: [fp16, tf32]
pipelines:
  - {name: digits, model: mnist, mean: 0.1307, std: 0.3081}
"""


def test_engines_become_tensorrt_models_and_the_pipeline_prefers_them(
    tiny_onnx: Path, write_manifest: WriteManifest, tmp_path: Path
) -> None:
    manifest = write_manifest(ENGINES_MANIFEST)
    out = tmp_path / "repo"
    engines = (EngineRef("mnist", "fp16", "8.6"), EngineRef("mnist", "fp16", "9.0"))
    planned, _ = render_repo(manifest, out, ("onnxruntime", "tensorrt"), "gpu", engines=engines)
    assert [(p.name, p.runtime) for p in planned] == [
        ("mnist", "onnxruntime"),
        ("mnist_trt_fp16", "tensorrt"),
        ("digits", "bls"),
    ]
    assert sorted(snapshot(out)) == [
        "digits",
        "digits/1",
        "digits/1/model.py",
        "digits/config.pbtxt",
        "mnist",
        "mnist/1",
        "mnist/1/model.onnx",
        "mnist/config.pbtxt",
        "mnist_trt_fp16",
        "mnist_trt_fp16/1",  # the plans are copied in on the GPU host
        "mnist_trt_fp16/config.pbtxt",
    ]
    trt = (out / "mnist_trt_fp16/config.pbtxt").read_text()
    assert 'cc_model_filenames { key: "8.6" value: "model.sm86.plan" }' in trt
    assert 'cc_model_filenames { key: "9.0" value: "model.sm90.plan" }' in trt
    assert (out / "digits/1/model.py").read_bytes() == BLS_MODEL.read_bytes()
    bls = (out / "digits/config.pbtxt").read_text()
    assert '{\\"model\\":\\"mnist_trt_fp16\\",' in bls and "mnist_trt_tf32" not in bls


def test_without_engines_the_pipeline_calls_the_onnx_model(
    tiny_onnx: Path, write_manifest: WriteManifest, tmp_path: Path
) -> None:
    out = tmp_path / "repo"
    planned, _ = render_repo(write_manifest(ENGINES_MANIFEST), out, ("python-onnxruntime",))
    assert [p.name for p in planned] == ["mnist", "digits"]
    assert (
        '[{\\"model\\":\\"mnist\\",\\"data_type\\":\\"TYPE_FP32\\"}]'
        in (out / "digits/config.pbtxt").read_text()
    )


def test_bad_engines_change_nothing(
    tiny_onnx: Path, write_manifest: WriteManifest, tmp_path: Path
) -> None:
    manifest = write_manifest(ENGINES_MANIFEST)
    out = tmp_path / "repo"
    with pytest.raises(DltkError, match="does not allow tensorrt; add tensorrt to --runtimes"):
        render_repo(manifest, out, ("onnxruntime",), engines=(EngineRef("mnist", "fp16", "8.6"),))
    with pytest.raises(DltkError, match="no tensorrt runtime with precision 'int8'"):
        render_repo(
            manifest, out, ("onnxruntime", "tensorrt"), engines=(EngineRef("mnist", "int8", "8.6"),)
        )
    assert not out.exists()


def _plan_and_render(
    manifest: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> tuple[Path, Path]:
    """`dltk engines plan --gpu-cc 0=9.0 --json` -> plan.json -> `dltk repo render --engines`."""
    plan = tmp_path / "plan.json"
    argv = ["engines", "plan", "--manifest", str(manifest), "--gpu-cc", "0=9.0", "--json"]
    assert main(argv) == 0
    plan.write_text(capsys.readouterr().out)
    out = tmp_path / "repo"
    argv = ["repo", "render", "--manifest", str(manifest), "--out", str(out)]
    argv += ["--runtimes", "onnxruntime,tensorrt", "--instance-kind", "gpu"]
    assert main([*argv, "--engines", f"@{plan}"]) == 0
    capsys.readouterr()
    return plan, out


def test_validate_counts_the_engines_of_the_plan_as_present(
    tiny_onnx: Path,
    write_manifest: WriteManifest,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Issue 9 defect 1: plan -> render --engines -> validate, as triton_model_repo runs it."""
    plan, out = _plan_and_render(write_manifest(ENGINES_MANIFEST), tmp_path, capsys)
    assert not list(out.glob("*/1/*.plan"))  # the plans exist only on the GPU host
    assert main(["validate", str(out), "--engines", f"@{plan}"]) == 0
    assert capsys.readouterr().out == f"{out}: 4 model(s) valid\n"
    # Without the engine list the staging directory lacks the plans, as before.
    assert main(["validate", str(out)]) == 1
    assert "none of the cc_model_filenames (model.sm90.plan)" in capsys.readouterr().err


def test_validate_still_fails_for_a_cc_file_neither_present_nor_listed(
    tiny_onnx: Path,
    write_manifest: WriteManifest,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _, out = _plan_and_render(write_manifest(ENGINES_MANIFEST), tmp_path, capsys)
    only_fp16 = '[{"model": "mnist", "precision": "fp16", "cc": "9.0"}]'
    assert main(["validate", str(out), "--engines", only_fp16]) == 1
    err = capsys.readouterr().err
    assert f"{out}/mnist_trt_tf32/1: none of the cc_model_filenames (model.sm90.plan)" in err
    assert "mnist_trt_fp16" not in err
    # A listed engine for another GPU generation is not the one the config names.
    other_cc = '[{"model": "mnist", "precision": "fp16", "cc": "8.6"}]'
    assert main(["validate", str(out), "--engines", other_cc]) == 1
    err = capsys.readouterr().err
    assert f"{out}/mnist_trt_fp16/1: none of the cc_model_filenames (model.sm90.plan)" in err
    assert "model.sm86.plan is in the engine list but cc_model_filenames names only" in err


def test_parse_engines() -> None:
    plan = '{"engines": [{"model": "m", "precision": "fp16", "cc": "8.6", "key": "k"}]}'
    assert parse_engines(plan) == (EngineRef("m", "fp16", "8.6"),)
    assert parse_engines('[{"model": "m", "precision": "tf32", "cc": "9.0"}]') == (
        EngineRef("m", "tf32", "9.0"),
    )
    assert parse_engines(None) == parse_engines("") == ()
    with pytest.raises(DltkError, match="--engines is not JSON"):
        parse_engines("mnist:fp16")
    with pytest.raises(DltkError, match="objects with model, precision and cc"):
        parse_engines('[{"model": "m"}]')


def test_external_data_travels_with_the_model(
    tmp_path: Path,
    write_manifest: WriteManifest,
    manifest_text: str,
    build_onnx: Callable[..., Path],
) -> None:
    build_onnx(tmp_path / "models" / "mnist.onnx", external_data=True)
    out = tmp_path / "repo"
    render_repo(write_manifest(manifest_text), out, ("python-onnxruntime",))
    data = out / "mnist/1/mnist.onnx.data"
    assert data.read_bytes() == (tmp_path / "models/mnist.onnx.data").read_bytes()
    repo = tmp_path / "added"
    add_model(tmp_path / "models" / "mnist.onnx", "digits", repo)
    assert (repo / "digits/1/mnist.onnx.data").is_file()
    (tmp_path / "models/mnist.onnx.data").unlink()
    with pytest.raises(DltkError, match="external data file mnist.onnx.data is missing"):
        render_repo(write_manifest(manifest_text), tmp_path / "third", ("onnxruntime",))


def test_add_keeps_full_dims_of_a_fixed_batch_zoo_model(tmp_path: Path) -> None:
    import onnx

    zoo = Path(onnx.__file__).parent / "backend/test/data/light/light_zfnet512.onnx"
    plan = add_model(zoo, "zfnet", tmp_path / "repo", runtime="python-onnxruntime")
    assert plan.model.batch.max == 0
    config = (tmp_path / "repo/zfnet/config.pbtxt").read_text()
    assert "max_batch_size: 0" in config and "dynamic_batching" not in config
    assert 'name: "gpu_0/data_0"' in config and "dims: [ 1, 3, 224, 224 ]" in config


def test_load_restores_the_serving_version_or_removes_a_new_model(tmp_path: Path) -> None:
    from dltk.repo.load import restore_model

    repo, previous = tmp_path / "repo", tmp_path / "previous"
    (repo / "mnist/1").mkdir(parents=True)
    (repo / "mnist/1/model.onnx").write_bytes(b"broken")
    (repo / "mnist/1/extra.onnx.data").write_bytes(b"new side file")
    (previous / "mnist/1").mkdir(parents=True)
    (previous / "mnist/1/model.onnx").write_bytes(b"serving")
    assert restore_model(repo, previous, "mnist") == f"restored mnist from {previous / 'mnist'}"
    assert sorted(snapshot(repo)) == ["mnist", "mnist/1", "mnist/1/model.onnx"]
    assert (repo / "mnist/1/model.onnx").read_bytes() == b"serving"
    (repo / "fresh/1").mkdir(parents=True)
    assert (
        restore_model(repo, previous, "fresh")
        == "removed the new model fresh (no previous version)"
    )
    assert not (repo / "fresh").exists()


class _Response:
    """An HTTP 400 answer with `body`, as tritonclient.http reads a response."""

    status_code = 400

    def __init__(self, body: str) -> None:
        self.body = body

    def read(self) -> bytes:
        return self.body.encode()


def test_load_reports_the_first_line_of_the_servers_error() -> None:
    from tritonclient.http._utils import (
        _get_error,  # how tritonclient turns an answer into its error
    )

    from dltk.repo.load import error_line

    def _error_text(body: str) -> str:
        return error_line(_get_error(_Response(body)))

    body = (
        '{"error": "load failed for model \'m\': bad op\\n\\nAt:\\n  model.py(57): initialize\\n"}'
    )
    assert _error_text(body) == "load failed for model 'm': bad op"
    assert _error_text("") == "no error text from the server"


def test_load_validates_before_loading_anything(
    manifest: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "repo"
    render_repo(manifest, out, ("python-onnxruntime",))
    (out / "mnist/config.pbtxt").write_text("bogus: 1\n")
    # No server listens on this URL: the invalid config stops the command before any request.
    args = ["repo", "load", "--url", "127.0.0.1:9", "--repo", str(out), "mnist"]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert err.startswith("dltk repo: error: not loading anything: ") and "bogus" in err
    assert main(["repo", "load", "--url", "127.0.0.1:9", "--repo", str(out)]) == 1
    assert "name the models to load" in capsys.readouterr().err
