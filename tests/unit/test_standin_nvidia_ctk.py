"""The STAND-IN nvidia-ctk of the molecule scenarios is faithful at its interface (issue 14 item 4).

It is a test double (molecule/nvidia_container_toolkit/templates/standin-nvidia-ctk.py.j2), rendered
here the way the scenarios render it and run as a program. The real tool's forms and messages are in
the project's gpu-interfaces.md section 7 (7a --version, 7b runtime configure, 7d cdi generate
without a driver) and in cmd/nvidia-ctk/runtime/configure/configure.go of
https://github.com/NVIDIA/nvidia-container-toolkit (flags, defaults).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jinja2
import pytest

TEMPLATE = (
    Path(__file__).resolve().parents[2]
    / "molecule/nvidia_container_toolkit/templates/standin-nvidia-ctk.py.j2"
)


@pytest.fixture
def ctk(tmp_path: Path):
    """Render the STAND-IN for version 1.17.8-1 with a driver GPU list under tmp_path/gpus."""
    source = jinja2.Template(TEMPLATE.read_text()).render(
        version="1.17.8-1", driver_gpus_dir=str(tmp_path / "gpus")
    )
    program = tmp_path / "nvidia-ctk"
    program.write_text(source)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, str(program), *args], capture_output=True, text=True, check=False
        )

    return run


def test_version_prints_the_upstream_version_and_a_commit_line_that_says_stand_in(ctk) -> None:
    out = ctk("--version")
    assert out.returncode == 0
    lines = out.stdout.splitlines()
    assert lines[0] == "NVIDIA Container Toolkit CLI version 1.17.8"  # 7a: no Debian revision
    assert lines[1].startswith("commit: STAND-IN")


@pytest.mark.parametrize(
    "form",
    [
        ["--runtime=docker", "--config={cfg}", "--set-as-default"],
        ["--runtime", "docker", "--config", "{cfg}", "--nvidia-set-as-default"],
        ["--config={cfg}", "--set-as-default=true"],  # docker is the default runtime
    ],
    ids=["equals", "separate-values", "default-runtime-flag"],
)
def test_runtime_configure_adds_the_nvidia_runtime_and_keeps_other_keys(
    ctk, tmp_path: Path, form: list[str]
) -> None:
    cfg = tmp_path / "daemon.json"
    cfg.write_text(json.dumps({"log-driver": "json-file", "runtimes": {"crun": {"path": "crun"}}}))
    out = ctk("runtime", "configure", *[arg.format(cfg=cfg) for arg in form])
    assert out.returncode == 0, out.stderr
    assert json.loads(cfg.read_text()) == {
        "log-driver": "json-file",
        "runtimes": {
            "crun": {"path": "crun"},
            "nvidia": {"args": [], "path": "nvidia-container-runtime"},
        },
        "default-runtime": "nvidia",
    }
    assert f"Loading config from {cfg}" in out.stderr
    assert f"Wrote updated config to {cfg}" in out.stderr
    assert "It is recommended that docker daemon be restarted." in out.stderr
    assert "STAND-IN" in out.stderr


def test_runtime_configure_without_set_as_default_leaves_the_default_runtime(
    ctk, tmp_path: Path
) -> None:
    cfg = tmp_path / "absent" / "daemon.json"
    cfg.parent.mkdir()
    out = ctk("runtime", "configure", "--runtime=docker", f"--config={cfg}")
    assert out.returncode == 0, out.stderr
    assert "Config file does not exist; using empty config" in out.stderr  # 7b, second case
    assert json.loads(cfg.read_text()) == {
        "runtimes": {"nvidia": {"args": [], "path": "nvidia-container-runtime"}}
    }


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--runtime=podman"], "unrecognized runtime 'podman'"),
        (["--no-such-flag"], "flag provided but not defined: -no-such-flag"),
        (["--config"], "flag needs an argument: -config"),
    ],
)
def test_runtime_configure_refuses_what_the_real_one_refuses(
    ctk, tmp_path: Path, args: list[str], message: str
) -> None:
    out = ctk("runtime", "configure", *args)
    assert out.returncode == 1
    assert message in out.stderr
    assert "STAND-IN" in out.stderr


def test_cdi_generate_without_a_driver_fails_like_the_real_one(ctk, tmp_path: Path) -> None:
    spec = tmp_path / "nvidia.yaml"
    out = ctk("cdi", "generate", f"--output={spec}")
    assert out.returncode == 1
    assert "Auto-detected mode as 'nvml'" in out.stderr
    assert "failed to generate CDI spec: failed to create device CDI specs: " in out.stderr
    assert "failed to initialize NVML: ERROR_LIBRARY_NOT_FOUND" in out.stderr  # 7d
    assert not spec.exists()


def test_cdi_generate_with_the_driver_writes_a_spec_labeled_stand_in(ctk, tmp_path: Path) -> None:
    (tmp_path / "gpus" / "0000:01:00.0").mkdir(parents=True)
    spec = tmp_path / "nvidia.yaml"
    out = ctk("cdi", "generate", "--output", str(spec))
    assert out.returncode == 0, out.stderr
    assert "Generated CDI spec with version 0.5.0" in out.stderr
    assert spec.read_text().startswith("# STAND-IN CDI spec")
    assert "kind: nvidia.com/gpu" in spec.read_text()


def test_an_unknown_command_fails(ctk) -> None:
    out = ctk("system", "create-dev-char-symlinks")
    assert out.returncode == 1
    assert "STAND-IN does not implement" in out.stderr
