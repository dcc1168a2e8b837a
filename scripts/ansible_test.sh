#!/usr/bin/env bash
# Run `ansible-test sanity` and `ansible-test units` on a real copy of the
# collection at <tmp>/ansible_collections/fediscale/lemmy (a symlink is not
# accepted by ansible-test), with the given venv and python version.
#   scripts/ansible_test.sh VENV PYTHON_VERSION
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="$(cd "$1" && pwd)"; pyver="$2"

# ansible-test bootstraps pip from a download; serve it the offline shim.
mkdir -p "$HOME/.ansible/test/cache"
for v in 24_0 24_2 25_0 25_1 25_2 25_3; do
  cp "$root/scripts/get_pip_shim.py" "$HOME/.ansible/test/cache/get_pip_${v}.py"
done

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
dest="$work/ansible_collections/fediscale/lemmy"
mkdir -p "$dest"
(cd "$root" && git ls-files -co --exclude-standard -z | xargs -0 -I{} cp --parents {} "$dest/")
(cd "$dest" && git init -q && git add -A && git -c user.name=ci -c user.email=ci@localhost commit -qm snapshot)

export PATH="$venv/bin:$PATH"
cd "$dest"
echo "== ansible-test sanity (python ${pyver}, $(ansible --version | head -1))"
ansible-test sanity --venv --python "$pyver" --color no
echo "== ansible-test units (python ${pyver})"
ansible-test units --venv --python "$pyver" --color no --requirements
