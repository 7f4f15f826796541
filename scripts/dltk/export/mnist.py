"""MNIST for `dltk export`: a small CNN trained on real MNIST when the idx files can be
downloaded, else on scikit-learn's bundled digits (1797 real 8x8 digits, resized to 28x28) - the
normal case on machines without internet. Training is seeded and deterministic; the held-out
accuracy must reach 0.90 and onnxruntime must agree with torch to 1e-4 on the held-out set, else
the export fails. Writes `<out>/mnist.onnx`, `mnist.samples.npz` (held-out inputs/labels) and
`mnist.json`.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import struct
import tempfile
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from dltk.errors import DltkError
from dltk.export.onnx_io import (
    OPSET,
    ExportOptions,
    ExportResult,
    export_onnx,
    npz_bytes,
    write_atomic,
)

MIN_ACCURACY = 0.90
MAX_ABS_DIFF = 1e-4
SAMPLE_COUNT = 64
MNIST_MEAN, MNIST_STD = 0.1307, 0.3081
MNIST_URLS = (
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
)
MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}
MNIST_TRAIN_SUBSET = 12000  # enough for > 0.97 in a few seconds per epoch on 2 cores
DOWNLOAD_TIMEOUT_S = 5.0
DATASETS = ("auto", "mnist", "digits")
DEFAULT_EPOCHS = {"mnist": 2, "sklearn-digits": 12}

console = Console()


@dataclass(frozen=True)
class Dataset:
    """Normalized images [N,1,28,28] float32 and int64 labels, split into train/test."""

    name: str  # mnist | sklearn-digits
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


# --- data ------------------------------------------------------------------------------------


def parse_idx(data: bytes) -> np.ndarray:
    """An idx file (MNIST's format: big-endian header, then uint8 data) as an array."""
    if len(data) < 4 or data[:2] != b"\x00\x00" or data[2] != 0x08:
        raise ValueError("not an idx file of unsigned bytes")
    ndim = data[3]
    shape = struct.unpack(f">{ndim}I", data[4 : 4 + 4 * ndim])
    array = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if array.size != int(np.prod(shape)):
        raise ValueError(f"idx payload has {array.size} values, header says {shape}")
    return array.reshape(shape)


def normalize(images01: np.ndarray) -> np.ndarray:
    """[N,28,28] in [0,1] -> the model's input: float32 [N,1,28,28], MNIST mean/std."""
    return ((images01[:, None, :, :] - MNIST_MEAN) / MNIST_STD).astype(np.float32)


def download_mnist(timeout: float = DOWNLOAD_TIMEOUT_S) -> Dataset:
    """Real MNIST from the usual mirrors; raises OSError/ValueError when it cannot."""
    last: Exception | None = None
    for base in MNIST_URLS:
        try:
            arrays = {}
            for key, name in MNIST_FILES.items():
                with urllib.request.urlopen(base + name, timeout=timeout) as response:
                    arrays[key] = parse_idx(gzip.decompress(response.read()))
            break
        except (OSError, ValueError, EOFError) as exc:  # URLError/timeouts are OSErrors
            last = exc
    else:
        raise OSError(f"MNIST download failed: {last}")
    rng = np.random.default_rng(0)
    subset = np.sort(rng.permutation(len(arrays["train_labels"]))[:MNIST_TRAIN_SUBSET])
    return Dataset(
        "mnist",
        normalize(arrays["train_images"][subset] / 255.0),
        arrays["train_labels"][subset].astype(np.int64),
        normalize(arrays["test_images"] / 255.0),
        arrays["test_labels"].astype(np.int64),
    )


def load_digits_28(seed: int) -> Dataset:
    """scikit-learn's bundled 8x8 digits, bilinearly resized to 28x28, stratified 75/25 split."""
    import torch
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    images = torch.from_numpy(digits.images.astype(np.float32) / 16.0)[:, None]
    resized = torch.nn.functional.interpolate(
        images, size=(28, 28), mode="bilinear", align_corners=False
    )[:, 0].numpy()
    x = normalize(np.clip(resized, 0.0, 1.0))
    y = digits.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=0.25, random_state=seed, stratify=y
    )
    return Dataset("sklearn-digits", x_train, y_train, x_test, y_test)


def load_dataset(choice: str, seed: int) -> Dataset:
    if choice in ("auto", "mnist"):
        try:
            with console.status("downloading MNIST (falls back to sklearn digits offline)"):
                return download_mnist()
        except OSError as exc:
            if choice == "mnist":
                raise DltkError(
                    f"{exc}; use --dataset digits on machines without internet"
                ) from None
            console.print(f"[yellow]MNIST not downloadable ({exc}); using sklearn digits[/]")
    return load_digits_28(seed)


# --- model -----------------------------------------------------------------------------------


def build_cnn() -> Any:
    import torch.nn as nn

    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(32 * 7 * 7, 64),
        nn.ReLU(),
        nn.Linear(64, 10),
    )


def train(data: Dataset, epochs: int, seed: int, batch_size: int = 64) -> Any:
    import torch

    torch.manual_seed(seed)
    model = build_cnn()
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    loss_fn = torch.nn.CrossEntropyLoss()
    x = torch.from_numpy(data.x_train)
    y = torch.from_numpy(data.y_train)
    generator = torch.Generator().manual_seed(seed)
    steps = (len(x) + batch_size - 1) // batch_size
    columns = (
        TextColumn("[bold]train[/] {task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task("epoch 1", total=epochs * steps)
        model.train()
        for epoch in range(epochs):
            order = torch.randperm(len(x), generator=generator)
            total = 0.0
            for step in range(steps):
                index = order[step * batch_size : (step + 1) * batch_size]
                optimizer.zero_grad()
                loss = loss_fn(model(x[index]), y[index])
                loss.backward()
                optimizer.step()
                total += loss.item()
                progress.update(task, advance=1)
            progress.update(
                task, description=f"epoch {epoch + 1}/{epochs} loss {total / steps:.3f}"
            )
    model.eval()
    return model


def predict_logits(model: Any, x: np.ndarray) -> np.ndarray:
    import torch

    with torch.no_grad():
        return model(torch.from_numpy(x)).numpy()


def onnxruntime_logits(path: Path, x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(["logits"], {"input": x})[0]


def export_mnist(opts: ExportOptions) -> ExportResult:
    import onnx
    import torch

    torch.use_deterministic_algorithms(True)
    data = load_dataset(opts.dataset, opts.seed)
    console.print(
        f"dataset: [bold]{data.name}[/] ({len(data.y_train)} train, {len(data.y_test)} held out)"
    )
    epochs = opts.epochs if opts.epochs is not None else DEFAULT_EPOCHS[data.name]
    model = train(data, epochs, opts.seed)
    torch_logits = predict_logits(model, data.x_test)
    accuracy = float((torch_logits.argmax(axis=1) == data.y_test).mean())
    console.print(f"held-out accuracy: [bold]{accuracy:.4f}[/]")
    if accuracy < MIN_ACCURACY:
        raise DltkError(
            f"mnist held-out accuracy {accuracy:.4f} is below {MIN_ACCURACY}; train longer "
            f"(--epochs, now {epochs}) or check the dataset ({data.name})"
        )

    opts.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=opts.out, prefix=".export-") as tmp:
        staged = Path(tmp) / "mnist.onnx"
        export_onnx(model, staged)
        try:
            onnx.checker.check_model(str(staged))
        except onnx.checker.ValidationError as exc:
            raise DltkError(f"exported mnist.onnx fails onnx.checker: {exc}") from None
        ort_logits = onnxruntime_logits(staged, data.x_test)
        diff = float(np.max(np.abs(ort_logits - torch_logits)))
        console.print(f"max |onnxruntime - torch| on held-out set: [bold]{diff:.2e}[/]")
        if diff >= MAX_ABS_DIFF:
            raise DltkError(
                f"onnxruntime and torch disagree by {diff:.2e} (limit {MAX_ABS_DIFF}); the "
                "export is wrong: check the opset and the model's ops"
            )
        onnx_bytes = staged.read_bytes()

    result = ExportResult(
        model="mnist",
        onnx="mnist.onnx",
        dataset=data.name,
        accuracy=round(accuracy, 6),
        max_abs_diff=diff,
        opset=OPSET,
        sha256=hashlib.sha256(onnx_bytes).hexdigest(),
        epochs=epochs,
        seed=opts.seed,
        train_size=int(len(data.y_train)),
        test_size=int(len(data.y_test)),
    )
    samples = npz_bytes(data.x_test[:SAMPLE_COUNT], data.y_test[:SAMPLE_COUNT])
    write_atomic(opts.out / "mnist.samples.npz", samples)
    write_atomic(opts.out / "mnist.json", (json.dumps(asdict(result), indent=2) + "\n").encode())
    write_atomic(opts.out / "mnist.onnx", onnx_bytes)  # last: its presence means "done"
    return result
