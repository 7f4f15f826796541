"""triton_verify's derived values (issue 12 item 5: vars/ holds constants, Python computes).

tasks/settings.yml sets the models asked for and the verifier's options document once the key
file is known; tasks/main.yml the models to verify and how they are grouped into verifier runs;
tasks/verify-run.yml each run's documents (`dltk verify --options`, checked by
scripts/dltk/verify/options.py) and report names.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

API_KEY_MOUNT = "/run/secrets/triton-api-key"


def triton_verify_models_asked(models: str | Iterable[str] | None) -> list[str]:
    """triton_verify_models as given; `-e triton_verify_models=a,b` (a string) split on commas."""
    if models is None:
        return []
    if isinstance(models, str):
        return [m.strip() for m in models.split(",") if m.strip()]
    return list(models)


def triton_verify_models(
    asked: list[str], loaded: list[str] | None, repo_dirs: Iterable[Mapping[str, Any]]
) -> list[str]:
    """The models to verify: those asked for, else those tritonserver loaded (dltk_models_loaded),
    else every model directory of the host's repository (ansible.builtin.find's files)."""
    if asked:
        return list(asked)
    if loaded is not None:
        return list(loaded)
    return sorted(str(f["path"]).rstrip("/").rsplit("/", 1)[-1] for f in repo_dirs)


def triton_verify_options(v: Mapping[str, Any]) -> dict[str, Any]:
    """The verifier's options, one document. Values go in as given (`-e` strings too): dltk
    converts and checks them. v: the role's variables without their prefix, plus host
    (inventory_hostname) and use_key (the key file is on the host)."""
    server = v["server"]
    return {
        "url": f"{server}:8000",
        "grpc_url": f"{server}:8001",
        "metrics_url": f"{server}:8002" if _true(v["metrics"]) else None,
        "host": v["host"],
        "reference_dir": "/reference",
        "manifest": "/reference/models.yml",
        "api_key_file": API_KEY_MOUNT if v["use_key"] else None,
        "tolerance": v["tolerance"],
        "min_accuracy": v["min_accuracy"],
        "perf": v["perf"],
        "concurrency": v.get("concurrency"),
        "gpus": v["gpus"],
        "batch_size": v["batch_size"],
        "perf_protocol": v["perf_protocol"],
        "perf_shared_memory": v["shared_memory"],
        "slo_min_throughput": v["slo_min_throughput"],
        "slo_max_p99_ms": v["slo_max_p99_ms"],
        "slo_max_errors": v["slo_max_errors"],
    }


def triton_verify_run(options: Mapping[str, Any], model: str, full: Any) -> dict[str, Any]:
    """{options, report_name} of one model's run: the full verification's report is
    <model>.json, the quick check's <model>.quick.json."""
    report = f"{model}.json" if _true(full) else f"{model}.quick.json"
    doc = {**options, "model": model, "report": f"/reports/{report}", "quick": not _true(full)}
    return {"options": doc, "report_name": report}


def triton_verify_batches(
    options: Mapping[str, Any], models: Iterable[str], full: Any
) -> list[dict[str, Any]]:
    """The verifier runs, each one container: a full verification runs one per model (its report
    is fetched, its perf sweep has the server to itself); the quick check runs every model in one
    (`dltk verify --options [doc, ...]`: one container start and one Python start in all)."""
    runs = [triton_verify_run(options, model, full) for model in models]
    batches = [[run] for run in runs] if _true(full) else ([runs] if runs else [])
    return [
        {
            "models": [run["options"]["model"] for run in batch],
            "documents": [run["options"] for run in batch],
            "reports": [run["report_name"] for run in batch],
        }
        for batch in batches
    ]


def _true(value: Any) -> bool:
    """Ansible's truth of a variable given as a bool or a string (`-e x=false`)."""
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on", "y", "t")
    return bool(value)


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {
            "triton_verify_models_asked": triton_verify_models_asked,
            "triton_verify_models": triton_verify_models,
            "triton_verify_options": triton_verify_options,
            "triton_verify_run": triton_verify_run,
            "triton_verify_batches": triton_verify_batches,
        }
