"""`dltk bench converge`: the recap reading, the summaries, the bulk model and the run order.

The deploy and the sandbox calls are TEST DOUBLES here (recorded in a list); the real bench runs
ansible-playbook on sandbox hosts (docs/testing.md, `dltk bench converge`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml
from play_double import Play

from dltk.bench.converge import (
    Run,
    changed_count,
    cold_and_converged,
    differences,
    manifest_with_bulk,
    ratios,
    report_lines,
    small_and_big,
    spread,
    write_bulk_onnx,
)
from dltk.errors import DltkError
from dltk.manifest.load import load_manifest

RECAP = """
PLAY RECAP *********************************************************************
dltk-bench-1               : ok=120  changed=3    unreachable=0    failed=0    skipped=40
localhost                  : ok=4    changed=0    unreachable=0    failed=0    skipped=0
"""


def test_changed_count_reads_the_hosts_recap_line():
    assert changed_count(RECAP, "dltk-bench-1") == 3
    assert changed_count(RECAP, "localhost") == 0
    # A host the recap does not name has no count (a play that never reached it).
    assert changed_count(RECAP, "dltk-bench-2") is None


def test_changed_count_takes_the_last_recap_of_the_output():
    later = RECAP.replace("changed=3", "changed=0")
    assert changed_count(RECAP + later, "dltk-bench-1") == 0


def test_spread_is_median_min_max():
    s = spread([0.5, 0.2, 0.3])
    assert (s.median, s.low, s.high) == (0.3, 0.2, 0.5)
    assert s.text(2) == "0.30 (min 0.20, max 0.50, n=3)"
    with pytest.raises(DltkError, match="no measurement"):
        spread([])


def test_ratios_pair_rounds_in_order():
    assert ratios([100.0, 200.0], [10.0, 50.0]) == [0.1, 0.25]
    with pytest.raises(DltkError, match="2 cold runs but 1 converged"):
        ratios([100.0, 200.0], [10.0])


def test_differences_are_big_minus_small_pair_by_pair():
    assert differences([10.0, 12.0], [13.0, 11.0]) == [3.0, -1.0]
    with pytest.raises(DltkError, match="1 runs with the small model but 2"):
        differences([10.0], [1.0, 2.0])


@pytest.mark.parametrize("external", [False, True], ids=["embedded", "external data"])
def test_the_bulk_model_has_the_asked_size_and_adds_the_column_sums(tmp_path, external):
    import onnx
    import onnxruntime as ort
    from onnx import numpy_helper

    path = tmp_path / "bulk.onnx"
    size = write_bulk_onnx(path, 2.0, external=external)
    data = tmp_path / "bulk.onnx.data"
    weights = data.stat().st_size if external else path.stat().st_size
    assert 2 * 2**20 <= weights < 2 * 2**20 + 4096
    assert data.exists() == external
    assert size == sum(f.stat().st_size for f in tmp_path.iterdir())
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = np.arange(32, dtype=np.float32).reshape(2, 16)
    (y,) = session.run(None, {"input": x})
    weight = numpy_helper.to_array(onnx.load(str(path)).graph.initializer[0], str(tmp_path))
    assert weight.shape == (2 * 2**20 // 64, 16)
    assert weight.dtype == np.float32
    np.testing.assert_allclose(y, x + weight.sum(axis=0, keepdims=True), rtol=1e-5)


def test_the_bench_manifest_is_the_base_plus_the_bulk_model(tmp_path):
    base = tmp_path / "repo" / "models.yml"
    base.parent.mkdir()
    (tmp_path / "build").mkdir()
    write_bulk_onnx(tmp_path / "build" / "m.onnx", 0.01)
    base.write_text(
        "models:\n  - name: m\n    onnx: ../build/m.onnx\n    batch: {max: 4}\n"
        "    runtimes: [tensorrt, onnxruntime]\n"
    )
    out = manifest_with_bulk(base, tmp_path / "build" / "m.onnx", tmp_path / "bench" / "b.yml")
    doc = yaml.safe_load(out.read_text())
    assert doc["models"][0]["onnx"] == str((tmp_path / "build" / "m.onnx").resolve())
    # Served like the base's first model, without TensorRT engines (none on the sandbox).
    assert doc["models"][1]["runtimes"] == ["onnxruntime"]
    manifest = load_manifest(out)
    assert [m.name for m in manifest.models] == ["m", "bulk"]


class Host:
    def __init__(self, name: str) -> None:
        self.name = name


def _double(calls: list[str], rc: int = 0):
    """A deploy TEST DOUBLE: records the call, answers with a recap of changed=0."""

    def deploy(host: Host) -> Play:
        calls.append(f"deploy {host.name}")
        return Play(rc, float(len(calls)), RECAP.replace("dltk-bench-1", host.name))

    def fresh(host: Host) -> None:
        calls.append(f"fresh {host.name}")

    return deploy, fresh


def test_each_round_is_a_fresh_host_a_cold_and_a_converged_deploy():
    calls: list[str] = []
    deploy, fresh = _double(calls)
    cold, converged = cold_and_converged(Host("a"), 2, deploy, fresh, lambda _m: None)
    assert calls == ["fresh a", "deploy a", "deploy a"] * 2
    assert [r.seconds for r in cold] == [2.0, 5.0]
    assert [r.seconds for r in converged] == [3.0, 6.0]
    assert [r.changed for r in converged] == [3, 3]


def test_size_runs_alternate_after_one_cold_deploy_each():
    calls: list[str] = []
    deploy, fresh = _double(calls)
    small, big = small_and_big(Host("s"), Host("b"), 2, deploy, fresh, lambda _m: None)
    assert calls == ["fresh s", "deploy s", "fresh b", "deploy b"] + ["deploy s", "deploy b"] * 2
    assert len(small) == len(big) == 2


def test_a_failed_play_stops_the_bench_with_its_failure():
    deploy, fresh = _double([], rc=2)
    with pytest.raises(DltkError, match="cold deploy.yml on a failed: the TEST DOUBLE's failure"):
        cold_and_converged(Host("a"), 1, deploy, fresh, lambda _m: None)


def test_report_prints_the_ratio_and_the_extra_seconds():
    lines = report_lines(
        [Run(100.0, 30), Run(120.0, 30)],
        [Run(20.0, 0), Run(12.0, 0)],
        [Run(10.0, 0), Run(11.0, 0)],
        [Run(14.0, 0), Run(12.0, 1)],
        big_mb=1024,
    )
    assert "ratio converged/cold: 0.15 (min 0.10, max 0.20, n=2)" in lines
    assert "changed= of the converged runs: 0, 0" in lines
    assert "changed= of the size runs: 0, 0, 0, 1" in lines
    assert "extra s converged with the 1024 MB model: 2.5 (min 1.0, max 4.0, n=2)" in lines


def test_the_bench_inventory_keeps_its_hosts_apart():
    root = Path(__file__).resolve().parents[2]
    doc = yaml.safe_load((root / "inventory" / "bench.yml").read_text())
    hosts = doc["all"]["children"]["sandbox"]["hosts"]
    assert list(hosts) == ["dltk-bench-1", "dltk-bench-small", "dltk-bench-big"]
    ports = [v[k] for v in hosts.values() for k in v if k.endswith("_port")]
    assert len(ports) == len(set(ports)) == 9


def test_a_size_check_alone_prints_only_its_lines():
    lines = report_lines([], [], [Run(10.0, 0)], [Run(12.5, 0)], big_mb=1024)
    assert lines[0] == "converged s with a 1 MB model: 10.0 (min 10.0, max 10.0, n=1)"
    assert not any(line.startswith("ratio converged/cold") for line in lines)
