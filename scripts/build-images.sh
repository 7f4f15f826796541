#!/usr/bin/env bash
# Build the project's images on the local docker engine:
#   dltk/debian-base:bookworm (scripts/base-image.sh), the wheelhouses the images install from
#   (no PyPI access is needed inside builds), dltk/triton-cpu, dltk/toolkit, dltk/sandbox-host.
# Docker's build cache makes a second run fast; wheels already downloaded are reused.
set -euo pipefail
cd "$(dirname "$0")/.."

# Versions and tags from the release file (roles/dltk_ngc/defaults/main.json) through
# `dltk release --build-args`: DLTK_NGC_RELEASE, TRITON_VERSION, NVIDIA_PYTRITON_VERSION,
# TRITONCLIENT_VERSION, TRITON_CPU_IMAGE, TOOLKIT_IMAGE (an image name set in the environment wins).
# (this checkout's own package first: the venv may have been made from another checkout)
release_args=$(PYTHONPATH="scripts${PYTHONPATH:+:$PYTHONPATH}" .venv/bin/dltk release --build-args)
while IFS='=' read -r key value; do
  case "$key" in
    TRITON_CPU_IMAGE|TOOLKIT_IMAGE) printf -v "$key" '%s' "${!key:-$value}" ;;
    *) printf -v "$key" '%s' "$value" ;;
  esac
done <<<"$release_args"
BASE_IMAGE="${BASE_IMAGE:-dltk/debian-base:bookworm}"
SANDBOX_IMAGE="${SANDBOX_IMAGE:-dltk/sandbox-host:bookworm}"
PIP="${PIP:-.venv/bin/pip}"
WHEELHOUSE=build/wheelhouse
TOOLS_WHEELHOUSE=build/wheelhouse-tools
log() { printf '[build-images] %s\n' "$*"; }

BASE_IMAGE="$BASE_IMAGE" scripts/base-image.sh

# The wheelhouses the images install from (no PyPI access is needed inside builds): which wheels is
# `dltk mirror wheels`'s to say (scripts/dltk/mirror/wheels.py, the sets `toolkit` -> build/wheelhouse
# and `tools` -> build/wheelhouse-tools: torch and matplotlib, kept out of the shared one, which
# the Triton image copies). Wheels already downloaded are reused; no index is written here.
log "wheelhouses $WHEELHOUSE and $TOOLS_WHEELHOUSE (dltk mirror wheels, pinned by constraints.txt)"
PYTHONPATH="scripts${PYTHONPATH:+:$PYTHONPATH}" .venv/bin/dltk mirror wheels \
  --only toolkit --only tools --wheelhouse-only --pip "$PIP"

build() {
  local tag=$1 dockerfile=$2 start=$SECONDS
  shift 2  # the rest: more --build-arg options
  local buildlog
  buildlog="build/$(basename "$(dirname "$dockerfile")").build.log"
  log "building $tag from $dockerfile (log: $buildlog)"
  if ! docker build --build-arg "BASE_IMAGE=$BASE_IMAGE" "$@" -t "$tag" -f "$dockerfile" . \
      >"$buildlog" 2>&1; then
    log "build of $tag failed; last lines of $buildlog:"; tail -n 40 "$buildlog" >&2
    exit 1
  fi
  log "built $tag in $((SECONDS - start)) s"
}
build "$TRITON_CPU_IMAGE" images/triton-cpu/Dockerfile \
  --build-arg "TRITON_VERSION=$TRITON_VERSION" --build-arg "NVIDIA_PYTRITON_VERSION=$NVIDIA_PYTRITON_VERSION"

# The DLTK toolkit image (CPU variant) builds from a staged context: its own files and both
# wheelhouses. roles/dltk_image lays out the same context on a host.
TOOLKIT_CONTEXT=build/toolkit-context
# One deterministic archive of both wheelhouses (same files, same bytes): roles/dltk_image copies
# it to a host as a single file and unpacks it into the build context.
# Replaced only when its bytes change: its mtime is an input of roles/dltk_image's fast path
# (docs/fast-path.md), and a rewrite with the same bytes made every `make demo` rebuild the context.
tar --sort=name --mtime='2020-01-01 00:00Z' --owner=0 --group=0 --numeric-owner \
  -cf build/toolkit-wheels.tar.new -C build wheelhouse wheelhouse-tools
if cmp -s build/toolkit-wheels.tar.new build/toolkit-wheels.tar; then
  rm -f build/toolkit-wheels.tar.new
else
  mv -f build/toolkit-wheels.tar.new build/toolkit-wheels.tar
fi
rm -rf "$TOOLKIT_CONTEXT"
mkdir -p "$TOOLKIT_CONTEXT/scripts" "$TOOLKIT_CONTEXT/apt"  # apt/ empty: the base's apt sources
cp -l images/dltk/Dockerfile images/dltk/requirements*.txt images/dltk/apt-packages*.txt \
  constraints.txt pyproject.toml README.md "$TOOLKIT_CONTEXT/"
cp -rl "$WHEELHOUSE" "$TOOLKIT_CONTEXT/wheelhouse"
cp -rl "$TOOLS_WHEELHOUSE" "$TOOLKIT_CONTEXT/wheelhouse-tools"
# -L: scripts/dltk/release.json is a symlink to the release file; the context gets its content.
cp -rL scripts/dltk "$TOOLKIT_CONTEXT/scripts/dltk"
find "$TOOLKIT_CONTEXT" -name __pycache__ -prune -exec rm -rf {} +
start=$SECONDS
log "building $TOOLKIT_IMAGE from $TOOLKIT_CONTEXT (log: build/dltk.build.log)"
if ! docker build --build-arg "BASE_IMAGE=$BASE_IMAGE" --build-arg DLTK_VARIANT=cpu \
    -t "$TOOLKIT_IMAGE" "$TOOLKIT_CONTEXT" >build/dltk.build.log 2>&1; then
  log "build of $TOOLKIT_IMAGE failed; last lines of build/dltk.build.log:"
  tail -n 40 build/dltk.build.log >&2
  exit 1
fi
log "built $TOOLKIT_IMAGE in $((SECONDS - start)) s"
build "$SANDBOX_IMAGE" images/sandbox-host/Dockerfile

# HAProxy for the triton_lb role (make fleet): the role's own Dockerfile (the role builds the same
# on a load balancer host), its image name and Debian package version from the role's defaults.
lb_default() { .venv/bin/python -c 'import sys, yaml; print(yaml.safe_load(open("roles/triton_lb/defaults/main.yml"))[sys.argv[1]])' "$1"; }
HAPROXY_IMAGE="${HAPROXY_IMAGE:-$(lb_default triton_lb_image)}"
start=$SECONDS
log "building $HAPROXY_IMAGE from roles/triton_lb/files/Dockerfile (log: build/haproxy.build.log)"
if ! docker build --build-arg "BASE_IMAGE=$BASE_IMAGE" \
    --build-arg "HAPROXY_VERSION=$(lb_default triton_lb_haproxy_version)" \
    -t "$HAPROXY_IMAGE" roles/triton_lb/files >build/haproxy.build.log 2>&1; then
  log "build of $HAPROXY_IMAGE failed; last lines of build/haproxy.build.log:"
  tail -n 40 build/haproxy.build.log >&2
  exit 1
fi
log "built $HAPROXY_IMAGE in $((SECONDS - start)) s"
