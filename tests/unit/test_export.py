"""`dltk export --model mnist`: the real offline export once, plus its failure paths."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from dltk.cli import main
from dltk.errors import DltkError
from dltk.export import cli as export_cli
from dltk.export import mnist as export
from dltk.export.onnx_io import ExportOptions, ExportResult


def test_real_export_reaches_accuracy_and_matches_torch(
    exported_mnist: tuple[Path, ExportResult],
) -> None:
    out, result = exported_mnist
    assert result.dataset == "sklearn-digits"
    assert result.accuracy >= 0.90
    assert result.max_abs_diff < 1e-4
    assert (result.train_size, result.test_size) == (1347, 450)
    meta = json.loads((out / "mnist.json").read_text())
    assert meta["dataset"] == "sklearn-digits"
    assert meta["accuracy"] == result.accuracy
    assert meta["opset"] == 17
    assert meta["sha256"] == hashlib.sha256((out / "mnist.onnx").read_bytes()).hexdigest()
    assert sorted(p.name for p in out.iterdir()) == [
        "mnist.json",
        "mnist.onnx",
        "mnist.samples.npz",
    ]


def test_onnx_has_the_contract_interface(exported_mnist: tuple[Path, ExportResult]) -> None:
    out, _ = exported_mnist
    model = onnx.load(str(out / "mnist.onnx"))
    onnx.checker.check_model(model)
    assert model.opset_import[0].version == 17
    (inp,) = model.graph.input
    (outp,) = model.graph.output
    assert (inp.name, outp.name) == ("input", "logits")
    in_dims = inp.type.tensor_type.shape.dim
    assert in_dims[0].dim_param and not in_dims[0].dim_value  # dynamic batch
    assert [d.dim_value for d in in_dims[1:]] == [1, 28, 28]
    assert inp.type.tensor_type.elem_type == onnx.TensorProto.FLOAT


def test_samples_are_normalized_held_out_digits_the_model_classifies(
    exported_mnist: tuple[Path, ExportResult],
) -> None:
    out, _ = exported_mnist
    with np.load(out / "mnist.samples.npz") as data:
        inputs, labels = data["inputs"], data["labels"]
    assert (inputs.dtype, inputs.shape) == (np.float32, (64, 1, 28, 28))
    assert (labels.dtype, labels.shape) == (np.int64, (64,))
    expected = export.load_digits_28(seed=0)
    np.testing.assert_array_equal(inputs, expected.x_test[:64])
    np.testing.assert_array_equal(labels, expected.y_test[:64])
    # Normalized with MNIST's mean/std: background pixels are (0 - 0.1307) / 0.3081.
    assert inputs.min() == pytest.approx(-0.1307 / 0.3081, abs=1e-6)
    session = ort.InferenceSession(str(out / "mnist.onnx"), providers=["CPUExecutionProvider"])
    (logits,) = session.run(["logits"], {"input": inputs})
    assert (logits.argmax(axis=1) == labels).mean() >= 0.90


def test_training_and_export_are_deterministic(tmp_path: Path) -> None:
    data = export.load_digits_28(seed=0)
    small = export.Dataset(
        data.name, data.x_train[:256], data.y_train[:256], data.x_test, data.y_test
    )
    first = export.train(small, epochs=1, seed=3)
    second = export.train(small, epochs=1, seed=3)
    export.export_onnx(first, tmp_path / "a.onnx")
    export.export_onnx(second, tmp_path / "b.onnx")
    assert (tmp_path / "a.onnx").read_bytes() == (tmp_path / "b.onnx").read_bytes()


def _untrained(data: export.Dataset, epochs: int, seed: int) -> object:
    import torch

    torch.manual_seed(seed)
    return export.build_cnn().eval()


def test_low_accuracy_fails_and_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(export, "train", _untrained)
    with pytest.raises(DltkError) as exc:
        export.export_mnist(ExportOptions(out=tmp_path / "out", dataset="digits", epochs=3))
    assert str(exc.value).startswith("mnist held-out accuracy 0.")
    assert str(exc.value).endswith(
        "is below 0.9; train longer (--epochs, now 3) or check the dataset (sklearn-digits)"
    )
    assert not (tmp_path / "out").exists()


def test_onnxruntime_disagreeing_with_torch_fails_and_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, exported_mnist: tuple[Path, ExportResult]
) -> None:
    real = export.onnxruntime_logits
    monkeypatch.setattr(export, "train", _trained_copy(exported_mnist[0]))
    monkeypatch.setattr(export, "onnxruntime_logits", lambda p, x: real(p, x) + 1e-3)
    out = tmp_path / "out"
    with pytest.raises(
        DltkError,
        match=r"onnxruntime and torch disagree by 1\.0\de-03 \(limit 0\.0001\); the export is",
    ):
        export.export_mnist(ExportOptions(out=out, dataset="digits"))
    assert list(out.iterdir()) == []


def _trained_copy(out: Path) -> Callable[[export.Dataset, int, int], Any]:
    """A `train` that rebuilds the session's trained weights from its ONNX (no retraining)."""
    import torch
    from onnx import numpy_helper

    weights = [
        numpy_helper.to_array(t) for t in onnx.load(str(out / "mnist.onnx")).graph.initializer
    ]

    def train(data: export.Dataset, epochs: int, seed: int) -> torch.nn.Module:
        model = export.build_cnn()
        params = list(model.parameters())
        assert [tuple(p.shape) for p in params] == [w.shape for w in weights]
        with torch.no_grad():
            for p, w in zip(params, weights, strict=True):
                p.copy_(torch.from_numpy(w.copy()))
        return model.eval()

    return train


def _idx(array: np.ndarray) -> bytes:
    header = b"\x00\x00\x08" + bytes([array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return gzip.compress(header + array.astype(np.uint8).tobytes())


def test_real_mnist_loader_parses_idx_downloads(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(0)
    files = {
        "train-images-idx3-ubyte.gz": _idx(rng.integers(0, 256, (30, 28, 28))),
        "train-labels-idx1-ubyte.gz": _idx(rng.integers(0, 10, (30,))),
        "t10k-images-idx3-ubyte.gz": _idx(np.full((5, 28, 28), 255)),
        "t10k-labels-idx1-ubyte.gz": _idx(np.arange(5)),
    }
    urls: list[str] = []

    def urlopen(url: str, timeout: float) -> io.BytesIO:
        urls.append(url)
        if url.startswith(export.MNIST_URLS[0]):
            raise OSError("unreachable")
        return io.BytesIO(files[url.rsplit("/", 1)[1]])

    monkeypatch.setattr(export.urllib.request, "urlopen", urlopen)
    data = export.download_mnist(timeout=0.1)
    assert data.name == "mnist"
    assert urls[0].startswith(export.MNIST_URLS[0]) and urls[1].startswith(export.MNIST_URLS[1])
    assert data.x_train.shape == (30, 1, 28, 28) and data.x_train.dtype == np.float32
    assert data.x_test.shape == (5, 1, 28, 28)
    np.testing.assert_allclose(data.x_test, (1.0 - 0.1307) / 0.3081, rtol=1e-6)
    np.testing.assert_array_equal(data.y_test, np.arange(5))
    assert data.y_test.dtype == np.int64


def test_parse_idx_rejects_garbage() -> None:
    with pytest.raises(ValueError, match="not an idx file"):
        export.parse_idx(b"GIF89a")
    with pytest.raises(ValueError, match="payload has 3 values"):
        export.parse_idx(b"\x00\x00\x08\x01" + struct.pack(">I", 4) + b"abc")


def test_offline_auto_falls_back_to_digits_and_says_so(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def offline(timeout: float = 0) -> export.Dataset:
        raise OSError("MNIST download failed: no route")

    monkeypatch.setattr(export, "download_mnist", offline)
    assert export.load_dataset("auto", seed=0).name == "sklearn-digits"
    assert "MNIST not downloadable" in capsys.readouterr().out
    with pytest.raises(DltkError, match="no route; use --dataset digits on machines without"):
        export.load_dataset("mnist", seed=0)


def test_cli_rejects_zero_epochs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["export", "--model", "mnist", "--out", str(tmp_path), "--epochs", "0"]) == 1
    assert capsys.readouterr().err == "dltk export: error: --epochs must be >= 1, got 0\n"
    assert list(tmp_path.iterdir()) == []


def test_model_all_runs_every_registered_exporter(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []

    def fake(name: str) -> Callable[[ExportOptions], ExportResult]:
        def run(opts: ExportOptions) -> ExportResult:
            calls.append(name)
            return ExportResult(name, f"{name}.onnx", "d", 1.0, 0.0, 17, "", 1, 0, 1, 1)

        return run

    monkeypatch.setattr(export_cli, "EXPORTERS", {"mnist": fake("mnist"), "other": fake("other")})
    assert main(["export", "--model", "all", "--out", str(tmp_path)]) == 0
    assert calls == ["mnist", "other"]


def test_resnet_export_has_a_dynamic_batch_and_external_data(tmp_path: Path) -> None:
    from dltk.export.resnet import export_resnet

    out = tmp_path / "out"
    result = export_resnet(ExportOptions(out=out, depth=18, external_data=True))
    assert sorted(p.name for p in out.iterdir()) == [
        "resnet18.json",
        "resnet18.onnx",
        "resnet18.onnx.data",
        "resnet18.samples.npz",
    ]
    assert result.accuracy is None and result.max_abs_diff < 1e-3
    model = onnx.load(str(out / "resnet18.onnx"), load_external_data=False)
    (inp,) = model.graph.input
    dims = inp.type.tensor_type.shape.dim
    assert (
        inp.name == "input"
        and dims[0].dim_param
        and [d.dim_value for d in dims[1:]] == [3, 224, 224]
    )
    session = ort.InferenceSession(str(out / "resnet18.onnx"), providers=["CPUExecutionProvider"])
    with np.load(out / "resnet18.samples.npz") as data:
        assert data.files == ["inputs"]  # random weights: no labels
        (logits,) = session.run(["logits"], {"input": data["inputs"][:3]})
    assert logits.shape == (3, 1000)


def test_resnet_loads_torchvision_style_weights(tmp_path: Path) -> None:
    import torch

    from dltk.export.resnet import build_resnet, export_resnet, sample_images

    torch.manual_seed(5)
    source = build_resnet(18).eval()
    state = source.state_dict()
    assert len(state) == 122  # as torchvision's resnet18
    assert {"conv1.weight", "layer2.0.downsample.0.weight", "layer4.1.bn2.running_var"} <= set(
        state
    )
    torch.save(state, tmp_path / "weights.pt")
    out = tmp_path / "out"
    export_resnet(ExportOptions(out=out, depth=18, seed=1, weights=tmp_path / "weights.pt"))
    x = sample_images(2, seed=9)
    session = ort.InferenceSession(str(out / "resnet18.onnx"), providers=["CPUExecutionProvider"])
    with torch.no_grad():
        expected = source(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(session.run(["logits"], {"input": x})[0], expected, atol=1e-4)
    with pytest.raises(DltkError, match=r"does not fit this ResNet .*same depth \(--depth\)"):
        export_resnet(ExportOptions(out=out, depth=34, weights=tmp_path / "weights.pt"))


def test_cli_resnet_rejects_a_missing_weights_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["export", "--model", "resnet50", "--out", str(tmp_path), "--weights", "nope.pt"]
    assert main(args) == 1
    assert capsys.readouterr().err == "dltk export: error: --weights nope.pt does not exist\n"
    assert main(["export", "--model", "resnet50", "--depth", "20", "--out", str(tmp_path)]) == 1
    assert "--depth 20 is not a ResNet depth" in capsys.readouterr().err
