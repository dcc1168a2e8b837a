#!/usr/bin/env bash
# Build the stand-in images (fediscale-standin/*) from the local lab base image.
# They follow Lemmy's documented contract so the lab can run without a registry.
# They are never tagged as the official image names.
# A version is rebuilt only when the stand-in's sources changed.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
base="${LAB_BASE_IMAGE:-fediscale-lab/base:bookworm}"
LEMMY_VERSIONS="${STANDIN_LEMMY_VERSIONS:-0.19.3 0.19.4 0.19.18 0.19.19 0.19.20}"
PICTRS_VERSIONS="${STANDIN_PICTRS_VERSIONS:-0.5.16}"

docker image inspect "$base" >/dev/null 2>&1 || { echo "missing $base: run tests/lab/build_images.sh first" >&2; exit 1; }

# hjson is pure Python and not packaged by Debian: vendor it from PyPI into the
# build context (the image build has no PyPI access of its own).
pylib="$here/build/pylib"
if [ ! -f "$pylib/.hjson-3.1.0" ]; then
  rm -rf "$pylib"; mkdir -p "$pylib"
  "${PYTHON:-python3}" -m pip install -q --no-deps --target "$pylib" hjson==3.1.0 2>&1 | { grep -v '^WARNING: Location' || true; }
  touch "$pylib/.hjson-3.1.0"
fi

# The runtime layer shared by all stand-ins.
runtime="fediscale-standin/runtime"
digest() { (cd "$1" && find . -type f -not -path './build/*' -not -path '*/__pycache__/*' -print0 | sort -z | xargs -0 sha256sum) | sha256sum | cut -c1-12; }
rdigest="$(digest "$here/runtime")"
if ! docker image inspect "$runtime:$rdigest" >/dev/null 2>&1; then
  echo "building $runtime"
  docker build -q --build-arg "BASE=$base" -t "$runtime:$rdigest" -t "$runtime:latest" "$here/runtime" >/dev/null
fi
docker tag "$runtime:$rdigest" "$runtime:latest"

build() { # dir image version
  local dir="$1" image="$2" version="$3" src label
  src="$(digest "$here/$dir")-$rdigest"
  label="$(docker image inspect -f '{{ index .Config.Labels "org.fediscale.standin.source" }}' "$image:$version" 2>/dev/null || true)"
  [ "$label" = "$src" ] && return 0
  echo "building $image:$version"
  tar -C "$here" -c "$dir" build/pylib | docker build -q -f "$dir/Dockerfile" \
      --build-arg "RUNTIME=$runtime:latest" --build-arg "VERSION=$version" \
      --label "org.fediscale.standin.source=$src" -t "$image:$version" - >/dev/null
}

for v in $LEMMY_VERSIONS; do
  build lemmy_server fediscale-standin/lemmy "$v"
  build lemmy_ui fediscale-standin/lemmy-ui "$v"
done
for v in $PICTRS_VERSIONS; do
  build pictrs fediscale-standin/pictrs "$v"
done
