"""Nsight Systems around a command: `nsys profile`, then `nsys stats` summaries (CSV).

Command building and the skip decision are pure; `run_nsys` is the bounded I/O shell. A host
where nsys cannot trace gets a result with status "skipped" and the reason, not a failure.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dltk.errors import DltkError

GPU_TRACE = "cuda,nvtx,osrt"
CPU_TRACE = "nvtx,osrt"
GPU_STATS = ("cuda_api_sum", "cuda_gpu_kern_sum", "osrt_sum")
CPU_STATS = ("osrt_sum",)
NO_NSYS = (
    "nsys not found on PATH: the CPU variant of the DLTK image has no Nsight Systems "
    "(GPU hosts build it FROM the NGC PyTorch image, which ships nsys)"
)
# nsys output -> why it could not trace here (it then exits non-zero or writes no report).
CANNOT_TRACE = {
    "perf_event_paranoid": "the kernel forbids perf events here (perf_event_paranoid)",
    "not supported in a container": "nsys cannot trace inside this container",
    "Operation not permitted": "nsys lacks the permissions to trace (ptrace/perf events)",
    "No CUDA-capable device": "no CUDA-capable device is visible",
}


@dataclass(frozen=True)
class NsysOptions:
    out_dir: Path
    command: tuple[str, ...]
    name: str = "dltk"
    timeout_s: float = 600.0
    gpu: bool | None = None  # None: detect with nvidia-smi


def default_target(onnx: str) -> list[str]:
    """What to profile when no command is given: the speed bench on the model."""
    return [sys.executable, "-m", "dltk", "bench", "speed", "--onnx", onnx, "--batches", "1,32"]


def profile_command(nsys: str, opts: NsysOptions, gpu: bool) -> list[str]:
    """`nsys profile` argv (pure)."""
    if not opts.command:
        raise DltkError("nothing to profile: give a command after --")
    return [
        nsys,
        "profile",
        f"--output={opts.out_dir / opts.name}",
        "--force-overwrite=true",
        f"--trace={GPU_TRACE if gpu else CPU_TRACE}",
        "--sample=none",
        "--cpuctxsw=none",
        *opts.command,
    ]


def stats_command(nsys: str, report: Path, out_prefix: Path, gpu: bool) -> list[str]:
    """`nsys stats` argv writing one CSV per summary report (pure)."""
    return [
        nsys,
        "stats",
        "--quiet",
        f"--report={','.join(GPU_STATS if gpu else CPU_STATS)}",
        "--format=csv",
        f"--output={out_prefix}",
        str(report),
    ]


def cannot_trace_reason(output: str) -> str | None:
    """Why nsys could not trace on this host, from its output; None for other failures."""
    for needle, reason in CANNOT_TRACE.items():
        if needle in output:
            return reason
    return None


def skipped(reason: str, command: Sequence[str] = ()) -> dict[str, Any]:
    return {"status": "skipped", "reason": reason, "command": list(command), "stats": []}


def run_nsys(
    opts: NsysOptions,
    which: Callable[[str], str | None] = shutil.which,
    runner: Callable[..., Any] = subprocess.run,
) -> dict[str, Any]:
    """Profile `opts.command` under nsys (bounded); a result dict for profile.json."""
    nsys = which("nsys")
    if nsys is None:
        return skipped(NO_NSYS)
    gpu = opts.gpu
    if gpu is None:
        from dltk.bench.speed import detect_gpu

        gpu = detect_gpu().present
    cmd = profile_command(nsys, opts, gpu)
    opts.out_dir.mkdir(parents=True, exist_ok=True)
    # A report or summary of an earlier run must not pass for this run's.
    for old in [opts.out_dir / f"{opts.name}.nsys-rep", *opts.out_dir.glob(f"{opts.name}_*.csv")]:
        old.unlink(missing_ok=True)
    try:
        proc = runner(cmd, capture_output=True, text=True, timeout=opts.timeout_s)
    except subprocess.TimeoutExpired:
        raise DltkError(f"nsys profile did not finish within {opts.timeout_s:.0f}s") from None
    output = f"{proc.stdout}\n{proc.stderr}"
    report = opts.out_dir / f"{opts.name}.nsys-rep"
    if proc.returncode != 0 or not report.exists():
        reason = cannot_trace_reason(output)
        if reason:
            return skipped(reason, cmd)
        last = [ln.strip() for ln in output.splitlines() if ln.strip()][-1:] or ["(no output)"]
        raise DltkError(f"nsys profile failed (exit {proc.returncode}): {last[0]}")
    stats_cmd = stats_command(nsys, report, opts.out_dir / opts.name, gpu)
    try:
        runner(stats_cmd, capture_output=True, text=True, timeout=opts.timeout_s)
    except subprocess.TimeoutExpired:
        raise DltkError(f"nsys stats did not finish within {opts.timeout_s:.0f}s") from None
    stats = sorted(str(p) for p in opts.out_dir.glob(f"{opts.name}_*.csv"))
    trace = "GPU (cuda,nvtx,osrt)" if gpu else "CPU only (nvtx,osrt: no GPU)"
    return {
        "status": "ok",
        "reason": "",
        "trace": trace,
        "command": cmd,
        "report": str(report),
        "stats": stats,
    }
