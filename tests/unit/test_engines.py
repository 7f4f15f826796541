"""`dltk engines`: trtexec command lines, shape strings, cache keys, the cc mapping, the skip.

TensorRT cannot run here (no GPU): these tests pin the logic the trt_engines role executes on
GPU hosts; the role's no-GPU path runs for real in molecule/trt_engines.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from dltk.cli import main
from dltk.engines.plan import (
    BUILD_ENV,
    cache_key,
    decide_gpus,
    engine_filename,
    parse_gpus,
    parse_trtexec_version,
    plan_engines,
    shape_specs,
    timing_cache_name,
    trt_version_from_code,
    trtexec_flags,
    trtexec_name,
)
from dltk.errors import DltkError
from dltk.manifest.load import load_manifest
from dltk.manifest.model import BatchRange, ModelSpec
from dltk.manifest.options import TensorrtOptions
from dltk.onnx_graph import TensorSpec

MNIST = ModelSpec(
    name="mnist",
    onnx=Path("mnist.onnx"),
    batch=BatchRange(1, 16, 64),
    runtimes=("tensorrt", "onnxruntime"),
    precisions=("fp16", "tf32"),
    inputs=(TensorSpec("input", "FLOAT", (1, 28, 28)),),
    outputs=(TensorSpec("logits", "FLOAT", (10,)),),
)
TWO_INPUTS = replace(
    MNIST,
    inputs=(TensorSpec("image:0", "FLOAT", (3, 8, 8)), TensorSpec("gpu_0/mask", "INT64", (8,))),
)
ENGINE_MANIFEST = """\
models:
  - name: mnist
    onnx: models/mnist.onnx
    batch: {min: 1, opt: 16, max: 64}
    runtimes: [tensorrt, python-onnxruntime]
    precisions: [fp16, tf32]
  - name: plain
    onnx: models/mnist.onnx
    batch: {max: 8}
    runtimes: [onnxruntime]
"""


@pytest.fixture
def manifest(tmp_path: Path, build_onnx: Callable[..., Path]) -> Path:
    build_onnx(tmp_path / "models" / "mnist.onnx")
    path = tmp_path / "models.yml"
    path.write_text(ENGINE_MANIFEST)
    return path


def test_shape_strings_come_from_the_batch_range() -> None:
    assert shape_specs(MNIST) == {
        "--minShapes": "input:1x1x28x28",
        "--optShapes": "input:16x1x28x28",
        "--maxShapes": "input:64x1x28x28",
    }


def test_every_input_is_listed_and_names_with_colons_are_quoted() -> None:
    specs = shape_specs(replace(TWO_INPUTS, batch=BatchRange(2, 4, 8)))
    assert specs["--minShapes"] == "'image:0':2x3x8x8,gpu_0/mask:2x8"
    assert specs["--maxShapes"] == "'image:0':8x3x8x8,gpu_0/mask:8x8"


def test_tensor_names_trtexec_cannot_parse_are_refused() -> None:
    assert trtexec_name("gpu_0/data_0") == "gpu_0/data_0"
    assert trtexec_name("input:0") == "'input:0'"
    assert trtexec_name("my input") == "'my input'"
    for name in ("a,b", "it's", "x*"):
        with pytest.raises(DltkError, match="rename the tensor in the ONNX graph"):
            trtexec_name(name)


def test_fixed_batch_models_need_no_shape_flags_but_fixed_dims() -> None:
    fixed = replace(
        MNIST, batch=BatchRange(0, 0, 0), inputs=(TensorSpec("data_0", "FLOAT", (1, 3, 224, 224)),)
    )
    assert shape_specs(fixed) == {}
    variable = replace(MNIST, inputs=(TensorSpec("ids", "INT64", (-1,)),))
    with pytest.raises(DltkError, match=r"input 'ids' has variable dims \[-1\] after the batch"):
        shape_specs(variable)


def test_flags_per_precision() -> None:
    shapes = [
        "--minShapes=input:1x1x28x28",
        "--optShapes=input:16x1x28x28",
        "--maxShapes=input:64x1x28x28",
    ]
    assert trtexec_flags(MNIST, "tf32") == tuple(shapes)
    assert trtexec_flags(MNIST, "fp16") == (*shapes, "--fp16")
    with pytest.raises(DltkError, match="unknown precision 'int8'"):
        trtexec_flags(MNIST, "int8")


def test_fp16_io_formats_and_workspace() -> None:
    model = replace(TWO_INPUTS, tensorrt=TensorrtOptions(fp16_io=True, workspace_mb=2048))
    flags = trtexec_flags(model, "fp16")
    assert "--inputIOFormats=fp16:chw,int64:chw" in flags
    assert "--outputIOFormats=fp16:chw" in flags
    assert flags[-1] == "--memPoolSize=workspace:2048M"
    # fp16 I/O applies to the fp16 engine only
    assert not any("IOFormats" in f for f in trtexec_flags(model, "tf32"))


def test_cache_key_is_stable_and_covers_every_input() -> None:
    flags = trtexec_flags(MNIST, "fp16")
    key = cache_key("0" * 64, flags, "10.5.0", "8.6")
    # Pinned: a different key for the same input would rebuild every cached engine.
    assert key == "896a402edc590bed78345a67c6ce480c679d48ddb40609dd0747a23ea128479e"
    assert key == cache_key("0" * 64, flags, "10.5.0", "8.6")
    others = {
        cache_key("1" * 64, flags, "10.5.0", "8.6"),
        cache_key("0" * 64, trtexec_flags(MNIST, "tf32"), "10.5.0", "8.6"),
        cache_key("0" * 64, flags, "10.6.0", "8.6"),
        cache_key("0" * 64, flags, "10.5.0", "8.9"),
    }
    assert key not in others and len(others) == 4


def test_cc_mapping() -> None:
    assert engine_filename("8.6") == "model.sm86.plan"
    assert engine_filename("10.0") == "model.sm100.plan"
    with pytest.raises(DltkError, match="must look like 8.6"):
        engine_filename("86")
    assert parse_gpus(["9.0", "8.6"]) == {"8.6": 1, "9.0": 0}
    assert parse_gpus(["0=8.6", "1=8.6", "2=8.9"]) == {"8.6": 0, "8.9": 2}
    with pytest.raises(DltkError, match="--gpu-cc 'sm86' must look like 8.6"):
        parse_gpus(["sm86"])
    with pytest.raises(DltkError, match="give the GPU's compute capability"):
        parse_gpus([])


def test_plan_one_engine_per_model_precision_and_cc(manifest: Path) -> None:
    plans = plan_engines(load_manifest(manifest), {"8.6": 0, "9.0": 1}, "10.5.0")
    assert [(p.triton_model, p.cc, p.device) for p in plans] == [
        ("mnist_trt_fp16", "8.6", 0),
        ("mnist_trt_fp16", "9.0", 1),
        ("mnist_trt_tf32", "8.6", 0),
        ("mnist_trt_tf32", "9.0", 1),
    ]
    assert len({p.key for p in plans}) == 4
    first = plans[0]
    assert first.engine == f"plans/{first.key}.plan"
    assert first.engine_filename == "model.sm86.plan"
    assert first.onnx_files == ("mnist.onnx",)
    assert first.argv == (
        "trtexec",
        "--onnx=/engines/onnx/mnist/mnist.onnx",
        f"--saveEngine=/engines/plans/{first.key}.plan.partial",
        "--timingCacheFile=/engines/timing-trt10.5.0-sm86.cache",
        "--device=0",
        "--skipInference",
        "--minShapes=input:1x1x28x28",
        "--optShapes=input:16x1x28x28",
        "--maxShapes=input:64x1x28x28",
        "--fp16",
    )


def test_keys_follow_the_onnx_content_and_its_external_data(
    tmp_path: Path, manifest: Path, build_onnx: Callable[..., Path]
) -> None:
    def keys() -> list[str]:
        return [p.key for p in plan_engines(load_manifest(manifest), {"8.6": 0}, "10.5.0")]

    before = keys()
    assert keys() == before
    build_onnx(tmp_path / "models" / "mnist.onnx", seed=1)  # other weights, same interface
    changed = keys()
    assert set(changed).isdisjoint(before)

    build_onnx(tmp_path / "models" / "mnist.onnx", seed=1, external_data=True)
    plans = plan_engines(load_manifest(manifest), {"8.6": 0}, "10.5.0")
    assert plans[0].onnx_files == ("mnist.onnx", "mnist.onnx.data")
    with_data = [p.key for p in plans]
    data = tmp_path / "models" / "mnist.onnx.data"
    data.write_bytes(data.read_bytes()[:-4] + b"\0\0\0\0")  # other weights, same graph file
    assert set(keys()).isdisjoint(with_data)


def facts(pci_gpus: int, answering: bool, reason: str, ccs: tuple[str, ...] = ()) -> dict:
    """A host's nvidia_gpu_facts fact (dltk.gpu_facts.gather) as a TEST DOUBLE: `pci_gpus` H100s
    on the PCI bus, the driver answering or not, and the compute capabilities nvidia-smi lists."""
    return {
        "pci_gpus": [
            {"address": f"0000:{i + 0x1B:02x}:00.0", "device_id": "2330", "class": "0x030200"}
            for i in range(pci_gpus)
        ],
        "nvswitches": [],
        "driver": {"answering": answering, "rc": 0 if answering else None, "reason": reason},
        "gpus": [
            {"index": i, "name": "GPU", "bus_id": "", "pci_address": "", "cc": cc}
            for i, cc in enumerate(ccs)
        ],
    }


NOT_FOUND = facts(0, False, "not found")


def test_the_skip_without_a_gpu() -> None:
    skip = decide_gpus("auto", NOT_FOUND)
    assert not skip.present and skip.error == "" and skip.gpus == ()
    assert skip.reason == (
        "no NVIDIA GPU found (no PCI device of vendor 0x10de, class 0x03xx, "
        "and nvidia-smi does not run (not found))"
    )
    absent = decide_gpus("absent", facts(1, True, "lists 1 GPU(s)", ("8.6",)))
    assert not absent.present and absent.reason == "disabled by trt_engines_gpu=absent"
    # The plan may still be computed for a forced compute capability.
    assert decide_gpus("auto", NOT_FOUND, forced_cc=("8.6",)).gpus == ("8.6",)
    # A driver that answers with no GPU, on a host without NVIDIA PCI GPUs.
    none = decide_gpus("auto", facts(0, True, "lists no GPU"))
    assert not none.present and none.reason.endswith("and nvidia-smi lists no GPU)")


def test_gpu_hosts_and_what_they_need() -> None:
    found = decide_gpus("auto", facts(2, True, "lists 2 GPU(s)", ("8.6", "8.6")))
    assert found.present and found.gpus == ("0=8.6", "1=8.6") and found.error == ""
    assert found.reason == "2 NVIDIA GPU(s) on the PCI bus; GPUs 0=8.6, 1=8.6"
    no_driver = decide_gpus("auto", facts(1, False, "exit 9: NVIDIA-SMI has failed"))
    assert no_driver.present
    assert no_driver.error.startswith(
        "this host should build engines (1 NVIDIA GPU(s) on the PCI bus) but nvidia-smi does not "
        "run (exit 9: NVIDIA-SMI has failed): install the NVIDIA driver"
    )
    # GPUs the driver lists count even where the PCI tree shows none (a VM's odd sysfs).
    smi_only = decide_gpus("auto", facts(0, True, "lists 1 GPU(s)", ("9.0",)))
    assert smi_only.present and smi_only.reason == "nvidia-smi answers; GPUs 0=9.0"
    # A driver that does not answer has no GPU list, whatever the fact holds.
    stale = decide_gpus("auto", facts(0, False, "exit 9", ("9.0",)))
    assert not stale.present and stale.gpus == ()
    forced = decide_gpus("present", facts(0, False, "exit 2"))
    assert forced.present and "forced by trt_engines_gpu=present" in forced.error
    with pytest.raises(DltkError, match="GPU mode 'maybe'"):
        decide_gpus("maybe", NOT_FOUND)
    with pytest.raises(DltkError, match="GPU facts lack gpus, driver"):
        decide_gpus("auto", {"pci_gpus": []})


def test_cli_detect_reads_the_fact(capsys: pytest.CaptureFixture[str]) -> None:
    fact = json.dumps(facts(1, True, "lists 1 GPU(s)", ("9.0",)))
    assert main(["engines", "detect", "--gpu-facts", fact]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out == {
        "present": True,
        "gpus": ["0=9.0"],
        "reason": "1 NVIDIA GPU(s) on the PCI bus; GPUs 0=9.0",
        "error": "",
    }
    assert main(["engines", "detect", "--gpu-facts", "{nope"]) != 0
    assert "--gpu-facts is not JSON" in capsys.readouterr().err
    assert main(["engines", "detect", "--gpu-facts", "[]"]) != 0
    assert "--gpu-facts must be a JSON object" in capsys.readouterr().err


def test_cli_plan_is_deterministic(manifest: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["engines", "plan", "--manifest", str(manifest), "--gpu-cc", "8.6", "--json"]
    assert main(args) == 0
    first = capsys.readouterr().out
    assert main(args) == 0
    assert capsys.readouterr().out == first
    document = json.loads(first)
    assert document["tensorrt"] == "10.5.0"
    assert (
        document["tensorrt_source"] == "NGC 24.10 release notes (nominal, not read from an image)"
    )
    assert [e["triton_model"] for e in document["engines"]] == ["mnist_trt_fp16", "mnist_trt_tf32"]
    assert main([*args, "--trt-version", "10.6.0"]) == 0
    other = json.loads(capsys.readouterr().out)
    assert {e["key"] for e in other["engines"]}.isdisjoint(e["key"] for e in document["engines"])


def test_cli_prints_commands_and_keys(manifest: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["engines", "plan", "--manifest", str(manifest), "--gpu-cc", "8.6"]) == 0
    out = capsys.readouterr().out
    assert "mnist_trt_fp16" in out and "trtexec --onnx=/engines/onnx/mnist/mnist.onnx" in out
    assert "--maxShapes=input:64x1x28x28 --fp16" in out


def test_cli_bad_cc_is_one_line(manifest: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["engines", "plan", "--manifest", str(manifest), "--gpu-cc", "eighty"]) == 1
    assert capsys.readouterr().err == (
        "dltk engines: error: --gpu-cc 'eighty' must look like 8.6 or 1=8.6 "
        "(CUDA device=compute capability)\n"
    )


# Banners as trtexec prints them (docs gpu-interfaces.md section 5: TensorRT 10.5 `--help`,
# TensorRT 10.16 build, TensorRT 8.6 from NVIDIA/TensorRT issue #3734).
BANNER_10_5 = "&&&& RUNNING TensorRT.trtexec [TensorRT v100500] [b18] # trtexec --help\n"
BANNER_10_16 = (
    "&&&& RUNNING TensorRT.trtexec [TensorRT v101600] [b72] # trtexec --onnx=m.onnx\n"
    "[07/02/2026-03:47:25] [I] Skipped inference phase since --skipInference is added.\n"
)


def test_trtexec_banner_gives_the_tensorrt_version() -> None:
    assert parse_trtexec_version(BANNER_10_5) == "10.5.0"
    assert parse_trtexec_version(BANNER_10_16) == "10.16.0"
    assert parse_trtexec_version("&&&& RUNNING TensorRT.trtexec [TensorRT v100001] # x") == "10.0.1"
    assert trt_version_from_code(8601) == "8.6.1"
    assert trt_version_from_code(101303) == "10.13.3"
    with pytest.raises(
        DltkError, match="trtexec printed no .* banner .*'bash: trtexec: not found'"
    ):
        parse_trtexec_version("bash: trtexec: not found\n")


def test_key_and_timing_cache_follow_the_image_tensorrt(
    manifest: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Defect 8: a release bump (another TensorRT in the build image) rebuilds every engine and
    uses another timing cache; the version comes from the image's trtexec, not a variable."""
    base = ["engines", "plan", "--manifest", str(manifest), "--gpu-cc", "0=9.0", "--json"]
    documents = {}
    for name, banner in (("10.5", BANNER_10_5), ("10.16", BANNER_10_16)):
        assert main([*base, "--trtexec-output", banner]) == 0
        documents[name] = json.loads(capsys.readouterr().out)
    old, new = documents["10.5"], documents["10.16"]
    assert (old["tensorrt"], new["tensorrt"]) == ("10.5.0", "10.16.0")
    assert old["tensorrt_source"] == "trtexec banner of the build image"
    assert {e["key"] for e in old["engines"]}.isdisjoint(e["key"] for e in new["engines"])
    assert {e["timing_cache"] for e in old["engines"]} == {"timing-trt10.5.0-sm90.cache"}
    assert {e["timing_cache"] for e in new["engines"]} == {"timing-trt10.16.0-sm90.cache"}
    assert all(
        "--timingCacheFile=/engines/timing-trt10.16.0-sm90.cache" in e["argv"]
        for e in new["engines"]
    )
    assert timing_cache_name("10.5.0", "8.6") != timing_cache_name("10.5.0", "9.0")
    assert timing_cache_name("10.5.0", "9.0") != timing_cache_name("10.13.2", "9.0")
    # The same image gives the same keys (a cache hit on the next run).
    assert main([*base, "--trtexec-output", BANNER_10_5]) == 0
    assert json.loads(capsys.readouterr().out) == old


def test_trtexec_output_from_a_file_and_a_bad_one(
    tmp_path: Path, manifest: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    banner = tmp_path / "trtexec.txt"
    banner.write_text(BANNER_10_16)
    args = ["engines", "plan", "--manifest", str(manifest), "--gpu-cc", "8.6", "--json"]
    assert main([*args, "--trtexec-output", f"@{banner}"]) == 0
    assert json.loads(capsys.readouterr().out)["tensorrt"] == "10.16.0"
    assert main([*args, "--trtexec-output", "Unable to find image 'x' locally"]) == 1
    assert "trtexec printed no" in capsys.readouterr().err


def test_the_release_gives_the_nominal_version(
    manifest: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["engines", "plan", "--manifest", str(manifest), "--gpu-cc", "8.6", "--json"]
    assert main([*args, "--ngc-release", "25.08"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["tensorrt"] == "10.13.2"
    assert document["tensorrt_source"].startswith("NGC 25.08 release notes (nominal")


def test_each_build_gets_its_gpu_by_nvidia_smi_index(manifest: Path) -> None:
    """Defect 11 (trtexec): the container is given GPU N (nvidia-smi/PCI order) and trtexec
    builds on the only device it sees, with CUDA ordinals in PCI bus order."""
    plans = plan_engines(load_manifest(manifest), parse_gpus(["3=9.0", "5=8.6"]), "10.5.0")
    assert {(p.cc, p.device) for p in plans} == {("8.6", 5), ("9.0", 3)}
    for plan in plans:
        assert plan.env == {"CUDA_DEVICE_ORDER": "PCI_BUS_ID"} == BUILD_ENV
        assert [a for a in plan.argv if a.startswith("--device=")] == ["--device=0"]
