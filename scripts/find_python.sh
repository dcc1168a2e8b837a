#!/usr/bin/env bash
# Print the path of a python interpreter of the wanted minor version (e.g. 3.12).
# pyenv shims refuse versions that are not selected, so look in pyenv's
# versions folder too.
set -euo pipefail
want="$1"
for cand in "$(command -v "python${want}" 2>/dev/null || true)" \
            "${PYENV_ROOT:-$HOME/.pyenv}"/versions/"${want}".*/bin/python"${want}" \
            /usr/bin/python"${want}" /usr/local/bin/python"${want}"; do
  if [ -z "$cand" ] || [ ! -x "$cand" ]; then continue; fi
  if "$cand" -c 'import sys; sys.exit(0)' >/dev/null 2>&1; then echo "$cand"; exit 0; fi
done
echo "python${want} not found: install it (pyenv install ${want}) or put it on PATH" >&2
exit 1
