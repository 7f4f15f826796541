#!/usr/bin/env python3
"""Build a small signed apt repository of labeled STAND-IN packages for molecule scenarios.

Test double: the packages it builds are not the vendors' packages. Each one says so in its
description and ships only the files the spec lists (scripts that print they are stand-ins).
The repository is signed with a throwaway key generated for this run, like a local mirror an
air-gapped site serves.

    build-test-apt-repo.py SPEC.json OUT_DIR GNUPGHOME

SPEC.json: {"layout": "flat" | "dists", "path": "sub/dir/of/OUT_DIR",
            "suite": "bookworm", "component": "stable", "arch": "amd64",
            "key_path": "where/to/put/the/armored/public/key",
            "packages": [{"name", "version", "depends", "description", "files": {PATH: TEXT}}]}
flat:  Release/InRelease/Packages and the .debs in OUT_DIR/path (apt: `URIs: URL`, `Suites: /`).
dists: pool/ and dists/<suite>/<component>/binary-<arch>/Packages under OUT_DIR/path.
"""

from __future__ import annotations

import email.utils
import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path


def build_deb(pkg: dict, arch: str, dest_dir: Path) -> Path:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for path, text in pkg.get("files", {}).items():
            target = root / path.lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
            target.chmod(0o755 if "/bin/" in path else 0o644)
        (root / "DEBIAN").mkdir()
        summary, _, body = pkg["description"].partition("\n")
        long_lines = [(" " + line) if line.strip() else " ." for line in body.strip().splitlines()]
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
        control.append(f"Description: {summary}")
        control.extend(long_lines)
        (root / "DEBIAN" / "control").write_text("\n".join(control) + "\n")
        version = pkg["version"].split(":", 1)[-1]
        deb = dest_dir / f"{pkg['name']}_{version}_{arch}.deb"
        subprocess.run(
            ["dpkg-deb", "--root-owner-group", "-Zgzip", "--build", str(root), str(deb)],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        return deb


def packages_entry(deb: Path, filename: str) -> str:
    control = subprocess.run(
        ["dpkg-deb", "-f", str(deb)], check=True, capture_output=True, text=True
    ).stdout
    data = deb.read_bytes()
    extra = [
        f"Filename: {filename}",
        f"Size: {len(data)}",
        f"MD5sum: {hashlib.md5(data).hexdigest()}",  # noqa: S324 - apt's index format
        f"SHA256: {hashlib.sha256(data).hexdigest()}",
    ]
    return control.rstrip("\n") + "\n" + "\n".join(extra) + "\n"


def release(spec: dict, release_dir: Path, indexes: list[Path]) -> str:
    lines = [
        "Origin: DLTK Deploy molecule",
        "Label: STAND-IN test repository (not a vendor repository)",
        f"Date: {email.utils.formatdate(usegmt=True)}",
        f"Architectures: {spec['arch']}",
    ]
    if spec["layout"] == "dists":
        lines += [
            f"Suite: {spec['suite']}",
            f"Codename: {spec['suite']}",
            f"Components: {spec['component']}",
        ]
    lines.append("SHA256:")
    for index in indexes:
        data = index.read_bytes()
        rel = index.relative_to(release_dir)
        lines.append(f" {hashlib.sha256(data).hexdigest()} {len(data):>8} {rel}")
    return "\n".join(lines) + "\n"


def gpg(home: Path, *args: str) -> None:
    subprocess.run(
        [
            "gpg",
            "--batch",
            "--quiet",
            "--homedir",
            str(home),
            "--pinentry-mode",
            "loopback",
            "--passphrase",
            "",
            *args,
        ],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def main(spec_file: str, out: str, gnupghome: str) -> None:
    spec = json.loads(Path(spec_file).read_text())
    base = Path(out) / spec["path"]
    shutil.rmtree(base, ignore_errors=True)
    if spec["layout"] == "flat":
        pool = release_dir = index_dir = base
        prefix = "./"
    else:
        pool = base / "pool" / spec["component"]
        release_dir = base / "dists" / spec["suite"]
        index_dir = release_dir / spec["component"] / f"binary-{spec['arch']}"
        prefix = f"pool/{spec['component']}/"
    for directory in (pool, index_dir):
        directory.mkdir(parents=True, exist_ok=True)
    entries = [
        packages_entry(deb, prefix + deb.name)
        for deb in (build_deb(p, spec["arch"], pool) for p in spec["packages"])
    ]
    packages = index_dir / "Packages"
    packages.write_text("\n".join(entries))
    (release_dir / "Release").write_text(release(spec, release_dir, [packages]))

    home = Path(gnupghome)
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(mode=0o700, parents=True)
    gpg(
        home,
        "--quick-gen-key",
        "DLTK molecule throwaway repository key <test@dltk.invalid>",
        "ed25519",
        "sign",
        "1d",
    )
    (release_dir / "InRelease").unlink(missing_ok=True)
    (release_dir / "Release.gpg").unlink(missing_ok=True)
    gpg(
        home,
        "--clearsign",
        "--output",
        str(release_dir / "InRelease"),
        str(release_dir / "Release"),
    )
    gpg(
        home,
        "--armor",
        "--detach-sign",
        "--output",
        str(release_dir / "Release.gpg"),
        str(release_dir / "Release"),
    )
    key = Path(out) / spec["key_path"]
    key.parent.mkdir(parents=True, exist_ok=True)
    key.unlink(missing_ok=True)
    gpg(home, "--armor", "--export", "--output", str(key))
    print(f"built {len(entries)} STAND-IN package(s) in {base}, signed by a throwaway key ({key})")


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    main(*sys.argv[1:])
