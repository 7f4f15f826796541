"""Server and model readiness: live, ready (bounded waits), in the repository, its metadata
and config classified (ONNX model, TensorRT engine or BLS pipeline).
"""

from __future__ import annotations

import time

from dltk.errors import DltkError
from dltk.verify.models import classify, tolerance_for
from dltk.verify.records import FAIL, PASS, Check, ModelInfo, model_info
from dltk.verify.state import VerifierState, console
from dltk.verify.triton_client import Triton, wait_until


def server_checks(run: VerifierState, triton: Triton) -> None:
    opts = run.opts
    t = time.monotonic()
    live = bool(triton.call(triton.http.is_server_live))
    if not live:
        raise run.fatal(Check("server live", FAIL, f"{opts.url} answers but is not live"), t)
    meta = triton.call(triton.http.get_server_metadata)
    run.server = {
        "name": meta.get("name"),
        "version": meta.get("version"),
        "extensions": meta.get("extensions", []),
    }
    run.scrape("start")
    run.add(
        Check(
            "server live",
            PASS,
            f"{meta.get('name')} {meta.get('version')} at {opts.url}",
            {"version": meta.get("version")},
        ),
        t,
    )

    t = time.monotonic()
    with console.status(f"waiting for server ready (≤ {opts.timeout:.0f}s)"):
        ready = wait_until(lambda: bool(triton.call(triton.http.is_server_ready)), opts.timeout)
    waited = time.monotonic() - t
    if not ready:
        # Not fatal: /ready is false while any model is still loading or failed.
        run.add(Check("server ready", FAIL, f"not ready after {waited:.1f}s"), t)
    else:
        run.add(Check("server ready", PASS, f"ready after {waited:.1f}s"), t)
    if opts.grpc_url:
        t = time.monotonic()
        grpc_live = bool(triton.call(triton.grpc.is_server_live, opts.grpc_url))
        run.add(Check("grpc live", PASS if grpc_live else FAIL, f"gRPC at {opts.grpc_url}"), t)


def model_checks(run: VerifierState, triton: Triton) -> ModelInfo:
    opts = run.opts
    t = time.monotonic()
    index = triton.call(lambda: triton.http.get_model_repository_index(headers=triton.headers))
    known = {str(m.get("name")): m for m in index}
    if opts.model not in known:
        have = ", ".join(sorted(known)) or "none"
        raise run.fatal(
            Check(
                "model ready",
                FAIL,
                f"model {opts.model!r} is not in the server's repository (models: {have})",
            ),
            t,
        )
    with console.status(f"waiting for model {opts.model} ready (≤ {opts.timeout:.0f}s)"):
        ready = wait_until(
            lambda: bool(triton.call(lambda: triton.http.is_model_ready(opts.model))), opts.timeout
        )
    if not ready:
        entry = next(
            (
                m
                for m in triton.call(
                    lambda: triton.http.get_model_repository_index(headers=triton.headers)
                )
                if m.get("name") == opts.model
            ),
            {},
        )
        reason = entry.get("reason") or "no reason given (check the server log)"
        raise run.fatal(
            Check(
                "model ready",
                FAIL,
                f"model {opts.model!r} is "
                f"{entry.get('state', 'not ready')} after {opts.timeout:.0f}s: "
                f"{reason}",
            ),
            t,
        )
    run.add(Check("model ready", PASS, f"{opts.model} ready after {time.monotonic() - t:.1f}s"), t)

    t = time.monotonic()
    info = run.info = served_model_info(triton, opts.model)
    if not info.inputs or not info.outputs:
        raise run.fatal(
            Check(
                "model config",
                FAIL,
                f"{opts.model} has {len(info.inputs)} inputs and {len(info.outputs)} "
                "outputs; dltk verify needs at least one of each",
            ),
            t,
        )
    try:
        run.served = classify(info)
    except DltkError as exc:
        raise run.fatal(Check("model config", FAIL, str(exc)), t) from None
    run.tolerance = tolerance_for(run.served.precision, opts.tolerances, opts.atol)
    runtime = info.backend or info.platform
    inputs = ", ".join(f"{s.name} {s.datatype} {list(s.shape)}" for s in info.inputs)
    kind = "" if run.served.kind == "onnx" else f" ({run.served.why})"
    run.add(
        Check(
            "model config",
            PASS,
            f"{runtime}{kind}, max_batch_size {info.max_batch_size}, "
            f"input{'s' if len(info.inputs) > 1 else ''} {inputs}, outputs "
            f"{', '.join(o.name for o in info.outputs)}, instances "
            f"{', '.join(info.instance_groups) or 'default'}",
            {"kind": run.served.kind, "reference_model": run.served.reference},
        ),
        t,
    )
    return info


def served_model_info(triton: Triton, model: str) -> ModelInfo:
    metadata = triton.call(lambda: triton.http.get_model_metadata(model))
    config = triton.call(lambda: triton.http.get_model_config(model))
    return model_info(metadata, config)
