"""PyTorch profiler over the exported MNIST CNN: operator table and chrome trace."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dltk.errors import DltkError

MAX_STEPS = 1000


@dataclass(frozen=True)
class TorchProfileOptions:
    onnx: Path
    out_dir: Path
    batch: int = 32
    steps: int = 10
    warmup: int = 3
    device: str = "auto"  # auto | cpu | cuda

    def check(self) -> None:
        if not self.onnx.is_file():
            raise DltkError(f"--onnx {self.onnx}: no such file; run `dltk export` first")
        if not 1 <= self.batch <= 4096 or not 1 <= self.steps <= MAX_STEPS or self.warmup < 0:
            raise DltkError(
                f"--batch 1..4096, --steps 1..{MAX_STEPS} and --warmup >= 0 "
                f"(got {self.batch}, {self.steps}, {self.warmup})"
            )


@dataclass(frozen=True)
class OpTime:
    """One operator's totals over the profiled steps (times in ms)."""

    name: str
    calls: int
    cpu_total_ms: float
    self_cpu_ms: float
    device_ms: float | None  # None when nothing ran on a device


@dataclass(frozen=True)
class TorchProfile:
    ops: list[OpTime]
    trace: Path
    table_file: Path
    device: str
    device_note: str


def op_rows(ops: Sequence[OpTime], top: int) -> list[list[str]]:
    """Table rows for the `top` operators by CPU total (pure)."""
    ordered = sorted(ops, key=lambda o: o.cpu_total_ms, reverse=True)[: max(top, 1)]
    return [
        [
            o.name,
            str(o.calls),
            f"{o.cpu_total_ms:.3f}",
            f"{o.self_cpu_ms:.3f}",
            "n/a (no GPU)" if o.device_ms is None else f"{o.device_ms:.3f}",
        ]
        for o in ordered
    ]


def _device_us(event: Any) -> float:
    for attr in ("device_time_total", "cuda_time_total"):
        value = getattr(event, attr, None)
        if value is not None:
            return float(value)
    return 0.0


def profile_model(opts: TorchProfileOptions) -> TorchProfile:
    import torch
    from torch.profiler import ProfilerActivity, profile, record_function

    from dltk.bench.speed import torch_model_from_onnx

    opts.check()
    cuda = torch.cuda.is_available()
    if opts.device == "cuda" and not cuda:
        raise DltkError("--device cuda: torch sees no CUDA GPU on this host; use --device cpu")
    device = "cuda" if opts.device == "cuda" or (opts.device == "auto" and cuda) else "cpu"
    model = torch_model_from_onnx(opts.onnx).to(device)
    x = torch.rand(opts.batch, 1, 28, 28, device=device)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device == "cuda" else [])
    with torch.inference_mode():
        for _ in range(opts.warmup):
            model(x)
        with profile(activities=activities, record_shapes=True) as prof:
            for _ in range(opts.steps):
                with record_function("dltk_inference"):
                    model(x)
                if device == "cuda":
                    torch.cuda.synchronize()
    try:
        opts.out_dir.mkdir(parents=True, exist_ok=True)
        trace = opts.out_dir / f"torch_trace_{device}.json"
        prof.export_chrome_trace(str(trace))
        sort_key = "cuda_time_total" if device == "cuda" else "cpu_time_total"
        table_file = opts.out_dir / f"torch_profile_{device}.txt"
        table_file.write_text(prof.key_averages().table(sort_by=sort_key, row_limit=30) + "\n")
    except OSError as exc:
        raise DltkError(f"cannot write to {opts.out_dir}: {exc.strerror}") from None
    ops = [
        OpTime(
            name=e.key,
            calls=int(e.count),
            cpu_total_ms=float(e.cpu_time_total) / 1000,
            self_cpu_ms=float(e.self_cpu_time_total) / 1000,
            device_ms=_device_us(e) / 1000 if device == "cuda" else None,
        )
        for e in prof.key_averages()
    ]
    note = "" if device == "cuda" else "n/a (no GPU): CPU only"
    return TorchProfile(ops, trace, table_file, device, note)
