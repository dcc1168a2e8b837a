#!/usr/bin/env bash
# The `package` test stage: build the collection artifact the way a release would, prove it holds the
# product only, install it and run its public playbooks by their FQCN, then run galaxy-importer on it.
#
#   scripts/package_check.sh            (or: scripts/test.sh package)
#
# 1. Copy the files git would commit (tracked and not ignored; no .venv, no .cache) into a temporary
#    directory and plant the kind of files a working checkout has: a lab secret under .cache/lab/, a wheel
#    under tests/lab/images/*/build/, a virtualenv, ansible-test output, a changelog fragment. The build
#    must leave every one of them out.
# 2. `ansible-galaxy collection build`, list the artifact, and fail on any entry that is not on the
#    allow-list of product paths or that matches a deny pattern (tests, lab, caches, secrets, venvs).
# 3. Install it with `ansible-galaxy collection install --offline` into a temporary collections path (its
#    dependencies resolve against the collections of the pinned `ansible` package) and, from outside the
#    checkout, run `fediscale.lemmy.plan` on the medium example inventory it ships, syntax-check
#    `fediscale.lemmy.site` and `fediscale.lemmy.rolling_upgrade`, prove that the lab playbooks are not
#    part of it, and render a role's documentation.
# 4. galaxy-importer (its own virtualenv .venv-importer, from requirements-importer.txt) on the artifact,
#    offline: no ansible-test container, ansible-lint --offline. Any error or lint finding fails the stage.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
venv="${FEDISCALE_VENV:-$root/.venv}"
importer_venv="${FEDISCALE_IMPORTER_VENV:-$root/.venv-importer}"

work="$(mktemp -d /tmp/fsl-package.XXXXXX)"
trap 'rm -rf "$work"' EXIT
src="$work/src" dist="$work/dist" installed="$work/collections" run="$work/run"
mkdir -p "$src" "$dist" "$installed" "$run"

fail() { echo "package: FAILED: $*" >&2; exit 1; }

# --- 1. a clean copy, with the clutter of a working checkout planted in it -----------------------------
git ls-files -z --cached --others --exclude-standard \
  | while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done \
  | tar --null -T - -cf - | tar -xf - -C "$src"
planted=(
  .cache/lab/secret
  .venv/bin/python
  .venv-importer/pyvenv.cfg
  tests/lab/images/s3/build/planted-0.0.0-py3-none-any.whl
  tests/output/planted.txt
  changelogs/fragments/planted.yml
  roles/nginx/__pycache__/planted.cpython-312.pyc
  fediscale-lemmy-0.0.1.tar.gz
)
# A component of a planted path may be a symbolic link in the copy (an untracked .venv link, say): remove the
# link, never write through it.
plant() {
  local path="$src" part
  IFS=/ read -ra parts <<< "$1"
  for part in "${parts[@]}"; do
    path="$path/$part"
    if [ -L "$path" ]; then rm -f -- "$path"; fi
  done
  mkdir -p "$(dirname "$src/$1")"
  echo "planted by scripts/package_check.sh; must not ship" > "$src/$1"
}
for f in "${planted[@]}"; do plant "$f"; done
chmod 0600 "$src/.cache/lab/secret"

# --- 2. build and judge the listing -------------------------------------------------------------------
"$venv/bin/ansible-galaxy" collection build --output-path "$dist" "$src" >/dev/null
tarball="$(ls "$dist"/fediscale-lemmy-*.tar.gz)"
tar -tzf "$tarball" | sed 's|/$||' | sort > "$work/listing"
files=$(tar -tvzf "$tarball" | grep -c '^-')
echo "artifact: $(basename "$tarball"): $(wc -l < "$work/listing") entries, ${files} files, $(stat -c %s "$tarball") bytes"
awk -F/ '{print $1}' "$work/listing" | sort | uniq -c | awk '{printf "  %-14s %s\n", $2, $1}'

# Every entry must be one of these (extended regular expressions, whole path).
allow='^(MANIFEST\.json|FILES\.json|COPYING|README\.md|CHANGELOG\.md'
allow+='|meta|meta/runtime\.yml'
allow+='|docs|docs/[^/]+\.(md|svg)'
allow+='|changelogs|changelogs/changelog\.yaml'
allow+='|inventories|inventories/examples(/.*)?'
allow+='|playbooks|playbooks/(site|rolling_upgrade|plan|federation_report|prometheus_targets|adopt_lemmy_ansible|adopt_lemmy_ansible_next)\.yml|playbooks/tasks|playbooks/tasks/[^/]+\.yml'
allow+='|plugins|plugins/(action|modules|module_utils|doc_fragments)(/[^/]+\.py)?'
allow+='|roles|roles/[a-z_]+(/(defaults|handlers|meta|tasks|templates|vars|files)(/.*)?|/README\.md)?'
allow+=')$'
# Nothing may match these, even where the allow-list would let it through.
deny='(^|/)(tests?|molecule|benchmarks|scripts|extensions|build|dist|__pycache__|\.[^/]+)(/|$)'
deny+='|(^|/)lab(_[^/]*)?(/|$)|(^|/)lab_[^/]*$'
deny+='|secret|venv|\.whl$|\.pyc$|\.tar\.gz$|(^|/)(Makefile|ansible\.cfg|requirements[^/]*\.txt|galaxy\.ya?ml)$'
bad=$( { grep -Ev "$allow" "$work/listing" || true; grep -E "$deny" "$work/listing" || true; } | sort -u)
[ -z "$bad" ] || fail "the artifact holds what is not product:"$'\n'"$bad"
# And the product must all be there.
for want in COPYING README.md CHANGELOG.md meta/runtime.yml changelogs/changelog.yaml \
            playbooks/site.yml playbooks/rolling_upgrade.yml playbooks/plan.yml playbooks/tasks/plan.yml \
            plugins/modules/lemmy_plan.py plugins/module_utils/_plan.py inventories/examples/medium/hosts.yml; do
  grep -qx "$want" "$work/listing" || fail "the artifact lacks $want"
done
for role in $(git ls-files roles | cut -d/ -f2 | sort -u); do
  grep -qx "roles/$role/meta/argument_specs.yml" "$work/listing" || fail "the artifact lacks role $role"
done
tar -xzOf "$tarball" MANIFEST.json | "$venv/bin/python" -c '
import json, sys
info = json.load(sys.stdin)["collection_info"]
assert info["license_file"] == "COPYING", info["license_file"]
print("manifest: %s.%s %s, license_file %s, dependencies %s" % (
    info["namespace"], info["name"], info["version"], info["license_file"], ", ".join(sorted(info["dependencies"]))))'

# --- 3. install it and run it by FQCN, far from the checkout -----------------------------------------
# No ansible.cfg (the checkout's points at .collections/ and the lab), no PYTHONPATH (the test stages put
# .collections/ there): only the installed copy and the ansible package's collections are visible.
: > "$run/ansible.cfg"
in_run() {
  (cd "$run" && env -u PYTHONPATH ANSIBLE_CONFIG="$run/ansible.cfg" ANSIBLE_COLLECTIONS_PATH="$installed" \
     ANSIBLE_FORCE_COLOR=0 ANSIBLE_NOCOLOR=1 ANSIBLE_LOCAL_TEMP="$work/tmp" ANSIBLE_HOME="$work/home" "$@")
}
in_run "$venv/bin/ansible-galaxy" collection install --offline -p "$installed" "$tarball" > "$work/install.log" 2>&1 \
  || { cat "$work/install.log"; fail "ansible-galaxy collection install --offline"; }
collection="$installed/ansible_collections/fediscale/lemmy"
[ -f "$collection/MANIFEST.json" ] || fail "not installed under $installed"
if [ -e "$collection/.cache" ] || [ -e "$collection/tests" ]; then fail "the installed copy holds .cache or tests"; fi
echo "installed: $collection"

in_run "$venv/bin/ansible-playbook" -i "$collection/inventories/examples/medium" fediscale.lemmy.plan \
  > "$work/plan.log" 2>&1 || { cat "$work/plan.log"; fail "ansible-playbook fediscale.lemmy.plan"; }
# fediscale.lemmy must resolve to the installed copy and nothing else (not the checkout's .collections/).
found=$(in_run "$venv/bin/ansible-galaxy" collection list fediscale.lemmy --format json 2>/dev/null \
  | "$venv/bin/python" -c 'import json, sys; print(" ".join(p for p, c in json.load(sys.stdin).items() if "fediscale.lemmy" in c))')
[ "$found" = "$installed/ansible_collections" ] || fail "fediscale.lemmy resolves to '$found', not only to $installed"
for line in '"API processes: 3 ' 'lemmy-federation-1  federation  1/3' 'lemmy-federation-2  federation  2/3' \
            'lemmy-federation-3  federation  3/3' '"federation senders: 3"'; do
  grep -qF -- "$line" "$work/plan.log" || { cat "$work/plan.log"; fail "fediscale.lemmy.plan did not print: $line"; }
done
echo "fediscale.lemmy.plan on the installed inventories/examples/medium:"
grep -E '"(API processes|federation senders|scheduler|database):|federation  [0-9]/[0-9]' "$work/plan.log" | sed 's/^ */  /'

for playbook in fediscale.lemmy.site fediscale.lemmy.rolling_upgrade; do
  in_run "$venv/bin/ansible-playbook" -i "$collection/inventories/examples/medium" --syntax-check "$playbook" \
    > "$work/syntax.log" 2>&1 || { cat "$work/syntax.log"; fail "ansible-playbook --syntax-check $playbook"; }
  echo "syntax-check: $playbook ok"
done
for playbook in fediscale.lemmy.lab_up fediscale.lemmy.lab_down; do
  if in_run "$venv/bin/ansible-playbook" -i localhost, --syntax-check "$playbook" > "$work/syntax.log" 2>&1; then
    fail "$playbook is part of the installed collection"
  fi
  echo "not public: $playbook"
done
in_run "$venv/bin/ansible-doc" -t role fediscale.lemmy.nginx > "$work/doc.log" 2>&1 \
  || { cat "$work/doc.log"; fail "ansible-doc -t role fediscale.lemmy.nginx"; }
if ! grep -q "ADDED IN: version " "$work/doc.log" || ! grep -Eq "^ENTRY POINT: [*]?drain" "$work/doc.log"; then
  cat "$work/doc.log"; fail "ansible-doc -t role fediscale.lemmy.nginx shows no entry points with version_added"
fi
echo "ansible-doc -t role: $(grep -c '^ENTRY POINT' "$work/doc.log") entry points of fediscale.lemmy.nginx, $(grep -m1 'ADDED IN' "$work/doc.log")"

# --- 4. galaxy-importer, offline ------------------------------------------------------------------------
stamp="$importer_venv/.requirements.sha256"
if ! { [ -x "$importer_venv/bin/python" ] && [ -f "$stamp" ] && sha256sum -c --status "$stamp" 2>/dev/null; }; then
  echo "creating $importer_venv from requirements-importer.txt"
  rm -rf "$importer_venv"
  "$(scripts/find_python.sh 3.12)" -m venv "$importer_venv"
  "$importer_venv/bin/pip" install -q -r requirements-importer.txt 2>&1 | { grep -v "^WARNING: Location" || true; }
  sha256sum requirements-importer.txt > "$stamp"
fi
cat > "$work/galaxy-importer.cfg" <<'EOF'
[galaxy-importer]
run_ansible_test = false
run_ansible_doc = true
run_ansible_lint = true
offline_ansible_lint = true
check_changelog = true
run_flake8 = false
EOF
# ansible-lint inside the importer resolves community.docker & co from the ansible package of $venv, seen
# through a directory that holds nothing else (its own python packages stay those of .venv-importer).
mkdir -p "$work/deps" "$work/importer"
deps=$(env -u PYTHONPATH "$venv/bin/python" -c 'import ansible, os; print(os.path.join(os.path.dirname(os.path.dirname(ansible.__file__)), "ansible_collections"))')
[ -d "$deps/community/docker" ] || fail "no community.docker under $deps: is the ansible package installed in $venv?"
ln -s "$deps" "$work/deps/ansible_collections"
(cd "$work/importer" && env -u PYTHONPATH PATH="$importer_venv/bin:$PATH" PYTHONPATH="$work/deps" \
   GALAXY_IMPORTER_CONFIG="$work/galaxy-importer.cfg" HOME="$work/home" \
   "$importer_venv/bin/python" -m galaxy_importer.main "$tarball") > "$work/importer.log" 2>&1 \
  || { cat "$work/importer.log"; fail "galaxy-importer exited non-zero"; }
sed 's/^/  importer: /' "$work/importer.log" | grep -v 'importer: *$'
grep -q "Importer processing completed successfully" "$work/importer.log" || fail "galaxy-importer did not complete"
if grep -E "^(ERROR|WARNING|CRITICAL)" "$work/importer.log"; then
  fail "galaxy-importer reported the findings above"
fi
echo "package: artifact ok, installed and run by FQCN, galaxy-importer clean"
