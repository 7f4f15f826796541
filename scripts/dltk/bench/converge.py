"""`dltk bench converge`: what a converged re-run of deploy.yml costs next to a cold deploy.

Round after round (interleaved, so drift of a shared machine reaches both sides alike), a sandbox
host of the bench's own is created fresh, deploy.yml runs on it (cold: images built, host empty),
then again with nothing changed (converged). Each round gives converged/cold; the bench prints the
median and the spread of that ratio and the changed= count of every converged run.

`--big-mb N` adds the size check: two more hosts serve the manifest plus one extra model whose ONNX
file holds about 1 MB (one host) or N MB (the other); after one cold deploy each, their converged
runs alternate, and the bench prints the median extra time the big model costs a converged run.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from dltk.bench.timing import spread
from dltk.errors import DltkError

# A host's line of an ansible-playbook PLAY RECAP (bench fleet reads it too).
RECAP_LINE = re.compile(r"^(?P<host>\S+)\s*:\s*ok=(?P<ok>\d+)\s+changed=(?P<changed>\d+)", re.M)

# The extra model of the size check: y = x + sum over rows of W (W: rows x 16 float32).
BULK_MODEL = "bulk"
BULK_WIDTH = 16


def changed_count(output: str, host: str) -> int | None:
    """changed= of `host` in an ansible-playbook PLAY RECAP (None when the recap has no line)."""
    found = [int(m["changed"]) for m in RECAP_LINE.finditer(output) if m["host"] == host]
    return found[-1] if found else None


def ratios(cold: Sequence[float], converged: Sequence[float]) -> list[float]:
    """converged/cold of each round (rounds paired in order)."""
    if len(cold) != len(converged):
        raise DltkError(f"{len(cold)} cold runs but {len(converged)} converged runs")
    return [c / k for k, c in zip(cold, converged, strict=True) if k > 0]


def differences(small: Sequence[float], big: Sequence[float]) -> list[float]:
    """big - small of each pair of converged runs."""
    if len(small) != len(big):
        raise DltkError(f"{len(small)} runs with the small model but {len(big)} with the big one")
    return [b - s for s, b in zip(small, big, strict=True)]


def write_bulk_onnx(path: Path, megabytes: float, external: bool = False) -> int:
    """An ONNX model whose weight W (rows x 16 float32) is about `megabytes` MB: output = input +
    the column sums of W. The weight sits inside the model (a protobuf holds at most 2 GB), or
    with `external` in the data file `<name>.data` beside it, as bigger models ship. Returns the
    bytes of the model's files."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rows = max(1, int(megabytes * 1024 * 1024 / (4 * BULK_WIDTH)))
    data = path.with_name(path.name + ".data")
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    with data.open("wb") as f:  # in chunks: a GB of weights never sits in memory twice
        for start in range(0, rows, 1 << 20):
            chunk = rng.random((min(1 << 20, rows - start), BULK_WIDTH), dtype=np.float32)
            f.write((chunk / np.float32(rows)).astype(np.float32).tobytes())
    weight = TensorProto(name="W", data_type=TensorProto.FLOAT, dims=[rows, BULK_WIDTH])
    if external:
        weight.data_location = TensorProto.EXTERNAL
        for key, value in (
            ("location", data.name),
            ("offset", "0"),
            ("length", str(data.stat().st_size)),
        ):
            entry = weight.external_data.add()
            entry.key, entry.value = key, value
    else:
        weight.raw_data = data.read_bytes()
        data.unlink()
    graph = helper.make_graph(
        [
            helper.make_node("ReduceSum", ["W", "axes"], ["colsum"], keepdims=1),
            helper.make_node("Add", ["input", "colsum"], ["output"]),
        ],
        BULK_MODEL,
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", BULK_WIDTH])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", BULK_WIDTH])],
        [weight, numpy_helper.from_array(np.array([0]), "axes")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path.stat().st_size + (data.stat().st_size if external else 0)


def manifest_with_bulk(base: Path, bulk_onnx: Path, out: Path) -> Path:
    """`base` with its paths made absolute plus the bulk model (served like the base's models)."""
    doc: dict[str, Any] = yaml.safe_load(base.read_text())
    for model in doc.get("models", []):
        for key in ("onnx", "samples"):
            if key in model:
                model[key] = str((base.parent / model[key]).resolve())
    runtimes = [r for r in doc["models"][0].get("runtimes", []) if r != "tensorrt"]
    doc["models"].append(
        {
            "name": BULK_MODEL,
            "onnx": str(bulk_onnx.resolve()),
            "batch": {"min": 1, "opt": 1, "max": 8},
            "runtimes": runtimes,
            "instances": 1,
        }
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(yaml.safe_dump(doc, sort_keys=False))
    return out


@dataclass
class Run:
    seconds: float
    changed: int | None


def _play(deploy: Callable[..., Any], host: Any, what: str, log: Callable[[str], None]) -> Run:
    play = deploy(host)
    if play.rc != 0:
        raise DltkError(f"{what} deploy.yml on {host.name} failed: {play.failure()}")
    run = Run(play.seconds, changed_count(play.output, host.name))
    log(f"{host.name}: {what} deploy.yml {run.seconds:.1f} s, changed={run.changed}")
    return run


def cold_and_converged(
    host: Any,
    rounds: int,
    deploy: Callable[..., Any],
    fresh: Callable[[Any], None],
    log: Callable[[str], None],
) -> tuple[list[Run], list[Run]]:
    """`rounds` x (fresh host, cold deploy, converged deploy)."""
    cold, converged = [], []
    for i in range(rounds):
        log(f"round {i + 1}/{rounds}")
        fresh(host)
        cold.append(_play(deploy, host, "cold", log))
        converged.append(_play(deploy, host, "converged", log))
    return cold, converged


def small_and_big(
    small: Any,
    big: Any,
    rounds: int,
    deploy: Callable[..., Any],
    fresh: Callable[[Any], None],
    log: Callable[[str], None],
) -> tuple[list[Run], list[Run]]:
    """One cold deploy of each host, then `rounds` x (converged small, converged big)."""
    for host in (small, big):
        fresh(host)
        _play(deploy, host, "cold", log)
    runs: tuple[list[Run], list[Run]] = ([], [])
    for i in range(rounds):
        log(f"size round {i + 1}/{rounds}")
        runs[0].append(_play(deploy, small, "converged", log))
        runs[1].append(_play(deploy, big, "converged", log))
    return runs


def report_lines(
    cold: Sequence[Run],
    converged: Sequence[Run],
    small: Sequence[Run] = (),
    big: Sequence[Run] = (),
    big_mb: float = 0,
) -> list[str]:
    lines: list[str] = []
    if cold:
        lines += [
            "cold deploy.yml s: " + spread([r.seconds for r in cold]).text(1),
            "converged deploy.yml s: " + spread([r.seconds for r in converged]).text(1),
            "changed= of the converged runs: " + ", ".join(str(r.changed) for r in converged),
            "ratio converged/cold: "
            + spread(ratios([r.seconds for r in cold], [r.seconds for r in converged])).text(2),
        ]
    if small:
        extra = spread(differences([r.seconds for r in small], [r.seconds for r in big]))
        lines += [
            "converged s with a 1 MB model: " + spread([r.seconds for r in small]).text(1),
            f"converged s with a {big_mb:.0f} MB model: "
            + spread([r.seconds for r in big]).text(1),
            "changed= of the size runs: " + ", ".join(str(r.changed) for r in [*small, *big]),
            f"extra s converged with the {big_mb:.0f} MB model: " + extra.text(1),
        ]
    return lines
