"""The fast path of the roles (plugins/module_utils/dltk_role_state.py on the host,
plugins/action/role_state.py on the control node): a role ends early only when its inputs and
everything it observes on the host are what its last full run recorded (issue 12 item 7).

The docker engine and dpkg are replaced by test doubles here (FakeEngine, a fake runner): the
real ones answer in the sandbox runs (molecule default, tests/integration/test_fast_path.py).
"""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path
from typing import Any

import pytest
from role_plugins import load_role_plugin

rs = load_role_plugin("plugins/module_utils/dltk_role_state.py")


class FakeEngine:
    """Test double of the docker engine API: {path: answer}; anything else is a 404 (None)."""

    def __init__(self, answers: dict[str, dict[str, Any]]) -> None:
        self.answers = answers

    def get(self, path: str) -> dict[str, Any] | None:
        return self.answers.get(path)


SERVER = {
    "Id": "c1",
    "Image": "sha256:i1",
    "State": {"Running": True, "StartedAt": "2026-12-02T04:00:00Z"},
}


def fake_dpkg(installed: dict[str, str]):
    """Test double of dpkg-query -W: installed packages answer, the others are not found."""

    def runner(argv):
        assert argv[:2] == ["dpkg-query", "-W"]
        lines = [f"{n}\tii \t{installed[n]}" for n in argv[4:] if n in installed]
        return (0 if len(lines) == len(argv) - 4 else 1), "\n".join(lines) + "\n"

    return runner


def seen_container(server: dict[str, Any] | None) -> str:
    engine = FakeEngine({"/containers/tritonserver/json": server} if server else {})
    return rs.observe_container("tritonserver", engine)


def test_a_container_observes_by_id_image_running_and_start_time_only() -> None:
    extra = {
        **SERVER,
        "Name": "/tritonserver",
        "State": {**SERVER["State"], "Pid": 42, "Health": {"Status": "x"}},
    }
    assert seen_container(SERVER) == seen_container(extra)


@pytest.mark.parametrize(
    "server",
    [
        {**SERVER, "Id": "c2"},  # recreated
        {**SERVER, "Image": "sha256:i2"},  # another image
        {**SERVER, "State": {**SERVER["State"], "StartedAt": "2026-12-02T05:00:00Z"}},  # restarted
        {**SERVER, "State": {**SERVER["State"], "Running": False}},  # stopped
        None,  # gone
    ],
)
def test_a_recreated_restarted_stopped_or_missing_container_observes_differently(server) -> None:
    assert seen_container(server) != seen_container(SERVER)


def test_images_and_networks_observe_by_id() -> None:
    engine = FakeEngine(
        {"/images/dltk%2Ftoolkit%3Atest/json": {"Id": "sha256:a"}, "/networks/dltk": {"Id": "n1"}}
    )
    assert rs.observe_image("dltk/toolkit:test", engine) == "sha256:a"
    assert rs.observe_image("other:1", engine) == rs.ABSENT
    assert rs.observe_network("dltk", engine) == "n1"


def write(path: Path, text: str, mtime_ns: int | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    if mtime_ns is not None:
        os.utime(path, ns=(mtime_ns, mtime_ns))


def test_a_tree_listing_sees_added_removed_resized_and_touched_files(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    write(repo / "mnist" / "config.pbtxt", "a", 10**18)
    write(repo / "mnist" / "1" / "model.onnx", "x" * 100, 10**18)
    before = rs.observe_tree(str(repo))
    assert before == rs.observe_tree(str(repo)), "reading changes nothing"
    write(repo / "mnist" / "1" / "model.onnx", "x" * 100, 2 * 10**18)
    touched = rs.observe_tree(str(repo))
    write(repo / "mnist" / "1" / "model.onnx", "x" * 101, 2 * 10**18)
    resized = rs.observe_tree(str(repo))
    write(repo / "m2" / "config.pbtxt", "b", 10**18)
    added = rs.observe_tree(str(repo))
    (repo / "m2" / "config.pbtxt").unlink()
    (repo / "m2").rmdir()
    removed_again = rs.observe_tree(str(repo))
    assert len({before, touched, resized, added}) == 4
    assert removed_again == resized
    assert rs.observe_tree(str(tmp_path / "none")) == rs.ABSENT


def test_bytecode_caches_written_at_run_time_are_not_part_of_a_tree(tmp_path: Path) -> None:
    """Triton's python backend imports model.py from the repository and leaves __pycache__."""
    write(tmp_path / "mnist_classifier" / "1" / "model.py", "x = 1\n")
    before = rs.observe_tree(str(tmp_path))
    write(tmp_path / "mnist_classifier" / "1" / "__pycache__" / "model.cpython-310.pyc", "b")
    write(tmp_path / "mnist_classifier" / "1" / "stray.pyc", "b")
    assert rs.observe_tree(str(tmp_path)) == before


def test_a_tree_listing_does_not_read_contents(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 1 GB model costs a converged run what a 1 MB one does: no file is opened."""
    write(tmp_path / "m" / "model.onnx", "x" * 1000)

    def no_open(*args, **kwargs):
        raise AssertionError("observe_tree opened a file")

    monkeypatch.setattr("builtins.open", no_open)
    assert rs.observe_tree(str(tmp_path)) != rs.ABSENT


def test_a_file_observes_content_mode_and_owner(tmp_path: Path) -> None:
    path = tmp_path / "daemon.json"
    write(path, '{"log-driver": "json-file"}')
    path.chmod(0o644)
    first = rs.observe_file(str(path))
    path.chmod(0o600)
    assert rs.observe_file(str(path)) != first
    path.chmod(0o644)
    assert rs.observe_file(str(path)) == first
    write(path, '{"log-driver": "local"}')
    assert rs.observe_file(str(path)) != first
    assert rs.observe_file(str(tmp_path / "gone.json")) == rs.ABSENT


def test_packages_are_observed_by_version_and_absent_ones_named() -> None:
    seen = rs.observe_packages(
        ["docker.io", "python3-requests"], fake_dpkg({"python3-requests": "2.28.1"})
    )
    assert seen == {"docker.io": rs.ABSENT, "python3-requests": "2.28.1"}


def test_an_unknown_kind_of_observation_is_refused_with_the_known_ones() -> None:
    with pytest.raises(ValueError, match="unknown kind.*sockets.*known: files, trees"):
        rs.observe({"sockets": ["/run/x"]}, api=FakeEngine({}))


def test_converged_only_when_inputs_and_every_observation_are_the_recorded_ones(
    tmp_path: Path,
) -> None:
    write(tmp_path / "repo" / "m" / "config.pbtxt", "a")
    spec = {"trees": [str(tmp_path / "repo")], "containers": ["tritonserver"]}
    engine = FakeEngine({"/containers/tritonserver/json": SERVER})
    seen = rs.observe(spec, api=engine)
    record = {"inputs": "i1", "observed": seen, "outputs": {}, "at": "2026-12-02T04:00:00Z"}
    assert rs.compare(record, "i1", seen) == (
        True,
        "nothing changed since the run of 2026-12-02T04:00:00Z",
    )
    assert rs.compare(None, "i1", seen)[0] is False
    converged, why = rs.compare(record, "i2", seen)
    assert not converged and "inputs changed" in why
    restarted = FakeEngine(
        {"/containers/tritonserver/json": {**SERVER, "State": {"StartedAt": "later"}}}
    )
    converged, why = rs.compare(record, "i1", rs.observe(spec, api=restarted))
    assert not converged and why.endswith("container tritonserver")
    write(tmp_path / "repo" / "m" / "config.pbtxt", "ab")
    converged, why = rs.compare(record, "i1", rs.observe(spec, api=engine))
    assert not converged and f"tree {tmp_path / 'repo'}" in why


def test_a_record_written_again_with_the_same_content_is_no_change() -> None:
    old = {"inputs": "i", "observed": {"files": {"/a": "x"}}, "outputs": {"k": 1}, "at": "t1"}
    assert rs.same_record(old, {**old, "at": "t2"})
    assert not rs.same_record(old, {**old, "outputs": {"k": 2}})
    assert not rs.same_record(None, old)


def test_a_damaged_record_is_no_record(tmp_path: Path) -> None:
    (tmp_path / "r.json").write_text("{not json")
    (tmp_path / "l.json").write_text("[1]")
    assert rs.read_record(str(tmp_path / "r.json")) is None
    assert rs.read_record(str(tmp_path / "l.json")) is None
    assert rs.read_record(str(tmp_path / "none.json")) is None
    (tmp_path / "ok.json").write_text(json.dumps({"inputs": "i"}))
    assert rs.read_record(str(tmp_path / "ok.json")) == {"inputs": "i"}


# --- the control node's half (plugins/action/role_state.py) ---
# Loaded inside each test: it imports ansible, which must not happen while pytest collects
# (torch's dynamo in test_bench_speed breaks on it).
@functools.cache
def action_plugin() -> Any:
    return load_role_plugin("plugins/action/role_state.py")


def test_the_inputs_digest_changes_with_any_variable_fact_code_or_file() -> None:
    action = action_plugin()
    base = (
        {"docker_engine_log_driver": "json-file"},
        {"architecture": "x86_64"},
        "code1",
        [["/m.yml", 10, 1]],
    )
    digest = action.inputs_digest(*base)
    assert digest == action.inputs_digest(*base)
    assert digest != action.inputs_digest({"docker_engine_log_driver": "local"}, *base[1:])
    assert digest != action.inputs_digest(base[0], {"architecture": "aarch64"}, *base[2:])
    assert digest != action.inputs_digest(*base[:2], "code2", base[3])
    assert digest != action.inputs_digest(*base[:3], [["/m.yml", 10, 2]])


def test_the_record_takes_the_control_node_files_as_the_role_left_them() -> None:
    """triton_server generates the API key on the control node on the first deploy: the record
    must hold the key's file as it is after the run, or the next run sees other inputs."""
    action = action_plugin()
    settings = ({"triton_server_http_port": 8000}, {"architecture": "x86_64"}, "code1")
    before = action.inputs_digest(*settings, [["/secrets/h/triton-api-key", "absent"]])
    after = action.with_files(before, [["/secrets/h/triton-api-key", 41, 5]])
    assert after == action.inputs_digest(*settings, [["/secrets/h/triton-api-key", 41, 5]])
    assert after.split(":")[0] == before.split(":")[0] and after != before


def test_the_code_digest_covers_content_and_leaves_caches_out(tmp_path: Path) -> None:
    action = action_plugin()
    write(tmp_path / "roles" / "r" / "tasks" / "main.yml", "---\n")
    first = action.code_digest(tmp_path, ["roles"])
    write(tmp_path / "roles" / "r" / "__pycache__" / "x.pyc", "bytes")
    assert action.code_digest(tmp_path, ["roles"]) == first
    write(tmp_path / "roles" / "r" / "tasks" / "main.yml", "---\n# changed\n")
    assert action.code_digest(tmp_path, ["roles"]) != first


def test_the_manifest_brings_its_models_files_and_what_sits_beside_them(tmp_path: Path) -> None:
    action = action_plugin()
    models = tmp_path / "build" / "models"
    write(models / "mnist.onnx", "onnx")
    write(models / "mnist.samples.npz", "npz")
    write(models / "plays.log", "a bench's log")
    manifest = tmp_path / "model_repo" / "models.yml"
    write(
        manifest,
        "models:\n  - name: mnist\n    onnx: ../build/models/mnist.onnx\n"
        "    samples: ../build/models/mnist.samples.npz\n",
    )
    m = models.resolve()
    assert action.manifest_paths(str(manifest)) == [
        str(manifest), str(m / "mnist.onnx"), str(m / "mnist.samples.npz")]  # fmt: skip
    listed = action.paths_digest(action.manifest_paths(str(manifest)))
    write(models / "plays.log", "the log grew")
    assert action.paths_digest(action.manifest_paths(str(manifest))) == listed, "not the model's"
    write(models / "mnist.onnx.data", "weights")
    assert action.paths_digest(action.manifest_paths(str(manifest))) != listed, "external data"


def test_a_run_limited_by_the_roles_own_tags_is_not_recorded() -> None:
    action = action_plugin()
    assert (
        action.limited({"ansible_run_tags": ["all"], "ansible_skip_tags": []}, "triton_server")
        == []
    )
    assert action.limited({}, "triton_server") == []
    run = {"ansible_run_tags": ["triton_server_run"]}
    assert action.limited(run, "triton_server") == ["triton_server_run"]
    assert action.limited(run, "triton_verify") == []
    skip = {"ansible_run_tags": ["all"], "ansible_skip_tags": ["triton_verify_run", "notest"]}
    assert action.limited(skip, "triton_verify") == ["triton_verify_run"]
    assert action.limited({"ansible_skip_tags": ["always"]}, "docker_engine") == ["always"]


def test_the_inputs_are_the_roles_and_the_shared_variables_but_not_what_one_run_changed() -> None:
    """dltk_model_repo_changed is [] on a converged run and a list on the run that changed a
    model: as an input, the run after every change would run in full once more."""
    action = action_plugin()

    class Templar:  # TEST DOUBLE of the action's templating: values are taken as they are
        _value = staticmethod(lambda value: value)

    variables = {
        "triton_server_http_port": 8000,
        "dltk_manifest": "/m.yml",
        "dltk_model_repo_changed": ["mnist"],
        "dltk_model_repo_removed": [],
        "dltk_fast_path": True,
        "triton_verify_full": False,
        "_triton_server_args": ["--x"],
        # The probe's answer (playbooks/serve.yml asks it first): set in the recording run only.
        "triton_server_converged": False,
    }
    got = action.ActionModule._role_vars(Templar(), variables, ["triton_server", "dltk"])
    assert got == {"triton_server_http_port": 8000, "dltk_manifest": "/m.yml"}
