"""`dltk verify`'s options as one document, validated once (issue 12).

The triton_verify role renders one JSON document of the verifier's options and passes it with
`--options`; a user gives flags, or a document, or both (a flag wins over the document's key).
Both go through `load_options`: every key is checked here, with one line naming the key, the
flag and the role variable that sets it. The role runs the same check on the control node in its
preflight (`dltk verify --check-options --options JSON`), so there is no second validator in
Jinja. Defaults are VerifyOptions' (verify/records.py); the concurrency range defaults to auto.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from dltk.errors import DltkError
from dltk.perf import PROTOCOLS, ConcurrencyRange, PerfConfig, parse_concurrency_range
from dltk.verify.models import parse_tolerances
from dltk.verify.perf import default_concurrency
from dltk.verify.records import DEFAULT_TOLERANCES, Slo, VerifyOptions, normalize_url

AUTO = "auto"
# Ansible's spellings of booleans (`-e triton_verify_perf=no` arrives as the string "no").
TRUE_WORDS = ("true", "yes", "on", "y", "t", "1")
FALSE_WORDS = ("false", "no", "off", "n", "f", "0")


class Bad(ValueError):
    """A value a field refuses; its text completes "KEY VALUE ..."."""


@dataclass(frozen=True)
class Field:
    key: str
    convert: Callable[[Any], Any]
    role: str | None = None  # the triton_verify variable that sets it

    @property
    def flag(self) -> str:
        return "--" + self.key.replace("_", "-")

    @property
    def origin(self) -> str:
        return self.flag + (f", role variable {self.role}" if self.role else "")

    def error(self, value: Any, why: str) -> DltkError:
        return DltkError(f"{self.key} {_show(value)} {why} ({self.origin})")


def _show(value: Any) -> str:
    return json.dumps(value) if isinstance(value, (dict, list)) else repr(value)


# --- converters: value -> typed value, Bad(why) when refused -------------------------------


def boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    text = str(value).strip().lower() if isinstance(value, str) else None
    if text in TRUE_WORDS:
        return True
    if text in FALSE_WORDS:
        return False
    raise Bad("must be true or false")


def whole(low: int, high: int | None = None) -> Callable[[Any], int]:
    def convert(value: Any) -> int:
        number: int | None = None
        if isinstance(value, int) and not isinstance(value, bool):
            number = value
        elif isinstance(value, float) and value.is_integer():
            number = int(value)
        elif isinstance(value, str) and value.strip().lstrip("-").isdigit():
            number = int(value.strip())
        if number is None:
            raise Bad("must be a whole number")
        if number < low or (high is not None and number > high):
            raise Bad(f"must be >= {low}" if high is None else f"must be between {low} and {high}")
        return number

    return convert


def real(low: float, high: float | None = None, above: bool = False) -> Callable[[Any], float]:
    def convert(value: Any) -> float:
        try:
            number = float(value) if not isinstance(value, bool) else math.nan
        except (TypeError, ValueError):
            number = math.nan
        if not math.isfinite(number):
            raise Bad("must be a number")
        if above and number <= low:
            raise Bad(f"must be > {low:g}")
        if number < low or (high is not None and number > high):
            raise Bad(
                f"must be >= {low:g}" if high is None else f"must be between {low:g} and {high:g}"
            )
        return number

    return convert


def text(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise Bad("must be a non-empty string")
    return value.strip()


def path(value: Any) -> Path:
    return Path(text(value))


def url(value: Any) -> str:
    try:
        return normalize_url(text(value))
    except DltkError:
        raise Bad("is not HOST:PORT, e.g. 127.0.0.1:8000") from None


def protocol(value: Any) -> str:
    if value not in PROTOCOLS:
        raise Bad(f"must be one of {', '.join(PROTOCOLS)}")
    return str(value)


def shared_memory(value: Any) -> bool:
    """`--perf-shared-memory none|system`, or the role's true/false."""
    if value in ("system", "none"):
        return value == "system"
    try:
        return boolean(value)
    except Bad:
        raise Bad("must be system, none, true or false") from None


def concurrency(value: Any) -> ConcurrencyRange | str:
    """'auto' (sized to gpus later), START:END[:STEP], or 'N': one level of N outstanding
    requests, as perf_analyzer reads --concurrency-range N ('4' is 4:4:1, not 1:4)."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise Bad("must be auto or START[:END[:STEP]], e.g. 1:4")
    if value.strip() == AUTO:
        return AUTO
    try:
        return parse_concurrency_range(value.strip(), what="")
    except DltkError as exc:
        # perf.py's reason, without its "<what> 'value'" head (Field.error names both).
        raise Bad(str(exc).split(f"{value.strip()!r} ", 1)[-1]) from None


def tolerance(value: Any) -> list[str]:
    """A mapping {precision: {atol, rtol}} (the role) or PRECISION=ATOL[:RTOL] strings (flags)."""
    items = [json.dumps(value)] if isinstance(value, dict) else value
    if isinstance(items, str):
        items = [items]
    if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
        raise Bad('must map fp32, tf32 or fp16 to {"atol": A, "rtol": R}')
    try:
        parse_tolerances(items, DEFAULT_TOLERANCES, what="tolerance")
    except DltkError as exc:
        raise Bad(f"is refused: {exc}") from None
    return items


def perf_setting(name: str, convert: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """A perf_analyzer setting, within the bounds PerfConfig.check (perf.py) sets."""

    def check(value: Any) -> Any:
        number = convert(value)
        try:
            PerfConfig(model="-", url="-", **{name: number}).check()
        except DltkError as exc:
            raise Bad(f"is refused by perf_analyzer's settings: {exc}") from None
        return number

    return check


FIELDS: dict[str, Field] = {
    f.key: f
    for f in (
        Field("url", url, "triton_verify_server"),
        Field("grpc_url", url, "triton_verify_server"),
        Field("metrics_url", url, "triton_verify_metrics"),
        Field("model", text, "triton_verify_models"),
        Field("onnx", path),
        Field("samples", path),
        Field("reference_dir", path),
        Field("manifest", path, "triton_verify_manifest"),
        Field("synthetic_batch", whole(1)),
        Field("tolerance", tolerance, "triton_verify_tolerance"),
        Field("atol", real(0.0)),
        Field("min_accuracy", real(0.0, 1.0), "triton_verify_min_accuracy"),
        Field("perf", boolean, "triton_verify_perf"),
        Field("quick", boolean),
        Field("concurrency", concurrency, "triton_verify_concurrency"),
        Field("gpus", whole(0), "triton_verify_gpus"),
        Field("batch_size", whole(1), "triton_verify_batch_size"),
        Field("perf_protocol", protocol, "triton_verify_perf_protocol"),
        Field("perf_interval_ms", perf_setting("measurement_interval_ms", whole(1))),
        Field("perf_max_trials", perf_setting("max_trials", whole(1))),
        Field("perf_stability", perf_setting("stability_percentage", real(0.0, above=True))),
        Field("perf_shared_memory", shared_memory, "triton_verify_shared_memory"),
        Field("perf_async", boolean),
        Field("perf_threads", perf_setting("max_threads", whole(1))),
        Field("slo_min_throughput", real(0.0), "triton_verify_slo_min_throughput"),
        Field("slo_max_p99_ms", real(0.0), "triton_verify_slo_max_p99_ms"),
        Field("slo_max_errors", whole(-1), "triton_verify_slo_max_errors"),
        Field("host", text),
        Field("api_key_file", path, "triton_verify_api_key_file"),
        Field("report", path),
        Field("timeout", real(0.0, above=True)),
    )
}


# --- the document --------------------------------------------------------------------------


def read_documents(value: str) -> list[dict[str, Any]]:
    """`--options` as given: a JSON object, an array of objects (one run each, in one process),
    or the path of a file holding either."""
    source = "--options"
    raw = value
    # Inline JSON: an object, or an array of objects (anything else names a file).
    if not re.match(r"\s*(\{|\[\s*\{)", value):
        try:
            raw = Path(value).read_text(encoding="utf-8")
        except OSError as exc:
            raise DltkError(f"--options {value}: cannot read it ({exc.strerror})") from None
        source = f"--options {value}"
    try:
        document = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise DltkError(f"{source}: not JSON ({exc.msg} at line {exc.lineno})") from None
    documents = document if isinstance(document, list) else [document]
    if not documents or not all(isinstance(d, dict) for d in documents):
        raise DltkError(f'{source}: must be one JSON object of options, e.g. {{"url": ...}}')
    return documents


def load_options(document: Mapping[str, Any], *, need_model: bool = True) -> VerifyOptions:
    """The options of one document (null or absent: the default), or the first bad key's error.

    need_model=False checks a document without a model (the role's preflight: the models are
    known later). Paths are not looked up here (they are the verifier container's); see
    check_files."""
    unknown = sorted(set(document) - set(FIELDS))
    if unknown:
        raise DltkError(
            f"unknown option {unknown[0]!r} in the options document; known: {', '.join(FIELDS)}"
        )
    values: dict[str, Any] = {}
    for key, fld in FIELDS.items():
        value = document.get(key)
        if value is None:
            continue
        try:
            values[key] = fld.convert(value)
        except Bad as exc:
            raise fld.error(value, str(exc)) from None
    for key in ("url", "model") if need_model else ("url",):
        if key not in values:
            raise DltkError(f"{key} is missing: give {FIELDS[key].flag} or {key!r} in --options")
    return _options(values, document)


def _options(values: dict[str, Any], document: Mapping[str, Any]) -> VerifyOptions:
    perf = values.get("perf", False)
    slo = Slo(
        min_throughput=values.get("slo_min_throughput", 0.0),
        max_p99_ms=values.get("slo_max_p99_ms", 0.0),
        # -1: no gate; the gate counts failed requests of the perf sweep, so none without it.
        max_errors=values.get("slo_max_errors") if perf else None,
    )
    if slo.max_errors == -1:
        slo = replace(slo, max_errors=None)
    if values.get("perf_protocol") == "grpc" and "grpc_url" not in values:
        raise FIELDS["perf_protocol"].error("grpc", "needs grpc_url (--grpc-url HOST:PORT)")
    if slo.needs_perf and not perf:
        fld = FIELDS["slo_min_throughput" if slo.min_throughput else "slo_max_p99_ms"]
        raise fld.error(document[fld.key], "gates a perf run: needs perf (--perf)")
    if slo.max_errors is not None and "metrics_url" not in values:
        raise FIELDS["slo_max_errors"].error(
            document["slo_max_errors"],
            "needs metrics_url (--metrics-url; role: triton_verify_metrics: true), "
            "or -1 for no gate",
        )
    rng = values.get("concurrency", AUTO)
    gpus = values.get("gpus", 0)
    kwargs: dict[str, Any] = {
        k: values[k]
        for k in (
            "url", "grpc_url", "metrics_url", "onnx", "samples", "reference_dir", "manifest",
            "synthetic_batch", "atol", "min_accuracy", "batch_size", "perf_protocol", "perf_async",
            "perf_threads", "host", "api_key_file", "report", "timeout",
        )
        if k in values
    }  # fmt: skip
    renamed = {
        "perf_interval_ms": values.get("perf_interval_ms"),
        "perf_max_trials": values.get("perf_max_trials"),
        "perf_stability": values.get("perf_stability"),
        "perf_shared_memory": values.get("perf_shared_memory"),
    }
    kwargs.update({k: v for k, v in renamed.items() if v is not None})
    quick = values.get("quick", False)
    return VerifyOptions(
        model=values.get("model", ""),
        **kwargs,
        # quick: the checks without the perf sweep and its SLO gates (the role's re-run).
        quick=bool(quick),
        perf=perf and not quick,
        slo=Slo() if quick else slo,
        concurrency=default_concurrency(gpus) if rng == AUTO else rng,
        gpus=gpus,
        tolerances=parse_tolerances(values.get("tolerance", []), DEFAULT_TOLERANCES),
    )


def check_files(opts: VerifyOptions) -> None:
    """The files the options name exist (where the verifier runs, so not in --check-options)."""
    for key in ("onnx", "samples", "manifest"):
        found: Path | None = getattr(opts, key)
        if found is not None and not found.is_file():
            raise DltkError(f"{FIELDS[key].flag} {found}: no such file; run `dltk export` first")
    if opts.reference_dir is not None and not opts.reference_dir.is_dir():
        raise DltkError(f"--reference-dir {opts.reference_dir}: no such directory")
