#!/usr/bin/env bash
# The test suite, stage by stage. `make test` runs every stage in order:
#   lint, sanity, units, unit, contract, package, molecule
# Stages can be run alone: scripts/test.sh sanity
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
export ANSIBLE_COLLECTIONS_PATH="$root/.collections"
export PYTHONPATH="$root/.collections${PYTHONPATH:+:$PYTHONPATH}"
export ANSIBLE_FORCE_COLOR=0 PY_COLORS=0
venv="$root/.venv"
# molecule and the playbooks call ansible-* tools by name.
export PATH="$venv/bin:$PATH"

stage_lint() {
  "$venv/bin/ansible-lint" --profile production
}
stage_sanity() {
  scripts/ansible_test.sh "$venv" 3.12
  if [ "${FEDISCALE_SKIP_PY311:-}" != "1" ]; then
    scripts/ansible_test.sh "$root/.venv311" 3.11
  fi
}
stage_unit() {
  "$venv/bin/python" -m pytest -q -p no:cacheprovider tests/unit
}
stage_contract() {
  # Containers of an interrupted earlier run would hold ports and names.
  docker ps -aq --filter name=fsl-ct- | xargs -r docker rm -f >/dev/null
  "$venv/bin/python" -m pytest -q -p no:cacheprovider -n 2 --dist loadfile tests/stand_ins/tests
}
stage_molecule() {
  # Start from a known state: labs left over by an interrupted run are removed.
  tests/lab/clean_labs.sh fsl-molecule-default fsl-molecule-upgrade fsl-molecule-faults fsl-molecule-adopt
  for scenario in ${FEDISCALE_MOLECULE_SCENARIOS:-default upgrade adopt}; do
    "$venv/bin/molecule" test -s "$scenario"
  done
}
stage_package() {
  # Build the artifact, check it holds only the product, run it by FQCN, galaxy-importer it.
  FEDISCALE_VENV="$venv" scripts/package_check.sh
}
stage_images() {
  tests/lab/build_images.sh
  PYTHON="$venv/bin/python" tests/stand_ins/build.sh
}

# Runs one stage in a subshell with `set -e`, so any failing step fails it;
# the result goes to stage_rc (never called from `if`, which would switch -e off).
run_stage() {
  local name="$1" start
  start=$(date +%s)
  echo "===== stage ${name} ====="
  set +e
  ( set -e; "stage_${name}" )
  stage_rc=$?
  set -e
  echo "===== stage ${name}: $([ "$stage_rc" -eq 0 ] && echo ok || echo "FAILED rc=$stage_rc") in $(( $(date +%s) - start )) s ====="
}

stages=("$@")
[ "${#stages[@]}" -eq 0 ] || [ "${stages[0]}" = all ] && stages=(lint sanity unit images contract package molecule)
passed=0; failed=0
for s in "${stages[@]}"; do
  run_stage "$s"
  if [ "$stage_rc" -eq 0 ]; then passed=$((passed + 1)); else failed=$((failed + 1)); break; fi
done
echo "stages: ${passed} passed, ${failed} failed"
[ "$failed" -eq 0 ]
