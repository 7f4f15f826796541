"""Signed apt mirrors for air-gapped hosts (`dltk mirror`) and labeled STAND-IN test repositories.

`build` downloads the dependency closure of the packages the provisioning roles install inside a
throwaway container of the hosts' image (which does reach the Debian archive), then lays them out
as a Debian repository (dists/<suite>/<component>/binary-<arch>/Packages, Release, InRelease)
signed with a key generated for the mirror. `spec` builds a small repository of STAND-IN packages
(test doubles: they say so in their description) from a JSON spec, the way molecule scenarios
stand in for vendor repositories that are not reachable here. `plan` prints the bill of materials
of an inventory (plan.py): what a site carries in, with sizes where this machine knows them.
`images` pushes the images of that bill into a local registry or saves them as archives
(images.py), with a lock file of their registry digests. `wheels` downloads the project's wheels
into wheelhouses and writes a PEP 503 index of them (wheels.py).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

from dltk.errors import DltkError
from dltk.mirror import wheels
from dltk.mirror.apt_repo import (
    Suite,
    build_spec_repo,
    deb_control,
    export_key,
    packages_entry,
    run,
    throwaway_key,
    write_release,
)

COMPONENTS = ("main", "contrib", "non-free", "non-free-firmware")
_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9+.-]+$")
_RELEASE_RE = re.compile(r"^[a-z]+$")


def suites_for(release: str) -> list[Suite]:
    """The suites a Debian host's sources name: the release, its updates and its security suite."""
    if not _RELEASE_RE.match(release):
        raise DltkError(f"release {release!r} is not a Debian codename like bookworm")
    return [
        Suite("debian", release),
        Suite("debian", f"{release}-updates"),
        Suite("debian-security", f"{release}-security"),
    ]


def check_package_names(names: list[str]) -> list[str]:
    """Sorted, de-duplicated package names; a name apt would not accept stops the run."""
    bad = [name for name in names if not _NAME_RE.match(name)]
    if bad:
        raise DltkError(
            f"not Debian package names: {', '.join(bad)} (use names like nvidia-driver)"
        )
    return sorted(set(names))


def component_of(section: str) -> str:
    """Archive component of a package's Section ('non-free/libs' -> non-free, 'libs' -> main)."""
    prefix, sep, _ = section.partition("/")
    return prefix if sep and prefix in COMPONENTS else "main"


def cache_key(image_id: str, release: str, packages: list[str], recommends: list[str]) -> str:
    """Directory name of a download: changes with the image, the release and both package lists."""
    text = json.dumps([image_id, release, sorted(packages), sorted(recommends)])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def download_script(release: str, packages: list[str], recommends: list[str]) -> str:
    """Shell run in the throwaway container: all components, then two download-only installs."""
    sources = "\n".join(
        [
            "Types: deb",
            "URIs: http://deb.debian.org/debian",
            f"Suites: {release} {release}-updates",
            f"Components: {' '.join(COMPONENTS)}",
            "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg",
            "",
            "Types: deb",
            "URIs: http://deb.debian.org/debian-security",
            f"Suites: {release}-security",
            f"Components: {' '.join(COMPONENTS)}",
            "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg",
        ]
    )
    lines = [
        "set -eu",
        "rm -f /etc/apt/sources.list /etc/apt/sources.list.d/*",
        f"cat > /etc/apt/sources.list.d/debian.sources <<'EOF'\n{sources}\nEOF",
        "apt-get update -q",
    ]
    get = "apt-get install -y -q --download-only"
    if packages:
        lines.append(f"{get} --no-install-recommends {' '.join(packages)}")
    if recommends:
        lines.append(f"{get} --install-recommends {' '.join(recommends)}")
    return "\n".join(lines) + "\n"


def image_id(image: str) -> str:
    """The local image's id (part of the cache key); a missing image is one error."""
    argv = ["docker", "image", "inspect", "--format", "{{.Id}}", image]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
    except FileNotFoundError as exc:
        raise DltkError("docker is not installed: the mirror is downloaded in a container") from exc
    if done.returncode != 0:
        raise DltkError(
            f"image {image} is not on this docker engine: build it (scripts/build-images.sh) "
            "or pass --image with an image of your hosts"
        )
    return done.stdout.strip()


def _megabytes(paths: list[Path]) -> str:
    return f"{sum(p.stat().st_size for p in paths) / 1e6:.1f} MB"


def download(
    image: str, release: str, packages: list[str], recommends: list[str], cache_root: Path
) -> list[Path]:
    """The closure's .debs, from the cache when this image and these lists were fetched before."""
    target = cache_root / cache_key(image_id(image), release, packages, recommends)
    done = target / "complete.json"
    if not done.exists():
        shutil.rmtree(target, ignore_errors=True)
        (target / "partial").mkdir(parents=True)
        print(
            f"downloading the closure of {len(packages) + len(recommends)} package(s) in {image}",
            flush=True,
        )
        script = download_script(release, packages, recommends)
        argv = [
            "docker",
            "run",
            "--rm",
            "--network",
            "bridge",
            "-v",
            f"{target}:/var/cache/apt/archives",
        ]
        run(
            [*argv, image, "sh", "-c", script],
            "downloading in a throwaway container",
            capture_output=True,
        )
        done.write_text(
            json.dumps({"image": image, "packages": packages, "recommends": recommends})
        )
        state = "downloaded"
    else:
        state = "cached (no download)"
    debs = sorted(target.glob("*.deb"))
    if not debs:
        raise DltkError(
            f"no .deb in {target}: the image already has every package; nothing to mirror"
        )
    print(f"{state}: {len(debs)} .deb, {_megabytes(debs)} in {target}", flush=True)
    return debs


def _place(src: Path, dest: Path) -> None:
    dest.unlink(missing_ok=True)
    try:
        os.link(src, dest)
    except OSError:
        shutil.copy2(src, dest)


def build_mirror(
    debs: list[Path], release: str, arch: str, out: Path, home: Path
) -> dict[str, tuple[int, int]]:
    """Debian layout of the .debs under out/debian (all in the release suite), each suite signed.

    Returns {component: (packages, bytes)}.
    """
    for root in ("debian", "debian-security"):
        shutil.rmtree(out / root, ignore_errors=True)
    entries: dict[str, list[str]] = {c: [] for c in COMPONENTS}
    sizes = dict.fromkeys(COMPONENTS, 0)
    for deb in debs:
        control = deb_control(deb)
        section = re.search(r"^Section: (\S+)", control, re.MULTILINE)
        component = component_of(section.group(1) if section else "")
        pool = out / "debian" / "pool" / component
        pool.mkdir(parents=True, exist_ok=True)
        _place(deb, pool / deb.name)
        sizes[component] += deb.stat().st_size
        entries[component].append(
            packages_entry(control, f"pool/{component}/{deb.name}", deb.read_bytes())
        )
    for suite in suites_for(release):
        release_dir = out / suite.root / "dists" / suite.name
        indexes: dict[str, bytes] = {}
        for component in COMPONENTS:
            text = "\n".join(entries[component]) if suite.name == release else ""
            index_dir = release_dir / component / f"binary-{arch}"
            index_dir.mkdir(parents=True, exist_ok=True)
            data = text.encode()
            packed = gzip.compress(data, mtime=0)
            (index_dir / "Packages").write_bytes(data)
            (index_dir / "Packages.gz").write_bytes(packed)
            indexes[f"{component}/binary-{arch}/Packages"] = data
            indexes[f"{component}/binary-{arch}/Packages.gz"] = packed
        write_release(
            release_dir, indexes, arch, f"DLTK Deploy mirror of Debian {release}", home, suite
        )
    return {c: (len(entries[c]), sizes[c]) for c in COMPONENTS}


def summary_table(release: str, counts: dict[str, tuple[int, int]]) -> Table:
    table = Table(title=f"mirror of Debian {release}")
    for column in ("component", "packages", "MB"):
        table.add_column(column, justify="left" if column == "component" else "right")
    for component, (number, size) in counts.items():
        table.add_row(component, str(number), f"{size / 1e6:.1f}")
    return table


def _read_names(path: Path | None) -> list[str]:
    if path is None:
        return []
    try:
        return [
            ln.strip()
            for ln in path.read_text().splitlines()
            if ln.strip() and not ln.startswith("#")
        ]
    except OSError as exc:
        raise DltkError(f"cannot read {path}: {exc.strerror}") from exc


def _load_spec(path: Path) -> dict[str, object]:
    try:
        return dict(json.loads(path.read_text()))
    except (OSError, ValueError) as exc:
        raise DltkError(f"cannot read the STAND-IN spec {path}: {exc}") from exc


def run_build(args: argparse.Namespace) -> int:
    packages = check_package_names([*args.package, *_read_names(args.packages_file)])
    recommends = check_package_names(
        [*args.with_recommends, *_read_names(args.with_recommends_file)]
    )
    if not packages and not recommends:
        raise DltkError(
            "no packages given: pass --package/--packages-file or --with-recommends(-file)"
        )
    suites_for(args.release)
    specs = [_load_spec(spec_file) for spec_file in args.standin_spec]
    debs = download(args.image, args.release, packages, recommends, args.cache_dir)
    out, home = args.out, args.gnupghome
    out.mkdir(parents=True, exist_ok=True)
    with throwaway_key(home):
        counts = build_mirror(debs, args.release, args.arch, out, home)
        export_key(home, out / "dltk-mirror.asc")
        standins = [build_spec_repo(spec, out, home) for spec in specs]
    Console(width=100).print(summary_table(args.release, counts))
    print(f"written to {out}/debian ({args.release}-updates, -security: empty suites)")
    for line in standins:
        print(line + " (labeled test doubles, not vendor packages)")
    print(
        f"signed by a throwaway key: {out / 'dltk-mirror.asc'} (install it where Signed-By points)"
    )
    return 0


def run_spec(args: argparse.Namespace) -> int:
    spec = _load_spec(args.spec)
    with throwaway_key(args.gnupghome):
        built = build_spec_repo(spec, args.out, args.gnupghome)
    print(built + ", signed by a throwaway key")
    return 0


def run_plan(args: argparse.Namespace) -> int:
    from dltk.mirror.hostvars import find_project, resolve_hosts  # only `plan` needs them
    from dltk.mirror.plan import build_bill, tables

    project = find_project(args.project)
    hostvars = resolve_hosts(args.inventory, project, distribution=args.distribution)
    bill = build_bill(str(args.inventory), hostvars, project)
    # With --json - the JSON alone goes to stdout, the tables to stderr.
    console = Console(width=args.width, stderr=str(args.json) == "-")
    classes = ", ".join(f"{h} ({v['class']}, NGC {v['release']})" for h, v in bill.hosts.items())
    console.print(f"bill of materials for {args.inventory}: {classes}", highlight=False)
    for table in tables(bill):
        console.print(table)
    if args.json:
        text = bill.to_json() + "\n"
        if str(args.json) == "-":
            sys.stdout.write(text)
        else:
            args.json.write_text(text)
            print(f"JSON written to {args.json}")
    return 0


def run_images(args: argparse.Namespace) -> int:
    from dltk.mirror.hostvars import find_project, resolve_hosts
    from dltk.mirror.images import (
        carried_images,
        check_present,
        check_registry,
        docker_cli,
        docker_inspector_via,
        lock_document,
        push_images,
        save_images,
    )

    if not args.registry and not args.archive_dir:
        raise DltkError("nothing to do: pass --registry HOST:PORT and/or --archive-dir DIR")
    registry = check_registry(args.registry) if args.registry else ""
    project = find_project(args.project)
    hostvars = resolve_hosts(args.inventory, project, distribution=args.distribution)
    items = carried_images(hostvars, docker_inspector_via(docker_cli))
    check_present(items)
    table = Table(title=f"images of {args.inventory}: {len(items)}", title_justify="left")
    for column in ("image", "pushed as", "digest", "archive"):
        table.add_column(column, overflow="fold")
    pushed = push_images(items, registry, docker_cli) if registry else {}
    saved = save_images(items, args.archive_dir, docker_cli) if args.archive_dir else {}
    for item in items:
        entry = pushed.get(item.name, {})
        archive = saved.get("archives", {}).get(item.name, {})
        table.add_row(
            item.name, entry.get("tag", "-"), entry.get("digest", "-"), archive.get("file", "-")
        )
    Console(width=args.width).print(table)
    if registry:
        args.lock.parent.mkdir(parents=True, exist_ok=True)
        lock = lock_document(registry, str(args.inventory), pushed)
        args.lock.write_text(json.dumps(lock, indent=2) + "\n")
        print(f"lock file written to {args.lock} (set dltk_registry: {registry})")
    if args.archive_dir:
        print(f"archives and their manifest in {args.archive_dir}/images.json (docker load -i)")
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """`dltk mirror build|spec|plan|images|wheels`."""
    _add_actions(
        subparsers.add_parser(
            "mirror", help="plan and build what air-gapped hosts need (signed apt mirrors)"
        )
    )


def _add_actions(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="mirror_command", metavar="ACTION", required=True)
    build = sub.add_parser(
        "build", help="download a package closure in the hosts' image and index it"
    )
    build.add_argument(
        "--image", default="dltk/sandbox-host:bookworm", help="image of the hosts (same release)"
    )
    build.add_argument("--release", default="bookworm", help="Debian codename of the hosts")
    build.add_argument("--arch", default="amd64", help="Debian architecture of the hosts")
    build.add_argument(
        "--package", action="append", default=[], help="package installed without recommends"
    )
    build.add_argument("--packages-file", type=Path, help="file with one such package per line")
    build.add_argument(
        "--with-recommends", action="append", default=[], help="package installed with recommends"
    )
    build.add_argument(
        "--with-recommends-file", type=Path, help="file with one such package per line"
    )
    build.add_argument(
        "--standin-spec", type=Path, action="append", default=[], help="STAND-IN spec (JSON) to add"
    )
    build.add_argument(
        "--cache-dir", type=Path, default=Path("/var/cache/dltk/apt-mirror"), help="download cache"
    )
    build.add_argument(
        "--gnupghome", type=Path, required=True, help="directory for the throwaway signing key"
    )
    build.add_argument(
        "--out", type=Path, required=True, help="directory to serve (its content is replaced)"
    )
    build.set_defaults(func=run_build)
    spec = sub.add_parser(
        "spec", help="build a signed repository of STAND-IN packages from a JSON spec"
    )
    spec.add_argument(
        "spec",
        type=Path,
        help="JSON spec: layout, path, suite, component, arch, key_path, packages",
    )
    spec.add_argument(
        "out", type=Path, help="output directory (spec path and key_path are relative to it)"
    )
    spec.add_argument("gnupghome", type=Path, help="directory for the throwaway signing key")
    spec.set_defaults(func=run_spec)
    plan = sub.add_parser(
        "plan",
        help="bill of materials of an inventory: images, apt packages, wheels, models, sizes",
    )
    plan.add_argument("-i", "--inventory", type=Path, required=True, help="Ansible inventory")
    plan.add_argument("--json", type=Path, help="also write the bill as JSON to FILE (- : stdout)")
    plan.add_argument(
        "--distribution",
        default="Debian",
        choices=("Debian", "Ubuntu"),
        help="hosts' distribution where Ansible holds no facts of them (no host is contacted)",
    )
    plan.add_argument(
        "--project",
        type=Path,
        help="project checkout with roles/ and ansible.cfg (default: the current directory, "
        "else the checkout dltk runs from)",
    )
    plan.add_argument("--width", type=int, default=160, help="table width")
    plan.set_defaults(func=run_plan)
    images = sub.add_parser(
        "images",
        help="push the images of the bill of materials into a registry (digests in a lock file) "
        "or save them as archives",
    )
    images.add_argument(
        "-i",
        "--inventory",
        type=Path,
        default=Path("inventory/sandbox.yml"),
        help="Ansible inventory (default: inventory/sandbox.yml)",
    )
    images.add_argument(
        "--registry", default="", help="HOST:PORT of the registry to push to (docker login first)"
    )
    images.add_argument(
        "--archive-dir", type=Path, help="also (or instead) docker save each image into DIR"
    )
    images.add_argument(
        "--lock",
        type=Path,
        default=Path("build/mirror/images.lock.json"),
        help="lock file: image name -> path@sha256 digest in the registry "
        "(default: build/mirror/images.lock.json, what dltk_registry_lock reads)",
    )
    images.add_argument(
        "--distribution",
        default="Debian",
        choices=("Debian", "Ubuntu"),
        help="hosts' distribution where Ansible holds no facts of them (no host is contacted)",
    )
    images.add_argument("--project", type=Path, help="project checkout (as for plan)")
    images.add_argument("--width", type=int, default=160, help="table width")
    images.set_defaults(func=run_images)
    wheels.add_action(sub)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m dltk.mirror.apt_mirror", description=__doc__.splitlines()[0]
    )
    _add_actions(parser)
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except DltkError as exc:
        print(f"dltk mirror: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
