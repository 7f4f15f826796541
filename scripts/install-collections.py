#!/usr/bin/env python3
"""Install the pinned Ansible collections of collections/requirements.yml without Galaxy.

Galaxy is not reachable from our machines, PyPI is: the `ansible` bundle wheel carries every
collection we use. Each entry of the requirements file is a tarball under build/collections/
named <namespace>-<name>-<version>.tar.gz with its `version` pinned. A missing tarball is built
with `ansible-galaxy collection build` from the collection taken out of the bundle wheel
(downloaded once with `pip download --no-deps` into the same directory; a re-run reuses it).
Then `ansible-galaxy collection install --offline -r` installs the tarballs into --dest and the
installed versions are checked against the pins.

Usage: install-collections.py --bundle-version 12.3.0 --dest DIR [--requirements FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import yaml

# The venv's own ansible-galaxy (this script runs with the venv's python).
GALAXY = str(Path(sys.executable).parent / "ansible-galaxy")
TARBALL = re.compile(r"^(?P<ns>[a-z0-9_]+)-(?P<name>[a-z0-9_]+)-(?P<version>[^-]+)\.tar\.gz$")


class PinError(Exception):
    """A requirement, a tarball or an installed collection disagrees with its pinned version."""


def parse_requirements(path: Path) -> list[dict[str, str]]:
    """The requirements file's entries as {ns, name, version, file}; each must be type: file."""
    entries = []
    for entry in (yaml.safe_load(path.read_text()) or {}).get("collections") or []:
        tarball = Path(entry["name"])
        match = TARBALL.match(tarball.name)
        if entry.get("type") != "file" or not match:
            raise PinError(f"{path}: {entry['name']}: want type: file and NS-NAME-VERSION.tar.gz")
        if str(entry.get("version")) != match["version"]:
            raise PinError(
                f"{path}: {tarball.name}: version {entry.get('version')!r} is not the file's"
                f" {match['version']}"
            )
        entries.append({**match.groupdict(), "file": str(tarball)})
    return entries


def bundle_wheel(cache: Path, bundle_version: str) -> Path:
    """The `ansible` bundle wheel, downloaded into cache on first use."""
    found = sorted(cache.glob(f"ansible-{bundle_version}-*.whl"))
    if found:
        return found[0]
    print(f"[collections] downloading ansible=={bundle_version} (the bundle wheel, --no-deps)")
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:"]
        + ["-d", str(cache), f"ansible=={bundle_version}"],
        check=True,
    )
    found = sorted(cache.glob(f"ansible-{bundle_version}-*.whl"))
    if not found:
        raise PinError(f"pip download left no ansible-{bundle_version} wheel in {cache}")
    return found[0]


def galaxy_yml(manifest: dict) -> dict:
    """galaxy.yml content from an installed collection's MANIFEST.json collection_info."""
    info = manifest["collection_info"]
    return {key: value for key, value in info.items() if value not in (None, "", [], {})}


def build_from_wheel(wheel: Path, entry: dict[str, str], out: Path) -> None:
    """Take NS.NAME out of the bundle wheel, check its version and build its tarball into out."""
    prefix = f"ansible_collections/{entry['ns']}/{entry['name']}/"
    with tempfile.TemporaryDirectory() as tmp, zipfile.ZipFile(wheel) as zf:
        src = Path(tmp) / entry["ns"] / entry["name"]
        members = [m for m in zf.namelist() if m.startswith(prefix) and not m.endswith("/")]
        if not members:
            raise PinError(f"{wheel.name} has no collection {entry['ns']}.{entry['name']}")
        for member in members:
            target = src / member[len(prefix) :]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(zf.read(member))
        manifest = json.loads((src / "MANIFEST.json").read_text())
        shipped = manifest["collection_info"]["version"]
        if shipped != entry["version"]:
            raise PinError(
                f"{wheel.name} ships {entry['ns']}.{entry['name']} {shipped},"
                f" the requirements pin {entry['version']}"
            )
        (src / "MANIFEST.json").unlink()
        (src / "FILES.json").unlink(missing_ok=True)
        (src / "galaxy.yml").write_text(yaml.safe_dump(galaxy_yml(manifest), sort_keys=False))
        subprocess.run(
            [GALAXY, "collection", "build", str(src), "--output-path", str(out)],
            check=True,
            stdout=subprocess.DEVNULL,
        )


def installed_version(dest: Path, entry: dict[str, str]) -> str | None:
    manifest = dest / "ansible_collections" / entry["ns"] / entry["name"] / "MANIFEST.json"
    if not manifest.is_file():
        return None
    return json.loads(manifest.read_text())["collection_info"]["version"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requirements", type=Path, default=Path("collections/requirements.yml"))
    parser.add_argument("--bundle-version", required=True, help="the `ansible` wheel to take from")
    parser.add_argument("--dest", type=Path, required=True, help="collections path to install into")
    args = parser.parse_args(argv)
    try:
        entries = parse_requirements(args.requirements)
        if all(installed_version(args.dest, e) == e["version"] for e in entries):
            print(f"[collections] {len(entries)} pinned collections already in {args.dest}")
            return 0
        for entry in entries:
            tarball = Path(entry["file"])
            if not tarball.is_file():
                tarball.parent.mkdir(parents=True, exist_ok=True)
                wheel = bundle_wheel(tarball.parent, args.bundle_version)
                print(f"[collections] building {tarball.name} from {wheel.name}")
                build_from_wheel(wheel, entry, tarball.parent)
        args.dest.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "ANSIBLE_COLLECTIONS_PATH": str(args.dest)}
        subprocess.run(
            [GALAXY, "collection", "install", "--offline", "--force"]
            + ["-r", str(args.requirements), "-p", str(args.dest)],
            check=True,
            env=env,
            stdout=subprocess.DEVNULL,
        )
        for entry in entries:
            got = installed_version(args.dest, entry)
            if got != entry["version"]:
                pin = f"{entry['ns']}.{entry['name']} {entry['version']}"
                raise PinError(f"{pin}: the installed version is {got}")
        names = ", ".join(f"{e['ns']}.{e['name']} {e['version']}" for e in entries)
        print(f"[collections] installed into {args.dest}: {names}")
    except (PinError, subprocess.CalledProcessError) as exc:
        print(f"[collections] ERROR: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
