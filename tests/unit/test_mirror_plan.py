"""`dltk mirror plan`: the bill of materials of an inventory.

The host variables come from the real ansible-playbook on a temporary inventory (a sandbox-like
CPU host and two GPU-like hosts, as in inventory/gpu_hosts.example.yml): debug tasks on the
control node, no host is contacted. The local docker engine is replaced by FakeDockerInspect, a
TEST DOUBLE that answers `docker image inspect` from a dict.
"""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest
import yaml

from dltk.errors import DltkError
from dltk.mirror import apt_mirror
from dltk.mirror.hostvars import parse_answers, resolve_hosts
from dltk.mirror.plan import NOT_HERE, ImageInfo, Item, build_bill, tables, totals
from dltk.release import CPU_TRITON, DEFAULT_NGC_RELEASE, TOOLKIT_TAG, get_release

ROOT = Path(__file__).resolve().parents[2]
RELEASE = get_release(DEFAULT_NGC_RELEASE)
CPU_TRITON_IMAGE = f"dltk/triton-cpu:{CPU_TRITON['tritonserver']}"


class FakeDockerInspect:
    """TEST DOUBLE for `docker image inspect` on the local engine: answers from `known`, records
    every image asked about. Not a docker engine."""

    def __init__(self, known: dict[str, ImageInfo]) -> None:
        self.known = known
        self.asked: list[str] = []

    def __call__(self, image: str) -> ImageInfo:
        self.asked.append(image)
        return self.known.get(image, ImageInfo(present=False))


SANDBOX_GROUP_VARS = {
    "docker_engine_manage": False,
    "dltk_triton_image": "dltk/triton-cpu:{{ dltk_ngc_cpu_triton.tritonserver }}",
    "triton_model_repo_runtimes": ["python-onnxruntime"],
    "dltk_model_repo_dir": "/srv/dltk-sandbox/{{ inventory_hostname }}/model_repo",
}
GPU_GROUP_VARS = {
    "triton_model_repo_runtimes": ["onnxruntime", "tensorrt"],
    "dltk_gpus": "all",
    "dltk_image_variant": "gpu",
    "ansible_user": "ubuntu",
}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """A temporary inventory, its manifest with an external-data model, a wheel archive; and the
    host variables the real ansible-playbook resolves for it (one run for the module)."""
    tmp = tmp_path_factory.mktemp("site")
    models = tmp / "models"
    models.mkdir()
    (models / "tiny.onnx").write_bytes(_onnx_with_external_data(models))
    (models / "tiny.samples.npz").write_bytes(b"x" * 300)
    manifest = tmp / "models.yml"
    manifest.write_text(
        yaml.safe_dump(
            {
                "models": [
                    {
                        "name": "tiny",
                        "onnx": "models/tiny.onnx",
                        "samples": "models/tiny.samples.npz",
                        "batch": {"max": 4},
                        "runtimes": ["onnxruntime", "python-onnxruntime"],
                    },
                    {
                        "name": "unbuilt",
                        "onnx": "models/unbuilt.onnx",
                        "batch": {"max": 4},
                        "runtimes": ["onnxruntime"],
                    },
                ]
            }
        )
    )
    archive = tmp / "toolkit-wheels.tar"
    with tarfile.open(archive, "w") as tar:
        for name, size in (("wheelhouse/a-1.0-py3-none-any.whl", 1000), ("wheelhouse/b.whl", 24)):
            src = tmp / Path(name).name
            src.write_bytes(b"w" * size)
            tar.add(src, arcname=name)
    inventory = tmp / "inventory"
    (inventory / "group_vars").mkdir(parents=True)
    (inventory / "group_vars" / "all.yml").write_text(
        yaml.safe_dump({"dltk_manifest": str(manifest), "dltk_image_wheels_archive": str(archive)})
    )
    (inventory / "group_vars" / "sandbox.yml").write_text(yaml.safe_dump(SANDBOX_GROUP_VARS))
    (inventory / "group_vars" / "gpu.yml").write_text(yaml.safe_dump(GPU_GROUP_VARS))
    hosts = {
        "all": {
            "children": {
                "sandbox": {"hosts": {"box-1": None}},
                "gpu": {
                    "hosts": {
                        # pins from the inventory
                        "gpu-01": {
                            "ansible_host": "gpu-01.example.internal",
                            "nvidia_driver_version": "535.309.01-1",
                            "docker_engine_package_version": "20.10.24+dfsg1-1+deb12u1",
                        },
                        # Docker's and NVIDIA's repositories instead of Debian's
                        "gpu-02": {
                            "docker_engine_source": "upstream",
                            "nsight_systems_source": "nvidia",
                        },
                    }
                },
            }
        }
    }
    path = inventory / "hosts.yml"
    path.write_text(yaml.safe_dump(hosts))
    hostvars = resolve_hosts(path, ROOT)
    empty = tmp / "no-wheelhouses"
    empty.mkdir()
    return {
        "inventory": path,
        "hostvars": hostvars,
        "archive": archive,
        "models": models,
        "empty": empty,
    }


def _onnx_with_external_data(folder: Path) -> bytes:
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper

    weight = numpy_helper.from_array(np.ones((4, 4), dtype=np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])],
        "tiny",
        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["N", 4])],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, ["N", 4])],
        [weight],
    )
    model = helper.make_model(graph)
    onnx.save_model(
        model,
        str(folder / "tiny.onnx"),
        save_as_external_data=True,
        location="tiny.onnx.data",
        size_threshold=0,
    )
    return (folder / "tiny.onnx").read_bytes()


def test_ansible_resolves_inventory_over_role_defaults_and_renders_templates(site) -> None:
    hv = site["hostvars"]
    assert sorted(hv) == ["box-1", "gpu-01", "gpu-02"]
    # group_vars/sandbox.yml's template over the dltk role's default, rendered by Ansible
    assert hv["box-1"]["triton_image"] == CPU_TRITON_IMAGE
    assert hv["box-1"]["docker_manage"] is False
    # role defaults where the inventory says nothing: the release file's images
    assert hv["gpu-01"]["triton_image"] == RELEASE.tritonserver_image
    assert hv["gpu-01"]["trt_image"] == RELEASE.tensorrt_image
    assert hv["gpu-01"]["image_base"] == RELEASE.pytorch_image
    assert hv["box-1"]["image_base"] == "dltk/debian-base:bookworm"
    # host_vars over group_vars over defaults; the roles' own filters computed the packages
    assert hv["gpu-01"]["driver_version"] == "535.309.01-1"
    assert hv["gpu-02"]["driver_version"] == ""
    assert hv["gpu-01"]["driver"]["packages"][0] == "nvidia-driver"
    assert hv["gpu-02"]["nsight"]["package"] == "nsight-systems-cli"
    assert hv["box-1"]["manifest"].endswith("models.yml")


def test_bill_of_a_sandbox_and_two_gpu_hosts(site) -> None:
    fake = FakeDockerInspect(
        {
            CPU_TRITON_IMAGE: ImageInfo(True, 800_000_000, "sha256:" + "a" * 64),
            RELEASE.tritonserver_image: ImageInfo(
                True, 17_000_000_000, "sha256:" + "b" * 64, ("nvcr.io/nvidia/x@sha256:cc",)
            ),
        }
    )
    # no GPU wheelhouse where the plan looks (this checkout's build/ may have one)
    bill = build_bill(
        str(site["inventory"]), site["hostvars"], ROOT, inspect=fake, wheelhouses=site["empty"]
    )
    assert {h: v["class"] for h, v in bill.hosts.items()} == {
        "box-1": "cpu",
        "gpu-01": "gpu",
        "gpu-02": "gpu",
    }
    images = {i.name: i for i in bill.items if i.kind == "image"}
    # the TensorRT image only for GPU hosts; the toolkit is built on the hosts, not carried
    assert images[RELEASE.tensorrt_image].hosts == ["gpu-01", "gpu-02"]
    assert images[RELEASE.tensorrt_image].size is None
    assert images[RELEASE.tensorrt_image].note == NOT_HERE
    assert images[RELEASE.tritonserver_image].size == 17_000_000_000
    assert images[RELEASE.tritonserver_image].extra["repo_digests"] == [
        "nvcr.io/nvidia/x@sha256:cc"
    ]
    assert images[CPU_TRITON_IMAGE].hosts == ["box-1"]
    toolkit = [i for i in images.values() if not i.carry]
    assert [i.name for i in toolkit] == [f"dltk/toolkit:{TOOLKIT_TAG}"]
    assert toolkit[0].name not in fake.asked  # another variant's image may carry that tag
    packages = {(i.name, i.detail): i for i in bill.items if i.kind == "package"}
    gpu2 = site["hostvars"]["gpu-02"]  # the roles' defaults, as Ansible resolved them
    # the sandbox host (docker not managed, no GPU) gets the docker modules' Python package and
    # the toolkit build's apt packages (images/dltk/apt-packages*.txt; Python on the cpu variant)
    box = [(i.name, i.source) for i in bill.items if i.kind == "package" and "box-1" in i.hosts]
    assert sorted(box) == sorted(
        (name, "Debian main")
        for name in ["python3-requests", "libb64-0d", "ca-certificates", "python3", "python3-venv"]
    )
    # the GPU variant's build installs into the NGC image (Ubuntu), without Python
    ngc = [(i.name, i.hosts) for i in bill.items if i.source == "the NGC image's Ubuntu"]
    assert ngc == [("libb64-0d", ["gpu-01", "gpu-02"]), ("ca-certificates", ["gpu-01", "gpu-02"])]
    assert packages[("nvidia-driver", "=535.309.01-1")].hosts == ["gpu-01"]
    assert packages[("nvidia-driver", f"branch {gpu2['driver_branch']} (newest)")].hosts == [
        "gpu-02"
    ]
    assert packages[("docker.io", "=20.10.24+dfsg1-1+deb12u1")].hosts == ["gpu-01"]
    assert (
        packages[("docker-ce", f"={gpu2['docker_upstream_version']}")].source == "Docker repository"
    )
    assert packages[("containerd.io", "")].hosts == ["gpu-02"]
    assert packages[("nsight-systems-cli", gpu2["nsight"]["version"])].source == "NVIDIA devtools"
    assert packages[("nvidia-container-toolkit", f"={gpu2['toolkit_version']}")].hosts == [
        "gpu-01",
        "gpu-02",
    ]
    assert packages[("python3-debian", "")].hosts == ["gpu-01", "gpu-02"]
    wheels = [i for i in bill.items if i.kind == "wheel"]
    cpu_wheels = {
        i.name: i.size for i in wheels if i.source == str(site["archive"])
    }  # not under ROOT
    assert cpu_wheels == {"a 1.0": 1000, "b.whl ": 24}
    assert {i.extra["file"] for i in wheels if i.extra} == {
        "wheelhouse/a-1.0-py3-none-any.whl",
        "wheelhouse/b.whl",
    }
    gpu_wheels = [i for i in wheels if i.detail == f"Python {RELEASE.python}"]
    assert f"tritonclient[http,grpc]=={RELEASE.tritonclient}" in [i.name for i in gpu_wheels]
    assert all(i.size is None for i in gpu_wheels)
    models = {i.name: i for i in bill.items if i.kind == "model"}
    assert set(models) == {
        "tiny: tiny.onnx",
        "tiny: tiny.onnx.data",
        "tiny: tiny.samples.npz",
        "unbuilt: unbuilt.onnx",
    }
    assert models["tiny: tiny.onnx.data"].size == 64  # 16 float32 weights
    assert models["tiny: tiny.samples.npz"].size == 300
    assert models["unbuilt: unbuilt.onnx"].size is None
    assert models["tiny: tiny.onnx"].hosts == ["box-1", "gpu-01", "gpu-02"]
    # the totals count what is carried, once each, and the items of unknown size
    t = totals(bill.items)
    onnx_size = (site["models"] / "tiny.onnx").stat().st_size
    # carried: the CPU Triton, the Debian base, and three NGC images (only tritonserver here)
    assert t["image"] == {"items": 5, "bytes": 17_800_000_000, "unknown": 3}
    assert t["wheel"]["bytes"] == 1024
    assert t["model"] == {"items": 4, "bytes": onnx_size + 64 + 300, "unknown": 1}
    assert t["all"]["bytes"] == sum(t[k]["bytes"] for k in ("image", "package", "wheel", "model"))
    assert t["all"]["items"] == len([i for i in bill.items if i.carry])
    document = json.loads(bill.to_json())
    assert document["totals"] == json.loads(json.dumps(t))
    assert len(document["images"]) == 6 and document["hosts"]["gpu-02"]["class"] == "gpu"
    assert [table.title.split(":")[0] for table in tables(bill)[:4]] == [
        "images",
        "apt packages (closure and .deb sizes",
        "wheels",
        "models",
    ]


def test_without_the_wheel_archive_the_requirements_are_listed_unsized(site) -> None:
    hostvars = {"box-1": dict(site["hostvars"]["box-1"])}
    hostvars["box-1"]["wheels_archive"] = str(site["inventory"].parent / "no-such.tar")
    bill = build_bill("inv", hostvars, ROOT, inspect=FakeDockerInspect({}))
    wheels = {i.name.split("==")[0]: i for i in bill.items if i.kind == "wheel"}
    assert {"setuptools", "wheel", "torch", "matplotlib"} <= set(wheels)
    assert all(i.size is None and "no-such.tar not built here" in i.note for i in wheels.values())
    pins = (ROOT / "constraints.txt").read_text()
    torch = wheels["torch"].name  # unpinned in requirements-tools.txt: constraints.txt's pin
    assert torch.startswith("torch==") and f"\n{torch}\n" in pins
    assert totals(bill.items)["wheel"] == {"items": len(wheels), "bytes": 0, "unknown": len(wheels)}


def test_a_built_gpu_wheelhouse_is_listed_file_by_file(site, tmp_path: Path) -> None:
    """`dltk mirror wheels --variant gpu` built the GPU set's wheelhouse (dltk.mirror.wheels names
    the directory): the plan lists its wheels with their bytes instead of the requirements."""
    from dltk.mirror import wheels

    hostvars = {"gpu-01": dict(site["hostvars"]["gpu-01"])}
    gpu = wheels.gpu_set(str(hostvars["gpu-01"]["release"]))
    folder = tmp_path / gpu.directory
    folder.mkdir(parents=True)
    (folder / "onnxruntime_gpu-9.9-cp310-cp310-manylinux_2_28_x86_64.whl").write_bytes(b"o" * 700)
    (folder / "rich-9.9-py3-none-any.whl").write_bytes(b"r" * 50)
    (folder / "not-a-wheel.txt").write_text("left out")
    bill = build_bill("inv", hostvars, ROOT, inspect=FakeDockerInspect({}), wheelhouses=tmp_path)
    listed = {i.name: (i.size, i.source, i.detail) for i in bill.items if i.kind == "wheel"}
    assert listed == {
        "onnxruntime_gpu 9.9": (700, gpu.directory, f"Python {RELEASE.python}"),
        "rich 9.9": (50, gpu.directory, f"Python {RELEASE.python}"),
    }
    assert totals(bill.items)["wheel"] == {"items": 2, "bytes": 750, "unknown": 0}
    # not built: its requirements, each once, with the command that builds it
    bill = build_bill(
        "inv", hostvars, ROOT, inspect=FakeDockerInspect({}), wheelhouses=site["empty"]
    )
    names = [i.name for i in bill.items if i.kind == "wheel"]
    assert names == gpu.requirement_lines(ROOT)
    assert len(names) == len(set(names))
    assert all(
        "dltk mirror wheels --variant gpu" in i.note for i in bill.items if i.kind == "wheel"
    )


def test_totals_leave_out_what_is_built_on_the_host() -> None:
    items = [
        Item("image", "a", "", "", 10),
        Item("image", "b", "", "", None),
        Item("image", "c", "", "", 1000, carry=False),
        Item("model", "m", "", "", 5),
    ]
    t = totals(items)
    assert t["image"] == {"items": 2, "bytes": 10, "unknown": 1}
    assert t["all"] == {"items": 3, "bytes": 15, "unknown": 1}
    assert t["package"] == {"items": 0, "bytes": 0, "unknown": 0}


def test_a_host_without_a_release_is_one_error(site) -> None:
    hostvars = {h: dict(v) for h, v in site["hostvars"].items()}
    hostvars["gpu-02"]["release"] = ""
    with pytest.raises(DltkError, match=r"^host gpu-02 has no dltk_ngc_release"):
        build_bill("inv", hostvars, ROOT, inspect=FakeDockerInspect({}))
    hostvars["gpu-02"]["release"] = "24.1"
    with pytest.raises(DltkError, match=r"^host gpu-02: NGC release '24.1' must look like"):
        build_bill("inv", hostvars, ROOT, inspect=FakeDockerInspect({}))


def test_a_variable_that_does_not_resolve_names_the_host() -> None:
    answer = {
        "plays": [
            {"tasks": [{"hosts": {"h1": {"failed": True, "msg": "'nothere' is\n undefined"}}}]}
        ]
    }
    with pytest.raises(DltkError, match=r"^host h1: its variables do not resolve: 'nothere' is un"):
        parse_answers(json.dumps(answer))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "does not exist"),
        ("all: {}\n", "lists no host"),
        ("all:\n  hosts:\n    h: [\n", "lists no host ([WARNING]: Unable to parse"),
        ("all:\n  hosts:\n    h1:\n      dltk_ngc_release: ''\n", "host h1 has no dltk_ngc_rel"),
    ],
)
def test_bad_input_is_one_error_line_and_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str | None, message: str
) -> None:
    inventory = tmp_path / "inv.yml"
    if content is not None:
        inventory.write_text(content)
    assert apt_mirror.main(["plan", "-i", str(inventory), "--project", str(ROOT)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("dltk mirror: error: ")
    assert message in err
