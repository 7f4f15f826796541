"""The verifier's reference files (`dltk repo references`) and where `dltk verify` finds them.

A model whose weights live in external data files is verified against its ONNX file together
with those files: the triton_verify role copies each model's into `reference/<model>/`. Before,
the role copied only `<model>.onnx` and the verifier failed ("External data path validation
failed"): found by `dltk bench converge` with an external-data model.
"""

from __future__ import annotations

import json
from pathlib import Path

from test_verify import _args

from dltk.bench.converge import write_bulk_onnx
from dltk.cli import main
from dltk.repo.references import reference_files
from dltk.verify.cli import options_from_args
from dltk.verify.inputs import locate_references
from dltk.verify.models import Served
from dltk.verify.verifier import Verifier


def _manifest(tmp_path: Path) -> Path:
    models = tmp_path / "models"
    write_bulk_onnx(models / "big.onnx", 0.01, external=True)
    write_bulk_onnx(models / "small.onnx", 0.01)
    (models / "small.samples.npz").write_bytes(b"")
    manifest = tmp_path / "repo" / "models.yml"
    manifest.parent.mkdir()
    manifest.write_text(
        "models:\n"
        "  - {name: big, onnx: ../models/big.onnx, batch: {max: 4}, runtimes: [onnxruntime]}\n"
        "  - {name: small, onnx: ../models/small.onnx, samples: ../models/small.samples.npz,\n"
        "     batch: {max: 4}, runtimes: [onnxruntime]}\n"
    )
    return manifest


def test_each_model_lists_its_onnx_file_then_its_external_data(tmp_path):
    refs = reference_files(_manifest(tmp_path))
    models = str((tmp_path / "models").resolve())
    assert refs == [
        {"name": "big", "dir": models, "files": ["big.onnx", "big.onnx.data"], "samples": None},
        {
            "name": "small",
            "dir": models,
            "files": ["small.onnx"],
            "samples": f"{models}/small.samples.npz",
        },
    ]


def test_the_cli_prints_the_list_as_json(tmp_path, capsys):
    manifest = _manifest(tmp_path)
    assert main(["repo", "references", "--manifest", str(manifest)]) == 0
    assert json.loads(capsys.readouterr().out) == reference_files(manifest)


def _verifier(reference_dir: Path, manifest: Path | None) -> Verifier:
    opts = options_from_args(
        _args(model="big", reference_dir=str(reference_dir), manifest=manifest and str(manifest))
    )
    verifier = Verifier(opts)
    verifier.served = Served("onnx", "big", "fp32", "the ONNX model itself")
    return verifier


def test_the_verifier_takes_the_onnx_file_from_the_models_reference_directory(tmp_path):
    manifest = _manifest(tmp_path)
    ref = tmp_path / "reference"
    (ref / "big").mkdir(parents=True)
    (ref / "big" / "big.onnx").write_bytes(b"x")
    verifier = _verifier(ref, manifest)
    locate_references(verifier)
    assert verifier.onnx == ref / "big" / "big.onnx"


def test_the_verifier_falls_back_to_the_flat_layout(tmp_path):
    ref = tmp_path / "reference"
    ref.mkdir()
    verifier = _verifier(ref, _manifest(tmp_path))
    locate_references(verifier)
    assert verifier.onnx == ref / "big.onnx"
