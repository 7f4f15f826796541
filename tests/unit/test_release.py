"""The Triton release is one setting: `dltk_ngc_release` moves every image tag, the GPU toolkit
base and the engine key.

The roles' defaults are rendered by ansible-playbook (tests/unit/data/release-defaults.yml loads
the roles' own defaults files and the release file, roles/dltk_ngc/defaults/main.json), once with
the project's value and once moved with `-e dltk_ngc_release=25.08`; the facts they must match
come from scripts/dltk/release.py (`dltk release`).
"""

from __future__ import annotations

import json
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from local_ansible import run_on_localhost

from dltk.cli import main
from dltk.errors import DltkError
from dltk.release import RELEASES, get_release

ROOT = Path(__file__).resolve().parents[2]
PLAY = ROOT / "tests" / "unit" / "data" / "release-defaults.yml"
RELEASE_FILE = ROOT / "roles" / "dltk_ngc" / "defaults" / "main.json"
BIN = Path(sys.executable).parent


def render(tmp_path: Path, manifest: Path, *extra: str, release_file: Path = RELEASE_FILE):
    out = tmp_path / f"rendered-{len(list(tmp_path.glob('rendered-*')))}.json"
    run = run_on_localhost(
        "ansible-playbook",
        str(PLAY),
        # Only localhost: the project inventory's group_vars would define the release.
        "-e",
        f"release_file={release_file}",
        "-e",
        f"manifest={manifest}",
        "-e",
        f"out={out}",
        "-e",
        "dltk_image_variant=gpu",
        *extra,
        env={"ANSIBLE_CONFIG": str(ROOT / "ansible.cfg")},
        timeout=300,
        cwd=ROOT,
    )
    return run, (json.loads(out.read_text()) if run.returncode == 0 else None)


@pytest.fixture
def manifest(tmp_path: Path, build_onnx: Callable[..., Path]) -> Path:
    build_onnx(tmp_path / "models" / "mnist.onnx")
    path = tmp_path / "models.yml"
    path.write_text(
        "models:\n  - name: mnist\n    onnx: models/mnist.onnx\n"
        "    batch: {min: 1, opt: 16, max: 64}\n    runtimes: [tensorrt, onnxruntime]\n"
    )
    return path


def expected(ngc: str) -> dict[str, str]:
    release = get_release(ngc)
    return {
        "dltk_ngc_release": ngc,
        "trt_engines_image": release.tensorrt_image,
        "triton_server_image": release.tritonserver_image,
        "trt_engines_triton_image": release.tritonserver_image,
        "dltk_image_base": release.pytorch_image,
    }


def test_moving_the_release_moves_every_tag_the_toolkit_base_and_the_key(
    tmp_path: Path, manifest: Path
) -> None:
    project = yaml.safe_load(RELEASE_FILE.read_text())["dltk_ngc_release"]
    assert project == "24.10"
    run, default = render(tmp_path, manifest)
    assert run.returncode == 0, run.stdout[-2000:]
    run, moved = render(tmp_path, manifest, "-e", "dltk_ngc_release=25.08")
    assert run.returncode == 0, run.stdout[-2000:]
    for rendered, ngc in ((default, "24.10"), (moved, "25.08")):
        assert {k: v for k, v in rendered.items() if k != "plan"} == expected(ngc)
        assert rendered["plan"]["tensorrt"] == get_release(ngc).tensorrt
    assert default["triton_server_image"] == "nvcr.io/nvidia/tritonserver:24.10-py3"
    assert moved["dltk_image_base"] == "nvcr.io/nvidia/pytorch:25.08-py3"
    old_keys = {e["key"] for e in default["plan"]["engines"]}
    new_keys = {e["key"] for e in moved["plan"]["engines"]}
    assert old_keys and new_keys and old_keys.isdisjoint(new_keys)


def test_an_unset_release_stops_with_the_setting_named(tmp_path: Path, manifest: Path) -> None:
    empty = tmp_path / "no-release.yml"
    empty.write_text("---\n{}\n")
    run, _ = render(tmp_path, manifest, release_file=empty)
    assert run.returncode != 0
    assert "dltk_ngc_release is not set" in run.stdout + run.stderr
    assert "roles/dltk_ngc/defaults/main.json" in " ".join((run.stdout + run.stderr).split())


def test_every_release_has_its_facts(capsys: pytest.CaptureFixture[str]) -> None:
    assert sorted(RELEASES) == ["24.10", "25.08"]
    old, new = get_release("24.10"), get_release("25.08")
    assert (old.triton, old.tensorrt, old.python, old.cuda) == (
        "2.51.0",
        "10.5.0",
        "3.10",
        "12.6.2",
    )
    assert (new.triton, new.tensorrt, new.python, new.cuda) == (
        "2.60.0",
        "10.13.2",
        "3.12",
        "13.0.0",
    )
    assert (new.min_driver_branch, new.min_compute_capability) == (575, "7.5")
    assert main(["release", "--ngc", "25.08", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["tensorrt_image"] == "nvcr.io/nvidia/tensorrt:25.08-py3"
    assert data["tritonclient"] == "2.60.0"
    with pytest.raises(DltkError, match="not in dltk's release table"):
        get_release("23.01")


def test_a_role_gets_the_release_without_the_project_inventory(tmp_path: Path) -> None:
    """trt_engines on a bare `-i localhost,` (no group_vars): its dependency on dltk_ngc brings
    the release file's dltk_ngc_release, and the image defaults derive from it."""
    play = tmp_path / "play.yml"
    out = tmp_path / "out.json"
    play.write_text(
        textwrap.dedent(
            f"""\
            - hosts: localhost
              gather_facts: false
              tasks:
                - ansible.builtin.import_role: {{name: trt_engines, tasks_from: preflight}}
                - ansible.builtin.copy:
                    dest: {out}
                    mode: "0644"
                    content: >-
                      {{{{ {{'release': dltk_ngc_release, 'image': trt_engines_image}}
                         | to_json }}}}
            """
        )
    )
    run = run_on_localhost(
        "ansible-playbook", str(play), env={"ANSIBLE_CONFIG": None}, cwd=tmp_path
    )
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    ngc = yaml.safe_load(RELEASE_FILE.read_text())["dltk_ngc_release"]
    assert json.loads(out.read_text()) == {
        "release": ngc,
        "image": get_release(ngc).tensorrt_image,
    }
