"""Signed apt mirrors for air-gapped hosts (`dltk mirror`) and labeled STAND-IN test repositories.

`apt` mirrors the Debian/Ubuntu archive and NVIDIA's and Docker's repositories (apt_sources.py
lists them) with aptly (apt_aptly.py), keeping each upstream's suites and components, and
publishes them signed with a key generated for the mirror. `spec` builds a small repository of
STAND-IN packages (test doubles: they say so in their description) from a JSON spec, the way
molecule scenarios stand in for vendor repositories that are not reachable here. `plan` prints
the bill of materials of an inventory (plan.py): what a site carries in, with sizes where this
machine knows them. `images` pushes the images of that bill into a local registry or saves them
as archives (images.py), with a lock file of their registry digests. `wheels` downloads the
project's wheels into wheelhouses and writes a PEP 503 index of them (wheels.py).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from rich.console import Console
from rich.table import Table

from dltk.errors import DltkError
from dltk.mirror import wheels
from dltk.mirror.apt_aptly import Part, apt_lines, build
from dltk.mirror.apt_repo import (
    apt_reads,
    apt_simulate,
    build_spec_repo,
    export_key,
    throwaway_key,
)
from dltk.mirror.apt_sources import (
    archive_sources,
    check_names,
    known_sources,
    load_sources_file,
    select_sources,
)


def summary_table(parts: list[Part]) -> Table:
    """One row per published suite and component: packages and megabytes."""
    table = Table(title="apt mirror (dltk mirror apt)", title_justify="left")
    for column in ("source", "suite", "component", "packages", "MB"):
        table.add_column(column, justify="right" if column in ("packages", "MB") else "left")
    for p in parts:
        table.add_row(p.source, p.suite, p.component, str(p.packages), f"{p.size / 1e6:.1f}")
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


def _plain(entries: list[str]) -> list[str]:
    """apt-get's names for filter entries (a version glob is aptly's, not apt's)."""
    return [entry.partition("=")[0] for entry in entries]


def run_apt(args: argparse.Namespace) -> int:
    packages = check_names([*args.package, *_read_names(args.packages_file)])
    recommends = check_names([*args.with_recommends, *_read_names(args.with_recommends_file)])
    known = known_sources(args.distribution, args.release, args.arch)
    extra = [s for f in args.sources_file for s in load_sources_file(f)]
    names = args.source or ([] if extra else archive_sources(args.distribution))
    sources = select_sources(known, names, extra, packages, recommends)
    specs = [_load_spec(spec_file) for spec_file in args.standin_spec]
    out, home = args.out, args.gnupghome
    out.mkdir(parents=True, exist_ok=True)
    with throwaway_key(home):
        result = build(sources, args.cache_dir, out, args.arch, home)
        export_key(home, out / "dltk-mirror.asc")
        with tempfile.TemporaryDirectory() as tmp:  # apt itself reads what was published
            apt_reads(apt_lines(sources, out, out / "dltk-mirror.asc"), Path(tmp), args.arch, [])
            # ... and installs the archive lists from it alone, as the roles do (simulated).
            if packages:
                apt_simulate(Path(tmp), args.arch, _plain(packages), recommends=False)
            if recommends:
                apt_simulate(Path(tmp), args.arch, _plain(recommends), recommends=True)
        standins = [build_spec_repo(spec, out, home) for spec in specs]
    Console(width=100).print(summary_table(result.parts))
    for source in sources:
        layout = "flat (Suites: /) and suite flat" if source.flat else " ".join(source.suites)
        print(f"{source.name}: {out / source.prefix} ({layout})")
    if result.added:
        print(f"added as dependencies of other sources: {' '.join(result.added)}")
    if result.missing:
        print(
            "dependencies no mirrored source satisfies (the hosts need them from elsewhere, "
            f"or add the source that has them): {' '.join(result.missing)}"
        )
    for line in standins:
        print(line + " (labeled test doubles, not vendor packages)")
    print(
        f"signed by a throwaway key: {out / 'dltk-mirror.asc'} (install it where Signed-By "
        "points); apt read every published suite with it and installs the lists from it alone "
        "(simulated)"
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
    """`dltk mirror apt|spec|plan|images|wheels` (`build`: the old name of `apt`)."""
    _add_actions(
        subparsers.add_parser(
            "mirror", help="plan and build what air-gapped hosts need (signed apt mirrors)"
        )
    )


def _add_actions(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="mirror_command", metavar="ACTION", required=True)
    apt = sub.add_parser(
        "apt",
        aliases=["build"],
        help="mirror the distribution's archive and NVIDIA's/Docker's repositories (aptly), "
        "suites and components kept, signed",
    )
    apt.add_argument(
        "--distribution", default="Debian", choices=("Debian", "Ubuntu"), help="hosts' distribution"
    )
    apt.add_argument("--release", default="bookworm", help="codename of the hosts' release")
    apt.add_argument("--arch", default="amd64", help="Debian architecture of the hosts")
    apt.add_argument(
        "--source",
        action="append",
        default=[],
        help="repository to mirror (repeat): debian, debian-security, ubuntu, docker, cuda, "
        "libnvidia-container, nvidia-devtools (default: the distribution's archive)",
    )
    apt.add_argument(
        "--sources-file",
        type=Path,
        action="append",
        default=[],
        help="JSON list of more repositories (fields of apt_sources.AptSource); "
        "one named like a known one replaces it",
    )
    apt.add_argument(
        "--package", action="append", default=[], help="archive package, without recommends"
    )
    apt.add_argument("--packages-file", type=Path, help="file with one such package per line")
    apt.add_argument(
        "--with-recommends", action="append", default=[], help="archive package, with recommends"
    )
    apt.add_argument("--with-recommends-file", type=Path, help="file with one per line")
    apt.add_argument(
        "--standin-spec", type=Path, action="append", default=[], help="STAND-IN spec (JSON) to add"
    )
    apt.add_argument(
        "--cache-dir",
        type=Path,
        default=Path("/var/cache/dltk/apt-mirror"),
        help="aptly's database and package pool (the download cache)",
    )
    apt.add_argument(
        "--gnupghome", type=Path, required=True, help="directory for the throwaway signing key"
    )
    apt.add_argument(
        "--out", type=Path, required=True, help="directory to serve (each source's path replaced)"
    )
    apt.set_defaults(func=run_apt)
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
