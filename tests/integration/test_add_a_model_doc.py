"""docs/add-a-model.md: its worked example runs as written (every ```bash block, in order)."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from .support import REPO_ROOT

pytestmark = pytest.mark.integration

DOC = REPO_ROOT / "docs" / "add-a-model.md"


def example_script() -> str:
    """The ```bash blocks of the "Worked example" section, joined in order."""
    text = DOC.read_text()
    section = text.split("## Worked example", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"^```bash\n(.*?)^```$", section, flags=re.M | re.S)
    assert len(blocks) >= 4, "the worked example lost its commands"
    return "\n".join(blocks)


def free_port_triple() -> int:
    """A port P with P, P+1 and P+2 free on loopback right now."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            base = probe.getsockname()[1]
        if base + 2 > 65535:
            continue
        try:
            sockets = [socket.socket() for _ in range(3)]
            for offset, sock in enumerate(sockets):
                sock.bind(("127.0.0.1", base + offset))
            return base
        except OSError:
            continue
        finally:
            for sock in sockets:
                sock.close()
    raise AssertionError("no three consecutive free ports")


def test_worked_example_runs_as_written(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "EXAMPLE": str(tmp_path / "example"),
        "PORT": str(free_port_triple()),
        "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}",
    }
    proc = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", example_script()],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        cwd=tmp_path,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-4000:]
    assert "resnet18.onnx.data" in output  # the ls of the export
    assert "dims: [ 3, 224, 224 ]" in output
    assert "max_batch_size: 0" in output and "dims: [ 1, 3, 224, 224 ]" in output
    assert "resnet18_trt_fp16" in output and "--maxShapes=input:8x3x224x224 --fp16" in output
    assert "resnet18" in output and "all checks passed" in output
