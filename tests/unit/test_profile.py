"""profile/torch_profiler.py and profile/nsys.py: the torch profiler for real, nsys with test
doubles."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from dltk.errors import DltkError
from dltk.export.onnx_io import ExportResult
from dltk.profile.nsys import (
    NO_NSYS,
    NsysOptions,
    cannot_trace_reason,
    profile_command,
    run_nsys,
    stats_command,
)
from dltk.profile.torch_profiler import OpTime, TorchProfileOptions, op_rows, profile_model


def test_torch_profile_writes_a_chrome_trace_and_a_table(
    exported_mnist: tuple[Path, ExportResult], tmp_path: Path
) -> None:
    out, _ = exported_mnist
    result = profile_model(
        TorchProfileOptions(
            onnx=out / "mnist.onnx", out_dir=tmp_path, batch=4, steps=2, device="cpu"
        )
    )
    trace = json.loads(result.trace.read_text())
    assert any(e.get("name") == "dltk_inference" for e in trace["traceEvents"])
    names = {op.name for op in result.ops}
    assert "aten::conv2d" in names and "dltk_inference" in names
    assert result.device == "cpu" and "no GPU" in result.device_note
    assert "Self CPU" in result.table_file.read_text()


def test_torch_profile_rejects_bad_input(tmp_path: Path) -> None:
    with pytest.raises(DltkError, match="no such file"):
        profile_model(TorchProfileOptions(onnx=tmp_path / "none.onnx", out_dir=tmp_path))


def test_op_rows_sorted_by_cpu_total_with_device_column() -> None:
    ops = [OpTime("a", 1, 1.0, 1.0, None), OpTime("b", 2, 5.0, 0.5, 2.25)]
    rows = op_rows(ops, top=5)
    assert [r[0] for r in rows] == ["b", "a"]
    assert rows[0][4] == "2.250" and rows[1][4] == "n/a (no GPU)"
    assert len(op_rows(ops, top=1)) == 1


def test_nsys_commands(tmp_path: Path) -> None:
    opts = NsysOptions(out_dir=tmp_path, command=("python", "-m", "dltk", "bench", "speed"))
    gpu = profile_command("nsys", opts, gpu=True)
    assert gpu[:2] == ["nsys", "profile"] and "--trace=cuda,nvtx,osrt" in gpu
    assert f"--output={tmp_path / 'dltk'}" in gpu and gpu[-5:] == list(opts.command)
    assert "--trace=nvtx,osrt" in profile_command("nsys", opts, gpu=False)
    stats = stats_command("nsys", tmp_path / "dltk.nsys-rep", tmp_path / "dltk", gpu=True)
    assert "--report=cuda_api_sum,cuda_gpu_kern_sum,osrt_sum" in stats
    with pytest.raises(DltkError, match="nothing to profile"):
        profile_command("nsys", NsysOptions(out_dir=tmp_path, command=()), gpu=False)


def test_nsys_missing_is_a_skip_with_its_reason(tmp_path: Path) -> None:
    result = run_nsys(NsysOptions(out_dir=tmp_path, command=("true",)), which=lambda _n: None)
    assert result["status"] == "skipped" and result["reason"] == NO_NSYS


def test_nsys_that_cannot_trace_here_is_a_skip(tmp_path: Path) -> None:
    def nsys_without_perf_events(cmd: list[str], **_kw: object) -> subprocess.CompletedProcess[str]:
        """Test double: nsys refusing to trace, as on a host with perf_event_paranoid > 2."""
        return subprocess.CompletedProcess(cmd, 1, "", "perf_event_paranoid is 4: not allowed")

    opts = NsysOptions(out_dir=tmp_path, command=("true",), gpu=False)
    result = run_nsys(opts, which=lambda _n: "/opt/nsys", runner=nsys_without_perf_events)
    assert result["status"] == "skipped" and "perf_event_paranoid" in result["reason"]
    assert cannot_trace_reason("some other crash") is None


def test_nsys_success_collects_report_and_stats(tmp_path: Path) -> None:
    def fake_nsys(cmd: list[str], **_kw: object) -> subprocess.CompletedProcess[str]:
        """Test double for nsys: writes what nsys profile / nsys stats would write."""
        if cmd[1] == "profile":
            (tmp_path / "dltk.nsys-rep").write_bytes(b"rep")
        else:
            (tmp_path / "dltk_osrt_sum.csv").write_text("Time,Calls\n")
        return subprocess.CompletedProcess(cmd, 0, "", "")

    opts = NsysOptions(out_dir=tmp_path, command=("true",), gpu=False)
    result = run_nsys(opts, which=lambda _n: "/opt/nsys", runner=fake_nsys)
    assert result["status"] == "ok" and result["report"].endswith("dltk.nsys-rep")
    assert result["stats"] == [str(tmp_path / "dltk_osrt_sum.csv")]
    assert result["trace"].startswith("CPU only")


def test_nsys_other_failure_is_an_error(tmp_path: Path) -> None:
    def broken(cmd: list[str], **_kw: object) -> subprocess.CompletedProcess[str]:
        return subprocess.CompletedProcess(cmd, 2, "", "fatal: target crashed")

    opts = NsysOptions(out_dir=tmp_path, command=("true",), gpu=False)
    with pytest.raises(DltkError, match=r"nsys profile failed \(exit 2\): fatal: target crashed"):
        run_nsys(opts, which=lambda _n: "/opt/nsys", runner=broken)
