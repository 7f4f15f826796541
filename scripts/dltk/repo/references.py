"""`dltk repo references`: the files each manifest model's verifier reference is made of (JSON).

A model's reference is its ONNX file and the external data files its tensors point at (weights
over 2 GB must live there; the locations are relative to the ONNX file's directory), plus its
labelled samples when the manifest names them. The triton_verify role copies them to the host as
`reference/<model>/<file>` (each model in a directory of its own: side files are often all named
`model.onnx.data`), and `dltk verify --reference-dir` finds the ONNX file there by its name.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from dltk.manifest.load import load_manifest
from dltk.onnx_graph import external_data_files


def reference_files(manifest_path: Path) -> list[dict[str, Any]]:
    """[{name, dir, files, samples}] per manifest model; files are relative to dir, ONNX first."""
    manifest = load_manifest(manifest_path, read_onnx=False)
    refs = []
    for model in manifest.models:
        refs.append(
            {
                "name": model.name,
                "dir": str(model.onnx.parent.resolve()),
                "files": [model.onnx.name, *external_data_files(model.onnx)],
                "samples": str(model.samples.resolve()) if model.samples else None,
            }
        )
    return refs


def run(args: argparse.Namespace) -> int:
    print(json.dumps(reference_files(Path(args.manifest)), indent=2))
    return 0


def add_verb(verbs: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    refs = verbs.add_parser(
        "references",
        help="the files of each model's verifier reference: ONNX file and external data (JSON)",
        description="Print, per manifest model, the directory of its ONNX file, the files the "
        "verifier needs from it (the ONNX file, then its external data files, relative to that "
        "directory) and its samples. The triton_verify role copies them to the host.",
    )
    refs.add_argument("--manifest", default="model_repo/models.yml", help="the model manifest")
    refs.set_defaults(func=run)
