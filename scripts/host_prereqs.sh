#!/usr/bin/env bash
# Install and start what the lab and the contract tests need on this machine:
# Docker Engine, debootstrap, PostgreSQL, shellcheck (for ansible-test sanity) and rclone (the
# controller's copy of lemmy-ui's static files, role lemmy_ui_static) from Debian's packages.
set -euo pipefail
need=()
[ -x /usr/sbin/dockerd ] || need+=(docker.io)
command -v debootstrap >/dev/null 2>&1 || need+=(debootstrap)
command -v shellcheck >/dev/null 2>&1 || need+=(shellcheck)
command -v dot >/dev/null 2>&1 || need+=(graphviz)
command -v rclone >/dev/null 2>&1 || need+=(rclone)
[ -x /usr/sbin/iptables ] || need+=(iptables)
ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || need+=(postgresql)
if [ "${#need[@]}" -gt 0 ]; then
  echo "installing ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
if ! docker info >/dev/null 2>&1; then
  echo "starting dockerd"
  nohup /usr/sbin/dockerd >/var/log/dockerd.log 2>&1 &
  for _ in $(seq 240); do docker info >/dev/null 2>&1 && break; sleep 0.5; done
  docker info >/dev/null 2>&1 || { echo "dockerd did not start; see /var/log/dockerd.log" >&2; exit 1; }
fi
# Every lab host runs systemd (and app hosts a dockerd), each holding inotify
# instances; the kernel default of 128 per user runs out with two labs up.
if [ "$(cat /proc/sys/fs/inotify/max_user_instances)" -lt 1024 ]; then
  sysctl -qw fs.inotify.max_user_instances=1024 || echo "warning: could not raise fs.inotify.max_user_instances" >&2
fi
