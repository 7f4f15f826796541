"""Live-state drift of the loaded models, repaired by triton_server's sync step.

A real tritonserver (`dltk serve --model-control-mode=explicit`) serves MNIST and its BLS
pipeline from a repository rendered by `dltk repo render`. The play is triton_server's
sync-models.yml (the step main.yml runs after the server is ready) on the control node
(`triton_server_load_via: control_node`), with the wanted models as main.yml computes them
(`dltk_models_loaded`). Drift is made through the server's repository API, as an
operator (or an attacker without the key, on a server without restrictions) would:
a manifest model unloaded is loaded again, a model loaded by hand is unloaded, each run
reported as changed and the next run as changed=0; a model still loaded after its directory
was removed is unloaded too. The container drifts (stopped, removed)
are tested on the deployed sandbox (molecule/default/side_effect.yml).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from dltk.serve.server import BackgroundServer, background_server

from .support import (
    READY_TIMEOUT_S,
    Artifacts,
    changed_count,
    require_ok,
    run_dltk,
    run_playbook,
)

pytestmark = pytest.mark.integration

WANTED = ["mnist", "mnist_classifier"]
PLAYBOOK = """\
- name: Repair drift of the loaded models
  hosts: all
  gather_facts: false
  tasks:
    - name: Sync the server with the wanted models
      ansible.builtin.include_role:
        name: triton_server
        tasks_from: sync-models.yml
"""


class Drift:
    def __init__(self, base: Path, repo: Path, server: BackgroundServer) -> None:
        self.base, self.repo, self.server = base, repo, server

    def play(self, wanted: list[str] = WANTED) -> subprocess.CompletedProcess[str]:
        variables = {
            "triton_server_load_via": "control_node",
            "triton_server_http_port": self.server.opts.http_port,
            "triton_server_model_repo_dir": str(self.repo),
            "triton_server_dltk": str(Path(sys.executable).parent / "dltk"),
            "dltk_models_loaded": wanted,
            # `dltk serve` here restricts no API (molecule default drifts the restricted server).
            "triton_server_restricted_apis": [],
        }
        return run_playbook(self.base, PLAYBOOK, variables)

    def post(self, path: str) -> int:
        request = urllib.request.Request(
            f"http://{self.server.http_url}{path}", data=b"{}", method="POST"
        )
        with urllib.request.urlopen(request, timeout=120) as response:
            return int(response.status)

    def ready(self, model: str) -> bool:
        url = f"http://{self.server.http_url}/v2/models/{model}/ready"
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                return response.status == 200
        except OSError:  # HTTPError 400 (not ready) is an OSError too
            return False


def copy_model(repo: Path, source: str, name: str) -> None:
    shutil.copytree(repo / source, repo / name)
    config = repo / name / "config.pbtxt"
    config.write_text(config.read_text().replace(f'name: "{source}"', f'name: "{name}"', 1))


@pytest.fixture(scope="module")
def drift(artifacts: Artifacts, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Drift]:
    base = tmp_path_factory.mktemp("drift")
    manifest = base / "models.yml"
    manifest.write_text(
        "models:\n"
        f"  - {{name: mnist, onnx: {artifacts.onnx}, batch: {{max: 16}}, "
        "runtimes: [python-onnxruntime], dynamic_batching: {}}\n"
        "pipelines:\n"
        "  - {name: mnist_classifier, model: mnist, mean: 0.1307, std: 0.3081}\n"
    )
    repo = base / "model_repo"
    require_ok(run_dltk("repo", "render", "--manifest", str(manifest), "--out", str(repo),
                        "--runtimes", "python-onnxruntime"))  # fmt: skip
    # Models outside the wanted list that an operator may load by hand: mnist under other names.
    for name in ("mnist_extra", "mnist_gone"):
        copy_model(repo, "mnist", name)
    extra_args = ["--model-control-mode=explicit"]
    with background_server(repo, base / "tritonserver.log", READY_TIMEOUT_S,
                           extra_serve_args=extra_args) as server:  # fmt: skip
        require_ok(run_dltk("repo", "load", "--url", server.http_url, "--repo", str(repo), *WANTED))
        yield Drift(base, repo, server)


def test_a_server_in_step_is_left_alone(drift: Drift) -> None:
    run = drift.play()
    assert run.returncode == 0, run.stdout[-3000:]
    assert changed_count(run.stdout) == 0
    assert "loaded none; unloaded none; already serving mnist, mnist_classifier" in run.stdout


def test_an_unloaded_manifest_model_is_loaded_and_reported_as_a_change(drift: Drift) -> None:
    assert drift.post("/v2/repository/models/mnist/unload") == 200
    assert not drift.ready("mnist")

    run = drift.play()
    assert run.returncode == 0, run.stdout[-3000:]
    assert changed_count(run.stdout) == 1
    assert "loaded mnist; unloaded none" in run.stdout
    assert drift.ready("mnist")

    again = drift.play()
    assert again.returncode == 0, again.stdout[-3000:]
    assert changed_count(again.stdout) == 0


def test_a_model_loaded_by_hand_is_unloaded_and_reported_as_a_change(drift: Drift) -> None:
    assert drift.post("/v2/repository/models/mnist_extra/load") == 200
    assert drift.ready("mnist_extra")

    run = drift.play()
    assert run.returncode == 0, run.stdout[-3000:]
    assert changed_count(run.stdout) == 1
    assert "loaded none; unloaded mnist_extra" in run.stdout
    assert not drift.ready("mnist_extra")
    assert drift.ready("mnist") and drift.ready("mnist_classifier")

    again = drift.play()
    assert again.returncode == 0, again.stdout[-3000:]
    assert changed_count(again.stdout) == 0


def test_a_loaded_model_whose_directory_is_gone_is_unloaded(drift: Drift) -> None:
    # The repository index lists directories only: this model is loaded but no longer in it.
    assert drift.post("/v2/repository/models/mnist_gone/load") == 200
    shutil.rmtree(drift.repo / "mnist_gone")
    assert drift.ready("mnist_gone")

    run = drift.play()
    assert run.returncode == 0, run.stdout[-3000:]
    assert changed_count(run.stdout) == 1
    assert "loaded none; unloaded mnist_gone" in run.stdout
    assert not drift.ready("mnist_gone")


def test_a_wanted_model_that_cannot_load_fails_the_play_with_one_line(drift: Drift) -> None:
    run = drift.play([*WANTED, "no_such_model"])
    assert run.returncode != 0
    assert "no_such_model has no config.pbtxt; render the repository first" in run.stdout
    # Nothing else was touched.
    assert drift.ready("mnist") and drift.ready("mnist_classifier")
