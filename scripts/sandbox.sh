#!/usr/bin/env bash
# Sandbox hosts for `make demo`: systemd containers that stand in for fresh servers.
#   scripts/sandbox.sh up       start the hosts of inventory/sandbox.yml (reused when running)
#   scripts/sandbox.sh report   print the newest verifier report of each host
#   scripts/sandbox.sh down     remove the hosts and the containers/networks they started
set -euo pipefail
cd "$(dirname "$0")/.."

IMAGE="${SANDBOX_IMAGE:-dltk/sandbox-host:bookworm}"
HOSTS="${SANDBOX_HOSTS:-dltk-sandbox-1}"
log() { printf '[sandbox] %s\n' "$*"; }

up() {
  local host data
  for host in $HOSTS; do
    data="/srv/dltk-sandbox/$host"
    if [ "$(docker inspect -f '{{.State.Running}}' "$host" 2>/dev/null)" = "true" ]; then
      log "$host already running"
      continue
    fi
    docker rm -f "$host" >/dev/null 2>&1 || true
    mkdir -p "$data"
    # systemd as PID 1 without --privileged: SYS_ADMIN, the host's cgroup tree, tmpfs /run.
    # The docker socket makes the outer engine this host's engine (sibling containers), and
    # $data is mounted at the same path so bind mounts of sibling containers resolve.
    # --restart: the host comes back with its engine, as a server comes back after a power cut
    # (the engine-restart fault drill, docs/reliability.md).
    docker run -d --name "$host" --hostname "$host" --restart unless-stopped \
      --cap-add SYS_ADMIN --cgroupns=host -v /sys/fs/cgroup:/sys/fs/cgroup:rw \
      --tmpfs /run --tmpfs /run/lock --tmpfs /tmp \
      -v /var/run/docker.sock:/var/run/docker.sock \
      -v "$data:$data" \
      --label dltk.sandbox=1 "$IMAGE" >/dev/null
    for _ in $(seq 1 30); do
      state=$(docker exec "$host" systemctl is-system-running 2>/dev/null || true)
      case "$state" in running|degraded) break ;; esac
      sleep 1
    done
    log "$host up (systemd: ${state:-unknown})"
  done
}

report() {
  local host latest
  for host in $HOSTS; do
    latest=$(ls -1d reports/"$host"/*/ 2>/dev/null | sort | tail -n 1)
    if [ -z "$latest" ]; then
      log "$host: no report yet"; continue
    fi
    log "$host: verifier reports in $latest"
    .venv/bin/python -m dltk.report "$latest"
  done
}

down() {
  local host
  for host in $HOSTS; do
    docker rm -f "$host" "$host-tritonserver" "$host-tritonserver-verify" >/dev/null 2>&1 || true
    docker network rm "$host-net" >/dev/null 2>&1 || true
    # The drill host's data directory is a size-limited tmpfs (dltk drill --setup).
    if mountpoint -q "/srv/dltk-sandbox/$host" 2>/dev/null; then umount "/srv/dltk-sandbox/$host"; fi
    rm -rf "/srv/dltk-sandbox/$host"
    log "$host removed"
  done
}

case "${1:-}" in
  up) up ;;
  report) report ;;
  down) down ;;
  *) echo "usage: $0 up|report|down" >&2; exit 2 ;;
esac
