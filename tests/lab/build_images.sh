#!/usr/bin/env bash
# Build the lab's images locally (no registry): a debootstrap base, a systemd
# host, a systemd + Docker Engine host and an S3-compatible server. Each step is skipped when
# its image already exists and its inputs are unchanged, so a warm run is fast.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
suite="${LAB_DEBIAN_SUITE:-bookworm}"
mirror="${LAB_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
base="fediscale-lab/base:${suite}"

# Tag each image with a digest of its build inputs, so an edited Dockerfile
# triggers a rebuild while an unchanged one is a no-op.
inputs_digest() { (cd "$1" && find . -type f -print0 | sort -z | xargs -0 sha256sum) | sha256sum | cut -c1-12; }

have_image() { docker image inspect "$1" >/dev/null 2>&1; }

if ! have_image "$base"; then
  echo "building ${base} with debootstrap"
  rootfs="$(mktemp -d)"
  trap 'rm -rf "$rootfs"' EXIT
  debootstrap --variant=minbase "$suite" "$rootfs" "$mirror" >/dev/null
  # Images get apt lists at build time; keep the rootfs small.
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
  tar -C "$rootfs" -c . | docker import - "$base" >/dev/null
  rm -rf "$rootfs"; trap - EXIT
fi

build() { # name context
  local name="$1" ctx="$2" digest
  digest="$(inputs_digest "$ctx")"
  if have_image "${name}:${digest}"; then
    docker tag "${name}:${digest}" "${name}:latest"
    return
  fi
  echo "building ${name}"
  docker build -q --build-arg "BASE=${base}" --build-arg "SYSTEMD_IMAGE=fediscale-lab/systemd:latest" \
    -t "${name}:${digest}" -t "${name}:latest" "$ctx" >/dev/null
}

# The S3 server's Python packages are fetched on the host (the proxy's CA is
# trusted here, not inside a build) and installed offline in the image. The
# download is skipped while requirements.txt is unchanged.
fetch_wheels() { # context
  local ctx="$1" want have="" pip arch
  arch="$(uname -m)"
  want="$(sha256sum "$ctx/requirements.txt" | cut -c1-64)"
  [ -f "$ctx/build/requirements.sha256" ] && have="$(cat "$ctx/build/requirements.sha256")"
  [ "$want" = "$have" ] && [ -d "$ctx/build/wheels" ] && return
  pip="${LAB_PIP:-}"
  if [ -z "$pip" ]; then
    if [ -x "$here/../../.venv/bin/python" ]; then pip="$here/../../.venv/bin/python -m pip"; else pip="python3 -m pip"; fi
  fi
  echo "downloading wheels for $(basename "$ctx")"
  rm -rf "$ctx/build"
  mkdir -p "$ctx/build/wheels"
  # Wheels for the image's interpreter (Debian bookworm: CPython 3.11, glibc 2.36).
  $pip download -q --disable-pip-version-check --dest "$ctx/build/wheels" --only-binary=:all: \
    --implementation cp --python-version 3.11 --abi cp311 --abi abi3 --abi none \
    --platform "manylinux_2_28_${arch}" --platform "manylinux_2_17_${arch}" --platform "manylinux2014_${arch}" \
    -r "$ctx/requirements.txt" 2> >(grep -v '^WARNING: Location' >&2)
  echo "$want" > "$ctx/build/requirements.sha256"
}

build fediscale-lab/systemd "$here/images/systemd"
build fediscale-lab/dockerhost "$here/images/dockerhost"
fetch_wheels "$here/images/s3"
build fediscale-lab/s3 "$here/images/s3"
# The S3 image's install stage stays behind as an untagged image; drop it.
docker image prune --force --filter label=org.fediscale.lab.build-stage >/dev/null
