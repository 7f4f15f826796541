"""Zero failed requests while the fleet changes (issue 11 item 3): steady load through the load
balancer during four rollouts of deploy.yml, one after the other on the fleet sandbox:

    config     a model config change (mnist's dynamic-batching delay)
    version    a new model version (new weights: the answers change, the accuracy does not)
    container  a tritonserver container change that restarts every server (its shm size)
    failing    a version that loads but answers wrongly: its verification fails on the first
               batch, the rollout stops there, the other hosts keep serving the previous version

then `restore`: deploy.yml as the inventory has it, which rolls every host back (the failed one
included, drained since its failure) and ends where the fleet started.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dltk.drill.manifest import new_weights_variant, write_override, wrong_answers_variant

SCENARIOS = ("config", "version", "container", "failing", "restore")
CONFIG_FIELDS = {"dynamic_batching": {"max_queue_delay_microseconds": 300}}
CONTAINER_VARS = ("-e", "triton_server_shm_size=288m")


@dataclass(frozen=True)
class Scenario:
    name: str
    what: str
    extra: tuple[str, ...]  # ansible-playbook arguments after the inventory
    expect_failure: bool = False


def scenarios(root: Path, work: Path) -> list[Scenario]:
    """The scenarios, in order; each keeps the changes of those before it (so that each rolls
    out one change), `failing` on top of `container`'s, `restore` back to the inventory's."""
    manifest = root / "model_repo" / "models.yml"
    onnx = root / "build" / "models" / "mnist.onnx"
    config = write_override(manifest, work / "config", "mnist", fields=CONFIG_FIELDS)
    version = write_override(
        manifest,
        work / "version",
        "mnist",
        new_weights_variant(onnx, work / "version" / "mnist.onnx"),
        CONFIG_FIELDS,
    )
    failing = write_override(
        manifest,
        work / "failing",
        "mnist",
        wrong_answers_variant(onnx, work / "failing" / "mnist.onnx"),
        CONFIG_FIELDS,
    )
    return [
        Scenario("config", "model config change", ("-e", f"dltk_manifest={config}")),
        Scenario("version", "new model version", ("-e", f"dltk_manifest={version}")),
        Scenario(
            "container",
            "tritonserver container change (every server restarts)",
            ("-e", f"dltk_manifest={version}", *CONTAINER_VARS),
        ),
        Scenario(
            "failing",
            "rollout failing verification on its first batch",
            ("-e", f"dltk_manifest={failing}", *CONTAINER_VARS),
            expect_failure=True,
        ),
        Scenario("restore", "back to the inventory's manifest and settings", ()),
    ]


def verdict(scenario: Scenario, result: dict[str, Any]) -> str:
    """'ok' when no request failed and deploy.yml ended as expected, else why not (pure)."""
    problems = []
    if result["failed"]:
        problems.append(f"{result['failed']} failed requests")
    if scenario.expect_failure and result["exit"] == 0:
        problems.append("deploy.yml passed although verification should fail")
    before = next(p["versions"] for p in result["phases"] if p["name"] == "before")
    if scenario.expect_failure and set(result["served_at_end"]) - set(before):
        problems.append("the failed version answers at the end")
    if not scenario.expect_failure and result["exit"] != 0:
        problems.append(f"deploy.yml failed (exit {result['exit']})")
    return "; ".join(problems) or "ok"


def run(
    chosen: Sequence[Scenario],
    deploy: Sequence[str],
    measure: Callable[[Sequence[str]], dict[str, Any]],
    say: Callable[[str], None],
) -> list[dict[str, Any]]:
    """Each scenario's deploy.yml under load (MEASURE), in order; the results with verdicts."""
    results = []
    for scenario in chosen:
        say(f"scenario {scenario.name}: {scenario.what}")
        result = measure([*deploy, *scenario.extra])
        result.update(scenario=scenario.name, what=scenario.what, verdict=verdict(scenario, result))
        results.append(result)
    return results


def summary_lines(results: Sequence[dict[str, Any]]) -> list[str]:
    """One row per scenario (pure)."""

    def p99(result: dict[str, Any], phase: str) -> str:
        value = next(p["p99_ms"] for p in result["phases"] if p["name"] == phase)
        return "-" if value is None else f"{value:.0f}"

    lines = [
        f"{'scenario':<10} {'sent':>6} {'failed':>6} {'p99 before/during ms':>21} {'deploy':>8}"
        "  served at the end  verdict"
    ]
    for r in results:
        served = ", ".join(f"v{v}: {n}" for v, n in r["served_at_end"].items())
        lines.append(
            f"{r['scenario']:<10} {r['sent']:>6} {r['failed']:>6} "
            f"{p99(r, 'before') + ' / ' + p99(r, 'during'):>21} "
            f"{'exit ' + str(r['exit']):>8}  {served}  {r['verdict']}"
        )
    return lines
