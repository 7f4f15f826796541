#!/usr/bin/env bash
# Install the Debian packages `make test` and `make demo` need on the machine that runs them.
# Installs only what is missing; runs `apt-get update` only when something is missing.
set -euo pipefail

PACKAGES=(
  python3-venv     # the project's .venv is made from Debian's python3 (see README)
  libpython3.11    # the python backend stub of the local tritonserver links it
  libb64-0d        # perf_analyzer from tritonclient 2.51 links it
  debootstrap      # the Debian base image when no registry is reachable
  gnupg            # signs the throwaway test apt mirrors of the molecule scenarios
  iproute2         # molecule mirror: `ip route del default` in the air-gapped host's namespace
  util-linux       # nsenter, for the same
  aptly            # dltk mirror apt: mirrors Debian's, Docker's and NVIDIA's apt repositories
  apt-utils        # apt-ftparchive: the flat indexes aptly does not publish, STAND-IN repositories
)

missing=()
for pkg in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ "${#missing[@]}" -eq 0 ]; then
  echo "[install-deps] all Debian packages present"
  exit 0
fi
echo "[install-deps] installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
