#!/usr/bin/env bash
# A local image registry for `dltk mirror images` (docs/air-gapped.md): Docker's distribution
# registry from Debian's docker-registry package, in a container of the project's image
# (images/registry, built here on the project's base), on a docker network of its own, published
# on REGISTRY_BIND (127.0.0.1) only.
#   scripts/registry.sh up       build the image when missing, start the registry (reused when running)
#   scripts/registry.sh status   print the address and whether /v2/ answers
#   scripts/registry.sh down     remove the container and its network (REGISTRY_PURGE=1: its data too)
# Settings (environment):
#   REGISTRY_NAME (dltk-registry)  container name; network <name>-net, data volume <name>-data
#   REGISTRY_PORT (5000)           published port; REGISTRY_BIND (127.0.0.1) the address it binds
#   REGISTRY_USER / REGISTRY_PASSWORD   basic auth (htpasswd, bcrypt) when both are set; the
#                                  password goes to htpasswd on stdin, never on a command line
#   REGISTRY_TLS_CERT / REGISTRY_TLS_KEY  PEM files: serve HTTPS (else plain HTTP, which docker
#                                  accepts on loopback only: see insecure-registries in the docs)
#   REGISTRY_IMAGE (dltk/registry:2.8), BASE_IMAGE (dltk/debian-base:bookworm)
set -euo pipefail
cd "$(dirname "$0")/.."

NAME="${REGISTRY_NAME:-dltk-registry}"
PORT="${REGISTRY_PORT:-5000}"
BIND="${REGISTRY_BIND:-127.0.0.1}"
IMAGE="${REGISTRY_IMAGE:-dltk/registry:2.8}"
BASE_IMAGE="${BASE_IMAGE:-dltk/debian-base:bookworm}"
NETWORK="$NAME-net"
VOLUME="$NAME-data"
AUTH_DIR="${REGISTRY_AUTH_DIR:-build/registry/$NAME}"
log() { printf '[registry] %s\n' "$*"; }

scheme() { if [ -n "${REGISTRY_TLS_CERT:-}" ]; then echo https; else echo http; fi; }

# /v2/ answers 200 (open) or 401 (basic auth) once the registry serves.
answers() {
  local code
  code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 -k "$(scheme)://$BIND:$PORT/v2/" || true)
  [ "$code" = 200 ] || [ "$code" = 401 ]
}

build_image() {
  if docker image inspect "$IMAGE" >/dev/null 2>&1; then return; fi
  mkdir -p build
  log "building $IMAGE from images/registry on $BASE_IMAGE (log: build/registry.build.log)"
  if ! docker build --build-arg "BASE_IMAGE=$BASE_IMAGE" -t "$IMAGE" images/registry \
      >build/registry.build.log 2>&1; then
    log "build of $IMAGE failed; last lines of build/registry.build.log:"
    tail -n 40 build/registry.build.log >&2
    exit 1
  fi
}

up() {
  if [ "$(docker inspect -f '{{.State.Running}}' "$NAME" 2>/dev/null)" = "true" ]; then
    log "$NAME already running on $BIND:$PORT"
    return
  fi
  build_image
  docker rm -f "$NAME" >/dev/null 2>&1 || true
  docker network inspect "$NETWORK" >/dev/null 2>&1 || docker network create "$NETWORK" >/dev/null
  local args=()
  if [ -n "${REGISTRY_USER:-}" ] && [ -n "${REGISTRY_PASSWORD:-}" ]; then
    mkdir -p "$AUTH_DIR"
    chmod 0755 "$AUTH_DIR"  # the registry's user (uid 100) reads the file through the mount
    printf '%s' "$REGISTRY_PASSWORD" \
      | docker run --rm -i --network none "$IMAGE" htpasswd -niB "$REGISTRY_USER" \
      >"$AUTH_DIR/htpasswd"
    chmod 0644 "$AUTH_DIR/htpasswd"  # bcrypt hashes, not the password
    args+=(-v "$(realpath "$AUTH_DIR"):/auth:ro"
      -e REGISTRY_AUTH=htpasswd -e "REGISTRY_AUTH_HTPASSWD_REALM=$NAME"
      -e REGISTRY_AUTH_HTPASSWD_PATH=/auth/htpasswd)
  fi
  if [ -n "${REGISTRY_TLS_CERT:-}" ]; then
    args+=(-v "$(realpath "$REGISTRY_TLS_CERT"):/tls/cert.pem:ro"
      -v "$(realpath "${REGISTRY_TLS_KEY:?REGISTRY_TLS_KEY: the key of REGISTRY_TLS_CERT}"):/tls/key.pem:ro"
      -e REGISTRY_HTTP_TLS_CERTIFICATE=/tls/cert.pem -e REGISTRY_HTTP_TLS_KEY=/tls/key.pem)
  fi
  docker run -d --name "$NAME" --restart unless-stopped --network "$NETWORK" \
    -p "$BIND:$PORT:5000" -v "$VOLUME:/var/lib/docker-registry" \
    --cap-drop ALL --security-opt no-new-privileges --read-only \
    --label dltk.registry=1 "${args[@]}" "$IMAGE" >/dev/null
  for _ in $(seq 1 30); do
    if answers; then
      log "$NAME serves $(scheme)://$BIND:$PORT (network $NETWORK, data volume $VOLUME)"
      return
    fi
    sleep 1
  done
  log "$NAME does not answer on $BIND:$PORT after 30 s; its log:"
  docker logs --tail 40 "$NAME" >&2 || true
  exit 1
}

status() {
  if answers; then log "$NAME serves $(scheme)://$BIND:$PORT"; else log "$NAME: no answer on $BIND:$PORT"; exit 1; fi
}

down() {
  docker rm -f "$NAME" >/dev/null 2>&1 || true
  docker network rm "$NETWORK" >/dev/null 2>&1 || true
  if [ "${REGISTRY_PURGE:-0}" = 1 ]; then
    docker volume rm "$VOLUME" >/dev/null 2>&1 || true
    rm -rf "$AUTH_DIR"
  fi
  log "$NAME removed$([ "${REGISTRY_PURGE:-0}" = 1 ] && echo " with its data")"
}

case "${1:-}" in
  up) up ;;
  status) status ;;
  down) down ;;
  *) echo "usage: $0 up|status|down" >&2; exit 2 ;;
esac
