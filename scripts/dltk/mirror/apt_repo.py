"""What the mirror needs around aptly: the signing key, flat indexes, STAND-IN repositories.

aptly (apt_aptly.py) downloads, resolves and publishes signed suites; it cannot publish a FLAT
repository (NVIDIA's layout, `Suites: /`). For those, and for the labeled STAND-IN test
repositories the molecule scenarios build (`python -m dltk.mirror.apt_mirror spec SPEC OUT
GNUPGHOME`), apt-ftparchive (Debian's apt-utils) writes the Packages and Release files and gpg
signs them. No index is written by hand here.
"""

from __future__ import annotations

import gzip
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from dltk.errors import DltkError

ORIGIN = "DLTK Deploy mirror"
KEY_LIFETIME = "90d"
KEY_UID = "DLTK throwaway apt repository key <mirror@dltk.invalid>"
KEY_EMAIL = "mirror@dltk.invalid"


def run(argv: list[str], what: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(argv, check=True, text=True, **kwargs)  # type: ignore[call-overload]
    except FileNotFoundError as exc:
        raise DltkError(f"{what}: {argv[0]} is not installed (make deps)") from exc
    except subprocess.CalledProcessError as exc:
        lines = [ln for ln in (exc.stderr or exc.stdout or "").strip().splitlines() if ln.strip()]
        tail = lines[-1:] or [f"exit code {exc.returncode}"]
        raise DltkError(f"{what} failed: {tail[0]}") from exc


def _gpg(home: Path, *args: str) -> None:
    base = ["gpg", "--batch", "--quiet", "--homedir", str(home), "--pinentry-mode", "loopback"]
    run([*base, "--passphrase", "", *args], "gpg", capture_output=True)


def new_key(home: Path) -> None:
    """A throwaway signing key (ed25519, expires after KEY_LIFETIME: rebuild the mirror then)."""
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(mode=0o700, parents=True)
    _gpg(home, "--quick-gen-key", KEY_UID, "ed25519", "sign", KEY_LIFETIME)


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


def dearmor(data: bytes, dest: Path, home: Path) -> None:
    """A key as the binary keyring gpgv reads (aptly checks upstream Release files with gpgv)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    if not data.lstrip().startswith(b"-----BEGIN PGP"):
        dest.write_bytes(data)
        return
    armored = dest.with_suffix(".asc")
    armored.write_bytes(data)
    dest.unlink(missing_ok=True)
    argv = ["gpg", "--batch", "--homedir", str(home), "--dearmor", "--output", str(dest)]
    run([*argv, str(armored)], f"reading the key {armored.name}", capture_output=True)


def sign_release(release_dir: Path, home: Path) -> None:
    """InRelease (clear-signed) and Release.gpg (detached) next to release_dir/Release."""
    release = release_dir / "Release"
    for name in ("InRelease", "Release.gpg"):
        (release_dir / name).unlink(missing_ok=True)
    _gpg(home, "--clearsign", "--output", str(release_dir / "InRelease"), str(release))
    _gpg(
        home, "--armor", "--detach-sign", "--output", str(release_dir / "Release.gpg"), str(release)
    )


def _ftparchive(*args: str, cwd: Path) -> str:
    argv = ["apt-ftparchive", *args]
    return run(argv, "apt-ftparchive", capture_output=True, cwd=cwd).stdout


def release_options(label: str, suite: str = "", components: str = "", arch: str = "") -> list[str]:
    """apt-ftparchive -o options for the Release fields (Origin, Label, Suite, ...)."""
    fields = {"Origin": ORIGIN, "Label": label, "Suite": suite, "Codename": suite}
    fields |= {"Components": components, "Architectures": arch}
    return [f"-o=APT::FTPArchive::Release::{k}={v}" for k, v in fields.items() if v]


def write_release(release_dir: Path, options: list[str], home: Path) -> None:
    """apt-ftparchive's Release over the index files below release_dir, then signed (the text
    is read whole before the file is written: apt-ftparchive never sees a half-written one)."""
    text = _ftparchive(*options, "release", ".", cwd=release_dir)
    (release_dir / "Release").write_text(text)
    sign_release(release_dir, home)


def write_flat_index(base: Path, debs_dir: str, label: str, home: Path) -> int:
    """A FLAT repository's signed index at base (Packages, Packages.gz, Release) listing the
    .debs below base/debs_dir (their Filename relative to base). Returns the package count."""
    text = _ftparchive("packages", debs_dir, cwd=base)
    with tempfile.TemporaryDirectory(dir=base) as tmp:
        index = Path(tmp)
        (index / "Packages").write_text(text)
        (index / "Packages.gz").write_bytes(gzip.compress(text.encode(), mtime=0))
        release = _ftparchive(*release_options(label), "release", ".", cwd=index)
        for name in ("Packages", "Packages.gz"):
            shutil.move(index / name, base / name)
    (base / "Release").write_text(release)
    sign_release(base, home)
    return text.count("\nPackage: ") + text.startswith("Package: ")


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
    label = "STAND-IN test repository (not a vendor repository)"
    packages = list(spec["packages"])  # type: ignore[call-overload]
    if spec["layout"] == "flat":
        base.mkdir(parents=True)
        debs = [build_standin_deb(p, arch, base) for p in packages]
        write_flat_index(base, ".", label, home)
    else:
        component, suite = str(spec["component"]), str(spec["suite"])
        pool = base / "pool" / component
        release_dir = base / "dists" / suite
        index_dir = release_dir / component / f"binary-{arch}"
        for directory in (pool, index_dir):
            directory.mkdir(parents=True, exist_ok=True)
        debs = [build_standin_deb(p, arch, pool) for p in packages]
        text = _ftparchive("packages", f"pool/{component}", cwd=base)
        (index_dir / "Packages").write_text(text)
        (index_dir / "Packages.gz").write_bytes(gzip.compress(text.encode(), mtime=0))
        options = release_options(label, suite, component, arch)
        write_release(release_dir, options, home)
    export_key(home, out / str(spec["key_path"]))
    return f"built {len(debs)} STAND-IN package(s) in {base}"


def _apt_options(workdir: Path, arch: str) -> list[str]:
    """apt with its state, sources and preferences in workdir only (nothing of the machine's)."""
    for sub in ("parts", "lists/partial", "cache/archives/partial"):
        (workdir / sub).mkdir(parents=True, exist_ok=True)
    if not (workdir / "status").exists():
        (workdir / "status").write_text("")
    options = {
        "Dir::Etc::SourceList": workdir / "sources.list",
        "Dir::Etc::SourceParts": workdir / "parts",
        "Dir::Etc::PreferencesParts": workdir / "parts",
        "Dir::Etc::Preferences": workdir / "parts" / "none",
        "Dir::State::Lists": workdir / "lists",
        "Dir::State::Status": workdir / "status",
        "Dir::Cache": workdir / "cache",
        "APT::Architecture": arch,
        "APT::Architectures": arch,
        "Acquire::Languages": "none",
        "Debug::NoLocking": "true",
        "APT::Sandbox::User": "root",
    }
    return [f"-o{key}={value}" for key, value in options.items()]


def apt_reads(lines: list[str], workdir: Path, arch: str, packages: list[str]) -> str:
    """apt's own reading of repositories: `apt-get update` over the one-line sources `lines` in a
    private state directory (signatures checked against each line's signed-by key), then
    `apt-cache madison` of `packages`. Any warning or error of apt stops with its text."""
    options = _apt_options(workdir, arch)
    (workdir / "sources.list").write_text("\n".join(lines) + "\n")
    done = run(["apt-get", "-q", *options, "update"], "apt-get update", capture_output=True)
    complaints = [ln for ln in (done.stdout + done.stderr).splitlines() if ln[:2] in ("W:", "E:")]
    if complaints:
        raise DltkError(f"apt does not read the mirror cleanly: {complaints[0]}")
    if not packages:
        return ""
    argv = ["apt-cache", *options, "madison", *packages]
    return run(argv, "apt-cache", capture_output=True).stdout


def apt_simulate(workdir: Path, arch: str, packages: list[str], recommends: bool = True) -> str:
    """`apt-get install --simulate` on a host with nothing installed, from the sources that
    apt_reads read into workdir: the whole dependency closure must come from them. A package
    apt cannot install stops with apt's own list of unmet dependencies."""
    argv = ["apt-get", "-q", *_apt_options(workdir, arch)]
    argv += [f"-oAPT::Install-Recommends={str(recommends).lower()}", "install", "--simulate"]
    done = subprocess.run([*argv, *packages], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        unmet = [ln.strip() for ln in done.stdout.splitlines() if "Depends:" in ln]
        errors = [ln for ln in done.stderr.splitlines() if ln.startswith("E:")]
        raise DltkError(
            "apt cannot install from the mirror alone: "
            + "; ".join(unmet or errors or [f"exit code {done.returncode}"])
        )
    return done.stdout
