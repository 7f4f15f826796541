#!/usr/bin/env bash
# Provide the Debian base image every DLTK image builds FROM.
# Reuse it when present; pull it when a registry answers; else build it with debootstrap
# from this machine's apt mirror and `docker import` it.
set -euo pipefail

BASE_IMAGE="${BASE_IMAGE:-dltk/debian-base:bookworm}"
PULL_IMAGE="${PULL_IMAGE:-debian:bookworm-slim}"
log() { printf '[base-image] %s\n' "$*"; }

if docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
  log "reusing $BASE_IMAGE"
  exit 0
fi

if timeout 60 docker pull -q "$PULL_IMAGE" >/dev/null 2>&1; then
  log "registry reachable: tagging $PULL_IMAGE as $BASE_IMAGE"
  docker tag "$PULL_IMAGE" "$BASE_IMAGE"
  exit 0
fi

mirror="${DEBIAN_MIRROR:-}"
if [ -z "$mirror" ]; then
  mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
fi
if [ -z "$mirror" ]; then
  mirror=$(awk '/^deb / {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
fi
mirror="${mirror:-http://deb.debian.org/debian}"

command -v debootstrap >/dev/null 2>&1 || {
  log "installing debootstrap"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
}

root=$(mktemp -d /var/tmp/dltk-base.XXXXXX)
trap 'rm -rf "$root"' EXIT
log "no registry reachable: debootstrap bookworm from $mirror (about 40 s)"
debootstrap --variant=minbase bookworm "$root" "$mirror" >"$root.log" 2>&1 || {
  tail -n 20 "$root.log" >&2; exit 1; }
rm -f "$root.log"
# Keep the image small and let later layers reach the same mirror.
rm -rf "$root"/var/cache/apt/archives/*.deb
printf 'deb %s bookworm main\ndeb %s bookworm-updates main\n' "$mirror" "$mirror" >"$root/etc/apt/sources.list"
tar -C "$root" -c . | docker import -c 'CMD ["bash"]' - "$BASE_IMAGE" >/dev/null
log "built $BASE_IMAGE ($(docker image inspect -f '{{.Size}}' "$BASE_IMAGE" | numfmt --to=iec))"
