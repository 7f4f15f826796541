"""Where the local tritonserver and perf_analyzer live, and the environment they need.

tritonserver comes from the nvidia-pytriton wheel (`pytriton/tritonserver/`), with its
libraries in `nvidia_pytriton.libs` and one backend, `python`, whose stub is kept per Python
version under `python_backend_stubs/<X.Y>/`. Triton expects the stub next to
`libtriton_python.so`, so we assemble a backends directory under a cache dir (never touching
site-packages). perf_analyzer comes from the tritonclient 2.51.0 wheel and needs `libb64.so.0d`
(Debian libb64-0d, in a default linker dir) and `libcudart.so.12` (pip
nvidia-cuda-runtime-cu12, added to LD_LIBRARY_PATH).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

from dltk.errors import DltkError

SERVE_HINT = "install it with: pip install -c constraints.txt -e '.[serve]' (or `make venv`)"
STUB_NAME = "triton_python_backend_stub"
PYTHON_BACKEND_LIB = "libtriton_python.so"
LIBB64 = "libb64.so.0d"
LIBCUDART = "libcudart.so.12"
SYSTEM_LIB_DIRS = (
    Path("/usr/lib/x86_64-linux-gnu"),
    Path("/lib/x86_64-linux-gnu"),
    Path("/usr/lib64"),
    Path("/usr/lib"),
)


@dataclass(frozen=True)
class TritonInstall:
    """A tritonserver binary ready to run: binary, libraries, backends, caches."""

    binary: Path
    lib_dir: Path
    backend_dir: Path
    cache_dir: Path
    python_bin_dir: Path

    def env(self, base: dict[str, str] | None = None) -> dict[str, str]:
        """Environment for tritonserver: its libs on LD_LIBRARY_PATH, this venv first on PATH."""
        env = dict(os.environ if base is None else base)
        env["LD_LIBRARY_PATH"] = prepend_path(env.get("LD_LIBRARY_PATH", ""), [self.lib_dir])
        # The python backend stub finds numpy & co. through the first `python3` on PATH.
        env["PATH"] = prepend_path(env.get("PATH", ""), [self.python_bin_dir])
        return env


@dataclass(frozen=True)
class PerfAnalyzerInstall:
    """perf_analyzer and the library directories it needs."""

    binary: Path
    lib_dirs: tuple[Path, ...]

    def env(self, base: dict[str, str] | None = None) -> dict[str, str]:
        env = dict(os.environ if base is None else base)
        env["LD_LIBRARY_PATH"] = prepend_path(env.get("LD_LIBRARY_PATH", ""), self.lib_dirs)
        return env


def prepend_path(current: str, dirs: list[Path] | tuple[Path, ...]) -> str:
    """`dirs` in front of a PATH-like string, without duplicates."""
    parts = [str(d) for d in dirs]
    parts += [p for p in current.split(os.pathsep) if p and p not in parts]
    return os.pathsep.join(parts)


def python_version_tag(version_info: tuple[int, ...] = tuple(sys.version_info)) -> str:
    return f"{version_info[0]}.{version_info[1]}"


def default_cache_dir() -> Path:
    """$DLTK_CACHE_DIR, else $XDG_CACHE_HOME/dltk, else ~/.cache/dltk."""
    if os.environ.get("DLTK_CACHE_DIR"):
        return Path(os.environ["DLTK_CACHE_DIR"])
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "dltk"


def _package_dir(module: str, pip_name: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise DltkError(f"Python package {pip_name} is not installed; {SERVE_HINT}")
    return Path(next(iter(spec.submodule_search_locations)))


def pytriton_dist_dir() -> Path:
    """`pytriton/tritonserver/` inside the nvidia-pytriton wheel."""
    dist = _package_dir("pytriton", "nvidia-pytriton") / "tritonserver"
    if not (dist / "bin" / "tritonserver").is_file():
        raise DltkError(f"no tritonserver binary under {dist}/bin; reinstall nvidia-pytriton")
    return dist


def stub_path(dist: Path, version: str) -> Path:
    stub = dist / "python_backend_stubs" / version / STUB_NAME
    if not stub.is_file():
        have = sorted(p.name for p in (dist / "python_backend_stubs").glob("*"))
        raise DltkError(
            f"nvidia-pytriton has no python backend stub for Python {version} (has: "
            f"{', '.join(have) or 'none'}); use a Python it supports for the venv"
        )
    return stub


def backend_dir_key(dist: Path, version: str) -> str:
    """Cache key: changes when the wheel's backend or stub changes (path, size, mtime)."""
    files = [dist / "backends" / "python" / PYTHON_BACKEND_LIB, stub_path(dist, version)]
    text = "|".join(f"{f.resolve()}:{f.stat().st_size}:{f.stat().st_mtime_ns}" for f in files)
    return f"py{version}-{hashlib.sha256(text.encode()).hexdigest()[:12]}"


def prepare_backend_dir(dist: Path, version: str, cache_dir: Path) -> Path:
    """A backends dir with `python/` = the wheel's python backend + the stub for `version`.

    Built once per key into a temporary dir and renamed into place, so concurrent callers
    never see a half-copied backend.
    """
    target = cache_dir / "backends" / backend_dir_key(dist, version)
    if (target / "python" / STUB_NAME).is_file():
        return target
    src = dist / "backends" / "python"
    tmp = target.with_name(f"{target.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        shutil.copytree(src, tmp / "python", ignore=shutil.ignore_patterns("__pycache__"))
        shutil.copy2(stub_path(dist, version), tmp / "python" / STUB_NAME)
        try:
            tmp.rename(target)
        except OSError:
            if not (target / "python" / STUB_NAME).is_file():
                raise
    except OSError as exc:
        raise DltkError(
            f"cannot build the python backend dir in {target.parent}: {exc.strerror}; "
            "set DLTK_CACHE_DIR to a writable directory"
        ) from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def find_tritonserver(cache_dir: Path | None = None) -> TritonInstall:
    """The nvidia-pytriton tritonserver with a backends dir holding this Python's stub."""
    dist = pytriton_dist_dir()
    lib_dir = dist.parent.parent / "nvidia_pytriton.libs"
    if not lib_dir.is_dir():
        raise DltkError(f"tritonserver libraries missing ({lib_dir}); reinstall nvidia-pytriton")
    cache = cache_dir or default_cache_dir()
    backend_dir = prepare_backend_dir(dist, python_version_tag(), cache)
    return TritonInstall(
        binary=dist / "bin" / "tritonserver",
        lib_dir=lib_dir,
        backend_dir=backend_dir,
        cache_dir=dist / "caches",
        python_bin_dir=Path(sys.executable).parent,
    )


def _perf_analyzer_candidates() -> list[Path]:
    scripts = Path(sysconfig.get_path("scripts"))
    data = Path(sysconfig.get_path("data"))
    candidates = [scripts / "perf_analyzer", Path(sys.executable).parent / "perf_analyzer"]
    candidates.append(data / "bin" / "perf_analyzer")
    found = shutil.which("perf_analyzer")
    if found:
        candidates.append(Path(found))
    return candidates


def _is_elf(path: Path) -> bool:
    try:
        with path.open("rb") as fh:
            return fh.read(4) == b"\x7fELF"
    except OSError:
        return False


def find_system_lib(name: str, dirs: tuple[Path, ...] = SYSTEM_LIB_DIRS) -> Path | None:
    return next((d for d in dirs if (d / name).exists()), None)


def find_perf_analyzer() -> PerfAnalyzerInstall:
    """tritonclient 2.51's perf_analyzer with libb64 (system) and libcudart (pip) dirs."""
    binary = next((p for p in _perf_analyzer_candidates() if p.is_file() and _is_elf(p)), None)
    if binary is None:
        raise DltkError(
            "perf_analyzer not found; install it with: pip install 'tritonclient[http,grpc]"
            "==2.51.0' (newer wheels ship no usable binary)"
        )
    if find_system_lib(LIBB64) is None:
        raise DltkError(f"perf_analyzer needs {LIBB64}; install it with: apt-get install libb64-0d")
    try:
        cudart_dir = _package_dir("nvidia.cuda_runtime", "nvidia-cuda-runtime-cu12") / "lib"
    except ModuleNotFoundError:
        cudart_dir = Path("/nonexistent")
    if not (cudart_dir / LIBCUDART).exists():
        raise DltkError(
            f"perf_analyzer needs {LIBCUDART}; install it with: "
            "pip install nvidia-cuda-runtime-cu12"
        )
    # libb64 sits in a default linker dir (checked above); only libcudart needs the path.
    return PerfAnalyzerInstall(binary=binary, lib_dirs=(cudart_dir,))
