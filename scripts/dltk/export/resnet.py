"""`dltk export --model resnet50`: ResNet defined in code, exported to ONNX with a dynamic batch.

No download: the weights are random (seeded) unless `--weights FILE` names a state dict. The
module names follow torchvision's ResNet (conv1, bn1, layer1..4, fc; blocks with conv1..3,
bn1..3, downsample), so its published ImageNet state dicts load as they are. `--depth` picks
18/34 (basic blocks) or 50/101/152 (bottlenecks); CI uses 18 to stay fast, and a depth other
than 50 writes `resnet<depth>.onnx`. The export is checked like MNIST's: onnx.checker, then
onnxruntime against torch on seeded images (relative tolerance). `--external-data` writes the
weights to a `.onnx.data` side file next to the model.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from dltk.errors import DltkError
from dltk.export.onnx_io import (
    OPSET,
    ExportOptions,
    ExportResult,
    export_onnx,
    npz_bytes,
    write_atomic,
)

IMAGE_SIZE = 224
SAMPLE_COUNT = 8
MAX_REL_DIFF = 1e-4
DEPTHS: dict[int, tuple[str, tuple[int, ...]]] = {
    18: ("basic", (2, 2, 2, 2)),
    34: ("basic", (3, 4, 6, 3)),
    50: ("bottleneck", (3, 4, 6, 3)),
    101: ("bottleneck", (3, 4, 23, 3)),
    152: ("bottleneck", (3, 8, 36, 3)),
}
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def build_resnet(depth: int = 50, num_classes: int = 1000) -> Any:
    """torchvision-compatible ResNet-<depth> (eval mode is the caller's business)."""
    import torch.nn as nn

    if depth not in DEPTHS:
        raise DltkError(f"--depth {depth} is not a ResNet depth; use one of {sorted(DEPTHS)}")
    kind, layers = DEPTHS[depth]
    expansion = 4 if kind == "bottleneck" else 1

    class Basic(nn.Module):
        def __init__(self, cin: int, width: int, stride: int) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(cin, width, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(width)
            self.conv2 = nn.Conv2d(width, width, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(width)
            self.relu = nn.ReLU(inplace=True)
            self.downsample = _shortcut(cin, width, stride)

        def forward(self, x: Any) -> Any:
            out = self.relu(self.bn1(self.conv1(x)))
            out = self.bn2(self.conv2(out))
            identity = self.downsample(x) if self.downsample is not None else x
            return self.relu(out + identity)

    class Bottleneck(nn.Module):
        def __init__(self, cin: int, width: int, stride: int) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(cin, width, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(width)
            self.conv2 = nn.Conv2d(width, width, 3, stride, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(width)
            self.conv3 = nn.Conv2d(width, width * 4, 1, bias=False)
            self.bn3 = nn.BatchNorm2d(width * 4)
            self.relu = nn.ReLU(inplace=True)
            self.downsample = _shortcut(cin, width * 4, stride)

        def forward(self, x: Any) -> Any:
            out = self.relu(self.bn1(self.conv1(x)))
            out = self.relu(self.bn2(self.conv2(out)))
            out = self.bn3(self.conv3(out))
            identity = self.downsample(x) if self.downsample is not None else x
            return self.relu(out + identity)

    def _shortcut(cin: int, cout: int, stride: int) -> Any:
        if stride == 1 and cin == cout:
            return None
        return nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    block = Bottleneck if kind == "bottleneck" else Basic

    class ResNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
            self.bn1 = nn.BatchNorm2d(64)
            self.relu = nn.ReLU(inplace=True)
            self.maxpool = nn.MaxPool2d(3, 2, 1)
            cin = 64
            for index, (width, count) in enumerate(zip((64, 128, 256, 512), layers, strict=True)):
                blocks = []
                for position in range(count):
                    stride = 2 if index > 0 and position == 0 else 1
                    blocks.append(block(cin, width, stride))
                    cin = width * expansion
                setattr(self, f"layer{index + 1}", nn.Sequential(*blocks))
            self.avgpool = nn.AdaptiveAvgPool2d(1)
            self.fc = nn.Linear(512 * expansion, num_classes)

        def forward(self, x: Any) -> Any:
            x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
            x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
            return self.fc(self.avgpool(x).flatten(1))

    return ResNet()


def load_weights(model: Any, path: Path) -> None:
    import torch

    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, ValueError) as exc:
        raise DltkError(f"cannot read weights {path}: {exc}") from None
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    try:
        model.load_state_dict(state, strict=True)
    except (RuntimeError, TypeError) as exc:
        first = str(exc).splitlines()[0]
        raise DltkError(
            f"{path} does not fit this ResNet ({first}); pass a torchvision-style state dict "
            "of the same depth (--depth)"
        ) from None


def sample_images(count: int, seed: int) -> np.ndarray:
    """Seeded uniform images, normalized with ImageNet's mean/std: [N,3,224,224] float32."""
    rng = np.random.default_rng(seed)
    pixels = rng.random((count, 3, IMAGE_SIZE, IMAGE_SIZE), dtype=np.float32)
    mean = np.array(IMAGENET_MEAN, np.float32).reshape(1, 3, 1, 1)
    std = np.array(IMAGENET_STD, np.float32).reshape(1, 3, 1, 1)
    return ((pixels - mean) / std).astype(np.float32)


def _export(model: Any, path: Path, external_data: bool) -> None:
    import onnx

    export_onnx(model, path, (1, 3, IMAGE_SIZE, IMAGE_SIZE))
    if external_data:
        proto = onnx.load(str(path))
        onnx.save_model(
            proto,
            str(path),
            save_as_external_data=True,
            all_tensors_to_one_file=True,
            location=f"{path.name}.data",
        )


def export_resnet(opts: ExportOptions) -> ExportResult:
    """Build, check and write resnet<depth>.onnx (+ .data), samples and metadata."""
    import onnx
    import onnxruntime as ort
    import torch

    depth = opts.depth
    name = f"resnet{depth}"
    torch.manual_seed(opts.seed)
    model = build_resnet(depth)
    if opts.weights is not None:
        load_weights(model, opts.weights)
    model.eval()
    images = sample_images(SAMPLE_COUNT, opts.seed)
    with torch.no_grad():
        expected = model(torch.from_numpy(images[:2])).numpy()

    opts.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=opts.out, prefix=".export-") as tmp:
        staged = Path(tmp) / f"{name}.onnx"
        _export(model, staged, opts.external_data)
        try:
            onnx.checker.check_model(str(staged))
        except onnx.checker.ValidationError as exc:
            raise DltkError(f"exported {staged.name} fails onnx.checker: {exc}") from None
        session = ort.InferenceSession(str(staged), providers=["CPUExecutionProvider"])
        got = session.run(["logits"], {"input": images[:2]})[0]
        diff = float(np.abs(got - expected).max())
        relative = diff / max(float(np.abs(expected).max()), 1e-6)
        if relative >= MAX_REL_DIFF:
            raise DltkError(
                f"onnxruntime and torch disagree by {relative:.2e} relative to the largest "
                f"logit (limit {MAX_REL_DIFF}); the export is wrong: check the opset"
            )
        files = sorted(p for p in Path(tmp).iterdir() if p.is_file())
        contents = {p.name: p.read_bytes() for p in files}

    digest = hashlib.sha256()
    for file_name in sorted(contents):
        digest.update(contents[file_name])
    result = ExportResult(
        model=name,
        onnx=f"{name}.onnx",
        dataset="weights " + str(opts.weights) if opts.weights else "none (random weights)",
        accuracy=None,
        max_abs_diff=diff,
        opset=OPSET,
        sha256=digest.hexdigest(),
        epochs=0,
        seed=opts.seed,
        train_size=0,
        test_size=SAMPLE_COUNT,
    )
    write_atomic(opts.out / f"{name}.samples.npz", npz_bytes(images, None))
    write_atomic(opts.out / f"{name}.json", (json.dumps(asdict(result), indent=2) + "\n").encode())
    stale = opts.out / f"{name}.onnx.data"
    if f"{name}.onnx.data" not in contents:
        stale.unlink(missing_ok=True)
    for file_name in sorted(contents, key=lambda n: n.endswith(".onnx")):  # .onnx last: "done"
        write_atomic(opts.out / file_name, contents[file_name])
    return result
