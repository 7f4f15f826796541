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

# The wrapper itself: Python from Debian's python3, no third-party modules.
wrapper_source() {
  local runc=$1
  cat <<EOF
#!/usr/bin/python3 -I
"""OCI runtime wrapper installed by DLTK Deploy's scripts/ensure-docker.sh.

This machine's capability bounding set lacks capabilities that \`docker run --privileged\`
asks for, so runc fails with "unable to apply caps". Before \`runc create|run\` (and
\`runc exec --process FILE\`) drop from the OCI spec every capability absent from this
process's CapBnd, then exec the real runc with the same arguments. Specs that ask for no
missing capability (every unprivileged container) are left byte-for-byte alone.
"""

import json
import os
import sys

RUNC = "$runc"
NAMES = (
    "CHOWN DAC_OVERRIDE DAC_READ_SEARCH FOWNER FSETID KILL SETGID SETUID SETPCAP "
    "LINUX_IMMUTABLE NET_BIND_SERVICE NET_BROADCAST NET_ADMIN NET_RAW IPC_LOCK IPC_OWNER "
    "SYS_MODULE SYS_RAWIO SYS_CHROOT SYS_PTRACE SYS_PACCT SYS_ADMIN SYS_BOOT SYS_NICE "
    "SYS_RESOURCE SYS_TIME SYS_TTY_CONFIG MKNOD LEASE AUDIT_WRITE AUDIT_CONTROL SETFCAP "
    "MAC_OVERRIDE MAC_ADMIN SYSLOG WAKE_ALARM BLOCK_SUSPEND AUDIT_READ PERFMON BPF "
    "CHECKPOINT_RESTORE"
).split()
GLOBAL_OPTIONS_WITH_VALUE = {"--root", "--log", "--log-format", "--criu", "--rootless"}


def missing_capabilities() -> set:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("CapBnd:"):
                mask = int(line.split()[1], 16)
                return {"CAP_" + n for i, n in enumerate(NAMES) if not (mask >> i) & 1}
    return set()


def option(args: list, names: tuple):
    for i, arg in enumerate(args):
        for name in names:
            if arg == name and i + 1 < len(args):
                return args[i + 1]
            if arg.startswith(name + "="):
                return arg.split("=", 1)[1]
    return None


def spec_to_filter(args: list):
    i = 0
    while i < len(args):
        arg = args[i]
        if arg in GLOBAL_OPTIONS_WITH_VALUE:
            i += 2
            continue
        if arg.startswith("-"):
            i += 1
            continue
        rest = args[i + 1 :]
        if arg in ("create", "run"):
            bundle = option(rest, ("--bundle", "-b")) or "."
            return os.path.join(bundle, "config.json"), "process"
        if arg == "exec":
            process = option(rest, ("--process", "-p"))
            return (process, None) if process else (None, None)
        return None, None
    return None, None


def drop_missing(path: str, key) -> None:
    missing = missing_capabilities()
    if not missing:
        return
    with open(path) as f:
        spec = json.load(f)
    process = spec.get(key, {}) if key else spec
    caps = process.get("capabilities") or {}
    changed = False
    for kind, names in caps.items():
        kept = [n for n in (names or []) if n not in missing]
        if kept != (names or []):
            caps[kind] = kept
            changed = True
    if changed:
        tmp = path + ".dltk-capbnd"
        with open(tmp, "w") as f:
            json.dump(spec, f)
        os.replace(tmp, path)


def main() -> None:
    args = sys.argv[1:]
    try:
        path, key = spec_to_filter(args)
        if path:
            drop_missing(path, key)
    except Exception as exc:  # never block a container over the wrapper itself
        print(f"$WRAPPER_NAME: left the spec as it was: {exc}", file=sys.stderr)
    os.execv(RUNC, [RUNC] + args)


main()
EOF
}

# Merge {"runtimes": {NAME: {"path": WRAPPER}}} and, when no other default is set,
# "default-runtime": NAME into daemon.json; print "changed" or "unchanged".
merge_daemon_json() {
  /usr/bin/python3 - "$DAEMON_JSON" "$WRAPPER_NAME" "$WRAPPER" <<'EOF'
import json, os, sys
path, name, wrapper = sys.argv[1:]
try:
    with open(path) as f:
        text = f.read()
    config = json.loads(text) if text.strip() else {}
except FileNotFoundError:
    config = {}
except ValueError as exc:
    sys.exit(f"[ensure-docker] {path} is not valid JSON ({exc}): fix it, then run again")
if not isinstance(config, dict):
    sys.exit(f"[ensure-docker] {path} is not a JSON object: fix it, then run again")
before = json.dumps(config, sort_keys=True)
config.setdefault("runtimes", {})[name] = {"path": wrapper}
if config.get("default-runtime", name) == name:
    config["default-runtime"] = name
else:
    print(f"note: default-runtime stays {config['default-runtime']!r}: use --runtime {name} "
          "for --privileged containers", file=sys.stderr)
if json.dumps(config, sort_keys=True) == before:
    print("unchanged")
    sys.exit(0)
os.makedirs(os.path.dirname(path), exist_ok=True)
with open(path + ".tmp", "w") as f:
    json.dump(config, f, indent=2)
    f.write("\n")
os.replace(path + ".tmp", path)
print("changed")
EOF
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
    install -D -m 0755 "$tmp" "$WRAPPER"
    log "installed $WRAPPER (execs $runc)"
  fi
  rm -f "$tmp"
  state=$(merge_daemon_json)
  if [ "$state" = "changed" ]; then
    log "registered runtime $WRAPPER_NAME in $DAEMON_JSON (other keys kept)"
  fi
  if [ "$state" = "changed" ] || ! engine_has_wrapper; then
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
