#!/usr/bin/env bash
# Create the controller virtualenvs from pinned requirements and link this
# checkout as the collection fediscale.lemmy under .collections/.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

make_venv() { # dir python requirements
  local dir="$1" py="$2" req="$3" stamp
  stamp="$dir/.requirements.sha256"
  if [ -x "$dir/bin/python" ] && [ -f "$stamp" ] && sha256sum -c --status "$stamp" 2>/dev/null; then
    return 0
  fi
  echo "creating $dir from $req"
  rm -rf "$dir"
  "$py" -m venv "$dir"
  "$dir/bin/pip" install -q -r "$req" 2>&1 | { grep -v "^WARNING: Location" || true; }
  sha256sum "$req" > "$stamp"
}

make_venv .venv "$(scripts/find_python.sh 3.12)" requirements.txt
if [ "${FEDISCALE_SKIP_PY311:-}" != "1" ]; then
  make_venv .venv311 "$(scripts/find_python.sh 3.11)" requirements-py311.txt
fi

mkdir -p .collections/ansible_collections/fediscale
ln -sfn "$root" .collections/ansible_collections/fediscale/lemmy
