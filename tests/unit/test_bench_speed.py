"""bench/speed.py: GPU detection, backends, tables and CSV (CPU runtimes for real)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from dltk.bench.speed import (
    NO_GPU,
    Backend,
    GpuStatus,
    agreement,
    detect_gpu,
    ort_backends,
    run_speed,
    table_rows,
    to_csv,
    torch_backends,
    torch_model_from_onnx,
)
from dltk.errors import DltkError
from dltk.export.onnx_io import ExportResult
from dltk.gpu_facts import SMI_ARGV

# `nvidia-smi --query-gpu=index,name,pci.bus_id,compute_cap --format=csv,noheader` (TEST DOUBLE
# output; names and bus ids from docs/gpu-interfaces.md 1c, 1g, 1e).
SMI = """\
0, NVIDIA A100-SXM4-80GB, 00000000:68:00.0, 8.0
1, NVIDIA H100 80GB HBM3, 00000000:18:00.0, 9.0
"""
NO_GPU_HOST = GpuStatus(False, "nvidia-smi not found")
# A GPU host as `nvidia-smi -L` would describe it: the CPU-only onnxruntime and torch here have
# no CUDA, so the GPU columns must say which piece is missing, not "no GPU".
FAKE_GPU_HOST = GpuStatus(True, "NVIDIA A100 (test double)")


def test_detect_gpu_with_a_test_double_for_nvidia_smi(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("dltk.gpu_facts.shutil.which", lambda _name: "/usr/bin/nvidia-smi")

    def fake_smi(cmd: list[str], **_kw: object) -> subprocess.CompletedProcess[str]:
        assert cmd == list(SMI_ARGV)  # the query the roles' nvidia_gpu_facts module runs
        return subprocess.CompletedProcess(cmd, 0, SMI, "")

    status = detect_gpu(runner=fake_smi)
    assert status == GpuStatus(True, "NVIDIA A100-SXM4-80GB, NVIDIA H100 80GB HBM3")

    def failing_smi(cmd: list[str], **_kw: object) -> subprocess.CompletedProcess[str]:
        return subprocess.CompletedProcess(cmd, 9, "", "NVIDIA-SMI has failed")

    assert detect_gpu(runner=failing_smi) == GpuStatus(
        False, "nvidia-smi exit 9: NVIDIA-SMI has failed"
    )
    monkeypatch.setattr("dltk.gpu_facts.shutil.which", lambda _name: None)
    assert detect_gpu(runner=fake_smi) == NO_GPU_HOST


def test_detect_gpu_on_this_host_matches_the_driver_s_gpu_list() -> None:
    """Whatever this machine has: a GPU is reported exactly when the NVIDIA driver lists one
    (/proc/driver/nvidia/gpus/<bus id>, read independently of nvidia-smi) and nvidia-smi exists;
    the detail names the GPUs, or says why none."""
    driver_gpus = Path("/proc/driver/nvidia/gpus")
    listed = sorted(driver_gpus.iterdir()) if driver_gpus.is_dir() else []
    expected = bool(listed) and shutil.which("nvidia-smi") is not None
    status = detect_gpu()
    print(f"hardware: driver lists {len(listed)} GPU(s); detect_gpu: {status}")
    assert status.present == expected
    assert status.detail


def test_torch_model_uses_the_onnx_weights(exported_mnist: tuple[Path, ExportResult]) -> None:
    out, _ = exported_mnist
    backends = torch_backends(out / "mnist.onnx", NO_GPU_HOST) + ort_backends(
        out / "mnist.onnx", NO_GPU_HOST
    )
    sample = np.random.default_rng(0).random((4, 1, 28, 28), dtype=np.float32)
    diff = agreement(backends, sample)
    assert diff is not None and diff < 1e-4


def test_torch_model_rejects_another_onnx(tiny_onnx: Path) -> None:
    with pytest.raises(DltkError, match="is not the MNIST CNN"):
        torch_model_from_onnx(tiny_onnx)
    names = {b.name: b.na for b in torch_backends(tiny_onnx, NO_GPU_HOST)}
    assert names["PyTorch CPU"] == "n/a (no PyTorch model for this ONNX)"


def test_gpu_columns_say_why_they_are_empty(tiny_onnx: Path) -> None:
    cpu_host = {b.name: b.na for b in ort_backends(tiny_onnx, NO_GPU_HOST)}
    assert cpu_host == {
        "ONNX Runtime CPU": "",
        "ONNX Runtime GPU": NO_GPU,
        "TensorRT": NO_GPU,
    }
    gpu_host = {b.name: b.na for b in ort_backends(tiny_onnx, FAKE_GPU_HOST)}
    assert gpu_host["ONNX Runtime GPU"] == "n/a (onnxruntime without CUDA)"
    assert gpu_host["TensorRT"] == "n/a (TensorRT not installed)"


def test_run_speed_times_real_onnxruntime_and_tabulates(tiny_onnx: Path) -> None:
    backends = [*ort_backends(tiny_onnx, NO_GPU_HOST), Backend("Fake GPU", na=NO_GPU)]
    sample = np.zeros((1, 1, 28, 28), np.float32)
    results = run_speed(backends, (1, 4), sample, budget_s=0.05, max_iterations=5)
    header, rows = table_rows(results)
    assert header == ["batch", "ONNX Runtime CPU", "ONNX Runtime GPU", "TensorRT", "Fake GPU"]
    assert [r[0] for r in rows] == ["1", "4"]
    assert float(rows[1][1]) > 0 and rows[1][2] == NO_GPU
    csv_lines = to_csv(results).splitlines()
    assert csv_lines[0].startswith("backend,batch,ms_per_batch")
    cpu_batch4 = next(line for line in csv_lines if line.startswith("ONNX Runtime CPU,4,"))
    assert float(cpu_batch4.split(",")[5]) > 0  # samples/s
    assert any(line.endswith(f",{NO_GPU}") or NO_GPU in line for line in csv_lines)
