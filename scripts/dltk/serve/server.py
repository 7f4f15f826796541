"""The real CPU tritonserver (from nvidia-pytriton) of `dltk serve DIR` (the command: serve/cli.py),
in the foreground.

The repository is validated first (`dltk validate`); the server binds loopback by default,
signals are forwarded, and the server's exit code is returned. `background_server()` is the
same command started in the background for tests: it waits for /v2/health/ready with a
bounded timeout (printing the server log when it times out) and stops the server on exit.
"""

from __future__ import annotations

import contextlib
import ctypes
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from rich.console import Console
from tritonclient.http import InferenceServerClient
from tritonclient.utils import InferenceServerException

from dltk.errors import DltkError
from dltk.tritonbin import TritonInstall

CONTROL_MODES = ("none", "explicit", "poll")
FORWARDED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)
PR_SET_PDEATHSIG = 1

console = Console(stderr=True)


@dataclass(frozen=True)
class ServeOptions:
    repo: Path
    http_port: int = 8000
    grpc_port: int = 8001
    metrics_port: int = 8002
    address: str = "127.0.0.1"
    model_control_mode: str = "none"
    log_verbose: int = 0
    extra_args: tuple[str, ...] = field(default=())

    @property
    def http_url(self) -> str:
        return f"{self.address}:{self.http_port}"

    @property
    def grpc_url(self) -> str:
        return f"{self.address}:{self.grpc_port}"


def build_server_command(install: TritonInstall, opts: ServeOptions) -> list[str]:
    """tritonserver's command line for `opts` (pure)."""
    return [
        str(install.binary),
        f"--model-repository={opts.repo.resolve()}",
        f"--backend-directory={install.backend_dir}",
        f"--cache-directory={install.cache_dir}",
        f"--model-control-mode={opts.model_control_mode}",
        f"--http-address={opts.address}",
        f"--http-port={opts.http_port}",
        f"--grpc-address={opts.address}",
        f"--grpc-port={opts.grpc_port}",
        f"--metrics-address={opts.address}",
        f"--metrics-port={opts.metrics_port}",
        f"--log-verbose={opts.log_verbose}",
        *opts.extra_args,
    ]


def check_options(opts: ServeOptions) -> None:
    """Cheap checks before anything starts: ports in range and distinct, DIR exists."""
    ports = {"--http-port": opts.http_port, "--grpc-port": opts.grpc_port}
    ports["--metrics-port"] = opts.metrics_port
    for flag, port in ports.items():
        if not 1 <= port <= 65535:
            raise DltkError(f"{flag} {port} is out of range; use a port between 1 and 65535")
    if len(set(ports.values())) != len(ports):
        raise DltkError("--http-port, --grpc-port and --metrics-port must be three different ports")
    if opts.model_control_mode not in CONTROL_MODES:
        raise DltkError(f"--model-control-mode must be one of {', '.join(CONTROL_MODES)}")
    if not opts.repo.is_dir():
        raise DltkError(
            f"model repository {opts.repo} is not a directory; render one with `dltk repo render`"
        )


def validate_model_repo(repo: Path) -> None:
    """Run `dltk validate`'s checks; raise DltkError with the first problem (file:line:col)."""
    from dltk.repo.validate import validate_repo  # lazy: it imports onnx and protobuf

    result: Any = validate_repo(repo)
    problems = [p for p in (result or []) if p] if isinstance(result, list | tuple) else []
    if problems:
        more = (
            f" (+{len(problems) - 1} more; run `dltk validate {repo}`)" if len(problems) > 1 else ""
        )
        raise DltkError(f"{problems[0]}{more}")


def _set_pdeathsig() -> None:
    """In the child: die with the parent (so a killed `dltk serve` leaves no server behind)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def exit_code(returncode: int) -> int:
    """A shell-style exit code: 128+N for a child killed by signal N."""
    return 128 - returncode if returncode < 0 else returncode


def run_foreground(cmd: Sequence[str], env: dict[str, str]) -> int:
    """Run `cmd` in its own session, forward our signals to it, return its exit code."""
    try:
        proc = subprocess.Popen(
            list(cmd), env=env, start_new_session=True, preexec_fn=_set_pdeathsig
        )
    except OSError as exc:
        raise DltkError(f"cannot start {cmd[0]}: {exc.strerror}") from None

    def forward(signum: int, _frame: object) -> None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signum)

    previous = {sig: signal.signal(sig, forward) for sig in FORWARDED_SIGNALS}
    try:
        while True:
            try:
                return exit_code(proc.wait())
            except InterruptedError:  # pragma: no cover - PEP 475 retries wait() for us
                continue
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def free_port(address: str = "127.0.0.1") -> int:
    """A port that is free on `address` right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((address, 0))
        return int(sock.getsockname()[1])


def is_ready(http_url: str, timeout: float = 2.0) -> bool:
    """True when GET http://URL/v2/health/ready answers 200 (tritonclient's is_server_ready)."""
    try:
        with InferenceServerClient(
            http_url, connection_timeout=timeout, network_timeout=timeout
        ) as client:
            return bool(client.is_server_ready())
    except (InferenceServerException, OSError):
        return False


def port_open(address: str, port: int, timeout: float = 1.0) -> bool:
    """True when a TCP connection to ADDRESS:PORT succeeds."""
    try:
        with socket.create_connection((address, port), timeout=timeout):
            return True
    except OSError:
        return False


def tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no server log)"


@dataclass
class BackgroundServer:
    """A `dltk serve` process started by background_server()."""

    opts: ServeOptions
    proc: subprocess.Popen[bytes]
    log_path: Path

    @property
    def http_url(self) -> str:
        return self.opts.http_url

    @property
    def grpc_url(self) -> str:
        return self.opts.grpc_url

    @property
    def metrics_url(self) -> str:
        return f"{self.opts.address}:{self.opts.metrics_port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise DltkError(
                    f"dltk serve exited with code {self.proc.returncode} before it was ready; "
                    f"log {self.log_path}:\n{tail(self.log_path)}"
                )
            # Triton may answer /v2/health/ready before its metrics endpoint listens.
            if is_ready(self.http_url) and port_open(self.opts.address, self.opts.metrics_port):
                return
            time.sleep(0.25)
        raise DltkError(
            f"tritonserver not ready on {self.http_url} after {timeout:.0f}s (a model stuck in "
            f"'loading' often means the python backend stub cannot start); log {self.log_path}:\n"
            f"{tail(self.log_path)}"
        )

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM (forwarded to tritonserver by dltk serve), then SIGKILL after `timeout`."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        return exit_code(self.proc.returncode)


@contextlib.contextmanager
def background_server(
    repo: Path,
    log_path: Path,
    ready_timeout: float = 120.0,
    address: str = "127.0.0.1",
    extra_serve_args: Sequence[str] = (),
) -> Iterator[BackgroundServer]:
    """Start `dltk serve` on free ports, wait until ready (bounded), stop it on exit."""
    opts = ServeOptions(
        repo=repo,
        http_port=free_port(address),
        grpc_port=free_port(address),
        metrics_port=free_port(address),
        address=address,
    )
    cmd = [
        sys.executable,
        "-m",
        "dltk",
        "serve",
        str(repo),
        f"--http-port={opts.http_port}",
        f"--grpc-port={opts.grpc_port}",
        f"--metrics-port={opts.metrics_port}",
        f"--address={address}",
        *extra_serve_args,
    ]
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log: IO[bytes] = log_path.open("wb")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, preexec_fn=_set_pdeathsig)
    server = BackgroundServer(opts=opts, proc=proc, log_path=log_path)
    try:
        server.wait_ready(ready_timeout)
        yield server
    finally:
        server.stop()
        log.close()
