"""Fault drills: the pure parts (recovery time, counts, table, section rewrite, play errors,
manifest override, drill selection, inventory lookup, the client's request). The drills
themselves run against a real sandbox host in `make drill`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import pytest
import yaml

from dltk.cli import main
from dltk.drill.cli import SHORT, host_var, select
from dltk.drill.load import zero_input
from dltk.drill.manifest import big_variant, broken_variant, corrupt_copy, override, unfit_warmup
from dltk.drill.report import (
    DrillRow,
    Request,
    as_json,
    count,
    files_lost,
    markdown_table,
    play_failure,
    recovery_seconds,
    replace_section,
    rows_from_json,
)
from dltk.errors import DltkError


def log(*pairs: tuple[float, bool]) -> list[Request]:
    return [Request(t, ok) for t, ok in pairs]


def test_recovery_is_first_success_after_the_last_failure() -> None:
    requests = log(
        (9.0, True),
        (10.5, False),
        (11.0, False),
        (12.0, True),
        (12.5, False),
        (13.25, True),
        (14.0, True),
    )
    assert recovery_seconds(requests, fault_t=10.0) == 3.25


def test_recovery_is_zero_when_no_request_failed_after_the_fault() -> None:
    requests = log((9.0, False), (10.5, True), (11.0, True))
    assert recovery_seconds(requests, fault_t=10.0) == 0.0


def test_not_recovered_when_no_success_follows_the_last_failure() -> None:
    assert recovery_seconds(log((10.5, True), (11.0, False)), fault_t=10.0) is None
    assert recovery_seconds(log((9.0, True)), fault_t=10.0) is None


def test_count_sent_and_failed() -> None:
    assert count(log((1, True), (2, False), (3, False))) == (3, 2)


def test_files_lost_names_missing_changed_and_added_files() -> None:
    before = {"mnist/1/model.onnx": "a", "mnist/config.pbtxt": "b", "x": "c"}
    after = {"mnist/1/model.onnx": "z", "mnist/config.pbtxt": "b", "y": "d"}
    assert files_lost(before, after) == [
        "files missing: x",
        "files differ: mnist/1/model.onnx",
        "files added: y",
    ]
    assert files_lost(before, dict(before)) == []


def test_row_passes_only_when_recovered_and_nothing_lost() -> None:
    assert DrillRow("kill", "f", 1.0, 10, 2).passed
    assert not DrillRow("kill", "f", None, 10, 2).passed
    assert not DrillRow("kill", "f", 1.0, 10, 0, lost=["not READY: mnist"]).passed


def test_markdown_table_has_one_row_per_drill_with_its_figures() -> None:
    rows = [
        DrillRow("kill", "tritonserver killed", 4.5, 120, 37, [], ["restarted | twice"]),
        DrillRow("rm", "container removed", None, 50, 50, ["not READY: mnist"], []),
    ]
    table = markdown_table(rows).splitlines()
    assert len(table) == 4
    assert (
        table[2]
        == "| kill | tritonserver killed | 4.50 | 120 | 37 | nothing | restarted \\| twice |"
    )
    assert table[3] == "| rm | container removed | not recovered | 50 | 50 | not READY: mnist |  |"


def test_rows_survive_a_json_round_trip() -> None:
    rows = [DrillRow("kill", "f", 1.5, 10, 2, ["x"], ["y"]), DrillRow("rm", "g", None, 3, 3)]
    assert rows_from_json(as_json(rows)) == rows


DOC = """\
# Reliability

intro

## Fault drills

(old table)

## Bad input

| input | message |
"""


def test_replace_section_rewrites_only_the_fault_drills_section() -> None:
    out = replace_section(DOC, "new table\n")
    assert out == DOC.replace("(old table)\n", "new table\n")
    assert replace_section(out, "new table\n") == out  # rewriting again changes nothing


def test_replace_section_appends_when_the_section_is_missing() -> None:
    out = replace_section("# Reliability\n", "table")
    assert out == "# Reliability\n\n## Fault drills\n\ntable\n"


PLAY_OUTPUT = """\
TASK [triton_server : Assert the new ports are free] ***
fatal: [dltk-drill-1]: FAILED! => changed=false
  assertion: __triton_server_portcheck is skipped
  evaluated_to: false
  msg: >-
    Cannot publish 127.0.0.1:4000:4000: another process holds the
    port (address already in use).
PLAY RECAP ***
"""


def test_play_failure_reads_the_folded_msg_of_the_first_failed_task() -> None:
    assert play_failure(PLAY_OUTPUT) == (
        "Cannot publish 127.0.0.1:4000:4000: another process holds the port "
        "(address already in use)."
    )


def test_play_failure_reads_the_json_result_format() -> None:
    line = 'fatal: [d]: FAILED! => {"changed": false, "msg": "Model  mnist failed: bad"}'
    assert play_failure("TASK [x]\n" + line + "\n") == "Model mnist failed: bad"


def test_play_failure_reads_indented_json() -> None:
    output = 'fatal: [d]: FAILED! => {\n    "changed": false,\n    "msg": "load failed"\n}\n'
    assert play_failure(output) == "load failed"


def test_play_failure_reads_a_msg_on_the_fatal_line_and_nothing_without_failure() -> None:
    assert play_failure('fatal: [h]: FAILED! => changed=false msg: "bad ONNX"') == "bad ONNX"
    assert play_failure("ok: [h]\nPLAY RECAP\n") == ""


def test_override_replaces_one_models_onnx_and_makes_paths_absolute(tmp_path: Path) -> None:
    doc = {
        "models": [
            {"name": "mnist", "onnx": "../build/m.onnx", "export": "mnist", "samples": "s.npz"},
            {"name": "other", "onnx": "o.onnx"},
        ],
        "pipelines": [{"name": "p", "model": "mnist"}],
    }
    base = tmp_path / "model_repo"
    out = override(doc, base, "mnist", Path("/drill/bad.onnx"))
    assert out["models"][0] == {
        "name": "mnist",
        "onnx": "/drill/bad.onnx",
        "samples": str((base / "s.npz").resolve()),
    }
    assert out["models"][1]["onnx"] == str((base / "o.onnx").resolve())
    assert out["pipelines"] == doc["pipelines"]
    assert doc["models"][0]["onnx"] == "../build/m.onnx"  # the input is not modified
    with pytest.raises(DltkError, match="no model 'nope'"):
        override(doc, base, "nope", Path("/x.onnx"))


def test_override_with_fields_changes_only_that_models_entry(tmp_path: Path) -> None:
    doc = {"models": [{"name": "mnist", "onnx": "/m.onnx", "export": "mnist"}, {"name": "o"}]}
    out = override(doc, tmp_path, "mnist", fields=unfit_warmup("input", [1, 28, 28]))
    assert out["models"][0] == {
        "name": "mnist",
        "onnx": "/m.onnx",
        "export": "mnist",  # no new ONNX: the model is still built as before
        "warmup": {"batch_size": 1, "data": "zero", "dims": {"input": [1, 28, 29]}},
    }
    assert out["models"][1] == {"name": "o"}


def test_config_drills_warmup_is_refused_before_any_host(
    build_onnx: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The config drill's rollout: its warmup does not fit mnist's input, so the repository
    rendered from it does not validate (Triton would not load it)."""
    onnx_file = build_onnx(tmp_path / "mnist.onnx")  # mnist's interface: input [B,1,28,28]
    entry = {"name": "mnist", "onnx": str(onnx_file), "batch": {"max": 8}}
    doc = {"models": [{**entry, "runtimes": ["onnxruntime"]}]}
    bad = override(doc, tmp_path, "mnist", fields=unfit_warmup("input", [1, 28, 28]))
    manifest = tmp_path / "models.yml"
    manifest.write_text(yaml.safe_dump(bad))
    out = str(tmp_path / "repo")
    assert main(["repo", "render", "--manifest", str(manifest), "--out", out]) != 0
    assert "dims of input 'input' are [1, 28, 29]" in capsys.readouterr().err


def test_bad_versions_are_what_their_drills_need(tiny_onnx: Path, tmp_path: Path) -> None:
    corrupt = corrupt_copy(tiny_onnx, tmp_path / "c.onnx")
    assert corrupt.stat().st_size == tiny_onnx.stat().st_size // 2
    with pytest.raises(onnx.onnx_cpp2py_export.checker.ValidationError):
        onnx.checker.check_model(str(corrupt))
    broken = onnx.load(str(broken_variant(tiny_onnx, tmp_path / "b.onnx")))
    original = onnx.load(str(tiny_onnx))
    assert broken.graph.node[-1].op_type == "NoSuchOp"
    assert [o.name for o in broken.graph.output] == [o.name for o in original.graph.output]
    big = big_variant(tiny_onnx, tmp_path / "big.onnx", extra_mb=2)
    assert big.stat().st_size > tiny_onnx.stat().st_size + 2 * 1024 * 1024
    onnx.checker.check_model(str(big))


@pytest.fixture
def tiny_onnx(tmp_path: Path) -> Path:
    from onnx import TensorProto, helper, numpy_helper

    weight = numpy_helper.from_array(np.ones((4, 2), dtype=np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])],
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 2])],
        [weight],
    )
    path = tmp_path / "tiny.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def test_select_runs_all_but_the_engine_drill_unless_asked() -> None:
    chosen, skipped = select([], restart_engine=False)
    assert "engine" not in chosen and "kill" in chosen
    assert skipped and "--restart-engine" in skipped[0]
    chosen, skipped = select(["engine", "kill"], restart_engine=True)
    assert chosen == ["kill", "engine"] and skipped == []
    assert select(["short"], restart_engine=False)[0] == list(SHORT)
    with pytest.raises(DltkError, match="unknown drill nope"):
        select(["nope"], restart_engine=False)


def test_host_var_finds_the_hosts_variable_in_a_nested_inventory() -> None:
    inventory = {
        "all": {
            "children": {
                "sandbox": {"hosts": {"d1": {"triton_server_http_port": 18100}, "d2": None}}
            }
        }
    }
    assert host_var(inventory, "d1", "triton_server_http_port") == 18100
    assert host_var(inventory, "d2", "triton_server_http_port") is None
    assert host_var(inventory, "d3", "triton_server_http_port") is None


def test_zero_input_is_one_sample_of_the_models_input() -> None:
    name, shape, datatype, array = zero_input(
        {
            "name": "mnist",
            "inputs": [{"name": "input", "datatype": "FP32", "shape": [-1, 1, 28, 28]}],
        }
    )
    assert (name, shape, datatype) == ("input", [1, 1, 28, 28], "FP32")
    assert array.shape == (1, 1, 28, 28) and array.dtype == np.float32 and not array.any()
    with pytest.raises(DltkError, match="2 inputs"):
        zero_input({"name": "m", "inputs": [{}, {}]})
    with pytest.raises(DltkError, match="BYTES"):
        zero_input({"name": "m", "inputs": [{"name": "s", "datatype": "BYTES", "shape": [1]}]})
