"""`dltk bench speed`: milliseconds per batch for each runtime this host has, per batch size.

Columns (the seed's speed_test.py table, extended): PyTorch CPU, PyTorch GPU, ONNX Runtime CPU,
ONNX Runtime GPU (CUDA execution provider) and TensorRT (onnxruntime's TensorRT execution
provider). A runtime this host lacks shows why in its cells, e.g. "n/a (no GPU)". The PyTorch
model is the exported MNIST CNN with the ONNX file's own weights, so both runtimes compute the
same function (their max difference is printed).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dltk.bench.timing import Timing, time_calls
from dltk.errors import DltkError
from dltk.gpu_facts import query_driver

NO_GPU = "n/a (no GPU)"
CSV_FIELDS = ("backend", "batch", "ms_per_batch", "median_ms", "p99_ms", "samples_per_s", "note")


@dataclass(frozen=True)
class GpuStatus:
    present: bool
    detail: str  # GPU names, or why there is none


def detect_gpu(runner: Callable[..., Any] | None = None) -> GpuStatus:
    """An NVIDIA GPU the driver sees: dltk.gpu_facts.query_driver (nvidia-smi, bounded to 15 s),
    the same answer the roles get from the nvidia_gpu_facts module."""
    driver = query_driver(run=runner)
    names = [gpu["name"] for gpu in driver["gpus"]]
    if not names:
        return GpuStatus(False, f"nvidia-smi {driver['reason']}")
    return GpuStatus(True, ", ".join(names))


@dataclass(frozen=True)
class Backend:
    """A runtime to time: `make(batch_array)` returns the call to time; `na` says why not."""

    name: str
    make: Callable[[np.ndarray], Callable[[], object]] | None = None
    na: str = ""
    sync: Callable[[], None] | None = None


@dataclass(frozen=True)
class SpeedResult:
    backend: str
    batch: int
    timing: Timing | None
    note: str = ""

    @property
    def cell(self) -> str:
        return f"{self.timing.mean_ms:.3f}" if self.timing else self.note


# --- backends -------------------------------------------------------------------------------


def torch_model_from_onnx(onnx_path: Path) -> Any:
    """The MNIST CNN of `dltk export` with the weights stored in the ONNX file."""
    import onnx
    import torch
    from onnx import numpy_helper

    from dltk.export.mnist import build_cnn

    model = build_cnn()
    weights = {
        init.name: torch.from_numpy(numpy_helper.to_array(init).copy())
        for init in onnx.load(str(onnx_path)).graph.initializer
    }
    state = model.state_dict()
    if set(weights) != set(state) or any(weights[k].shape != state[k].shape for k in state):
        raise DltkError(f"{onnx_path} is not the MNIST CNN of `dltk export`")
    model.load_state_dict(weights)
    return model.eval()


def torch_backends(onnx_path: Path, gpu: GpuStatus) -> list[Backend]:
    try:
        import torch
    except ImportError:
        return [
            Backend("PyTorch CPU", na="n/a (torch not installed)"),
            Backend("PyTorch GPU", na=NO_GPU),
        ]
    try:
        model = torch_model_from_onnx(onnx_path)
    except DltkError:
        na = "n/a (no PyTorch model for this ONNX)"
        return [Backend("PyTorch CPU", na=na), Backend("PyTorch GPU", na=na)]

    def on(device: str) -> Callable[[np.ndarray], Callable[[], object]]:
        net = model.to(device) if device == "cpu" else torch_model_from_onnx(onnx_path).to(device)

        def make(batch: np.ndarray) -> Callable[[], object]:
            x = torch.from_numpy(batch).to(device)

            def call() -> object:
                with torch.inference_mode():
                    return net(x)

            return call

        return make

    cpu = Backend("PyTorch CPU", make=on("cpu"))
    if not gpu.present:
        return [cpu, Backend("PyTorch GPU", na=NO_GPU)]
    if not torch.cuda.is_available():
        return [cpu, Backend("PyTorch GPU", na="n/a (torch without CUDA)")]
    return [cpu, Backend("PyTorch GPU", make=on("cuda"), sync=torch.cuda.synchronize)]


def ort_backend(name: str, onnx_path: Path, providers: list[Any]) -> Backend:
    import onnxruntime as ort

    try:
        session = ort.InferenceSession(str(onnx_path), providers=providers)
    except Exception as exc:  # onnxruntime raises its own exception types
        return Backend(name, na=f"n/a ({str(exc).splitlines()[0][:60]})")
    feed = session.get_inputs()[0].name

    def make(batch: np.ndarray) -> Callable[[], object]:
        return lambda: session.run(None, {feed: batch})

    return Backend(name, make=make)


def ort_backends(onnx_path: Path, gpu: GpuStatus) -> list[Backend]:
    import onnxruntime as ort

    available = set(ort.get_available_providers())
    backends = [ort_backend("ONNX Runtime CPU", onnx_path, ["CPUExecutionProvider"])]
    for name, provider, missing in (
        ("ONNX Runtime GPU", "CUDAExecutionProvider", "n/a (onnxruntime without CUDA)"),
        ("TensorRT", "TensorrtExecutionProvider", "n/a (TensorRT not installed)"),
    ):
        if not gpu.present:
            backends.append(Backend(name, na=NO_GPU))
        elif provider not in available:
            backends.append(Backend(name, na=missing))
        else:
            backends.append(ort_backend(name, onnx_path, [provider, "CPUExecutionProvider"]))
    return backends


# --- running and output ---------------------------------------------------------------------


def run_speed(
    backends: Sequence[Backend],
    batches: Sequence[int],
    sample: np.ndarray,
    budget_s: float,
    max_iterations: int,
    progress: Callable[[str], None] = lambda _msg: None,
) -> list[SpeedResult]:
    """Time every available backend at every batch size (inputs tiled from `sample`)."""
    results: list[SpeedResult] = []
    for backend in backends:
        for batch in batches:
            if backend.make is None:
                results.append(SpeedResult(backend.name, batch, None, backend.na))
                continue
            progress(f"{backend.name} batch {batch}")
            data = np.ascontiguousarray(np.resize(sample, (batch, *sample.shape[1:])))
            timing = time_calls(
                backend.make(data), batch, budget_s, max_iterations, sync=backend.sync
            )
            results.append(SpeedResult(backend.name, batch, timing))
    return results


def table_rows(results: Sequence[SpeedResult]) -> tuple[list[str], list[list[str]]]:
    """Header (batch + backends in first-seen order) and one row per batch size (pure)."""
    names = list(dict.fromkeys(r.backend for r in results))
    batches = sorted({r.batch for r in results})
    cells = {(r.backend, r.batch): r.cell for r in results}
    rows = [[str(b), *(cells.get((n, b), "-") for n in names)] for b in batches]
    return ["batch", *names], rows


def to_csv(results: Sequence[SpeedResult]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_FIELDS)
    for r in results:
        t = r.timing
        writer.writerow(
            [
                r.backend,
                r.batch,
                f"{t.mean_ms:.4f}" if t else "",
                f"{t.median_ms:.4f}" if t else "",
                f"{t.p99_ms:.4f}" if t else "",
                f"{t.throughput:.1f}" if t else "",
                r.note,
            ]
        )
    return out.getvalue()


def agreement(backends: Sequence[Backend], sample: np.ndarray) -> float | None:
    """max |PyTorch CPU - ONNX Runtime CPU| on `sample`, when both run."""
    by_name = {b.name: b for b in backends if b.make is not None}
    if "PyTorch CPU" not in by_name or "ONNX Runtime CPU" not in by_name:
        return None
    torch_out = by_name["PyTorch CPU"].make(sample)()  # type: ignore[misc]
    ort_out = by_name["ONNX Runtime CPU"].make(sample)()  # type: ignore[misc]
    a = np.asarray(torch_out.detach().numpy() if hasattr(torch_out, "detach") else torch_out)
    b = np.asarray(ort_out[0])
    return float(np.max(np.abs(a - b)))
