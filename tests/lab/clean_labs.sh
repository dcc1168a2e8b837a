#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
# Remove lab leftovers without Ansible: every container, volume and network
# that carries the label fediscale.lab=<name>, for the named labs, or for every
# lab with --all (for CI machines that may hold labs of interrupted runs).
#   tests/lab/clean_labs.sh fsl-molecule-default fsl-dev2
#   tests/lab/clean_labs.sh --all
# playbooks/lab_down.yml does the same for one lab and also removes objects
# named after its inventory hosts.
set -euo pipefail
if [ "$#" -eq 0 ]; then
  echo "usage: $0 LAB_NAME... | --all" >&2
  exit 2
fi
filters=()
if [ "$1" = "--all" ]; then
  filters=("label=fediscale.lab")
else
  for name in "$@"; do filters+=("label=fediscale.lab=${name}"); done
fi
for f in "${filters[@]}"; do
  mapfile -t containers < <(docker ps -aq --filter "$f")
  if [ "${#containers[@]}" -gt 0 ]; then
    docker rm --force --volumes "${containers[@]}" >/dev/null
  fi
  mapfile -t volumes < <(docker volume ls -q --filter "$f")
  if [ "${#volumes[@]}" -gt 0 ]; then
    docker volume rm --force "${volumes[@]}" >/dev/null
  fi
  mapfile -t networks < <(docker network ls -q --filter "$f")
  if [ "${#networks[@]}" -gt 0 ]; then
    docker network rm "${networks[@]}" >/dev/null
  fi
  echo "removed ${#containers[@]} container(s), ${#volumes[@]} volume(s), ${#networks[@]} network(s) with ${f}"
done
