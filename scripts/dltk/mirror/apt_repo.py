"""apt repository formats: Packages stanzas, signed Release files, labeled STAND-IN packages.

Shared by `dltk mirror` (mirror/apt_mirror.py) and the molecule scenarios that stand in for vendor
repositories not reachable here: `python -m dltk.mirror.apt_mirror spec SPEC OUT GNUPGHOME`.
"""

from __future__ import annotations

import email.utils
import hashlib
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from dltk.errors import DltkError

ORIGIN = "DLTK Deploy mirror"
KEY_LIFETIME = "90d"


@dataclass(frozen=True)
class Suite:
    """One suite the mirror serves: <root>/dists/<name> (root: debian or debian-security)."""

    root: str
    name: str


def packages_entry(control: str, filename: str, data: bytes) -> str:
    """A Packages stanza: the .deb's control fields plus where it is and its checksums."""
    extra = [
        f"Filename: {filename}",
        f"Size: {len(data)}",
        f"MD5sum: {hashlib.md5(data).hexdigest()}",  # noqa: S324 - apt's index format
        f"SHA256: {hashlib.sha256(data).hexdigest()}",
    ]
    return control.rstrip("\n") + "\n" + "\n".join(extra) + "\n"


def release_text(
    indexes: dict[str, bytes], arch: str, label: str, date: str, suite: Suite | None = None
) -> str:
    """Release file listing each index (path relative to the Release file) with size and SHA256."""
    lines = [f"Origin: {ORIGIN}", f"Label: {label}", f"Date: {date}", f"Architectures: {arch}"]
    if suite is not None:
        components = sorted({path.split("/", 1)[0] for path in indexes})
        lines += [f"Suite: {suite.name}", f"Codename: {suite.name}"]
        lines.append(f"Components: {' '.join(components)}")
    lines.append("SHA256:")
    for path, data in sorted(indexes.items()):
        lines.append(f" {hashlib.sha256(data).hexdigest()} {len(data):>10} {path}")
    return "\n".join(lines) + "\n"


def run(argv: list[str], what: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(argv, check=True, text=True, **kwargs)  # type: ignore[call-overload]
    except FileNotFoundError as exc:
        raise DltkError(f"{what}: {argv[0]} is not installed") from exc
    except subprocess.CalledProcessError as exc:
        tail = (exc.stderr or "").strip().splitlines()[-1:] or [f"exit code {exc.returncode}"]
        raise DltkError(f"{what} failed: {tail[0]}") from exc


def _gpg(home: Path, *args: str) -> None:
    base = ["gpg", "--batch", "--quiet", "--homedir", str(home), "--pinentry-mode", "loopback"]
    run([*base, "--passphrase", "", *args], "gpg", capture_output=True)


def new_key(home: Path) -> None:
    """A throwaway signing key (ed25519, expires after KEY_LIFETIME: rebuild the mirror then)."""
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(mode=0o700, parents=True)
    uid = "DLTK throwaway apt repository key <mirror@dltk.invalid>"
    _gpg(home, "--quick-gen-key", uid, "ed25519", "sign", KEY_LIFETIME)


def stop_agent(home: Path) -> None:
    """Stop the gpg-agent that gpg started for `home` (no-op when none runs).

    gpg starts a gpg-agent daemon per home directory on its first key operation and leaves it
    running after gpg exits; a throwaway key needs none once the repository is signed.
    """
    argv = ["gpgconf", "--homedir", str(home), "--kill", "gpg-agent"]
    try:
        subprocess.run(argv, capture_output=True, check=False)
    except FileNotFoundError:  # gpgconf ships with gpg; without it no agent was started
        pass


@contextmanager
def throwaway_key(home: Path) -> Iterator[Path]:
    """`new_key(home)` for the `with` block; its gpg-agent is stopped when the block ends."""
    try:
        new_key(home)
        yield home
    finally:
        stop_agent(home)


def export_key(home: Path, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.unlink(missing_ok=True)
    _gpg(home, "--armor", "--export", "--output", str(dest))


def write_release(
    release_dir: Path,
    indexes: dict[str, bytes],
    arch: str,
    label: str,
    home: Path,
    suite: Suite | None,
) -> None:
    """Release, InRelease (clear-signed) and Release.gpg (detached) in release_dir."""
    date = email.utils.formatdate(usegmt=True)
    release = release_dir / "Release"
    release.write_text(release_text(indexes, arch, label, date, suite))
    for name in ("InRelease", "Release.gpg"):
        (release_dir / name).unlink(missing_ok=True)
    _gpg(home, "--clearsign", "--output", str(release_dir / "InRelease"), str(release))
    _gpg(
        home, "--armor", "--detach-sign", "--output", str(release_dir / "Release.gpg"), str(release)
    )


def deb_control(deb: Path) -> str:
    return run(["dpkg-deb", "-f", str(deb)], f"reading {deb.name}", capture_output=True).stdout


def build_standin_deb(pkg: dict[str, object], arch: str, dest_dir: Path) -> Path:
    """A STAND-IN .deb: only the files the spec lists, a description that says what it is."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for path, text in dict(pkg.get("files", {})).items():  # type: ignore[call-overload]
            target = root / str(path).lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(str(text))
            target.chmod(0o755 if "/bin/" in str(path) else 0o644)
        (root / "DEBIAN").mkdir()
        summary, _, body = str(pkg["description"]).partition("\n")
        long_lines = [(" " + ln) if ln.strip() else " ." for ln in body.strip().splitlines()]
        control = [
            f"Package: {pkg['name']}",
            f"Version: {pkg['version']}",
            f"Architecture: {arch}",
            "Maintainer: DLTK Deploy molecule <test@dltk.invalid>",
            "Section: misc",
            "Priority: optional",
        ]
        if pkg.get("depends"):
            control.append(f"Depends: {pkg['depends']}")
        control += [f"Description: {summary}", *long_lines]
        (root / "DEBIAN" / "control").write_text("\n".join(control) + "\n")
        version = str(pkg["version"]).split(":", 1)[-1]
        deb = dest_dir / f"{pkg['name']}_{version}_{arch}.deb"
        argv = ["dpkg-deb", "--root-owner-group", "-Zgzip", "--build", str(root), str(deb)]
        run(argv, f"building {deb.name}", capture_output=True)
        return deb


def build_spec_repo(spec: dict[str, object], out: Path, home: Path) -> str:
    """A repository of STAND-IN packages (flat or dists layout) signed by the key in home."""
    arch, base = str(spec["arch"]), out / str(spec["path"])
    shutil.rmtree(base, ignore_errors=True)
    if spec["layout"] == "flat":
        pool = release_dir = index_dir = base
        prefix, suite = "./", None
    else:
        component = str(spec["component"])
        pool = base / "pool" / component
        release_dir = base / "dists" / str(spec["suite"])
        index_dir = release_dir / component / f"binary-{arch}"
        prefix, suite = f"pool/{component}/", Suite(str(spec["path"]), str(spec["suite"]))
    for directory in (pool, index_dir):
        directory.mkdir(parents=True, exist_ok=True)
    packages = list(spec["packages"])  # type: ignore[call-overload]
    debs = [build_standin_deb(p, arch, pool) for p in packages]
    text = "\n".join(packages_entry(deb_control(d), prefix + d.name, d.read_bytes()) for d in debs)
    (index_dir / "Packages").write_text(text)
    rel = (index_dir / "Packages").relative_to(release_dir).as_posix()
    label = "STAND-IN test repository (not a vendor repository)"
    write_release(release_dir, {rel: text.encode()}, arch, label, home, suite)
    export_key(home, out / str(spec["key_path"]))
    return f"built {len(debs)} STAND-IN package(s) in {base}"
