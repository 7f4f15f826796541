"""Any ONNX model by one manifest line, served by the real CPU tritonserver.

One repository holds: MNIST (`dltk export`), a ResNet-18 (`dltk export --model resnet50
--depth 18 --external-data`: dynamic batch, weights in a .onnx.data side file), a fixed-batch
SqueezeNet from the onnx wheel's light model zoo given real (seeded) weights in a .onnx.data
file and tensor names with '/' and ':', the same zoo model as shipped (`dltk repo add`), and
the BLS pipeline over MNIST. Every output is compared with onnxruntime in-process; the largest
difference and the tolerance are printed.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import tritonclient.http as httpclient
from onnx import numpy_helper

from dltk.serve.server import BackgroundServer, background_server

from .support import READY_TIMEOUT_S, Artifacts, require_ok, run_dltk

pytestmark = pytest.mark.integration

ATOL = 1e-4
ZOO = Path(onnx.__file__).parent / "backend" / "test" / "data" / "light"
ZOO_INPUT, ZOO_OUTPUT = "gpu_0/data:0", "gpu_0/softmax:1"


def zoo_squeezenet_with_weights(path: Path, seed: int = 0) -> Path:
    """light_squeezenet with seeded He-initialized weights (the wheel's are constants), tensor
    names with '/' and ':', and its weights saved to a `.onnx.data` side file."""
    model = onnx.load(str(ZOO / "light_squeezenet.onnx"))
    rng = np.random.default_rng(seed)
    shapes = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    keep_nodes, weights = [], []
    for node in model.graph.node:
        if node.op_type != "ConstantOfShape":
            keep_nodes.append(node)
            continue
        shape = tuple(int(d) for d in shapes[node.input[0]])
        fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else 1
        scale = np.sqrt(2.0 / fan_in) if len(shape) > 1 else 0.01
        value = (rng.standard_normal(shape) * scale).astype(np.float32)
        weights.append(numpy_helper.from_array(value, node.output[0]))
    initializers = [i for i in model.graph.initializer if not i.name.endswith("__SHAPE")]
    del model.graph.node[:]
    model.graph.node.extend(keep_nodes)
    del model.graph.initializer[:]
    model.graph.initializer.extend(initializers + weights)
    # IR 3 lists initializers as graph inputs too: keep the image input only.
    image = [i for i in model.graph.input if i.name == "data_0"]
    del model.graph.input[:]
    model.graph.input.extend(image)
    renames = {"data_0": ZOO_INPUT, model.graph.output[0].name: ZOO_OUTPUT}
    for value in (*model.graph.input, *model.graph.output):
        value.name = renames.get(value.name, value.name)
    for node in model.graph.node:
        node.input[:] = [renames.get(n, n) for n in node.input]
        node.output[:] = [renames.get(n, n) for n in node.output]
    model.ir_version = 7  # IR 3 wants every initializer listed as a graph input
    onnx.checker.check_model(model)
    onnx.save_model(
        model,
        str(path),
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location=f"{path.name}.data",
    )
    return path


@pytest.fixture(scope="module")
def model_files(artifacts: Artifacts, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("models")
    require_ok(
        run_dltk(
            "export", "--model", "resnet50", "--depth", "18", "--external-data", "--out", str(out)
        )
    )
    assert (out / "resnet18.onnx.data").is_file()
    return {
        "mnist": artifacts.onnx,
        "resnet18": out / "resnet18.onnx",
        "zoo_named": zoo_squeezenet_with_weights(out / "squeezenet.onnx"),
        "squeezenet": ZOO / "light_squeezenet.onnx",
    }


@pytest.fixture(scope="module")
def repo(model_files: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Rendered from a manifest of one line per model, plus one `dltk repo add`."""
    base = tmp_path_factory.mktemp("manifest")
    manifest = base / "models.yml"
    manifest.write_text(
        textwrap.dedent(
            f"""\
            models:
              - {{name: mnist, onnx: {model_files["mnist"]}, batch: {{max: 16}}, runtimes: [tensorrt, python-onnxruntime], dynamic_batching: {{}}}}
              - {{name: resnet18, onnx: {model_files["resnet18"]}, batch: {{min: 1, opt: 2, max: 4}}, runtimes: [python-onnxruntime]}}
              - {{name: zoo_named, onnx: {model_files["zoo_named"]}, batch: {{max: 0}}, runtimes: [python-onnxruntime]}}
            pipelines:
              - {{name: mnist_classifier, model: mnist, mean: 0.1307, std: 0.3081}}
            """  # noqa: E501 - one manifest line per model is the point
        )
    )
    out = base / "repo"
    args = ("--out", str(out), "--runtimes", "python-onnxruntime")
    require_ok(run_dltk("repo", "render", "--manifest", str(manifest), *args))
    require_ok(
        run_dltk(
            "repo",
            "add",
            str(model_files["squeezenet"]),
            "--name",
            "squeezenet",
            "--repo",
            str(out),
            "--runtime",
            "python-onnxruntime",
        )
    )
    assert (out / "resnet18/1/resnet18.onnx.data").is_file()
    assert (out / "zoo_named/1/squeezenet.onnx.data").is_file()
    return out


@pytest.fixture(scope="module")
def server(repo: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[BackgroundServer]:
    log = tmp_path_factory.mktemp("serve-models") / "tritonserver.log"
    with background_server(repo, log, ready_timeout=READY_TIMEOUT_S) as running:
        yield running


@pytest.fixture(scope="module")
def client(server: BackgroundServer) -> Iterator[httpclient.InferenceServerClient]:
    http = httpclient.InferenceServerClient(server.http_url, network_timeout=120)
    yield http
    http.close()


def infer(
    client: httpclient.InferenceServerClient, model: str, name: str, x: np.ndarray, dtype: str
) -> httpclient.InferResult:
    tensor = httpclient.InferInput(name, list(x.shape), dtype)
    tensor.set_data_from_numpy(x)
    return client.infer(model, [tensor])


def compare(label: str, got: np.ndarray, expected: np.ndarray) -> float:
    diff = float(np.abs(got.astype(np.float64) - expected).max())
    print(f"\n{label}: max |triton - onnxruntime| = {diff:.3g} (atol {ATOL:g})")
    assert got.shape == expected.shape
    assert diff <= ATOL, f"{label}: {diff} > {ATOL}"
    return diff


def reference(onnx_path: Path, feeds: dict[str, np.ndarray]) -> np.ndarray:
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    return session.run(None, feeds)[0]


@pytest.mark.parametrize(
    "model, max_batch_size, dims",
    [
        ("mnist", 16, [1, 28, 28]),
        ("resnet18", 4, [3, 224, 224]),
        ("zoo_named", 0, [1, 3, 224, 224]),
        ("squeezenet", 0, [1, 3, 224, 224]),
        ("mnist_classifier", 16, [1, 28, 28]),
    ],
)
def test_config_inferred_from_the_graph(
    client: httpclient.InferenceServerClient, model: str, max_batch_size: int, dims: list[int]
) -> None:
    assert client.is_model_ready(model)
    config = client.get_model_config(model)
    assert config["max_batch_size"] == max_batch_size
    assert config["input"][0]["dims"] == dims
    assert ("dynamic_batching" in config) == (model == "mnist")


def test_mnist_matches_onnxruntime(
    client: httpclient.InferenceServerClient, artifacts: Artifacts
) -> None:
    inputs, _ = artifacts.load_samples()
    x = inputs[:16].astype(np.float32)
    got = infer(client, "mnist", "input", x, "FP32").as_numpy("logits")
    compare("mnist", got, reference(artifacts.onnx, {"input": x}))


def test_resnet_with_external_data_matches_onnxruntime(
    client: httpclient.InferenceServerClient, model_files: dict[str, Path]
) -> None:
    x = np.random.default_rng(1).standard_normal((4, 3, 224, 224)).astype(np.float32)
    got = infer(client, "resnet18", "input", x, "FP32").as_numpy("logits")
    expected = reference(model_files["resnet18"], {"input": x})
    compare("resnet18 (batch 4, .onnx.data)", got, expected)
    assert np.std(expected) > 0  # real weights: the outputs depend on the input


def test_fixed_batch_zoo_model_with_slash_and_colon_names(
    client: httpclient.InferenceServerClient, model_files: dict[str, Path]
) -> None:
    x = np.random.default_rng(2).standard_normal((1, 3, 224, 224)).astype(np.float32)
    result = infer(client, "zoo_named", ZOO_INPUT, x, "FP32")
    got = result.as_numpy(ZOO_OUTPUT)
    expected = reference(model_files["zoo_named"], {ZOO_INPUT: x})
    compare("zoo squeezenet (fixed batch, '/' and ':' names, .onnx.data)", got, expected)
    assert got.shape == (1, 1000, 1, 1) and np.ptp(expected) > 1e-4
    shipped = infer(client, "squeezenet", "data_0", x, "FP32").as_numpy("softmaxout_1")
    compare(
        "zoo squeezenet as shipped",
        shipped,
        reference(ZOO / "light_squeezenet.onnx", {"data_0": x}),
    )


def test_bls_pipeline_classifies_uint8_images(
    client: httpclient.InferenceServerClient, artifacts: Artifacts
) -> None:
    inputs, labels = artifacts.load_samples()
    pixels = np.clip(np.rint((inputs[:16] * 0.3081 + 0.1307) * 255), 0, 255).astype(np.uint8)
    result = infer(client, "mnist_classifier", "image", pixels, "UINT8")
    x = ((pixels.astype(np.float32) / np.float32(255) - 0.1307) / 0.3081).astype(np.float32)
    logits = reference(artifacts.onnx, {"input": x})
    expected = np.exp(logits - logits.max(axis=1, keepdims=True))
    expected /= expected.sum(axis=1, keepdims=True)
    compare("mnist_classifier probabilities", result.as_numpy("probabilities"), expected)
    classes = result.as_numpy("class").ravel()
    assert classes.tolist() == logits.argmax(axis=1).tolist()
    accuracy = float((classes == labels[:16]).mean())
    print(f"mnist_classifier accuracy on 16 labelled digits: {accuracy:.3f}")
    assert accuracy >= 0.9
    # No GPU here: no engine, so the pipeline routes to the ONNX model.
    assert set(result.as_numpy("served_by").ravel().tolist()) == {b"mnist"}
    assert not client.is_model_ready("mnist_trt_fp16")


def test_bls_pipeline_rejects_float_images(client: httpclient.InferenceServerClient) -> None:
    from tritonclient.utils import InferenceServerException

    with pytest.raises(
        InferenceServerException,
        match="data-type is 'FP32', but model 'mnist_classifier' expects 'UINT8'",
    ):
        infer(client, "mnist_classifier", "image", np.zeros((1, 1, 28, 28), np.float32), "FP32")
    assert client.is_model_ready("mnist_classifier")
