# DLTK Deploy. The two commands a newcomer runs: `make demo` and `make test`.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

VENV      := .venv
# Debian's python3: a pyenv-based venv mixes two libpython builds and breaks the python backend.
SYSTEM_PY ?= /usr/bin/python3
BIN       := $(CURDIR)/$(VENV)/bin
export PATH := $(BIN):$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg

.PHONY: help deps engine images venv demo fleet fleet-down fleet-rollouts bench profile demo-down test lint unit mutation integration molecule gpu-sim drill drill-short clean role-docs registry registry-down mirror-images wheels

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

deps: ## Debian packages this machine needs (installs only what is missing)
	@scripts/install-deps.sh

engine: deps ## a docker engine that answers (reused when one runs)
	@scripts/ensure-docker.sh

venv: $(VENV)/.stamp ## the project's Python venv with pinned dependencies and Ansible collections

# ansible-core comes from constraints.txt; the collections we use (collections/requirements.yml) are
# built from this release of the `ansible` bundle wheel (PyPI; Galaxy is unreachable) and installed
# into the venv's site-packages/ansible_collections, which every ansible command of the venv
# searches (collections_scan_sys_path): ansible-playbook, ansible-lint, molecule, the tests.
ANSIBLE_BUNDLE := 12.3.0

# DLTK_WHEEL_INDEX=URL: the venv's wheels and the ansible bundle wheel come from that PEP 503 index
# (`make wheels` writes one: file://$(CURDIR)/build/wheel-index/cpu-py3.11/simple, or served over
# http) instead of PyPI, as pip's index URL. Unset (the default): pip as this machine configures it.
DLTK_WHEEL_INDEX ?=
WHEEL_INDEX_ENV := $(if $(DLTK_WHEEL_INDEX),PIP_INDEX_URL='$(DLTK_WHEEL_INDEX)',)

$(VENV)/.stamp: pyproject.toml constraints.txt collections/requirements.yml scripts/install-collections.py | deps
	@echo "[venv] creating $(VENV) from $(SYSTEM_PY) with constraints.txt$(if $(DLTK_WHEEL_INDEX), from $(DLTK_WHEEL_INDEX),)"
	@test -x $(VENV)/bin/python || $(SYSTEM_PY) -m venv $(VENV)
	@$(WHEEL_INDEX_ENV) $(VENV)/bin/pip install -q -c constraints.txt -e '.[export,serve,dev,report,tune]' \
	  2> >(grep -v "^WARNING: Location '" >&2)
	@$(VENV)/bin/dltk --version >/dev/null
	@cd $(CURDIR) && $(WHEEL_INDEX_ENV) $(VENV)/bin/python scripts/install-collections.py \
	  --bundle-version $(ANSIBLE_BUNDLE) --dest "$$($(VENV)/bin/python -c 'import sysconfig; print(sysconfig.get_path("purelib"))')" \
	  2> >(grep -v "^WARNING: Location '" >&2)
	@touch $@

images: engine venv ## base image, wheelhouse, triton-cpu, dltk toolkit and sandbox-host images
	@scripts/build-images.sh

# HOSTS=N (2-8): the fleet sandbox instead (make fleet).
HOSTS ?= 1
demo: images ## deploy.yml on a sandbox host, then print the verifier's report (HOSTS=4: make fleet)
ifeq ($(HOSTS),1)
	@scripts/sandbox.sh up
	ansible-playbook deploy.yml -i inventory/sandbox.yml
	@scripts/sandbox.sh report
else
	@$(MAKE) --no-print-directory fleet FLEET_HOSTS=$(HOSTS)
endif

FLEET_HOSTS ?= 4
fleet: images ## FLEET_HOSTS sandbox hosts (4) behind HAProxy (role triton_lb); proves traffic reaches each
	@FLEET_HOSTS=$(FLEET_HOSTS) scripts/fleet.sh up

# Rolling deploys under load (docs/rolling.md): the fleet sandbox, then four rollouts of deploy.yml
# (config change, new model version, container change, a rollout failing verification) and the
# restore, each with steady inference load through the load balancer; fails on any failed request.
fleet-rollouts: images ## the fleet sandbox, then 4 rollouts under load through the LB: 0 failed requests each
	@FLEET_HOSTS=$(FLEET_HOSTS) scripts/fleet.sh up
	PYTHONPATH=$(CURDIR)/scripts python -m dltk.fleet rollouts --json build/fleet/rollouts.json

fleet-down: ## remove the fleet sandbox (its hosts and the load balancer)
	@scripts/fleet.sh down

bench: venv ## dltk bench serving: in-process vs served, tuned vs default (127.0.0.1)
	dltk bench serving --out build/bench-serving.json

profile: images ## Nsight Systems + PyTorch profiler inside the DLTK image on the sandbox host
	@scripts/sandbox.sh up
	ansible-playbook playbooks/profile.yml -i inventory/sandbox.yml

demo-down: ## remove the sandbox host and its containers
	@scripts/sandbox.sh down

# The local image registry of docs/air-gapped.md (Debian's docker-registry, 127.0.0.1:REGISTRY_PORT),
# then the images of the sandbox inventory pushed into it (lock file build/mirror/images.lock.json).
REGISTRY_PORT ?= 5000
registry: engine ## a local image registry (Debian's docker-registry) on 127.0.0.1:REGISTRY_PORT (5000)
	@REGISTRY_PORT=$(REGISTRY_PORT) scripts/registry.sh up

mirror-images: registry ## push the images deploy.yml needs (inventory/sandbox.yml) into it, digests in build/mirror/images.lock.json
	dltk mirror images --registry 127.0.0.1:$(REGISTRY_PORT) -i inventory/sandbox.yml

# Every pinned wheel for a site without PyPI (docs/air-gapped.md): the CPU sets (toolkit and Triton
# images, the control node's venv) for this Python and the GPU toolkit's for the NGC release's
# Python, in build/wheelhouse*, and one PEP 503 index per variant in build/wheel-index/.
wheels: venv ## wheelhouses + PEP 503 indexes of every pinned wheel (CPU and GPU variants) in build/wheel-index
	dltk mirror wheels --json build/wheel-index/wheels-run.json

registry-down: ## remove the local image registry (REGISTRY_PURGE=1: and the images it holds)
	@scripts/registry.sh down

lint: venv ## ansible-lint (production), yamllint, ruff, syntax-check
	yamllint -s .
	ruff check scripts tests roles molecule plugins
	ruff format --check scripts tests roles molecule plugins
	ansible-playbook --syntax-check deploy.yml -i inventory/sandbox.yml
	ansible-lint --profile production

role-docs: venv ## write each role's defaults/main.yml and README variables table from meta/argument_specs.yml
	python scripts/role_specs.py

unit: venv ## pytest unit tests (no server, no docker)
	pytest -q tests/unit

mutation: venv ## mutmut over the dltk logic modules with the unit suite: score and survivors (not in `make test`: about 25 min on 2 cores)
	scripts/mutation.sh

integration: images ## pytest against a real tritonserver, perf_analyzer and the docker engine (images first: some tests run the roles)
	pytest -q tests/integration

# Three lanes side by side (scripts/molecule-lanes.sh): the serving scenarios, which build and run
# the shared images and use most of the CPU; the air-gapped whole deploy.yml (mirror: it only reads
# and pushes the shared images) with the driver's; and the other host scenarios, which mostly wait
# on apt. With two lanes the air-gapped deploy made the host lane the longest (1685 s of molecule,
# CI 2026-12-03 under load). Either list runs alone with
# `make molecule MOLECULE_SCENARIOS="a b"` (one lane, in order).
MOLECULE_LANE_SERVING := default dltk_image trt_engines gpu_sim
MOLECULE_LANE_AIRGAP := mirror nvidia_driver
MOLECULE_LANE_HOSTS := nvidia_driver_bad_input nsight_systems nvidia_container_toolkit docker_engine
MOLECULE_SCENARIOS ?=

molecule: images ## molecule scenarios: default (whole deploy.yml on a sandbox host) and one per role
	@scripts/molecule-lanes.sh $(if $(strip $(MOLECULE_SCENARIOS)),"$(MOLECULE_SCENARIOS)",\
  "$(MOLECULE_LANE_SERVING)" "$(MOLECULE_LANE_AIRGAP)" "$(MOLECULE_LANE_HOSTS)")

# The simulated 8x H100 + 4 NVSwitch host alone (it is also the last scenario of the serving lane of `make molecule`).
gpu-sim: images ## deploy.yml end to end on the simulated HGX H100 host (STAND-IN GPU tools)
	molecule test -s gpu_sim

# Fault drills on a sandbox host of their own (inventory/drill.yml), under load; the table goes
# into docs/reliability.md. The engine drill restarts this machine's docker engine (only one that
# scripts/ensure-docker.sh started): every container on it stops and comes back.
# Drills re-run the serve stage (the roles that own the model repository and the container; the
# first deploy runs all of deploy.yml): `make drill DRILL_PLAYBOOKS=deploy.yml` re-runs everything.
DRILL_LOCK ?= $(if $(wildcard /work/locks),--engine-lock /work/locks/docker-engine,)
DRILL_PLAYBOOKS ?= playbooks/serve.yml
drill: images ## fault drills under load (incl. a docker engine restart): table in docs/reliability.md
	dltk drill --setup --teardown --restart-engine $(DRILL_LOCK) --playbooks $(DRILL_PLAYBOOKS) \
	  --json build/drill/drills.json --markdown docs/reliability.md --command-line "make drill"

drill-short: images ## the quick drills (kill, corrupt ONNX rollout, port taken); prints the rows
	dltk drill short --setup --teardown --playbooks $(DRILL_PLAYBOOKS) --json build/drill/drills-short.json

test: lint unit integration molecule ## everything CI runs

clean: demo-down ## remove build outputs (keeps .venv and docker images)
	rm -rf build reports
