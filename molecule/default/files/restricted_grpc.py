"""gRPC side of "only inference is open", run by molecule/default/verify.yml on the control node.

Usage: python restricted_grpc.py HOST:PORT KEY_FILE. Without the key, every admin call (load a
model with its own model.py, unload, repository index, shared-memory registration, statistics,
logging, trace) must be refused with Triton's "restricted" error, while health, metadata and
inference answer; with the key, the repository index answers. Prints one line per call and exits
1 when any call did not behave.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import tritonclient.grpc as grpcclient
from tritonclient.utils import InferenceServerException

MODEL_PY = (
    b"import os\nclass TritonPythonModel:\n    def execute(self, requests):\n        return []\n"
)
CONFIG = '{"name": "x", "backend": "python", "max_batch_size": 0, "input": [], "output": []}'


def main() -> int:
    url, key_file = sys.argv[1], sys.argv[2]
    key = Path(key_file).read_text().strip()
    client = grpcclient.InferenceServerClient(url)
    admin = {
        "load x with file:1/model.py": lambda h: client.load_model(
            "x", headers=h, config=CONFIG, files={"file:1/model.py": MODEL_PY}
        ),
        "unload mnist": lambda h: client.unload_model("mnist", headers=h),
        "repository index": lambda h: client.get_model_repository_index(headers=h),
        "register system shm": lambda h: client.register_system_shared_memory(
            "x", "/dltk-x", 64, headers=h
        ),
        "shm status": lambda h: client.get_system_shared_memory_status(headers=h),
        "statistics": lambda h: client.get_inference_statistics(headers=h),
        "log settings": lambda h: client.get_log_settings(headers=h),
        "trace settings": lambda h: client.get_trace_settings(headers=h),
    }
    bad = 0
    for name, call in admin.items():
        try:
            call(None)
            print(f"NOT REFUSED  {name}")
            bad += 1
        except InferenceServerException as exc:
            refused = "restricted" in str(exc).lower()
            print(f"{'refused' if refused else 'OTHER ERROR'}      {name}: {str(exc)[:120]}")
            bad += 0 if refused else 1
    headers = {"triton-grpc-protocol-dltk-api-key": key}
    index = client.get_model_repository_index(headers=headers)
    names = [m.name for m in index.models]
    print(f"with the key: repository index lists {', '.join(names)}")
    bad += 0 if "mnist" in names else 1
    open_ok = client.is_server_live() and client.is_server_ready()
    open_ok = open_ok and client.is_model_ready("mnist")
    open_ok = open_ok and client.get_model_metadata("mnist").name == "mnist"
    inp = grpcclient.InferInput("input", [1, 1, 28, 28], "FP32")
    inp.set_data_from_numpy(np.zeros((1, 1, 28, 28), np.float32))
    logits = client.infer("mnist", [inp]).as_numpy("logits")
    open_ok = open_ok and logits is not None and logits.shape == (1, 10)
    print(f"open without a key: health, metadata, inference {'OK' if open_ok else 'FAILED'}")
    bad += 0 if open_ok else 1
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
