"""Helpers shared by the integration tests: paths, the `dltk` subprocess, the artifacts."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
MANIFEST = REPO_ROOT / "model_repo" / "models.yml"
MODELS_DIR = REPO_ROOT / "build" / "models"
DLTK = (sys.executable, "-m", "dltk")
MODEL = "mnist"
READY_TIMEOUT_S = 120.0


def run_dltk(*args: str, timeout: float = 300.0) -> subprocess.CompletedProcess[str]:
    """`dltk ARGS` in a subprocess (bounded), output captured as text."""
    return subprocess.run(
        [*DLTK, *args], capture_output=True, text=True, timeout=timeout, cwd=REPO_ROOT
    )


def require_ok(proc: subprocess.CompletedProcess[str]) -> None:
    if proc.returncode != 0:
        pytest.fail(
            f"{' '.join(map(str, proc.args))} exited {proc.returncode}:\n"
            f"{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
        )


@dataclass(frozen=True)
class Artifacts:
    onnx: Path
    samples: Path

    def load_samples(self) -> tuple[np.ndarray, np.ndarray]:
        with np.load(self.samples) as data:
            return data["inputs"], data["labels"]
