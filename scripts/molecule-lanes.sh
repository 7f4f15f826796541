#!/usr/bin/env bash
# `make molecule`: the molecule scenarios in lanes that run side by side. Each argument is one lane
# (scenario names separated by spaces), run in order; a lane stops at its first failure, the other
# lanes finish. The serving lane (default, dltk_image, trt_engines, gpu_sim) is mostly CPU and
# owns every use of the shared images but one; the air-gap lane (mirror, nvidia_driver) and the
# host lane (driver bad input, Nsight, toolkit, engine) mostly wait on apt downloads and dpkg, and
# move no shared image tag (mirror only reads and pushes the CPU Triton and the Debian base into
# its own registry). Scenarios
# keep their own instance, network and ephemeral names, so two lanes never share a container.
# Each scenario's output goes to build/molecule/<scenario>.log; a failure prints its last lines.
#   scripts/molecule-lanes.sh "default gpu_sim" "nvidia_driver mirror"
set -uo pipefail
cd "$(dirname "$0")/.."

LOGS=build/molecule
TIMEOUT_S="${MOLECULE_TIMEOUT_S:-2400}"  # one scenario; the longest (gpu_sim) takes ~10 min
mkdir -p "$LOGS"

lane() {
  local name=$1 s start rc
  shift
  for s in "$@"; do
    start=$(date +%s)
    echo "[molecule] $name: molecule test -s $s (log: $LOGS/$s.log)"
    timeout "$TIMEOUT_S" molecule test -s "$s" >"$LOGS/$s.log" 2>&1
    rc=$?
    if [ "$rc" -ne 0 ]; then
      echo "[molecule] $s FAILED (exit $rc) after $(($(date +%s) - start)) s; the end of $LOGS/$s.log:"
      tail -n 250 "$LOGS/$s.log" | sed -e 's/\x1b\[[0-9;]*m//g' -e "s/^/  [$s] /"
      return 1
    fi
    echo "[molecule] $s passed in $(($(date +%s) - start)) s"
  done
}

[ $# -gt 0 ] || { echo "usage: $0 'LANE 1 SCENARIOS' ['LANE 2 SCENARIOS' ...]" >&2; exit 2; }
start=$(date +%s)
pids=()
i=0
for scenarios in "$@"; do
  i=$((i + 1))
  # shellcheck disable=SC2086  # a lane is a space-separated list of scenario names
  lane "lane $i" $scenarios &
  pids+=("$!")
done
failed=0
for pid in "${pids[@]}"; do
  wait "$pid" || failed=1
done
echo "[molecule] $# lane(s) took $(($(date +%s) - start)) s in all"
exit "$failed"
