"""`dltk verify`'s options document (scripts/dltk/verify/options.py): one validator for the
triton_verify role's JSON document and the CLI's flags.

Each bad value gives one line naming the key, the value, the flag and the role variable; the
defaults are VerifyOptions'; flags and the same options as one JSON document give the same
VerifyOptions. The concurrency range reads as perf_analyzer's --concurrency-range: 'N' alone is
one level of N outstanding requests (perf_analyzer's "Inference Load Modes": "when using
--concurrency-range=4, Perf Analyzer will to attempt to have 4 outgoing inference requests at all
times"), so '4' is 4:4:1; END is at most perf.MAX_CONCURRENCY (64), so '1:100' is refused.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dltk.cli import build_parser, main
from dltk.errors import DltkError
from dltk.perf import ConcurrencyRange
from dltk.verify.cli import options_from_args, options_list_from_args
from dltk.verify.options import FIELDS, load_options
from dltk.verify.records import DEFAULT_TOLERANCES, Slo, Tolerance, VerifyOptions

BASE = {"url": "127.0.0.1:8000", "model": "mnist"}
ROLE = "role variable triton_verify_"

# key: (bad value, the whole error line)
BAD: dict[str, tuple[object, str]] = {
    "url": (
        "nowhere",
        f"url 'nowhere' is not HOST:PORT, e.g. 127.0.0.1:8000 (--url, {ROLE}server)",
    ),
    "grpc_url": (
        "x:y",
        f"grpc_url 'x:y' is not HOST:PORT, e.g. 127.0.0.1:8000 (--grpc-url, {ROLE}server)",
    ),
    "metrics_url": (
        "",
        f"metrics_url '' must be a non-empty string (--metrics-url, {ROLE}metrics)",
    ),
    "model": ("  ", f"model '  ' must be a non-empty string (--model, {ROLE}models)"),
    "onnx": (3, "onnx 3 must be a non-empty string (--onnx)"),
    "samples": ("", "samples '' must be a non-empty string (--samples)"),
    "reference_dir": ([], "reference_dir [] must be a non-empty string (--reference-dir)"),
    "manifest": ("", f"manifest '' must be a non-empty string (--manifest, {ROLE}manifest)"),
    "synthetic_batch": (0, "synthetic_batch 0 must be >= 1 (--synthetic-batch)"),
    "tolerance": (
        {"fp8": {"atol": 1}},
        'tolerance {"fp8": {"atol": 1}} is refused: tolerance: unknown precision \'fp8\'; use '
        f"one of fp32, tf32, fp16 (--tolerance, {ROLE}tolerance)",
    ),
    "atol": (-1, "atol -1 must be >= 0 (--atol)"),
    "min_accuracy": (
        1.5,
        f"min_accuracy 1.5 must be between 0 and 1 (--min-accuracy, {ROLE}min_accuracy)",
    ),
    "perf": ("maybe", f"perf 'maybe' must be true or false (--perf, {ROLE}perf)"),
    "quick": ("sometimes", "quick 'sometimes' must be true or false (--quick)"),
    "concurrency": (
        "1:100",
        "concurrency '1:100' must satisfy 1 <= START <= END <= 64 and STEP >= 1 "
        f"(--concurrency, {ROLE}concurrency)",
    ),
    "gpus": (-1, f"gpus -1 must be >= 0 (--gpus, {ROLE}gpus)"),
    "batch_size": (
        "eight",
        f"batch_size 'eight' must be a whole number (--batch-size, {ROLE}batch_size)",
    ),
    "perf_protocol": (
        "udp",
        f"perf_protocol 'udp' must be one of http, grpc (--perf-protocol, {ROLE}perf_protocol)",
    ),
    "perf_interval_ms": (
        50,
        "perf_interval_ms 50 is refused by perf_analyzer's settings: measurement interval 50 ms "
        "must be between 100 and 60000 (--perf-interval-ms)",
    ),
    "perf_max_trials": (
        1,
        "perf_max_trials 1 is refused by perf_analyzer's settings: max trials 1 must be between "
        "3 and 20 (--perf-max-trials)",
    ),
    "perf_stability": (0, "perf_stability 0 must be > 0 (--perf-stability)"),
    "perf_shared_memory": (
        "posix",
        "perf_shared_memory 'posix' must be system, none, true or false "
        f"(--perf-shared-memory, {ROLE}shared_memory)",
    ),
    "perf_async": (2, "perf_async 2 must be true or false (--perf-async)"),
    "perf_threads": (
        100,
        "perf_threads 100 is refused by perf_analyzer's settings: client threads 100 must be "
        "between 1 and 64 (--perf-threads)",
    ),
    "slo_min_throughput": (
        -5,
        f"slo_min_throughput -5 must be >= 0 (--slo-min-throughput, {ROLE}slo_min_throughput)",
    ),
    "slo_max_p99_ms": (
        "fast",
        f"slo_max_p99_ms 'fast' must be a number (--slo-max-p99-ms, {ROLE}slo_max_p99_ms)",
    ),
    "slo_max_errors": (
        -2,
        f"slo_max_errors -2 must be >= -1 (--slo-max-errors, {ROLE}slo_max_errors)",
    ),
    "host": ("", "host '' must be a non-empty string (--host)"),
    "api_key_file": (
        "",
        f"api_key_file '' must be a non-empty string (--api-key-file, {ROLE}api_key_file)",
    ),
    "report": ("", "report '' must be a non-empty string (--report)"),
    "timeout": (0, "timeout 0 must be > 0 (--timeout)"),
}


def error_of(document: dict[str, object], **kwargs: bool) -> str:
    with pytest.raises(DltkError) as caught:
        load_options(document, **kwargs)
    return str(caught.value)


def test_every_field_has_a_bad_value_case() -> None:
    assert sorted(BAD) == sorted(FIELDS)


@pytest.mark.parametrize("key", list(BAD))
def test_each_bad_value_is_one_line_naming_the_key_flag_and_role_variable(key: str) -> None:
    value, line = BAD[key]
    assert error_of({**BASE, key: value}) == line


@pytest.mark.parametrize(
    ("extra", "line"),
    [
        (
            {"concurrency": "lots"},
            "concurrency 'lots' is not START[:END[:STEP]], e.g. 1:4 "
            f"(--concurrency, {ROLE}concurrency)",
        ),
        (
            {"concurrency": "1:64"},
            "concurrency '1:64' has 64 levels; at most 16 (raise STEP) "
            f"(--concurrency, {ROLE}concurrency)",
        ),
        (
            {"concurrency": ["1", "4"]},
            'concurrency ["1", "4"] must be auto or START[:END[:STEP]], e.g. 1:4 '
            f"(--concurrency, {ROLE}concurrency)",
        ),
        (
            {"perf_protocol": "grpc"},
            "perf_protocol 'grpc' needs grpc_url (--grpc-url HOST:PORT) "
            f"(--perf-protocol, {ROLE}perf_protocol)",
        ),
        (
            {"slo_min_throughput": 5},
            "slo_min_throughput 5 gates a perf run: needs perf (--perf) "
            f"(--slo-min-throughput, {ROLE}slo_min_throughput)",
        ),
        (
            {"slo_max_p99_ms": "20", "perf": "no"},
            "slo_max_p99_ms '20' gates a perf run: needs perf (--perf) "
            f"(--slo-max-p99-ms, {ROLE}slo_max_p99_ms)",
        ),
        (
            {"perf": True, "slo_max_errors": 0},
            "slo_max_errors 0 needs metrics_url (--metrics-url; role: triton_verify_metrics: "
            f"true), or -1 for no gate (--slo-max-errors, {ROLE}slo_max_errors)",
        ),
        (
            {"bogus": 1},
            f"unknown option 'bogus' in the options document; known: {', '.join(FIELDS)}",
        ),
        ({"url": None}, "url is missing: give --url or 'url' in --options"),
        ({"model": None}, "model is missing: give --model or 'model' in --options"),
    ],
)
def test_rules_between_fields_are_one_line(extra: dict[str, object], line: str) -> None:
    assert error_of({**BASE, **extra}) == line


def test_defaults_are_verify_options_defaults_with_the_auto_range() -> None:
    assert load_options(BASE) == VerifyOptions(
        url="127.0.0.1:8000", model="mnist", concurrency=ConcurrencyRange(1, 4, 1)
    )
    opts = load_options(BASE)
    assert (opts.perf, opts.batch_size, opts.perf_protocol, opts.timeout) == (False, 1, "http", 60)
    assert opts.slo == Slo() and opts.tolerances == DEFAULT_TOLERANCES


@pytest.mark.parametrize(
    ("value", "levels"),
    [
        ("4", [4]),  # one level of 4 outstanding requests, as perf_analyzer reads it
        (4, [4]),  # a YAML number
        ("1:4", [1, 2, 3, 4]),
        ("1:8:2", [1, 3, 5, 7]),
        (" 2:6 ", [2, 3, 4, 5, 6]),
        ("auto", [1, 2, 3, 4]),
        (None, [1, 2, 3, 4]),
    ],
)
def test_what_a_concurrency_value_means(value: object, levels: list[int]) -> None:
    assert load_options({**BASE, "concurrency": value}).concurrency.levels == levels


def test_the_auto_range_follows_the_gpus() -> None:
    assert str(load_options({**BASE, "gpus": "8"}).concurrency) == "4:32:4"
    assert str(load_options({**BASE, "gpus": 8, "concurrency": "1:2"}).concurrency) == "1:2:1"


def test_ansible_extra_var_strings_are_understood() -> None:
    """`-e triton_verify_perf=no` etc. reach the document as strings."""
    opts = load_options(
        {
            **BASE,
            "perf": "yes",
            "metrics_url": "t:8002",
            "batch_size": "4",
            "min_accuracy": "0.5",
            "slo_max_errors": "0",
            "perf_shared_memory": "False",
            "gpus": "2",
        }
    )
    assert opts.perf and opts.batch_size == 4 and opts.min_accuracy == 0.5 and opts.gpus == 2
    assert opts.slo.max_errors == 0 and opts.perf_shared_memory is False
    assert load_options({**BASE, "perf": "no", "perf_shared_memory": True}).perf is False
    assert load_options({**BASE, "perf_shared_memory": "system"}).perf_shared_memory is True


def test_the_error_gate_is_off_at_minus_one_and_without_a_perf_sweep() -> None:
    with_metrics = {**BASE, "metrics_url": "t:8002"}
    assert load_options({**with_metrics, "perf": True, "slo_max_errors": -1}).slo.max_errors is None
    # The role's default gate 0 with triton_verify_perf: false: no sweep, so nothing to count.
    assert load_options({**BASE, "perf": False, "slo_max_errors": 0}).slo.max_errors is None
    assert load_options({**with_metrics, "perf": True, "slo_max_errors": 3}).slo.max_errors == 3


def test_quick_leaves_out_the_sweep_and_its_gates() -> None:
    document = {
        **BASE,
        "perf": True,
        "metrics_url": "t:8002",
        "slo_min_throughput": 100,
        "slo_max_errors": 0,
    }
    full = load_options(document)
    assert full.perf and full.slo == Slo(min_throughput=100.0, max_errors=0)
    quick = load_options({**document, "quick": True})
    assert not quick.perf and quick.slo == Slo() and quick.metrics_url == "t:8002"


def test_the_role_check_needs_no_model() -> None:
    """The preflight validates the document before the models are known."""
    assert load_options({"url": "t:8000"}, need_model=False).model == ""
    assert error_of({"url": "t:8000", "gpus": -1}, need_model=False).startswith("gpus -1 ")


# --- flags and the JSON document: one path ------------------------------------------------

FLAGS = [
    "--url", "http://t:8000/", "--grpc-url", "t:8001", "--model", "mnist",
    "--metrics-url", "t:8002", "--host", "gpu-01", "--report", "/reports/mnist.json",
    "--tolerance", "fp16=0.1:0.2", "--min-accuracy", "0.8", "--perf", "--concurrency", "1:8:2",
    "--gpus", "2", "--batch-size", "8", "--perf-protocol", "grpc", "--perf-shared-memory",
    "system", "--perf-interval-ms", "500", "--perf-max-trials", "4", "--perf-stability", "20",
    "--perf-async", "--perf-threads", "4", "--slo-min-throughput", "100", "--slo-max-p99-ms",
    "20", "--slo-max-errors", "0", "--timeout", "30", "--synthetic-batch", "4",
    "--api-key-file", "/run/secrets/key",
]  # fmt: skip
DOCUMENT = {
    "url": "http://t:8000/",
    "grpc_url": "t:8001",
    "model": "mnist",
    "metrics_url": "t:8002",
    "host": "gpu-01",
    "report": "/reports/mnist.json",
    "tolerance": {"fp16": {"atol": 0.1, "rtol": 0.2}},
    "min_accuracy": 0.8,
    "perf": True,
    "concurrency": "1:8:2",
    "gpus": 2,
    "batch_size": 8,
    "perf_protocol": "grpc",
    "perf_shared_memory": True,
    "perf_interval_ms": 500,
    "perf_max_trials": 4,
    "perf_stability": 20,
    "perf_async": True,
    "perf_threads": 4,
    "slo_min_throughput": 100,
    "slo_max_p99_ms": 20,
    "slo_max_errors": 0,
    "timeout": 30,
    "synthetic_batch": 4,
    "api_key_file": "/run/secrets/key",
}


def from_argv(*argv: str) -> VerifyOptions:
    return options_from_args(build_parser().parse_args(["verify", *argv]))


def test_every_field_is_a_flag_and_every_flag_a_field() -> None:
    """The parser and the loader's table cannot drift apart (a key is its flag's name)."""
    subparsers = next(a for a in build_parser()._actions if a.dest == "command")
    verify = subparsers.choices["verify"]  # type: ignore[union-attr]
    flags = {a.option_strings[-1]: a.dest for a in verify._actions if a.option_strings}
    own = {"--help", "--options", "--check-options"}
    assert {f: d for f, d in flags.items() if f not in own} == {
        fld.flag: key for key, fld in FIELDS.items()
    }


def test_flags_and_the_json_document_give_the_same_options(tmp_path: Path) -> None:
    by_flags = from_argv(*FLAGS)
    assert by_flags == from_argv("--options", json.dumps(DOCUMENT))
    (tmp_path / "options.json").write_text(json.dumps(DOCUMENT))
    assert by_flags == from_argv("--options", str(tmp_path / "options.json"))
    assert by_flags.url == "t:8000" and by_flags.concurrency == ConcurrencyRange(1, 8, 2)
    assert by_flags.tolerances["fp16"] == Tolerance(0.1, 0.2)
    assert by_flags.slo == Slo(min_throughput=100.0, max_p99_ms=20.0, max_errors=0)
    assert by_flags.perf_shared_memory and by_flags.perf_async and by_flags.perf_threads == 4


def test_flags_left_out_take_the_same_defaults_as_an_empty_document() -> None:
    assert from_argv("--url", "t:8000", "--model", "m") == load_options(
        {"url": "t:8000", "model": "m"}
    )


def test_a_flag_wins_over_the_document() -> None:
    opts = from_argv("--options", json.dumps(DOCUMENT), "--model", "resnet", "--batch-size", "2")
    assert opts.model == "resnet" and opts.batch_size == 2 and opts.gpus == 2


def test_a_bad_flag_gets_the_same_line_as_a_bad_document_key() -> None:
    with pytest.raises(DltkError) as by_flag:
        from_argv("--url", "t:8000", "--model", "m", "--concurrency", "1:100")
    assert str(by_flag.value) == BAD["concurrency"][1]


@pytest.mark.parametrize(
    ("value", "line"),
    [
        (
            "{not json",
            "--options: not JSON (Expecting property name enclosed in double quotes at line 1)",
        ),
        ("[1]", "--options [1]: cannot read it (No such file or directory)"),
        ('{"url": ', "--options: not JSON (Expecting value at line 1)"),
    ],
)
def test_an_unreadable_document_is_one_line(value: str, line: str) -> None:
    with pytest.raises(DltkError) as caught:
        from_argv("--options", value)
    assert str(caught.value) == line


def test_a_document_that_is_not_an_object_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "o.json").write_text("[1, 2]")
    with pytest.raises(DltkError) as caught:
        from_argv("--options", str(tmp_path / "o.json"))
    assert str(caught.value) == (
        f'--options {tmp_path}/o.json: must be one JSON object of options, e.g. {{"url": ...}}'
    )


# --- dltk verify --check-options (the role's preflight runs it on the control node) --------


def test_check_options_validates_without_a_model_or_a_server(
    capsys: pytest.CaptureFixture[str],
) -> None:
    document = {"url": "tritonserver:8000", "perf": "true", "gpus": "0", "concurrency": "4"}
    assert main(["verify", "--check-options", "--options", json.dumps(document)]) == 0
    assert capsys.readouterr().out == "dltk verify: the options are valid (perf 4:4:1)\n"


def test_check_options_fails_with_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    document = {"url": "tritonserver:8000", "concurrency": "1:100"}
    assert main(["verify", "--check-options", "--options", json.dumps(document)]) == 1
    captured = capsys.readouterr()
    assert captured.err == f"dltk verify: error: {BAD['concurrency'][1]}\n" and not captured.out


# --- an array of documents: one verification each, in one process (the role's quick check) ---


def test_an_array_of_documents_gives_one_run_each_all_validated_first(tmp_path: Path) -> None:
    second = {**DOCUMENT, "model": "other", "report": "/reports/other.quick.json"}
    parser = build_parser()
    inline = parser.parse_args(["verify", "--options", json.dumps([DOCUMENT, second])])
    runs = options_list_from_args(inline)
    assert [r.model for r in runs] == [DOCUMENT["model"], "other"]
    assert runs[0] == from_argv("--options", json.dumps(DOCUMENT))
    (tmp_path / "runs.json").write_text(json.dumps([DOCUMENT, second]))
    from_file = parser.parse_args(["verify", "--options", str(tmp_path / "runs.json")])
    assert options_list_from_args(from_file) == runs
    # A flag applies to every run.
    flagged = parser.parse_args(["verify", "--options", json.dumps([DOCUMENT, second]), "--quick"])
    assert [r.quick for r in options_list_from_args(flagged)] == [True, True]
    bad = {**second, "concurrency": "1:100"}
    with pytest.raises(DltkError) as caught:
        options_list_from_args(
            parser.parse_args(["verify", "--options", json.dumps([DOCUMENT, bad])])
        )
    assert str(caught.value) == BAD["concurrency"][1]
    with pytest.raises(DltkError, match="one run expected here, got 2"):
        options_from_args(inline)


def test_dltk_verify_runs_every_document_and_fails_when_one_fails(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With a TEST DOUBLE of the Verifier (no server): every run happens, in order; exit 1 when
    any failed; a bad document stops all before the first run."""
    import dltk.verify.verifier as verifier_module

    ran: list[str] = []

    class VerifierDouble:  # TEST DOUBLE: records the run, fails the model named "broken"
        def __init__(self, opts: VerifyOptions) -> None:
            self.opts = opts

        def run(self) -> int:
            ran.append(self.opts.model)
            return 1 if self.opts.model == "broken" else 0

    monkeypatch.setattr(verifier_module, "Verifier", VerifierDouble)
    docs = [{**DOCUMENT, "model": m} for m in ("a", "broken", "c")]
    assert main(["verify", "--options", json.dumps(docs)]) == 1
    assert ran == ["a", "broken", "c"]
    ran.clear()
    assert main(["verify", "--options", json.dumps(docs[:1] + docs[2:])]) == 0
    assert ran == ["a", "c"]
    ran.clear()
    bad = [docs[0], {**docs[2], "concurrency": "1:100"}]
    assert main(["verify", "--options", json.dumps(bad)]) == 1
    assert ran == []
