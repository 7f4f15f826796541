#!/usr/bin/env bash
# Make sure a docker engine answers: reuse a running one, else install Debian's docker.io and
# start dockerd in the background (PID 1 here is not always systemd).
set -euo pipefail

log() { printf '[ensure-docker] %s\n' "$*"; }

if docker info >/dev/null 2>&1; then
  log "docker engine already answers: $(docker version --format '{{.Server.Version}}')"
  exit 0
fi

if ! command -v dockerd >/dev/null 2>&1; then
  log "no docker engine installed: installing Debian docker.io"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq docker.io >/dev/null
fi

if [ "$(ps -o comm= -p 1)" = "systemd" ]; then
  log "starting docker.service with systemd"
  systemctl start docker
else
  log "PID 1 is not systemd: starting dockerd in the background (log: /var/log/dockerd.log)"
  nohup dockerd >/var/log/dockerd.log 2>&1 &
fi

for _ in $(seq 1 60); do
  if docker info >/dev/null 2>&1; then
    log "docker engine ready: $(docker version --format '{{.Server.Version}}')"
    exit 0
  fi
  sleep 1
done
log "docker engine did not answer within 60 s; last lines of its log:"
tail -n 20 /var/log/dockerd.log >&2 || true
exit 1
