#!/usr/bin/env bash
# `make mutation`: mutmut (pinned in constraints.txt) over the logic modules of the dltk package,
# killed or not by the unit suite (tests/unit). Prints the score and every surviving mutant.
#   scripts/mutation.sh                 mutate the modules in MUTATION_MODULES (default below)
#   MUTATION_MODULES="perf verify/records" scripts/mutation.sh   (paths under scripts/dltk, no .py)
#   MUTATION_MIN_SCORE=90               exit 1 when the score is below this (percent)
#   scripts/mutation.sh --retest        run only the last run's survivors again, with the tests
#                                       as they are now (after adding tests for survivors)
# mutmut 3 imports the mutated code from mutants/{.,src,source}; the package lives in scripts/, so
# the run happens in a staging copy, build/mutation/, laid out as src/dltk + tests/unit.
# tests/unit/test_export.py is left out: it trains a model (20 s of the suite's 25 s) to test
# export/mnist.py, which is not mutated, and would run again for every mutant of the manifest.
# tests/unit/test_gpu_requirements.py, test_release.py and test_release_pins.py too: they read images/, roles/
# and the git tree (not staged); test_role_specs.py tests scripts/role_specs.py over roles/ (not staged)
# (the first also asks PyPI) to test release.py, which is not mutated either; test_standin_nvidia_ctk.py
# tests a molecule template (molecule/ is not staged), not the dltk package. Tests of role code and
# docs (test_apt_pinned_version.py, test_apt_pinned_repo_role.py, test_model_dirs.py,
# test_verify_state.py, test_reliability_doc.py, test_gpu_facts_module.py, test_daemon_json.py,
# test_image_record.py, test_docker_daemon_json_module.py, test_ensure_docker.py and the inventory
# test of test_bench_converge.py) read roles/, plugins/, scripts/*.sh, inventory/ or docs/ (not staged) and test no
# dltk module: left out too (they made the staged run stop at collection).
# mutmut 3 mutates function and method bodies (not module-level constants): the rules held by
# constants are pinned by named tests instead (docs/testing.md).
set -euo pipefail
cd "$(dirname "$0")/.."

MODULES="${MUTATION_MODULES:-repo/validate manifest/load manifest/checks manifest/options repo/config perf metrics verify/records verify/perf}"
MIN_SCORE="${MUTATION_MIN_SCORE:-90}"
STAGE=build/mutation
log() { printf '[mutation] %s\n' "$*"; }

command -v mutmut >/dev/null || { log "mutmut not found: run 'make venv' (dev extras)"; exit 1; }

if [ "${1:-}" = "--retest" ]; then
  test -d "$STAGE/mutants" || { log "no previous run in $STAGE"; exit 1; }
  diff -rq -x __pycache__ scripts/dltk "$STAGE/src/dltk" >/dev/null \
    || { log "scripts/dltk changed since the last run: run scripts/mutation.sh in full"; exit 1; }
  rm -rf "$STAGE/tests/unit" && cp -r tests/unit "$STAGE/tests/unit"
  find "$STAGE/tests" -name __pycache__ -prune -exec rm -rf {} +
  mapfile -t again < <(cd "$STAGE" && mutmut results | sed -n 's/^ *\([^:]*\): .*/\1/p')
  log "retesting ${#again[@]} survivor(s) with the current tests"
  start=$(date +%s)
  (cd "$STAGE" && mutmut run --max-children "${MUTATION_JOBS:-$(nproc)}" "${again[@]}") | tail -n 5
  (cd "$STAGE" && mutmut export-cicd-stats >/dev/null)
  log "took $(($(date +%s) - start)) s"
  MODULES=""
fi

if [ -n "$MODULES" ]; then
rm -rf "$STAGE"
mkdir -p "$STAGE/src" "$STAGE/tests"
# -L: dltk/release.json is a symlink to the release file (roles/dltk_ngc/defaults/main.json).
cp -rL scripts/dltk "$STAGE/src/dltk"
cp -r tests/unit "$STAGE/tests/unit"
# tests read the project's manifest (REPO_ROOT is two levels above tests/unit/conftest.py).
cp -r model_repo "$STAGE/model_repo"
find "$STAGE" -name __pycache__ -prune -exec rm -rf {} +

only=""
for m in $MODULES; do
  test -f "scripts/dltk/$m.py" || { log "no module scripts/dltk/$m.py"; exit 1; }
  only="$only\"src/dltk/$m.py\", "
done
cat >"$STAGE/pyproject.toml" <<EOF
[tool.mutmut]
source_paths = ["src"]
only_mutate = [${only%, }]
also_copy = ["model_repo"]
pytest_add_cli_args_test_selection = ["tests/unit"]
pytest_add_cli_args = ["-p", "no:cacheprovider", "-q", "--ignore=tests/unit/test_export.py", "--ignore=tests/unit/test_gpu_requirements.py", "--ignore=tests/unit/test_release.py", "--ignore=tests/unit/test_release_pins.py", "--ignore=tests/unit/test_role_specs.py", "--ignore=tests/unit/test_role_contracts.py", "--ignore=tests/unit/test_standin_nvidia_ctk.py", "--ignore=tests/unit/test_apt_pinned_version.py", "--ignore=tests/unit/test_apt_pinned_repo_role.py", "--ignore=tests/unit/test_model_dirs.py", "--ignore=tests/unit/test_role_state.py", "--ignore=tests/unit/test_reliability_doc.py", "--ignore=tests/unit/test_gpu_facts_module.py", "--ignore=tests/unit/test_daemon_json.py", "--ignore=tests/unit/test_image_record.py", "--ignore=tests/unit/test_docker_daemon_json_module.py", "--ignore=tests/unit/test_ensure_docker.py", "--deselect=tests/unit/test_bench_converge.py::test_the_bench_inventory_keeps_its_hosts_apart"]

[tool.pytest.ini_options]
timeout = 600
EOF

log "mutating: $MODULES"
start=$(date +%s)
(cd "$STAGE" && mutmut run --max-children "${MUTATION_JOBS:-$(nproc)}") | tail -n 5
(cd "$STAGE" && mutmut export-cicd-stats >/dev/null)
log "took $(($(date +%s) - start)) s"
fi

python3 - "$STAGE" "$MIN_SCORE" <<'PY'
import json, subprocess, sys
stage, min_score = sys.argv[1], float(sys.argv[2])
stats = json.load(open(f"{stage}/mutants/mutmut-cicd-stats.json"))
tested = stats["total"] - stats["skipped"]
caught = stats["killed"] + stats["timeout"]
score = 100.0 * caught / tested if tested else 0.0
out = subprocess.run(["mutmut", "results"], cwd=stage, capture_output=True, text=True, check=True)
left = [line.strip() for line in out.stdout.splitlines() if line.strip()]
print(f"[mutation] survivors ({len(left)}): name: status; `cd {stage} && mutmut show NAME` shows the diff")
for line in left:
    print(f"  {line}")
counts = ", ".join(f"{k}={v}" for k, v in stats.items())
print(f"[mutation] {counts}")
print(f"[mutation] score {score:.1f} % ({caught}/{tested} caught; minimum {min_score:.0f} %)")
sys.exit(0 if score >= min_score else 1)
PY
