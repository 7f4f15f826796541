"""The drill host: docker CLI and ansible-playbook calls the fault drills make, and their waits.

Everything here acts on the drill's own sandbox host (`<host>`, `<host>-tritonserver`, its data
directory /srv/dltk-sandbox/<host>) and the published port 127.0.0.1:<port>; every wait is
bounded.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from dltk.drill.report import play_failure
from dltk.errors import DltkError

SANDBOX_DATA = Path("/srv/dltk-sandbox")


@dataclass
class DrillHost:
    root: Path  # the project checkout (deploy.yml, scripts/sandbox.sh)
    inventory: Path
    name: str
    http_port: int
    work: Path  # control-node scratch directory of the drills
    models: tuple[str, ...] = ("mnist", "mnist_classifier")
    recover_timeout_s: float = 240.0
    play_timeout_s: float = 1200.0
    # What a drill re-runs: deploy.yml, or its serve stage (playbooks/serve.yml) on a host whose
    # earlier stages are deployed and unchanged (the same roles, minutes less on a busy machine).
    playbooks: tuple[str, ...] = ("deploy.yml",)

    @property
    def container(self) -> str:
        return f"{self.name}-tritonserver"

    @property
    def data_dir(self) -> Path:
        return SANDBOX_DATA / self.name

    @property
    def repo_dir(self) -> Path:
        return self.data_dir / "model_repo"

    @property
    def url(self) -> str:
        return f"127.0.0.1:{self.http_port}"


def run(
    cmd: Sequence[str], timeout: float = 120.0, **kwargs: object
) -> subprocess.CompletedProcess[str]:
    """Run a command, capture its output; a missing command or a timeout is a DltkError."""
    try:
        return subprocess.run(
            list(cmd), capture_output=True, text=True, timeout=timeout, check=False, **kwargs
        )  # type: ignore[call-overload]
    except FileNotFoundError:
        raise DltkError(f"{cmd[0]} is not installed") from None
    except subprocess.TimeoutExpired:
        raise DltkError(f"{' '.join(cmd[:3])} did not finish within {timeout:.0f} s") from None


def docker(*args: str, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
    return run(["docker", *args], timeout=timeout)


def inspect(name: str, template: str) -> str:
    """`docker inspect -f template name`, '' when there is no such container."""
    result = docker("inspect", "-f", template, name, timeout=30)
    return result.stdout.strip() if result.returncode == 0 else ""


def wait_until(predicate: Callable[[], bool], timeout_s: float, interval_s: float = 0.5) -> bool:
    """Poll `predicate` until it holds or `timeout_s` passed (bounded)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if predicate():
                return True
        except Exception:  # the thing waited for is not there yet
            pass
        time.sleep(interval_s)
    return False


def models_not_ready(host: DrillHost) -> list[str]:
    """The models of `host` that are not READY (health API: open without a key)."""
    import tritonclient.http as httpclient

    client = httpclient.InferenceServerClient(host.url, connection_timeout=3, network_timeout=3)
    not_ready = []
    for model in host.models:
        try:
            if not client.is_model_ready(model):
                not_ready.append(model)
        except Exception:
            not_ready.append(model)
    return not_ready


def systemd_state(host: DrillHost) -> str:
    result = docker("exec", host.name, "systemctl", "is-system-running", timeout=30)
    return result.stdout.strip() or "unreachable"


def repo_snapshot(directory: Path) -> dict[str, str]:
    """{relative path: sha256} of every file under `directory`."""
    snapshot = {}
    for path in sorted(directory.rglob("*")):
        if path.is_file():
            snapshot[str(path.relative_to(directory))] = hashlib.sha256(
                path.read_bytes()
            ).hexdigest()
    return snapshot


@dataclass
class PlayResult:
    rc: int
    seconds: float
    output: str

    def failure(self) -> str:
        """The first failed task's message, one line (empty when the play passed)."""
        return play_failure(self.output) if self.rc != 0 else ""


def deploy(host: DrillHost, *extra: str, playbooks: Sequence[str] = ()) -> PlayResult:
    """ansible-playbook on the drill host's inventory (the real playbooks, deploy.yml default)."""
    bin_dir = Path(sys.executable).parent
    env = dict(
        os.environ,
        ANSIBLE_CONFIG=str(host.root / "ansible.cfg"),
        ANSIBLE_NOCOLOR="1",
        PATH=f"{bin_dir}:{os.environ.get('PATH', '')}",
    )
    books = list(playbooks or host.playbooks)
    cmd = [str(bin_dir / "ansible-playbook"), *books, "-i", str(host.inventory), *extra]
    start = time.monotonic()
    try:
        proc = subprocess.run(
            cmd, capture_output=True, text=True, timeout=host.play_timeout_s, check=False,
            cwd=host.root, env=env,
        )  # fmt: skip
        rc, output = proc.returncode, proc.stdout + proc.stderr
    except subprocess.TimeoutExpired as exc:
        partial = exc.stdout.decode() if isinstance(exc.stdout, bytes) else exc.stdout or ""
        rc, output = (
            -1,
            f"{partial}\nfatal: [drill]: timeout msg: no end within {host.play_timeout_s:.0f} s",
        )
    with (host.work / "plays.log").open("a") as f:
        f.write(f"\n===== {' '.join(books)} {' '.join(extra)} rc={rc}\n{output}")
    return PlayResult(rc, round(time.monotonic() - start, 1), output)


def sandbox(host: DrillHost, action: str) -> None:
    result = run(
        ["scripts/sandbox.sh", action],
        timeout=180,
        cwd=host.root,
        env=dict(os.environ, SANDBOX_HOSTS=host.name),
    )
    if result.returncode != 0:
        raise DltkError(f"scripts/sandbox.sh {action} failed: {result.stderr.strip()[-300:]}")
