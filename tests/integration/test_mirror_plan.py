"""`dltk mirror plan -i inventory/sandbox.yml --json` for real: the project's sandbox inventory
resolved by ansible-playbook, the images asked of this machine's docker engine (present after
`make images`), the built wheel archive and models."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from dltk.release import CPU_TRITON

ROOT = Path(__file__).resolve().parents[2]


def test_plan_of_the_sandbox_inventory(tmp_path: Path) -> None:
    out = tmp_path / "bom.json"
    argv = [sys.executable, "-m", "dltk.cli", "mirror", "plan", "-i", "inventory/sandbox.yml"]
    started = time.monotonic()
    done = subprocess.run(
        [*argv, "--json", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    elapsed = time.monotonic() - started
    assert done.returncode == 0, done.stderr
    assert elapsed < 30, f"dltk mirror plan took {elapsed:.1f} s"
    bill = json.loads(out.read_text())
    assert bill["hosts"] == {
        "dltk-sandbox-1": {
            "class": "cpu",
            "distribution": "Debian",
            "image_variant": "cpu",
            "release": bill["hosts"]["dltk-sandbox-1"]["release"],
        }
    }
    images = {i["name"]: i for i in bill["images"]}
    triton = images[f"dltk/triton-cpu:{CPU_TRITON['tritonserver']}"]
    inspected = subprocess.run(
        ["docker", "image", "inspect", "--format", "{{.Size}} {{.Id}}", triton["name"]],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert triton["size"] == int(inspected[0]) and triton["extra"]["id"] == inspected[1]
    assert triton["carry"] and images["dltk/debian-base:bookworm"]["size"] > 0
    # the docker modules' Python package, the toolkit build's apt step (images/dltk/apt-packages*)
    toolkit_apt = ["libb64-0d", "ca-certificates", "python3", "python3-venv"]
    assert [i["name"] for i in bill["packages"]] == ["python3-requests", *toolkit_apt]
    archive = ROOT / "build" / "toolkit-wheels.tar"
    wheels = sum(i["size"] for i in bill["wheels"])
    assert 0.9 * archive.stat().st_size < wheels <= archive.stat().st_size
    assert {i["name"] for i in bill["models"]} >= {"mnist: mnist.onnx"}
    assert bill["totals"]["all"]["unknown"] == 5  # the packages: sized by dltk mirror apt
    assert "to carry in" in done.stdout and "JSON written to" in done.stdout
