"""`dltk mirror apt` on aptly: mirror each source's suites and components, publish them signed.

Per source and suite, in aptly's terms:

1. resolve: a mirror of all the suite's components filtered to the wanted packages with their
   dependencies (`-filter-with-deps`; recommends too for the with-recommends list). aptly merges
   the components of one mirror into one, so this mirror only lists the closure;
2. one mirror per component filtered to that closure (a vendor's: exactly its versions; the
   distribution's suites: the names of all their closures, so a security update comes with what
   it needs), a snapshot of each, and one signed publication of the suite with every component
   in its place (`-component=main,contrib,...`). Nothing is downloaded twice: aptly's pool is
   content-addressed and kept in the cache directory;
3. `aptly snapshot verify` over all of the run's packages: a dependency no source satisfies (a
   vendor package needing a Debian library) is added to the distribution's sources, by name and
   by what provides it (aptly 1.5 does not resolve versioned Provides), and steps 1-2 run again
   (at most MAX_ROUNDS); what nothing published satisfies is printed.

FLAT sources (NVIDIA's) are mirrored the same way (aptly reads flat repositories); aptly
publishes them as a suite `flat`, and apt_repo.write_flat_index adds the flat index next to it
so apt's `Suites: /` sources (what the roles write) keep working.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import urllib.request
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO

from dltk.errors import DltkError
from dltk.mirror.apt_repo import KEY_EMAIL, dearmor, export_key, run, write_flat_index
from dltk.mirror.apt_sources import AptSource, check_names

MAX_ROUNDS = 3
FLAT_SUITE = "flat"
ORIGIN_FLAT = "DLTK Deploy mirror of the flat repository"
ENDPOINT = "dltk"
# "  libfoo (>= 1.2) [amd64]" or "  debconf (>= 0.5) | debconf-2.0 [amd64]"
_MISSING_RE = re.compile(
    r"^\s+([a-z0-9][a-z0-9+.-]+)(?:\s+\([^)]*\))?(?:\s+\|.*)?\s+\[[^\]]+\]\s*$"
)
_PACKAGE_RE = re.compile(r"^\s+([a-z0-9][a-z0-9+.-]+)_([^_\s]+)_([a-z0-9-]+)\s*$")


@dataclass(frozen=True)
class Part:
    """One published index: a source's suite and component, what it holds."""

    source: str
    suite: str
    component: str
    packages: int
    size: int


@dataclass
class Result:
    parts: list[Part] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # satisfied by nothing published
    provided: set[str] = field(default_factory=set)  # every name the published indexes satisfy
    added: list[str] = field(default_factory=list)  # dependencies found by aptly snapshot verify
    rounds: int = 0


def aptly_config(root: Path, out: Path, arch: str) -> dict[str, object]:
    """aptly.conf: the database and pool under root (the cache), publishing into out."""
    same_device = root.stat().st_dev == out.stat().st_dev
    return {
        "rootDir": str(root),
        "downloadConcurrency": 4,
        "architectures": [arch],
        "gpgProvider": "gpg",
        "skipContentsPublishing": True,
        "FileSystemPublishEndpoints": {
            ENDPOINT: {"rootDir": str(out), "linkMethod": "hardlink" if same_device else "copy"}
        },
    }


def filter_query(entries: list[str] | tuple[str, ...]) -> str:
    """aptly's package query for these entries: `name` (any version) or `name=GLOB`."""
    terms = []
    for entry in check_names(list(entries)):
        name, _, glob = entry.partition("=")
        terms.append(f"{name} (% {glob})" if glob else name)
    return " | ".join(terms)


def provides_query(names: list[str]) -> str:
    """aptly's query for the packages whose Provides field names one of these (a glob over the
    field: it may over-match a longer name, never miss one)."""
    return " | ".join(f"Provides (% *{name}*)" for name in check_names(names))


def provided_names(packages_text: str) -> set[str]:
    """Every name a Packages index satisfies: its packages and what they provide."""
    names: set[str] = set()
    for line in packages_text.splitlines():
        if line.startswith("Package: "):
            names.add(line.split()[1])
        elif line.startswith("Provides: "):
            for item in line.removeprefix("Provides: ").split(","):
                names.add(item.split("(")[0].strip())
    return names


def exact_query(packages: list[tuple[str, str, str]]) -> str:
    """aptly's query for exactly these (name, version, architecture) packages."""
    return " | ".join(f"{n} (= {v}) {{{a}}}" for n, v, a in sorted(set(packages)))


def missing_names(verify_output: str) -> list[str]:
    """Package names `aptly snapshot verify` reports as missing dependencies (of `a | b`, the
    first: the alternative apt and aptly follow)."""
    found = (m.group(1) for line in verify_output.splitlines() if (m := _MISSING_RE.match(line)))
    return sorted(set(found))


def listed_packages(show_output: str) -> list[tuple[str, str, str]]:
    """(name, version, architecture) of `aptly mirror show -with-packages` (name_version_arch
    lines after "Packages:")."""
    lines = (
        show_output.split("\nPackages:", 1)[1].splitlines() if "\nPackages:" in show_output else []
    )
    return sorted({m.groups() for line in lines if (m := _PACKAGE_RE.match(line))})


def index_totals(packages_text: str) -> tuple[int, int]:
    """(packages, bytes) of a Packages index aptly published."""
    count = size = 0
    for line in packages_text.splitlines():
        if line.startswith("Package: "):
            count += 1
        elif line.startswith("Size: "):
            size += int(line.split()[1])
    return count, size


def fetch_key(location: str) -> bytes:
    """The upstream's key: an https://, http:// or file:// URL, or a path on this machine."""
    if "://" not in location:
        try:
            return Path(location).read_bytes()
        except OSError as exc:
            raise DltkError(f"cannot read the key {location}: {exc.strerror}") from exc
    try:
        with urllib.request.urlopen(location, timeout=60) as answer:  # noqa: S310 - keys by URL
            return bytes(answer.read())
    except OSError as exc:
        raise DltkError(f"cannot download the key {location}: {exc}") from exc


class Aptly:
    """The aptly command with this run's configuration (GNUPGHOME: the mirror's signing key)."""

    def __init__(self, root: Path, out: Path, arch: str, gnupghome: Path) -> None:
        self.root, self.out, self.arch, self.home = root, out, arch, gnupghome
        # The database is per run (names of this run's mirrors); the pool is the download cache.
        shutil.rmtree(root / "db", ignore_errors=True)
        self.config = root / "aptly.conf"
        self.config.write_text(json.dumps(aptly_config(root, out, arch), indent=2) + "\n")

    def __call__(self, *args: str, what: str = "") -> str:
        env = {**os.environ, "GNUPGHOME": str(self.home)}
        argv = ["aptly", f"-config={self.config}", *args]
        done = run(argv, what or f"aptly {' '.join(args[:2])}", capture_output=True, env=env)
        return done.stdout


@dataclass
class Work:
    """One source's state across rounds: its keyring, its snapshots per suite and component."""

    source: AptSource
    keyring: Path
    snapshots: dict[tuple[str, str], str] = field(default_factory=dict)
    # Dependencies found missing: also looked up by what provides them (aptly 1.5's resolver
    # does not see versioned Provides such as node-html5shiv's `libjs-html5shiv (= 3.7.3)`).
    virtual: set[str] = field(default_factory=set)


def _say(text: str) -> None:
    print(text, flush=True)


def _where(work: Work, suite: str) -> tuple[str, str, list[str], str]:
    """aptly's URL, distribution, extra create flags and a label for one suite of a source."""
    source = work.source
    dist = "./" if source.flat else suite
    # Debian's security archive lists its components as updates/main, ...; apt and aptly both
    # read main from it, aptly only when told not to check the Release's Components line.
    force = [] if source.flat else ["-force-components"]
    label = f"{source.name} {'(flat)' if source.flat else suite}"
    return source.url.rstrip("/") + "/", dist, force, label


def resolve_suite(aptly: Aptly, work: Work, suite: str, tag: str) -> set[tuple[str, str, str]]:
    """Step 1 for one suite of one source: the closure (name, version, architecture) of the
    wanted packages, from all its components (the .debs land in aptly's pool)."""
    source = work.source
    url, dist, force, label = _where(work, suite)
    keyring = f"-keyring={work.keyring}"
    closure: set[tuple[str, str, str]] = set()
    for kind, wanted in (("deps", source.packages), ("recommends", source.recommends)):
        virtual = sorted(work.virtual) if kind == "deps" else []
        if not wanted and not virtual:
            continue
        mirror = f"{tag}-resolve-{kind}-{source.name}-{suite}"
        flags = ["-dep-follow-recommends"] if kind == "recommends" else []
        terms = ([filter_query(wanted)] if wanted else []) + [provides_query(virtual)]
        query = " | ".join(term for term in terms if term)
        create = ["mirror", "create", *force, "-filter-with-deps", f"-filter={query}"]
        aptly(*flags, *create, keyring, mirror, url, dist, *source.components)
        _say(f"[mirror apt] {label}: resolving {len(wanted)} package(s) with {kind} (aptly)")
        aptly(*flags, "mirror", "update", keyring, mirror, what=f"aptly mirror update {mirror}")
        closure |= set(listed_packages(aptly("mirror", "show", "-with-packages", mirror)))
    return closure


def component_snapshots(aptly: Aptly, work: Work, suite: str, tag: str, query: str) -> None:
    """Step 2: one mirror per component filtered by `query`, a snapshot of each (flat: one
    snapshot of the whole directory)."""
    url, dist, force, _ = _where(work, suite)
    keyring = f"-keyring={work.keyring}"
    for component in work.source.components or ("main",):
        mirror = f"{tag}-{work.source.name}-{suite}-{component}"
        only = [] if work.source.flat else [component]
        aptly("mirror", "create", *force, f"-filter={query}", keyring, mirror, url, dist, *only)
        aptly("mirror", "update", keyring, mirror, what=f"aptly mirror update {mirror}")
        aptly("snapshot", "create", mirror, "from", "mirror", mirror)
        work.snapshots[(suite, component)] = mirror


def mirror_round(aptly: Aptly, todo: list[Work], tag: str) -> None:
    """Steps 1-2 for these sources. A vendor's suites keep exactly their closure (NVIDIA's flat
    repositories hold every version of a name); the distribution's suites share the names of
    all their closures, so a security update of a package the release's closure needs comes
    with the same package set (apt picks across suites: the driver from bookworm-security
    needs that suite's libcuda1, which only nsight-systems in bookworm pulled in)."""
    closures = {
        (id(work), suite): resolve_suite(aptly, work, suite, tag)
        for work in todo
        for suite in work.source.suites or (FLAT_SUITE,)
    }
    archive = {
        n
        for w in todo
        if not w.source.vendor
        for s in w.source.suites or (FLAT_SUITE,)
        for (n, _, _) in closures[(id(w), s)]
    }
    for work in todo:
        for suite in work.source.suites or (FLAT_SUITE,):
            if work.source.vendor:
                closure = closures[(id(work), suite)]
                query = exact_query(sorted(closure)) if closure else ""
            else:
                query = filter_query(sorted(archive)) if archive else ""
            component_snapshots(aptly, work, suite, tag, query or "Name (= dltk-mirror-nothing)")


def publish(aptly: Aptly, work: Work, out: Path, home: Path, provided: set[str]) -> list[Part]:
    """Each suite of the source signed under out/<prefix>; a flat source also gets its flat
    index; the mirror's key where the roles look for the upstream's. The names the published
    indexes satisfy are added to `provided`."""
    source = work.source
    parts: list[Part] = []
    for suite in source.suites or (FLAT_SUITE,):
        components = source.components or ("main",)
        snaps = [work.snapshots[(suite, c)] for c in components]
        aptly(
            "publish",
            "snapshot",
            f"-distribution={suite}",
            f"-component={','.join(components)}",
            f"-gpg-key={KEY_EMAIL}",
            "-batch",
            *snaps,
            f"filesystem:{ENDPOINT}:{source.prefix}",
        )
        for component in components:
            index = out / source.prefix / "dists" / suite / component
            text = (index / f"binary-{aptly.arch}" / "Packages").read_text()
            count, size = index_totals(text)
            provided |= provided_names(text)
            parts.append(Part(source.name, suite if source.suites else "/", component, count, size))
    if source.flat:
        write_flat_index(out / source.prefix, "pool", f"{ORIGIN_FLAT} {source.name}", home)
    for path in source.key_paths:
        export_key(home, out / path)
    return parts


def build(sources: list[AptSource], cache: Path, out: Path, arch: str, home: Path) -> Result:
    """Mirror and publish the sources into out (their prefixes replaced) with the key in home.

    One run at a time per cache (a lock file): each run starts aptly's database afresh."""
    root = cache / "aptly"
    root.mkdir(parents=True, exist_ok=True)
    with (root / "lock").open("w") as lock:
        if not _try_lock(lock):
            _say(f"[mirror apt] waiting for another dltk mirror apt on {root}")
            fcntl.flock(lock, fcntl.LOCK_EX)
        return _build(sources, root, out, arch, home)


def _try_lock(lock: IO[str]) -> bool:
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _build(sources: list[AptSource], root: Path, out: Path, arch: str, home: Path) -> Result:
    out.mkdir(parents=True, exist_ok=True)
    for source in sources:
        shutil.rmtree(out / source.prefix, ignore_errors=True)
    aptly = Aptly(root, out, arch, home)
    works = []
    for source in sources:
        keyring = root / "keys" / f"{source.name}.gpg"
        dearmor(fetch_key(source.key_url), keyring, home)
        works.append(Work(source, keyring))
    result = Result()
    todo = list(works)
    for round_ in range(1, MAX_ROUNDS + 1):
        result.rounds = round_
        mirror_round(aptly, todo, f"r{round_}")
        snaps = [snap for work in works for snap in work.snapshots.values()]
        # All of the run's packages in one snapshot (every version kept), checked as one host.
        aptly("snapshot", "merge", "-no-remove", f"r{round_}-all", *snaps)
        verify = aptly("snapshot", "verify", f"r{round_}-all", what="aptly snapshot verify")
        missing = missing_names(verify)
        archive = [w for w in works if not w.source.vendor]
        have = {
            entry.partition("=")[0]
            for w in archive
            for entry in (*w.source.packages, *w.source.recommends, *w.virtual)
        }
        new = [name for name in missing if name not in have]
        result.missing = missing
        if not new or not archive or round_ == MAX_ROUNDS:
            break
        _say(f"[mirror apt] dependencies no source held yet: {' '.join(new)}; resolving again")
        result.added += new
        for work in archive:
            packages = tuple(check_names([*work.source.packages, *new]))
            work.source = replace(work.source, packages=packages)
            work.virtual |= set(new)
        todo = archive
    for work in works:
        result.parts += publish(aptly, work, out, home, result.provided)
    # aptly's verify does not see versioned Provides: what a published package provides is there.
    result.missing = [name for name in result.missing if name not in result.provided]
    return result


def apt_lines(sources: list[AptSource], out: Path, key: Path) -> list[str]:
    """One-line apt sources (file: URIs) for everything the run published under out: each suite
    with its components, and for a flat source both its flat index and its suite `flat`."""
    lines = []
    for source in sources:
        uri = f"deb [signed-by={key}] file:{out / source.prefix}"
        if source.flat:
            lines += [f"{uri} /", f"{uri} {FLAT_SUITE} main"]
        else:
            lines += [f"{uri} {suite} {' '.join(source.components)}" for suite in source.suites]
    return lines
