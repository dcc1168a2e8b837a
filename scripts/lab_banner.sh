#!/usr/bin/env bash
# Print where the lab's Lemmy answers and the placement table of its plan.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
port="${LAB_HTTP_PORT:-8080}"
plan_file="$root/.cache/lab/plan.json"
mkdir -p "$(dirname "$plan_file")"
.venv/bin/ansible-playbook -i inventories/lab plan.yml -e "lemmy_plan_file=$plan_file" >/dev/null
echo
echo "Lemmy (lab, stand-in images) answers at http://127.0.0.1:${port}"
echo
PYTHONPATH="$root/.collections" .venv/bin/python - "$plan_file" <<'PY'
import json
import sys

from ansible_collections.fediscale.lemmy.plugins.module_utils._plan import render_table

with open(sys.argv[1], encoding="utf-8") as handle:
    print("\n".join(render_table(json.load(handle))))
PY
