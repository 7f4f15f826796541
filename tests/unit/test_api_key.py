"""The deployment's API key: read from a file, sent as Triton's restricted-API header, redacted.

The repository-API test runs a real HTTP server (http.server on 127.0.0.1, a test double of
tritonserver's restriction: 403 without the header) so the request bytes are the real ones.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from dltk.api_key import (
    API_KEY_HEADER,
    grpc_headers,
    headers_for,
    http_headers,
    read_api_key,
    redact_command,
)
from dltk.errors import DltkError
from dltk.perf import ConcurrencyRange, PerfConfig, build_command, run_perf
from dltk.repo.load import load_models

KEY = "k3y0123456789abcdef"


def test_read_api_key(tmp_path: Path) -> None:
    path = tmp_path / "key"
    path.write_text(KEY + "\n")
    assert read_api_key(path) == KEY
    assert read_api_key(None) is None
    with pytest.raises(DltkError, match="cannot read the API key file"):
        read_api_key(tmp_path / "missing")
    path.write_text("a:b")
    with pytest.raises(DltkError, match="one key without spaces"):
        read_api_key(path)


def test_headers_follow_tritons_names() -> None:
    """HTTP: <key>; gRPC: triton-grpc-protocol-<key> (Triton's Limit Endpoint Access)."""
    assert http_headers(KEY) == {"dltk-api-key": KEY}
    assert grpc_headers(KEY) == {"triton-grpc-protocol-dltk-api-key": KEY}
    assert headers_for("grpc", KEY) == grpc_headers(KEY)
    assert headers_for("http", None) == {}


def test_perf_analyzer_gets_the_header_and_the_recorded_command_hides_it(tmp_path: Path) -> None:
    cfg = PerfConfig(
        model="m",
        url="t:8001",
        protocol="grpc",
        concurrency=ConcurrencyRange(1, 1),
        headers=tuple(grpc_headers(KEY).items()),
    )
    cmd = build_command("pa", cfg, tmp_path / "p.csv")
    assert cmd[cmd.index("-H") + 1] == f"triton-grpc-protocol-dltk-api-key:{KEY}"
    assert KEY not in " ".join(redact_command(cmd))
    seen: list[list[str]] = []

    def fake_run(argv: list[str], **kwargs: object):  # test double of subprocess.run
        import subprocess

        seen.append(argv)
        Path(argv[argv.index("-f") + 1]).write_text(
            "Concurrency,Inferences/Second,p50 latency,p90 latency,p95 latency,p99 latency\n"
            "1,100,1,2,3,4\n"
        )
        return subprocess.CompletedProcess(argv, 0, "", "")

    result = run_perf(Path("pa"), cfg, {}, runner=fake_run)
    assert KEY in " ".join(seen[0]) and KEY not in " ".join(result.command)


class _Restricted(BaseHTTPRequestHandler):
    """Test double of tritonserver's restricted repository API."""

    def do_POST(self) -> None:  # noqa: N802
        allowed = self.headers.get(API_KEY_HEADER) == KEY
        body = b"{}" if allowed else json.dumps({"error": "This API is restricted"}).encode()
        self.send_response(200 if allowed else 403)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802  (model ready: open)
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def restricted_server() -> Iterator[str]:
    server = HTTPServer(("127.0.0.1", 0), _Restricted)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()


def test_repo_load_presents_the_key(restricted_server: str) -> None:
    refused = load_models(restricted_server, ["mnist"], [], timeout=5)
    assert (
        not refused[0].ok and "403" in refused[0].detail and "--api-key-file" in refused[0].detail
    )
    allowed = load_models(restricted_server, ["mnist"], ["old"], timeout=5, key=KEY)
    assert [(r.action, r.ok) for r in allowed] == [("unload", True), ("load", True)]
