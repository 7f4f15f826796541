"""A PEP 503 index of real wheels (dltk.mirror.wheels.write_index), served by a static web server on
127.0.0.1, and the real pip installing from it alone into a throwaway target.

The wheels are rich and its dependency chain (markdown-it-py -> mdurl, pygments), copied from the
toolkit set's wheelhouse that `make images` downloads (build/wheelhouse; `make integration` builds
the images first). pip runs with no configuration (PIP_CONFIG_FILE=/dev/null, no PIP_* variables:
this machine's pip config adds local indexes and find-links) and --index-url on the local server,
so it can reach nothing else; the server records what pip asked for.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from dltk.mirror import wheels as mw

ROOT = Path(__file__).resolve().parents[2]
CHAIN = ("rich", "markdown-it-py", "mdurl", "pygments")


def _wheels_on_disk(dest: Path) -> list[Path]:
    """Copies (not links: a test below alters one) of the chain's wheels from the toolkit set's
    wheelhouse."""
    house = ROOT / mw.cpu_sets(ROOT)[0].directory
    found = {mw.dist_name(p.name): p for p in mw.wheel_files(house)}
    missing = [name for name in CHAIN if name not in found]
    assert not missing, f"{house} lacks {missing}: run `make images` (it downloads the wheelhouse)"
    dest.mkdir()
    return [Path(shutil.copy2(found[name], dest / found[name].name)) for name in CHAIN]


class Server:
    """A static web server for a directory on 127.0.0.1 (a free port) that records request paths."""

    def __init__(self, directory: Path) -> None:
        self.paths: list[str] = []
        paths = self.paths

        class Handler(SimpleHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                paths.append(self.path)

        handler = functools.partial(Handler, directory=str(directory))
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/simple"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)


@pytest.fixture
def serve() -> Iterator[Callable[[Path], Server]]:
    servers: list[Server] = []

    def start(directory: Path) -> Server:
        server = Server(directory)
        server.thread.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.httpd.shutdown()
        server.httpd.server_close()


def pip_install(index_url: str, target: Path, *requirements: str) -> subprocess.CompletedProcess:
    """The real pip, configured by nothing but its arguments: only the given index."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env["PIP_CONFIG_FILE"] = os.devnull
    argv = [sys.executable, "-m", "pip", "install", "--disable-pip-version-check", "--no-cache-dir"]
    argv += ["--index-url", index_url, "--only-binary=:all:", "--target", str(target)]
    return subprocess.run(
        [*argv, *requirements], capture_output=True, text=True, env=env, timeout=180, check=False
    )


def test_pip_installs_a_dependency_chain_from_the_served_index(tmp_path: Path, serve) -> None:
    files = _wheels_on_disk(tmp_path / "house")
    indexed = mw.write_index(files, tmp_path / "index")
    assert sorted(i.project for i in indexed) == sorted(CHAIN)
    server = serve(tmp_path / "index")
    target = tmp_path / "target"
    run = pip_install(server.url, target, "rich")
    assert run.returncode == 0, run.stdout + run.stderr
    # every project's page and every file came from the local server, and nothing else was asked
    for name in CHAIN:
        assert f"/simple/{name}/" in server.paths, server.paths
    assert sorted(p.rpartition("/")[2] for p in server.paths if p.startswith("/files/")) == sorted(
        f.name for f in files
    )
    assert all(p.startswith(("/simple/", "/files/")) for p in server.paths), server.paths
    # the installed packages import from the target
    check = subprocess.run(
        [sys.executable, "-c", "import rich, markdown_it, mdurl, pygments; print(rich.__file__)"],
        env={**os.environ, "PYTHONPATH": str(target)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert check.returncode == 0, check.stderr
    assert check.stdout.strip().startswith(str(target))


def test_pip_refuses_a_file_whose_sha256_is_not_the_index_s(tmp_path: Path, serve) -> None:
    files = _wheels_on_disk(tmp_path / "house")
    mw.write_index(files, tmp_path / "index")
    served = tmp_path / "index" / "files" / files[2].name  # mdurl
    served.unlink()  # (a hard link to the copy: replace, do not write through it)
    served.write_bytes(files[2].read_bytes() + b"\0")  # same name, other bytes
    server = serve(tmp_path / "index")
    run = pip_install(server.url, tmp_path / "target", "rich")
    assert run.returncode != 0
    assert "DO NOT MATCH THE HASHES" in run.stderr, run.stderr[-2000:]


def test_without_a_project_in_the_index_pip_finds_it_nowhere_else(tmp_path: Path, serve) -> None:
    files = _wheels_on_disk(tmp_path / "house")
    mw.write_index([f for f in files if not f.name.startswith("mdurl")], tmp_path / "index")
    server = serve(tmp_path / "index")
    run = pip_install(server.url, tmp_path / "target", "rich")
    assert run.returncode != 0
    assert "No matching distribution found for mdurl" in run.stderr, run.stderr[-2000:]
