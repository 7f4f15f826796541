"""Integration fixtures: a real tritonserver (`dltk serve`) on free loopback ports.

The session renders the model repository from model_repo/models.yml with the
python-onnxruntime runtime (the local tritonserver from nvidia-pytriton has only the python
backend), from the `dltk export` artifacts in build/models (exported first when missing),
starts `dltk serve` on it, waits for /v2/health/ready (bounded) and stops it at the end.
Everything binds and talks to 127.0.0.1 only.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from dltk.serve.server import BackgroundServer, background_server

from .support import MANIFEST, MODEL, MODELS_DIR, READY_TIMEOUT_S, Artifacts, require_ok, run_dltk


@pytest.fixture(scope="session")
def artifacts() -> Artifacts:
    onnx = MODELS_DIR / f"{MODEL}.onnx"
    if not onnx.exists():
        require_ok(run_dltk("export", "--model", MODEL, "--out", str(MODELS_DIR), timeout=1200))
    return Artifacts(onnx=onnx, samples=MODELS_DIR / f"{MODEL}.samples.npz")


@pytest.fixture(scope="session")
def rendered_repo(artifacts: Artifacts, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("repo") / "models"
    require_ok(
        run_dltk(
            "repo",
            "render",
            "--manifest",
            str(MANIFEST),
            "--out",
            str(out),
            "--runtimes",
            "python-onnxruntime",
        )
    )
    assert (out / MODEL / "config.pbtxt").is_file(), f"render made no {MODEL}/config.pbtxt"
    return out


@pytest.fixture(scope="session")
def triton(
    rendered_repo: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[BackgroundServer]:
    log = tmp_path_factory.mktemp("serve") / "tritonserver.log"
    with background_server(rendered_repo, log, ready_timeout=READY_TIMEOUT_S) as server:
        yield server
