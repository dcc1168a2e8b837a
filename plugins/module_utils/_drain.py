# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) fediscale.lemmy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
# Do not use this from other collections or standalone plugins/modules!

"""The upstream pools of a proxy, and which of their servers are drained ("down").

A proxy keeps its pools in ``pools.json`` (written by the converge from the plan) and one empty marker
file per drained server in ``drained/``. The upstreams file nginx includes is rendered from both, here
and nowhere else, by the converge and by every drain alike. A server is named by the plan's drain key,
the exact string nginx writes (IPv6 bracketed: ``[fd00::11]:8536``).

Pure Python, no Ansible imports: the decisions and the rendering are unit-tested on their own; the
module ``lemmy_upstreams`` does the file work and the reload.
"""

from __future__ import annotations

import re
import typing as t

# host:port, where host is a name, an IPv4 address or a bracketed IPv6 address: the plan's drain keys.
SERVER_KEY = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[^/\s\[\]:]+):[0-9]+$")
POOL_ORDER = ("api", "ui")


class DrainRefused(Exception):
    """A drain that would break the proxy: the message names the servers and the fix."""


def pool_names(pools: t.Mapping[str, t.Any]) -> list[str]:
    known = [name for name in POOL_ORDER if name in pools["pools"]]
    return known + sorted(name for name in pools["pools"] if name not in POOL_ORDER)


def known_servers(pools: t.Mapping[str, t.Any]) -> list[str]:
    seen: list[str] = []
    for name in pool_names(pools):
        for server in pools["pools"][name]["servers"]:
            if server not in seen:
                seen.append(server)
    return seen


def check_keys(label: str, servers: t.Sequence[t.Any]) -> None:
    bad = [s for s in servers if not isinstance(s, str) or not SERVER_KEY.match(s)]
    if bad:
        raise DrainRefused(
            '%s must list "address:port" strings as in the plan\'s upstreams (IPv6 bracketed, [fd00::11]:8536); got %s'
            % (label, ", ".join(repr(b) for b in bad))
        )


def _empty_pools(pools: t.Mapping[str, t.Any], drained: t.Collection[str]) -> list[str]:
    return [name for name in pool_names(pools) if pools["pools"][name]["servers"] and set(pools["pools"][name]["servers"]) <= set(drained)]


def drained_after(
    pools: t.Mapping[str, t.Any],
    current: t.Iterable[str],
    mark_down: t.Sequence[str],
    bring_back: t.Sequence[str],
) -> list[str]:
    """The drained set once ``mark_down`` is down and ``bring_back`` is up again (sorted).

    Refused: a server that is not in the pools (mark_down only: bringing back an unknown server is a no-op,
    so a verify may undrain every planned server), a server in both lists, and a result that leaves a pool
    with no server up.
    """
    check_keys("the servers to mark down", mark_down)
    check_keys("the servers to bring back", bring_back)
    both = sorted(set(mark_down) & set(bring_back))
    if both:
        raise DrainRefused("%s cannot be both marked down and brought back in one drain" % ", ".join(both))
    known = known_servers(pools)
    unknown = [s for s in mark_down if s not in known]
    if unknown:
        raise DrainRefused(
            "%s is not an upstream server on proxy %s. Known servers: %s. Use the plan's drain keys (lemmy_plan.drain_keys)."
            % (", ".join(unknown), pools.get("proxy", "?"), ", ".join(known) or "none")
        )
    before = sorted(set(current))
    result = sorted((set(before) | set(mark_down)) - set(bring_back))
    empty = _empty_pools(pools, result)
    if empty and mark_down:
        raise DrainRefused(
            "draining %s on proxy %s would leave the %s pool with no server up (drained now: %s). Undrain a server of that pool "
            "first, or drain fewer at a time (smaller serial batches)."
            % (", ".join(mark_down), pools.get("proxy", "?"), " and ".join(empty), ", ".join(before) or "none")
        )
    return result


def converge_drained(
    pools: t.Mapping[str, t.Any],
    current: t.Iterable[str],
    wanted: t.Sequence[str],
    keep_current: bool,
) -> list[str]:
    """The drained set a converge writes: exactly ``wanted``, plus the current markers with ``keep_current``.

    Markers of servers no longer in the pools are dropped. Refused when a pool would have no server up.
    """
    check_keys("nginx_converge_drained", wanted)
    known = set(known_servers(pools))
    result = sorted({s for s in list(wanted) + (list(current) if keep_current else []) if s in known})
    empty = _empty_pools(pools, result)
    if empty:
        raise DrainRefused(
            "keeping the drained servers %s (nginx_converge_drained%s) would leave the %s pool with no server up. "
            "Undrain one with drain.yml (nginx_drain_bring_back) or run without nginx_converge_keeps_drains."
            % (", ".join(result), ", nginx_converge_keeps_drains" if keep_current else "", " and ".join(empty))
        )
    return result


def render_upstreams(pools: t.Mapping[str, t.Any], drained: t.Collection[str], header: str, pools_file: str, drained_dir: str) -> str:
    """The upstreams file nginx includes: one ``upstream`` block per pool, drained servers ``down``."""
    lines = [line.rstrip() for line in header.strip("\n").splitlines()]
    lines += [
        "# Upstream pools of the Lemmy site. Rendered from %s and the" % pools_file,
        '# markers in %s/ (a marked server is "down"): change them with' % drained_dir,
        "# the role's drain.yml, never by hand.",
    ]
    for name in pool_names(pools):
        pool = pools["pools"][name]
        lines += ["", "upstream %s {" % pool["name"]]
        if pool.get("balancing") == "ip_hash":
            lines.append("    ip_hash;")
        elif pool.get("balancing") == "sticky":
            lines.append("    hash $lemmy_ui_sticky_key consistent;")
        for server in pool["servers"]:
            if server in drained:
                lines.append("    server %s down;" % server)
            else:
                lines.append("    server %s max_fails=%s fail_timeout=%s;" % (server, pools["max_fails"], pools["fail_timeout"]))
        lines += ["    keepalive %s;" % pools["keepalive"], "}"]
    return "\n".join(lines) + "\n"


def parse_stat(text: str) -> tuple[int, str] | None:
    """(parent pid, state) from the text of /proc/<pid>/stat; None when unreadable."""
    # The command name is in parentheses and may hold spaces or parentheses itself: split after the last one.
    end = text.rfind(")")
    if end < 0:
        return None
    fields = text[end + 1:].split()
    if len(fields) < 2 or not fields[1].lstrip("-").isdigit():
        return None
    return int(fields[1]), fields[0]


def is_worker(cmdline: bytes) -> bool:
    """An nginx worker, as its command line reads (``nginx: worker process``)."""
    return cmdline.replace(b"\0", b" ").strip().endswith(b"worker process")
