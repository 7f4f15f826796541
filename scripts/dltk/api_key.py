"""The deployment's Triton API key: read from a file, sent as a header, kept out of reports.

tritonserver restricts its admin APIs (model repository, shared memory, statistics, trace,
logging) to requests carrying a header (Triton's "Limit Endpoint Access":
https://docs.nvidia.com/deeplearning/triton-inference-server/user-guide/docs/customization_guide/inference_protocols.html#limit-endpoint-access-beta).
An HTTP request carries `<header>: <key>`; a gRPC request carries the metadata key
`triton-grpc-protocol-<header>`. The key is read from a file (the deployment mounts it read-only)
so it never appears on a command line of ours; perf_analyzer only takes headers on its command
line (`-H`), so the perf command we record is redacted.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from dltk.errors import DltkError

# The header name the deployment configures in --http-restricted-api / --grpc-restricted-protocol.
API_KEY_HEADER = "dltk-api-key"
GRPC_HEADER_PREFIX = "triton-grpc-protocol-"
REDACTED = "<redacted>"


def read_api_key(path: Path | str | None) -> str | None:
    """The key in `path` (stripped), None without a path; one-line DltkError when unusable."""
    if path is None or str(path) == "":
        return None
    try:
        key = Path(path).read_text().strip()
    except OSError as exc:
        raise DltkError(f"cannot read the API key file {path}: {exc.strerror}") from None
    if not key or any(c in key for c in ",:= \t\n"):
        raise DltkError(f"API key file {path} must hold one key without spaces, ',', ':' or '='")
    return key


def http_headers(key: str | None) -> dict[str, str]:
    return {API_KEY_HEADER: key} if key else {}


def grpc_headers(key: str | None) -> dict[str, str]:
    return {GRPC_HEADER_PREFIX + API_KEY_HEADER: key} if key else {}


def headers_for(protocol: str, key: str | None) -> dict[str, str]:
    """Headers a client of `protocol` (http or grpc) sends to pass the restriction."""
    return grpc_headers(key) if protocol == "grpc" else http_headers(key)


def redact_command(cmd: Sequence[str]) -> list[str]:
    """`cmd` with the value of every `-H name:value` replaced (pure)."""
    out: list[str] = []
    for i, arg in enumerate(cmd):
        if i > 0 and cmd[i - 1] == "-H":
            name = arg.split(":", 1)[0]
            out.append(f"{name}:{REDACTED}")
        else:
            out.append(arg)
    return out
