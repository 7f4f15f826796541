"""Planning for `dltk engines` (the command: engines/cli.py): the trtexec command and cache key of
every TensorRT engine to build.

One engine per manifest model (runtime `tensorrt`) x precision x GPU compute capability. The
engine is built by trtexec inside the TensorRT container of the Triton release (the trt_engines
role runs it on the GPU host); engines are not portable across TensorRT versions or GPU
generations, so each is keyed by sha256 of (ONNX bytes and external data, the trtexec flags that
shape the engine, TensorRT version, compute capability). Same input, same key; any change, a
new key - an existing `plans/<key>.plan` is a cache hit and is not rebuilt.

The TensorRT version in the key is the one that builds: the trt_engines role reads it from the
banner trtexec prints in the build image (`&&&& RUNNING TensorRT.trtexec [TensorRT v100500] ...`,
version code major*10000 + minor*100 + patch for TensorRT 10, major*1000 + minor*100 + patch
before; NVIDIA/TensorRT include/NvInferVersion.h), so a release bump rebuilds every engine. The
timing cache (trtexec --timingCacheFile) is per TensorRT version and compute capability too:
TensorRT's timing caches are not meant to be shared across TensorRT versions or GPU models
(https://docs.nvidia.com/deeplearning/tensorrt/latest/inference-library/advanced.html, "Timing
Cache"). A host that builds nothing plans with the release table's nominal version (dltk release).

trtexec's `--device=N` is a CUDA device ordinal, and CUDA numbers devices fastest-first unless
CUDA_DEVICE_ORDER=PCI_BUS_ID (https://docs.nvidia.com/cuda/cuda-c-programming-guide/index.html,
"CUDA Environment Variables"), while nvidia-smi and the NVIDIA Container Toolkit number them in
PCI bus order. So each build container gets only the GPU it builds for, by its nvidia-smi index
(docker device request `device_ids: [N]`, i.e. NVIDIA_VISIBLE_DEVICES=N;
https://docs.nvidia.com/datacenter/cloud-native/container-toolkit/latest/docker-specialized.html),
trtexec builds on `--device=0`, the only device it sees, and CUDA_DEVICE_ORDER=PCI_BUS_ID is set as
well, so the ordinal means the same thing inside and outside.

Everything here is pure except reading the ONNX files; no GPU is needed to plan.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field

from dltk.errors import DltkError
from dltk.manifest.model import Manifest, ModelSpec, trt_model_name
from dltk.onnx_graph import TensorSpec, content_sha256, external_data_files
from dltk.release import DEFAULT_NGC_RELEASE, get_release

CONTAINER_DIR = "/engines"
# Environment of every build container: CUDA ordinals in PCI bus order, like nvidia-smi's.
BUILD_ENV = {"CUDA_DEVICE_ORDER": "PCI_BUS_ID"}
# The banner trtexec prints first: `&&&& RUNNING TensorRT.trtexec [TensorRT v100500] [b18] # ...`.
TRTEXEC_BANNER = re.compile(r"&&&& \w+ TensorRT\.trtexec \[TensorRT v(?P<code>\d+)\]")
CC_PATTERN = re.compile(r"^(?:(?P<device>\d+)=)?(?P<cc>\d{1,2}\.\d)$")
# trtexec I/O format type per ONNX element type (for --inputIOFormats/--outputIOFormats).
IO_TYPES = {
    "FLOAT": "fp32",
    "FLOAT16": "fp16",
    "BFLOAT16": "bf16",
    "INT32": "int32",
    "INT64": "int64",
    "INT8": "int8",
    "UINT8": "uint8",
    "BOOL": "bool",
}
# Characters trtexec splits its shape and format specs on: a name with them cannot be passed.
UNUSABLE_IN_NAMES = (",", "'", "*")
PLAIN_NAME = re.compile(r"^[A-Za-z0-9_./-]+$")


@dataclass(frozen=True)
class EnginePlan:
    """One engine: what trtexec builds, its cache key and where the files go."""

    model: str
    precision: str
    cc: str
    device: int
    trt_version: str
    key: str
    triton_model: str
    onnx: str  # ONNX file on the control node
    onnx_files: tuple[str, ...]  # it and its external-data files (names relative to its dir)
    flags: tuple[str, ...]  # the trtexec flags that shape the engine (part of the key)
    argv: tuple[str, ...]  # the whole command, with paths inside the TensorRT container
    engine: str  # relative to the engines directory: plans/<key>.plan
    engine_filename: str  # its name in the Triton version directory
    timing_cache: str  # relative to the engines directory, per TensorRT version and cc
    # Environment of the build container (CUDA device order); `device` is the nvidia-smi index
    # the container is given, trtexec sees it as CUDA device 0.
    env: dict[str, str] = field(default_factory=lambda: dict(BUILD_ENV))


def engine_filename(cc: str) -> str:
    """The plan file name for compute capability `cc` in a version directory (8.6 -> sm86)."""
    return f"model.sm{check_cc(cc).replace('.', '')}.plan"


def check_cc(cc: str) -> str:
    if not re.fullmatch(r"\d{1,2}\.\d", cc):
        raise DltkError(f"GPU compute capability {cc!r} must look like 8.6 (major.minor)")
    return cc


def parse_gpus(values: list[str]) -> dict[str, int]:
    """`--gpu-cc` values (`8.6` or `DEVICE=8.6`) -> compute capability -> first CUDA device."""
    if not values:
        raise DltkError("give the GPU's compute capability with --gpu-cc X.Y (e.g. 8.6)")
    found: dict[str, int] = {}
    for position, value in enumerate(values):
        match = CC_PATTERN.match(value.strip())
        if not match:
            raise DltkError(
                f"--gpu-cc {value!r} must look like 8.6 or 1=8.6 (CUDA device=compute capability)"
            )
        device = int(match["device"]) if match["device"] is not None else position
        found.setdefault(match["cc"], device)
    return dict(sorted(found.items(), key=lambda item: tuple(map(int, item[0].split(".")))))


def engine_io_dtype(model: ModelSpec, precision: str, tensor: TensorSpec) -> str:
    """ONNX dtype of `tensor` at the engine's boundary: FLOAT16 for fp16 I/O engines."""
    fp16_io = model.tensorrt.fp16_io and precision == "fp16"
    return "FLOAT16" if fp16_io and tensor.dtype == "FLOAT" else tensor.dtype


def trtexec_name(name: str) -> str:
    """A tensor name as trtexec reads it in a spec: quoted when it holds ':' or the like."""
    bad = [c for c in UNUSABLE_IN_NAMES if c in name]
    if bad or not name:
        raise DltkError(
            f"tensor name {name!r} contains {bad[0] if bad else 'nothing'!r}, which trtexec "
            "cannot parse in --minShapes/--inputIOFormats; rename the tensor in the ONNX graph"
        )
    return name if PLAIN_NAME.match(name) else f"'{name}'"


def shape_specs(model: ModelSpec) -> dict[str, str]:
    """--minShapes/--optShapes/--maxShapes values from the manifest's batch range.

    Empty for a fixed-batch model (batch.max 0), whose ONNX shapes are all static.
    """
    variable = [t for t in model.inputs if -1 in t.dims]
    if variable:
        t = variable[0]
        raise DltkError(
            f"model {model.name!r} input {t.name!r} has variable dims {list(t.dims)}"
            + (" after the batch dim" if model.batch.max else "")
            + "; TensorRT engines here need fixed dims: export the model with static shapes"
        )
    if model.batch.max == 0:
        return {}
    specs = {}
    for flag, size in (
        ("min", model.batch.min),
        ("opt", model.batch.opt),
        ("max", model.batch.max),
    ):
        specs[f"--{flag}Shapes"] = ",".join(
            f"{trtexec_name(t.name)}:{'x'.join(str(d) for d in (size, *t.dims))}"
            for t in model.inputs
        )
    return specs


def _io_formats(model: ModelSpec, precision: str, tensors: tuple[TensorSpec, ...]) -> str:
    formats = []
    for tensor in tensors:
        dtype = engine_io_dtype(model, precision, tensor)
        if dtype not in IO_TYPES:
            raise DltkError(
                f"model {model.name!r} tensor {tensor.name!r} is {dtype}, which has no trtexec "
                f"I/O format; fp16_io supports {', '.join(IO_TYPES)}"
            )
        formats.append(f"{IO_TYPES[dtype]}:chw")
    return ",".join(formats)


def trtexec_flags(model: ModelSpec, precision: str) -> tuple[str, ...]:
    """The flags that decide what engine trtexec builds (in a fixed order)."""
    flags = [f"{flag}={value}" for flag, value in shape_specs(model).items()]
    if precision == "fp16":
        flags.append("--fp16")
        if model.tensorrt.fp16_io:
            flags.append(f"--inputIOFormats={_io_formats(model, precision, model.inputs)}")
            flags.append(f"--outputIOFormats={_io_formats(model, precision, model.outputs)}")
    elif precision != "tf32":  # tf32 is TensorRT's default for fp32 layers on Ampere and later
        raise DltkError(f"unknown precision {precision!r}; use tf32 or fp16")
    if model.tensorrt.workspace_mb:
        flags.append(f"--memPoolSize=workspace:{model.tensorrt.workspace_mb}M")
    return tuple(flags)


def trt_version_from_code(code: int) -> str:
    """TensorRT's version code -> "major.minor.patch" (100500 -> 10.5.0, 8601 -> 8.6.1)."""
    if code >= 100000:  # TensorRT 10 and later: major*10000 + minor*100 + patch
        major, rest = divmod(code, 10000)
    else:  # TensorRT 8 and earlier: major*1000 + minor*100 + patch
        major, rest = divmod(code, 1000)
    minor, patch = divmod(rest, 100)
    return f"{major}.{minor}.{patch}"


def parse_trtexec_version(text: str) -> str:
    """The TensorRT version in trtexec's banner (its first line, printed for any argument)."""
    match = TRTEXEC_BANNER.search(text)
    if not match:
        last = [line for line in text.splitlines() if line.strip()][-1:] or ["no output"]
        raise DltkError(
            "trtexec printed no `&&&& RUNNING TensorRT.trtexec [TensorRT vNNNNNN]` banner "
            f"(last line: {last[0].strip()[:160]!r}): "
            "check that the build image has trtexec on PATH"
        )
    return trt_version_from_code(int(match["code"]))


def timing_cache_name(trt_version: str, cc: str) -> str:
    """The timing cache of one TensorRT version on one compute capability."""
    return f"timing-trt{trt_version}-sm{check_cc(cc).replace('.', '')}.cache"


def cache_key(onnx_sha256: str, flags: tuple[str, ...], trt_version: str, cc: str) -> str:
    """sha256 of (ONNX content, engine flags, TensorRT version, compute capability)."""
    payload = json.dumps(
        {"onnx": onnx_sha256, "flags": list(flags), "tensorrt": trt_version, "cc": cc},
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(payload.encode()).hexdigest()


def trtexec_argv(
    model: ModelSpec, flags: tuple[str, ...], key: str, timing_cache: str, container_dir: str
) -> tuple[str, ...]:
    """trtexec in a container that sees only the GPU it builds for: always CUDA device 0."""
    base = container_dir.rstrip("/")
    return (
        "trtexec",
        f"--onnx={base}/onnx/{model.name}/{model.onnx.name}",
        f"--saveEngine={base}/plans/{key}.plan.partial",
        f"--timingCacheFile={base}/{timing_cache}",
        "--device=0",
        "--skipInference",
        *flags,
    )


def plan_engines(
    manifest: Manifest,
    gpus: dict[str, int],
    trt_version: str,
    container_dir: str = CONTAINER_DIR,
) -> list[EnginePlan]:
    """Every engine of the manifest for these GPUs (compute capability -> CUDA device)."""
    if not re.fullmatch(r"\d+\.\d+(\.\d+){0,2}", trt_version):
        raise DltkError(f"--trt-version {trt_version!r} must look like 10.5.0")
    plans = []
    for model in manifest.models:
        if "tensorrt" not in model.runtimes:
            continue
        onnx_sha = content_sha256(model.onnx)
        files = (model.onnx.name, *external_data_files(model.onnx))
        for precision in model.precisions:
            flags = trtexec_flags(model, precision)
            for cc, device in gpus.items():
                key = cache_key(onnx_sha, flags, trt_version, cc)
                timing_cache = timing_cache_name(trt_version, cc)
                plans.append(
                    EnginePlan(
                        model=model.name,
                        precision=precision,
                        cc=cc,
                        device=device,
                        trt_version=trt_version,
                        key=key,
                        triton_model=trt_model_name(model.name, precision),
                        onnx=str(model.onnx.resolve()),
                        onnx_files=files,
                        flags=flags,
                        argv=trtexec_argv(model, flags, key, timing_cache, container_dir),
                        engine=f"plans/{key}.plan",
                        engine_filename=engine_filename(cc),
                        timing_cache=timing_cache,
                    )
                )
    return plans


@dataclass(frozen=True)
class GpuDecision:
    """Whether a host builds engines, for which GPUs (DEVICE=X.Y), and why (printed)."""

    present: bool
    gpus: tuple[str, ...]
    reason: str
    error: str = ""  # set when the host should build but its GPUs are unknown


GPU_FACT_KEYS = ("pci_gpus", "gpus", "driver")


def decide_gpus(mode: str, facts: dict, forced_cc: tuple[str, ...] = ()) -> GpuDecision:
    """The trt_engines role's decision from the host's GPU facts (pure).

    facts: dltk.gpu_facts.gather() of the host (the nvidia_gpu_facts module's fact).
    mode: auto (an NVIDIA GPU on the PCI bus or one nvidia-smi lists means a GPU), present
    (build whatever was found), absent (never build). `forced_cc` replaces nvidia-smi's list.
    """
    if mode not in ("auto", "present", "absent"):
        raise DltkError(f"GPU mode {mode!r} must be auto, present or absent")
    missing = [key for key in GPU_FACT_KEYS if key not in facts]
    if missing:
        raise DltkError(f"GPU facts lack {', '.join(missing)}: pass nvidia_gpu_facts' whole fact")
    for cc in forced_cc:
        check_cc(cc.split("=")[-1])
    driver = facts["driver"]
    listed = facts["gpus"] if driver["answering"] else []
    smi_gpus = tuple(f"{gpu['index']}={gpu['cc']}" for gpu in listed)
    gpus = tuple(forced_cc) or smi_gpus
    if driver["answering"]:
        smi = "nvidia-smi lists no GPU" if not smi_gpus else f"nvidia-smi {driver['reason']}"
    else:
        smi = f"nvidia-smi does not run ({driver['reason']})"
    if mode == "absent":
        return GpuDecision(False, gpus, "disabled by trt_engines_gpu=absent")
    pci = len(facts["pci_gpus"])
    if mode == "auto" and not pci and not smi_gpus:
        reason = f"no NVIDIA GPU found (no PCI device of vendor 0x10de, class 0x03xx, and {smi})"
        return GpuDecision(False, gpus, reason)
    if mode == "present":
        why = "forced by trt_engines_gpu=present"
    elif pci:
        why = f"{pci} NVIDIA GPU(s) on the PCI bus"
    else:
        why = "nvidia-smi answers"
    if not gpus:
        return GpuDecision(
            True,
            (),
            why,
            error=f"this host should build engines ({why}) but {smi}: install the NVIDIA "
            'driver (nvidia_driver role) or set trt_engines_gpu_cc, e.g. ["8.6"]',
        )
    return GpuDecision(True, gpus, f"{why}; GPUs {', '.join(gpus)}")


def plan_json(
    plans: list[EnginePlan], gpus: dict[str, int], trt_version: str, trt_source: str = ""
) -> str:
    document = {
        "tensorrt": trt_version,
        "tensorrt_source": trt_source,
        "gpus": [{"cc": cc, "device": device} for cc, device in gpus.items()],
        "engines": [asdict(p) for p in plans],
    }
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


def plan_trt_version(
    trt_version: str | None, trtexec_output: str | None, ngc_release: str | None
) -> tuple[str, str]:
    """(TensorRT version, where it came from): the build image's trtexec banner when given."""
    if trtexec_output is not None:
        return parse_trtexec_version(trtexec_output), "trtexec banner of the build image"
    if trt_version is not None:
        return trt_version, "--trt-version"
    ngc = ngc_release or DEFAULT_NGC_RELEASE
    return get_release(ngc).tensorrt, f"NGC {ngc} release notes (nominal, not read from an image)"
