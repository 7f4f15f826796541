"""`dltk repo backends`: which models a Triton image can load (skip_missing_backends)."""

from __future__ import annotations

import json

import pytest

from dltk.cli import main
from dltk.errors import DltkError
from dltk.repo.backends import ModelNeeds, model_needs, plan_loading

PYTHON = 'name: "mnist"\nbackend: "python"\nmax_batch_size: 64\n'
TRT = 'name: "mnist_trt_fp16"\nplatform: "tensorrt_plan"\nmax_batch_size: 64\n'
ORT = 'name: "mnist_ort"\nbackend: "onnxruntime"\n'
ENSEMBLE = (
    'name: "pipe"\nplatform: "ensemble"\nensemble_scheduling { step { model_name: "mnist_trt_fp16"'
    ' model_version: -1 } step { model_name: "mnist" model_version: -1 } }\n'
)


def test_backend_from_backend_or_platform() -> None:
    assert model_needs("mnist", PYTHON) == ModelNeeds("python")
    assert model_needs("mnist_trt_fp16", TRT) == ModelNeeds("tensorrt")
    assert model_needs("mnist_ort", ORT) == ModelNeeds("onnxruntime")
    assert model_needs("pipe", ENSEMBLE) == ModelNeeds(None, ("mnist", "mnist_trt_fp16"))


def test_cpu_triton_skips_tensorrt_and_onnxruntime_models() -> None:
    needs = {
        n: model_needs(n, t)
        for n, t in {"mnist": PYTHON, "mnist_trt_fp16": TRT, "mnist_ort": ORT}.items()
    }
    plan = plan_loading(needs, ["python"])
    assert plan.loadable == ("mnist",)
    assert plan.skipped == {"mnist_ort": "onnxruntime", "mnist_trt_fp16": "tensorrt"}


def test_ngc_triton_loads_everything() -> None:
    needs = {
        n: model_needs(n, t)
        for n, t in {"mnist": PYTHON, "mnist_trt_fp16": TRT, "pipe": ENSEMBLE}.items()
    }
    plan = plan_loading(needs, ["onnxruntime", "python", "tensorrt"])
    assert plan.loadable == ("mnist", "mnist_trt_fp16", "pipe")
    assert plan.skipped == {}


def test_ensemble_of_a_skipped_model_is_skipped() -> None:
    needs = {
        n: model_needs(n, t)
        for n, t in {"mnist": PYTHON, "mnist_trt_fp16": TRT, "pipe": ENSEMBLE}.items()
    }
    plan = plan_loading(needs, ["python"])
    assert plan.loadable == ("mnist",)
    assert plan.skipped == {"mnist_trt_fp16": "tensorrt", "pipe": "tensorrt"}


def test_unparsable_config_is_one_error() -> None:
    with pytest.raises(DltkError, match="does not parse"):
        model_needs("bad", 'name: "bad"\nbackend: python\nnot_a_field: 1\n')


def test_cli_fails_on_missing_backend_unless_skipping(capsys: pytest.CaptureFixture[str]) -> None:
    configs = json.dumps({"mnist": PYTHON, "mnist_trt_fp16": TRT})
    assert main(["repo", "backends", "--configs", configs, "--available", "python"]) == 1
    err = capsys.readouterr().err
    assert "cannot load mnist_trt_fp16 (tensorrt)" in err
    assert "triton_server_skip_missing_backends" in err
    argv = ["repo", "backends", "--configs", configs, "--available", "python", "--skip-missing"]
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    assert out == {"loadable": ["mnist"], "skipped": {"mnist_trt_fp16": "tensorrt"}}
