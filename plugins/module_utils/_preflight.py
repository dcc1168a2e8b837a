# -*- coding: utf-8 -*-
# Copyright (c) fediscale.lemmy contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The preflight gate's decision: may the run go on, and without which hosts.

Private to this collection; it may change at any time. Pure functions, no Ansible imports, so the
unit tests call them directly. The playbook reaches every planned host (ignoring unreachable ones),
reads a few facts and hands them here; lemmy_preflight fails with the message this returns.
"""

from __future__ import annotations

import re
import typing as t

# Host roles the gate knows: what must already hold on a host depends on what it does.
ROLES = ("app", "db", "proxy")
SUPPORTED_OS_FAMILIES = ("Debian",)
DEFAULT_MIN_PYTHON = (3, 9)
DEFAULT_MIN_FREE_MB = 2048
DEFAULT_DOCKER_SOCKET = "/var/run/docker.sock"


def parse_host_list(value: t.Any, name: str) -> tuple[list[str], list[str]]:
    """Read a host list given as "a,b", ["a", "b"] or nothing; returns (hosts, problems)."""
    if value is None or value == "" or value == []:
        return [], []
    if isinstance(value, str):
        entries: list[t.Any] = [part.strip() for part in value.split(",")]
    elif isinstance(value, (list, tuple)):
        entries = list(value)
    else:
        return [], ["%s is %r; set it to host names separated by commas, such as web2,web3, or to a list of them" % (name, value)]
    hosts: list[str] = []
    problems: list[str] = []
    for entry in entries:
        if not isinstance(entry, str) or not entry.strip():
            problems.append("%s holds %r; list inventory host names only, such as web2,web3" % (name, entry))
        elif entry.strip() not in hosts:
            hosts.append(entry.strip())
    return hosts, problems


def parse_df_free_mb(output: t.Any) -> int | None:
    """Free space in MiB from `df -Pk PATH` (POSIX format: the 4th field of the last line is free 1K blocks)."""
    if not isinstance(output, str):
        return None
    lines = [line for line in output.splitlines() if line.strip()]
    if len(lines) < 2:
        return None
    fields = lines[-1].split()
    if len(fields) < 6 or not fields[3].isdigit():
        return None
    return int(fields[3]) // 1024


def parse_os_release(text: t.Any) -> dict[str, str]:
    """KEY=value pairs of /etc/os-release, with the values' quotes removed."""
    values: dict[str, str] = {}
    if not isinstance(text, str):
        return values
    for line in text.splitlines():
        key, sep, value = line.strip().partition("=")
        if sep and key and not key.startswith("#"):
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
                value = value[1:-1]
            values[key] = value
    return values


def os_facts(os_release: t.Any, debian_version: t.Any = None) -> dict[str, str]:
    """The OS facts the gate and the roles read, named as Ansible's setup names them, from /etc/os-release (and
    /etc/debian_version, which holds Debian's point release): os_family, distribution, distribution_release,
    distribution_version, distribution_major_version. A system outside the Debian family keeps its own ID as family."""
    release = parse_os_release(os_release)
    ident = release.get("ID", "").lower()
    like = release.get("ID_LIKE", "").lower().split()
    family = "Debian" if ident in ("debian", "ubuntu") or "debian" in like or "ubuntu" in like else (ident.capitalize() or "unknown")
    version = release.get("VERSION_ID", "")
    if ident == "debian" and isinstance(debian_version, str) and re.fullmatch(r"\d+(\.\d+)*", debian_version.strip()):
        version = debian_version.strip()
    return {
        "os_family": family,
        "distribution": ident.capitalize() if ident in ("debian", "ubuntu") else release.get("NAME", "") or ident,
        "distribution_release": release.get("VERSION_CODENAME", "") or release.get("UBUNTU_CODENAME", ""),
        "distribution_version": version,
        "distribution_major_version": version.split(".")[0] if version else "",
    }


def parse_version(value: t.Any) -> tuple[int, ...] | None:
    """"3.11.2" -> (3, 11, 2); anything else -> None."""
    if not isinstance(value, str) or not re.fullmatch(r"\d+(\.\d+)*", value.strip()):
        return None
    return tuple(int(part) for part in value.strip().split("."))


def _show_version(version: t.Sequence[int]) -> str:
    return ".".join(str(part) for part in version)


def host_problems(
    host: str,
    roles: t.Sequence[str],
    report: t.Mapping[str, t.Any],
    require_docker_socket: bool,
    min_free_mb: int,
    min_python: t.Sequence[int],
    docker_socket: str = DEFAULT_DOCKER_SOCKET,
) -> list[str]:
    """What does not fit on a host that answered."""
    problems: list[str] = []
    if report.get("failed"):
        problems.append(
            "host %s: reading its facts failed (%s); it needs python3 and a working login for Ansible"
            % (host, str(report.get("msg") or "no message").strip().splitlines()[0][:300])
        )
        return problems
    family = report.get("os_family")
    if family not in SUPPORTED_OS_FAMILIES:
        problems.append(
            "host %s: runs %s (OS family %s); the collection supports the Debian family only (Debian, Ubuntu)"
            % (host, report.get("distribution") or "an unknown system", family or "unknown")
        )
    python = parse_version(report.get("python_version"))
    if python is None or python < tuple(min_python):
        problems.append(
            "host %s: its Python is %s; Ansible's modules need Python %s or newer there (install python3)"
            % (host, report.get("python_version") or "unknown", _show_version(min_python))
        )
    if "app" in roles or "db" in roles:
        free = report.get("free_mb")
        if not isinstance(free, int) or isinstance(free, bool):
            problems.append(
                "host %s: could not read the free disk space of %s (df -Pk); it needs at least %d MiB there"
                % (host, report.get("disk_path") or "/var/lib", min_free_mb)
            )
        elif free < min_free_mb:
            problems.append(
                "host %s: only %d MiB free on %s; at least %d MiB are needed for images and data (lemmy_preflight_min_free_mb); "
                "free some space or grow the disk"
                % (host, free, report.get("disk_path") or "/var/lib", min_free_mb)
            )
    if require_docker_socket and "app" in roles and report.get("docker_socket") is not True:
        problems.append(
            "host %s: no Docker socket at %s; Docker Engine must run on every app host before an upgrade: run site.yml first"
            % (host, docker_socket)
        )
    return problems


def decide(
    hosts: t.Mapping[str, t.Sequence[str]],
    reports: t.Mapping[str, t.Mapping[str, t.Any]],
    allow_unreachable: t.Any = None,
    require_docker_socket: bool = False,
    min_free_mb: int = DEFAULT_MIN_FREE_MB,
    min_python: t.Sequence[int] = DEFAULT_MIN_PYTHON,
    may_leave_out: bool = True,
    indispensable: t.Mapping[str, str] | None = None,
    docker_socket: str = DEFAULT_DOCKER_SOCKET,
) -> dict[str, t.Any]:
    """Decide the gate.

    ``hosts`` maps each planned host to its roles (app, db, proxy); ``reports`` maps it to what the
    playbook read: ``unreachable`` (bool), ``msg``, ``failed``, ``os_family``, ``distribution``,
    ``python_version``, ``free_mb``, ``disk_path``, ``docker_socket``. ``indispensable`` maps hosts
    that may never be left out to the reason. Returns ``ok``, ``blocking`` (host -> problems),
    ``left_out`` (unreachable hosts the admin allowed, sorted), ``problems`` (every line) and ``msg``.
    """
    indispensable = dict(indispensable or {})
    allowed, problems = parse_host_list(allow_unreachable, "lemmy_allow_unreachable")
    unknown = [host for host in allowed if host not in hosts]
    if unknown:
        problems.append(
            "lemmy_allow_unreachable names %s, which %s not a planned host; name inventory hosts of the Lemmy groups only"
            % (", ".join(unknown), "is" if len(unknown) == 1 else "are")
        )
    blocking: dict[str, list[str]] = {}
    left_out: list[str] = []
    warnings: list[str] = []
    for host in sorted(hosts):
        report = reports.get(host)
        if report is None:
            report = {"unreachable": True, "msg": "no answer was recorded"}
        if report.get("unreachable"):
            reason = str(report.get("msg") or "no answer").strip().splitlines()[0][:300] if str(report.get("msg") or "").strip() else "no answer"
            if host in allowed and not may_leave_out:
                blocking[host] = [
                    "host %s: unreachable (%s); this playbook cannot leave hosts out (lemmy_allow_unreachable): a host left out of an "
                    "upgrade would come back on the old release; bring it back, or take it out of the inventory and run site.yml"
                    % (host, reason)
                ]
            elif host in allowed and host in indispensable:
                blocking[host] = ["host %s: unreachable (%s) and cannot be left out: %s" % (host, reason, indispensable[host])]
            elif host in allowed:
                left_out.append(host)
            else:
                blocking[host] = [
                    "host %s: unreachable (%s); bring it back, or run with -e lemmy_allow_unreachable=%s to leave it out of this run on purpose"
                    % (host, reason, host)
                ]
            continue
        if host in allowed:
            warnings.append("lemmy_allow_unreachable names %s, but it answered: it stays in the run" % host)
        found = host_problems(host, hosts[host], report, require_docker_socket, min_free_mb, min_python, docker_socket)
        if found:
            blocking[host] = found
    every = problems + [line for host in sorted(blocking) for line in blocking[host]]
    if every:
        msg = "Preflight stopped the run before any change (%d problem%s):\n%s" % (
            len(every), "" if len(every) == 1 else "s", "\n".join("  " + line for line in every))
    elif left_out:
        msg = "Preflight: every planned host answered and fits, except %s, left out on purpose (lemmy_allow_unreachable)" % ", ".join(left_out)
    else:
        msg = "Preflight: all %d planned hosts answered and fit" % len(hosts)
    return {
        "ok": not every,
        "blocking": blocking,
        "left_out": left_out,
        "problems": every,
        "warnings": warnings,
        "msg": msg,
    }
