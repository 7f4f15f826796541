"""dltk.fleet.rollouts: the scenarios, their verdicts and the summary, with a TEST DOUBLE for the
measurement (no fleet); the model variants they deploy, run in onnxruntime."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from dltk.drill.manifest import new_weights_variant, wrong_answers_variant
from dltk.fleet import rollouts


def _result(failed: int = 0, exit_code: int = 0) -> dict:
    phase = {
        "name": "",
        "sent": 10,
        "failed": 0,
        "p99_ms": 5.0,
        "versions": {"1/abcd0123": 10},
        "errors": {},
    }
    return {
        "exit": exit_code,
        "failed": failed,
        "sent": 30,
        "phases": [{**phase, "name": n} for n in ("before", "during", "after")],
        "served_at_end": {"1/abcd0123": 20},
    }


def test_a_scenario_passes_only_with_no_failed_request_and_the_expected_exit() -> None:
    plain = rollouts.Scenario("config", "x", ())
    failing = rollouts.Scenario("failing", "x", (), expect_failure=True)
    assert rollouts.verdict(plain, _result()) == "ok"
    assert rollouts.verdict(plain, _result(failed=2)) == "2 failed requests"
    assert rollouts.verdict(plain, _result(exit_code=2)) == "deploy.yml failed (exit 2)"
    assert rollouts.verdict(failing, _result(exit_code=2)) == "ok"
    assert rollouts.verdict(failing, _result()) == (
        "deploy.yml passed although verification should fail"
    )
    assert rollouts.verdict(failing, _result(failed=1, exit_code=2)) == "1 failed requests"
    # After a failed rollout only what answered before answers.
    new_answers = {**_result(exit_code=2), "served_at_end": {"1/ffff0000": 3, "1/abcd0123": 17}}
    new_answers["phases"][0]["versions"] = {"1/abcd0123": 10}
    assert rollouts.verdict(failing, new_answers) == "the failed version answers at the end"


def test_the_scenarios_each_roll_one_change_on_top_of_the_last(
    tiny_onnx: Path, tmp_path: Path
) -> None:
    root = tmp_path / "project"
    (root / "model_repo").mkdir(parents=True)
    (root / "build" / "models").mkdir(parents=True)
    (root / "build" / "models" / "mnist.onnx").write_bytes(tiny_onnx.read_bytes())
    (root / "model_repo" / "models.yml").write_text(
        yaml.safe_dump({"models": [{"name": "mnist", "onnx": "../build/models/mnist.onnx"}]})
    )
    names_seen: list[str] = []
    with pytest.MonkeyPatch.context() as mp:  # the variants' own test is below
        mp.setattr(rollouts, "new_weights_variant", lambda s, p: _copy(s, p, names_seen))
        mp.setattr(rollouts, "wrong_answers_variant", lambda s, p: _copy(s, p, names_seen))
        chosen = rollouts.scenarios(root, tmp_path / "work")
    assert [s.name for s in chosen] == list(rollouts.SCENARIOS)
    manifests = {s.name: dict(a.split("=", 1) for a in s.extra[1::2]) for s in chosen}
    config = yaml.safe_load(Path(manifests["config"]["dltk_manifest"]).read_text())
    assert config["models"][0]["dynamic_batching"] == rollouts.CONFIG_FIELDS["dynamic_batching"]
    version = yaml.safe_load(Path(manifests["version"]["dltk_manifest"]).read_text())
    assert version["models"][0]["onnx"].endswith("version/mnist.onnx")
    assert version["models"][0]["dynamic_batching"] == config["models"][0]["dynamic_batching"]
    assert manifests["container"]["dltk_manifest"] == manifests["version"]["dltk_manifest"]
    assert manifests["container"]["triton_server_shm_size"] == "288m"
    assert manifests["failing"]["triton_server_shm_size"] == "288m"
    assert [s.name for s in chosen if s.expect_failure] == ["failing"]
    assert chosen[-1].extra == ()


def _copy(source: Path, path: Path, seen: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(source.read_bytes())
    seen.append(path.name)
    return path


def test_run_measures_each_scenario_in_order_and_summarizes() -> None:
    chosen = [
        rollouts.Scenario("config", "a", ("-e", "x=1")),
        rollouts.Scenario("restore", "b", ()),
    ]
    commands: list[list[str]] = []

    def measure(command):  # TEST DOUBLE of the load around deploy.yml
        commands.append(list(command))
        return _result(failed=len(commands) - 1)

    results = rollouts.run(chosen, ["ansible-playbook", "deploy.yml"], measure, lambda m: None)
    assert commands == [
        ["ansible-playbook", "deploy.yml", "-e", "x=1"],
        ["ansible-playbook", "deploy.yml"],
    ]
    assert [r["verdict"] for r in results] == ["ok", "1 failed requests"]
    lines = rollouts.summary_lines(results)
    assert lines[1].split()[:3] == ["config", "30", "0"] and lines[1].endswith("ok")
    assert "5 / 5" in lines[1] and "v1/abcd0123: 20" in lines[2]


def test_the_new_version_answers_differently_but_names_the_same_classes(tmp_path: Path) -> None:
    import onnxruntime as ort

    source = _mnist_like(tmp_path / "m.onnx")
    new = new_weights_variant(source, tmp_path / "new.onnx", bias="b")
    wrong = wrong_answers_variant(source, tmp_path / "wrong.onnx", weight="w", bias="b")
    x = np.random.default_rng(0).random((32, 8), dtype=np.float32)

    def run(path: Path) -> np.ndarray:
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return session.run(None, {"x": x})[0]

    base, newer, worse = run(source), run(new), run(wrong)
    assert not np.allclose(base, newer)
    assert (base.argmax(1) == newer.argmax(1)).all()
    assert ((base.argmax(1) + 1) % 4 == worse.argmax(1)).all()  # every class the next one


def _mnist_like(path: Path) -> Path:
    """A tiny classifier y = x W^T + b (4 classes), the shape of mnist's last layer."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(1)
    w = numpy_helper.from_array(rng.normal(size=(4, 8)).astype(np.float32), "w")
    b = numpy_helper.from_array(rng.normal(size=(4,)).astype(np.float32), "b")
    graph = helper.make_graph(
        [helper.make_node("Gemm", ["x", "w", "b"], ["y"], transB=1)],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 4])],
        [w, b],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path
