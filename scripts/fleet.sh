#!/usr/bin/env bash
# The fleet sandbox (make fleet, make demo HOSTS=N): N sandbox hosts, deploy.yml on them, the
# triton_lb role's HAProxy in front, and a traffic check through it.
#   FLEET_HOSTS=4 scripts/fleet.sh up      (hosts reused when running; a re-run converges)
#   scripts/fleet.sh down
# Another fleet beside the default one (a test's, a bench's): FLEET_NAME=dltk-ci FLEET_PORT_BASE=18600
# (hosts NAME-1..N publishing BASE+10(i-1)+{0,1,2}, the load balancer NAME-lb on BASE+90 and +91,
# the inventory build/fleet/NAME/inventory.yml; the default fleet's is build/fleet/inventory.yml).
# FLEET_EXTRA_VARS (JSON) goes to deploy.yml and lb.yml as -e (a bench's own toolkit image name).
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD/scripts${PYTHONPATH:+:$PYTHONPATH}"
PY=.venv/bin/python
NAME=${FLEET_NAME:-dltk-fleet}
BASE=${FLEET_PORT_BASE:-18400}
if [ "$NAME" = dltk-fleet ]; then INVENTORY=build/fleet/inventory.yml; else INVENTORY=build/fleet/$NAME/inventory.yml; fi
LB=$NAME-lb
EXTRA=()
if [ -n "${FLEET_EXTRA_VARS:-}" ]; then EXTRA=(-e "$FLEET_EXTRA_VARS"); fi
log() { printf '[fleet] %s\n' "$*"; }

up() {
  local hosts start=$SECONDS metrics=() i=0
  hosts=$($PY -m dltk.fleet inventory --hosts "${FLEET_HOSTS:-4}" --out "$INVENTORY" \
    --name "$NAME" --base-port "$BASE")
  SANDBOX_HOSTS="$hosts" scripts/sandbox.sh up
  ansible-playbook deploy.yml -i "$INVENTORY" -e dltk_hosts=sandbox "${EXTRA[@]}"
  log "deploy.yml on $(wc -w <<<"$hosts") hosts: $((SECONDS - start)) s"
  ansible-playbook playbooks/lb.yml -i "$INVENTORY" "${EXTRA[@]}"
  for host in $hosts; do
    metrics+=("$host=http://127.0.0.1:$((BASE + 2 + 10 * i))/metrics")
    i=$((i + 1))
  done
  $PY -m dltk.fleet traffic --http "127.0.0.1:$((BASE + 90))" --grpc "127.0.0.1:$((BASE + 91))" \
    --metrics "${metrics[@]}" --lb-container "$LB"
  log "fleet up in $((SECONDS - start)) s; load balancer: HTTP 127.0.0.1:$((BASE + 90)), gRPC 127.0.0.1:$((BASE + 91))"
}

down() {
  local hosts
  hosts=$(docker ps -a --filter label=dltk.sandbox=1 --format '{{.Names}}' | grep "^$NAME-[0-9]*\$" || true)
  if [ -n "$hosts" ]; then SANDBOX_HOSTS="$hosts" scripts/sandbox.sh down; fi
  docker rm -f "$LB" >/dev/null 2>&1 || true
  docker network rm "$LB-net" >/dev/null 2>&1 || true
  rm -rf "/srv/dltk-sandbox/$LB"
  log "load balancer $LB removed"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  *) echo "usage: $0 up|down" >&2; exit 2 ;;
esac
