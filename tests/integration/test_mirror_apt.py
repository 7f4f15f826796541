"""`dltk mirror apt` with the real aptly against the real Debian mirror, and a FLAT repository.

1. Debian: two suites (bookworm, bookworm-updates) and three components (main, contrib,
   non-free) of the machine's Debian mirror; the mirror keeps each package in its suite and
   component, signs every suite, and apt (a private state directory) reads it and resolves the
   packages' whole closure from it alone.
2. A flat repository in NVIDIA's layout (`Suites: /`), built here with apt-ftparchive from real
   Debian .debs of run 1 and served on 127.0.0.1 by a thread of this test, stands in for
   NVIDIA's CUDA/libnvidia-container repositories (not reachable from this machine). Its packages
   need libraries no flat repository has: the run adds them to Debian's mirror (aptly snapshot
   verify), publishes both layouts, and apt installs (simulated) from the mirror alone. Run 2
   reuses run 1's aptly pool: no .deb is downloaded again.

Both runs use the pool of molecule/mirror (/var/cache/dltk/apt-mirror), so `make test` downloads
these packages once. Durations are printed (pytest -s), not asserted.
"""

from __future__ import annotations

import functools
import json
import threading
import time
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from dltk.mirror.apt_repo import (
    apt_reads,
    apt_simulate,
    export_key,
    throwaway_key,
    write_flat_index,
)

from .support import require_ok, run_dltk

pytestmark = pytest.mark.integration

CACHE = Path("/var/cache/dltk/apt-mirror")
COMPONENTS = "main contrib non-free non-free-firmware"
# (package, suite, component) in Debian 12 as the machine's mirror serves it.
EXPECTED = [
    ("hello", "bookworm", "main"),
    ("b43-fwcutter", "bookworm", "contrib"),
    ("unrar", "bookworm", "non-free"),
    ("tzdata", "bookworm-updates", "main"),
]
RUN_TIMEOUT_S = 900


def _pool_files(root: Path) -> dict[str, tuple[int, int]]:
    """aptly's pool: file -> (inode, mtime_ns); a download or rewrite changes it."""
    pool = root / "aptly" / "pool"
    return {
        str(p.relative_to(pool)): (p.stat().st_ino, p.stat().st_mtime_ns)
        for p in pool.rglob("*.deb")
    }


def _index(out: Path, prefix: str, suite: str, component: str) -> str:
    return (out / prefix / "dists" / suite / component / "binary-amd64" / "Packages").read_text()


@pytest.fixture(scope="module")
def debian_mirror(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("mirror-debian")
    argv = ["mirror", "apt", "--source", "debian", "--cache-dir", str(CACHE)]
    for package, _, _ in EXPECTED:
        argv += ["--package", package]
    start = time.monotonic()
    done = run_dltk(
        *argv, "--gnupghome", str(out / "gnupg"), "--out", str(out / "repo"), timeout=RUN_TIMEOUT_S
    )
    print(f"\n[mirror apt] Debian run: {time.monotonic() - start:.1f} s")
    require_ok(done)
    assert "apt read every published suite with it" in done.stdout
    return out / "repo"


def test_debian_suites_and_components_are_kept(debian_mirror: Path, tmp_path: Path) -> None:
    for package, suite, component in EXPECTED:
        assert f"Package: {package}\n" in _index(debian_mirror, "debian", suite, component), package
    for suite in ("bookworm", "bookworm-updates"):
        release = (debian_mirror / "debian" / "dists" / suite / "Release").read_text()
        assert f"Codename: {suite}\n" in release
        listed = next(ln for ln in release.splitlines() if ln.startswith("Components: "))
        assert sorted(listed.split()[1:]) == sorted(COMPONENTS.split())  # aptly sorts them
        assert (debian_mirror / "debian" / "dists" / suite / "InRelease").exists()
    # Nothing of non-free-firmware was asked for: the component exists, empty.
    assert _index(debian_mirror, "debian", "bookworm", "non-free-firmware") == ""
    key = debian_mirror / "dltk-mirror.asc"
    head = f"deb [signed-by={key}] file:{debian_mirror / 'debian'}"
    lines = [f"{head} bookworm {COMPONENTS}", f"{head} bookworm-updates {COMPONENTS}"]
    madison = apt_reads(lines, tmp_path / "apt", "amd64", [p for p, _, _ in EXPECTED])
    offered = [[f.strip() for f in line.split("|")] for line in madison.splitlines()]
    for package, suite, component in EXPECTED:
        where = f"file:{debian_mirror / 'debian'} {suite}/{component} amd64 Packages"
        assert [package, where] in [[f[0], f[2]] for f in offered], (package, madison)
    # A host with nothing installed gets every dependency from the mirror.
    plan = apt_simulate(tmp_path / "apt", "amd64", [p for p, _, _ in EXPECTED])
    assert all(f"Inst {p} " in plan for p, _, _ in EXPECTED), plan


@pytest.fixture
def flat_upstream(debian_mirror: Path, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A signed flat repository of two real Debian .debs, served on 127.0.0.1 (a test double
    for NVIDIA's flat repositories, which this machine cannot reach)."""
    repo = tmp_path / "upstream" / "repo"
    repo.mkdir(parents=True)
    for name in ("unrar", "b43-fwcutter"):
        (deb,) = (debian_mirror / "debian" / "pool").rglob(f"{name}_*_amd64.deb")
        (repo / deb.name).write_bytes(deb.read_bytes())
    home = tmp_path / "upstream-gnupg"
    with throwaway_key(home):
        assert write_flat_index(repo, ".", "flat test upstream", home) == 2
        export_key(home, tmp_path / "upstream" / "key.asc")
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(tmp_path / "upstream"))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/repo", tmp_path / "upstream" / "key.asc"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def test_flat_repository_is_mirrored_with_its_dependencies(
    flat_upstream: tuple[str, Path], tmp_path: Path
) -> None:
    url, key = flat_upstream
    sources = [
        {
            "name": "local-flat",
            "url": url,
            "key_url": str(key),
            "prefix": "vendor/flat/amd64",
            "key_paths": ["vendor/flat/gpgkey"],
            "packages": ["unrar", "b43-fwcutter"],
            "vendor": True,
        },
        # Debian's record with one suite (a --sources-file record replaces the known one).
        {
            "name": "debian",
            "url": "http://deb.debian.org/debian",
            "suites": ["bookworm"],
            "components": ["main", "contrib", "non-free"],
            "key_url": "/usr/share/keyrings/debian-archive-keyring.gpg",
            "prefix": "debian",
        },
    ]
    (tmp_path / "sources.json").write_text(json.dumps(sources))
    before = _pool_files(CACHE)
    out = tmp_path / "repo"
    start = time.monotonic()
    done = run_dltk(
        "mirror",
        "apt",
        "--sources-file",
        str(tmp_path / "sources.json"),
        "--package",
        "hello",
        "--cache-dir",
        str(CACHE),
        "--gnupghome",
        str(tmp_path / "gnupg"),
        "--out",
        str(out),
        timeout=RUN_TIMEOUT_S,
    )
    print(f"\n[mirror apt] flat + Debian run (cached pool): {time.monotonic() - start:.1f} s")
    require_ok(done)
    # unrar needs libstdc++6, which neither the flat repository nor hello's closure holds.
    added = next(ln for ln in done.stdout.splitlines() if ln.startswith("added as dependencies"))
    assert "libstdc++6" in added.split(":", 1)[1].split()
    assert "Package: libstdc++6\n" in _index(out, "debian", "bookworm", "main")
    flat = out / "vendor" / "flat" / "amd64"
    index = (flat / "Packages").read_text()
    assert index.count("Package: ") == 2 and "Filename: pool/main/u/unrar-nonfree/unrar_" in index
    assert "Package: unrar\n" in _index(out, "vendor/flat/amd64", "flat", "main")
    assert (flat / "InRelease").exists()
    assert (out / "vendor" / "flat" / "gpgkey").read_text() == (out / "dltk-mirror.asc").read_text()
    # Nothing downloaded again: every .deb came from run 1's pool.
    after = _pool_files(CACHE)
    assert {k: after[k] for k in before} == before
    mirror_key = out / "dltk-mirror.asc"
    lines = [
        f"deb [signed-by={mirror_key}] file:{flat} /",
        f"deb [signed-by={mirror_key}] file:{out / 'debian'} bookworm main contrib non-free",
    ]
    madison = apt_reads(lines, tmp_path / "apt", "amd64", ["unrar"])
    assert f"file:{flat}  Packages" in madison
    plan = apt_simulate(tmp_path / "apt", "amd64", ["unrar", "b43-fwcutter"])
    assert "Inst unrar " in plan and "Inst libstdc++6 " in plan
