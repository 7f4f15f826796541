#!/usr/bin/env bash
# Make sure a docker engine answers: reuse a running one, else install Debian's docker.io and
# start dockerd in the background (PID 1 here is not always systemd).
#
# On machines whose capability bounding set lacks capabilities the kernel knows (a Firecracker
# VM misses CAP_SYS_RESOURCE), `docker run --privileged` fails with "unable to apply caps".
# There, and only there, this script installs an OCI runtime wrapper that drops those
# capabilities from each container's spec before it execs runc, and makes it the engine's
# default runtime in /etc/docker/daemon.json (merged: other keys stay). A running engine loads
# it with SIGHUP (runtimes are reloadable): no restart, running containers are untouched.
set -euo pipefail

log() { printf '[ensure-docker] %s\n' "$*"; }

DAEMON_JSON="${DOCKER_DAEMON_JSON:-/etc/docker/daemon.json}"
WRAPPER_NAME=dltk-runc-capbnd
WRAPPER="/usr/local/sbin/$WRAPPER_NAME"

# Capabilities the kernel knows (0..cap_last_cap) that are absent from our bounding set.
missing_caps_mask() {
  local last bnd
  last=$(cat /proc/sys/kernel/cap_last_cap 2>/dev/null || echo 40)
  bnd=$(awk '/^CapBnd:/ {print $2}' /proc/self/status)
  printf '%x\n' $(( ((1 << (last + 1)) - 1) & ~0x$bnd ))
}

# The wrapper (scripts/dltk-runc-capbnd.py, Debian's python3, standard library only) and the
# daemon.json merge (the dltk.deploy collection's module_utils, run as a script) live in the repository.
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
WRAPPER_SOURCE="$HERE/dltk-runc-capbnd.py"
DAEMON_JSON_TOOL="$HERE/../plugins/module_utils/daemon_json.py"

# The wrapper as installed: the repository's file with the real runc filled in.
wrapper_source() {
  sed "s|@RUNC@|$1|" "$WRAPPER_SOURCE"
}

# Merge {"runtimes": {NAME: {"path": WRAPPER}}} and, when no other default is set,
# "default-runtime": NAME into daemon.json; print "changed ..." or "unchanged". A daemon.json
# that is not a JSON object: the tool's one error on stderr, the file left alone, status 1.
merge_daemon_json() {
  local default
  /usr/bin/python3 -I "$DAEMON_JSON_TOOL" merge "$DAEMON_JSON" \
    "{\"runtimes\": {\"$WRAPPER_NAME\": {\"path\": \"$WRAPPER\"}}}" \
    --defaults "{\"default-runtime\": \"$WRAPPER_NAME\"}" || return 1
  default=$(/usr/bin/python3 -I "$DAEMON_JSON_TOOL" get "$DAEMON_JSON" default-runtime) || return 1
  if [ "$default" != "$WRAPPER_NAME" ]; then
    log "note: default-runtime stays '$default': use --runtime $WRAPPER_NAME for --privileged containers" >&2
  fi
}

engine_has_wrapper() {
  docker info --format '{{range $name, $_ := .Runtimes}}{{$name}} {{end}}' 2>/dev/null \
    | tr ' ' '\n' | grep -qx "$WRAPPER_NAME"
}

# Install the wrapper and register it when capabilities are missing. Prints nothing to do on a
# normal machine. Sets RELOAD_NEEDED=1 when a running engine must reload daemon.json.
RELOAD_NEEDED=0
ensure_capbnd_wrapper() {
  local missing runc tmp state
  missing=$(missing_caps_mask)
  if [ "$missing" = "0" ]; then
    return 0
  fi
  case "${DOCKER_HOST:-unix:///var/run/docker.sock}" in
    unix://*) ;;
    *) log "DOCKER_HOST=$DOCKER_HOST is not local: leaving its runtimes alone"; return 0 ;;
  esac
  log "capability bounding set lacks mask 0x$missing (bit 24 = CAP_SYS_RESOURCE):" \
    "--privileged needs the $WRAPPER_NAME runtime wrapper"
  runc=$(command -v runc || true)
  if [ -z "$runc" ]; then
    log "no runc found: install the engine first"
    return 1
  fi
  tmp=$(mktemp)
  wrapper_source "$runc" >"$tmp"
  if ! cmp -s "$tmp" "$WRAPPER" 2>/dev/null; then
    # Next to it, then a rename: a container starting meanwhile never runs a half-written file.
    install -D -m 0755 "$tmp" "$WRAPPER.new"
    mv -f "$WRAPPER.new" "$WRAPPER"
    log "installed $WRAPPER (execs $runc)"
  fi
  rm -f "$tmp"
  state=$(merge_daemon_json)
  if [ "${state%% *}" = "changed" ]; then
    log "registered runtime $WRAPPER_NAME in $DAEMON_JSON (other keys kept; $state)"
  fi
  if [ "${state%% *}" = "changed" ] || ! engine_has_wrapper; then
    RELOAD_NEEDED=1
  fi
}

# SIGHUP makes dockerd re-read daemon.json; runtimes and default-runtime are reloadable, so
# running containers (other users' too) are not touched.
reload_engine() {
  local pid
  if [ "$(ps -o comm= -p 1)" = "systemd" ] && systemctl is-active -q docker 2>/dev/null; then
    systemctl reload docker
  else
    pid=$(cat /var/run/docker.pid 2>/dev/null || pidof dockerd || true)
    if [ -z "$pid" ]; then
      log "cannot find dockerd's pid to reload it"
      return 1
    fi
    kill -HUP "$pid"
  fi
  for _ in $(seq 1 20); do
    if engine_has_wrapper; then
      log "engine reloaded daemon.json without a restart: runtime $WRAPPER_NAME," \
        "default $(docker info --format '{{.DefaultRuntime}}'); $(docker ps -q | wc -l) running container(s) kept"
      return 0
    fi
    sleep 0.5
  done
  log "engine did not pick up runtime $WRAPPER_NAME after SIGHUP: see its log"
  return 1
}

# Sourced (tests/unit/test_ensure_docker.py): the functions above only.
if [ "${BASH_SOURCE[0]}" != "$0" ]; then
  return 0
fi

if docker info >/dev/null 2>&1; then
  log "docker engine already answers: $(docker version --format '{{.Server.Version}}')"
  ensure_capbnd_wrapper
  if [ "$RELOAD_NEEDED" = 1 ]; then
    reload_engine
  fi
  exit 0
fi

if ! command -v dockerd >/dev/null 2>&1; then
  log "no docker engine installed: installing Debian docker.io"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq docker.io >/dev/null
fi

# Before the engine starts: it reads daemon.json at start, no reload needed.
ensure_capbnd_wrapper

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
    # The package's own scripts may have started the engine before daemon.json had the wrapper.
    if [ "$RELOAD_NEEDED" = 1 ] && ! engine_has_wrapper; then
      reload_engine
    fi
    exit 0
  fi
  sleep 1
done
log "docker engine did not answer within 60 s; last lines of its log:"
tail -n 20 /var/log/dockerd.log >&2 || true
exit 1
