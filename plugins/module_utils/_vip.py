# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) fediscale.lemmy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
# Do not use this from other collections or standalone plugins/modules!

"""The virtual address the lemmy_proxy hosts share with VRRP (keepalived).

Given the plan-level VIP settings, the proxies of the inventory and their addresses, this works out
the VRRP view of every proxy (priority, initial state, its own address and its unicast peers), or
reports what is wrong, one sentence per problem naming the variable or host and the fix.

Pure Python, no Ansible imports. _plan.py calls :func:`plan_vip` and carries the result as the
plan's ``vip`` (None when no virtual address is set).
"""

from __future__ import annotations

import ipaddress
import json
import re
import typing as t

# Plan-level settings (read once, on the controller) and their defaults.
SETTING_DEFAULTS: dict[str, t.Any] = {
    # The shared address with the prefix length of the proxies' subnet, such as 10.0.0.100/24.
    "lemmy_proxy_vip": None,
    # VRRP's virtual_router_id: unique among the VRRP groups of that network segment.
    "lemmy_proxy_vip_router_id": 51,
    # false: the address stays where it is when a higher-priority proxy comes back (no second move).
    "lemmy_proxy_vip_preempt": False,
}
PLAN_LEVEL_KEYS = tuple(SETTING_DEFAULTS)

# Priorities: the first proxy (natural order) gets the highest, then one step less per proxy.
# 255 is reserved by VRRP for the owner of the address, 0 for a master that leaves.
TOP_PRIORITY = 200
PRIORITY_STEP = 10
MAX_PROXIES = TOP_PRIORITY // PRIORITY_STEP
ROUTER_ID_RANGE = (1, 255)

_BOOL_STRINGS = {"true": True, "yes": True, "on": True, "1": True, "false": False, "no": False, "off": False, "0": False}
_CLEAN_INT = re.compile(r"^\s*[0-9]+\s*$")
DOC = "docs/high-availability.md"


def _show(value: t.Any) -> str:
    try:
        return json.dumps(value, sort_keys=True, default=str)
    except (TypeError, ValueError):
        return repr(value)


def _unset(value: t.Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _as_bool(value: t.Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _BOOL_STRINGS:
        return _BOOL_STRINGS[value.strip().lower()]
    return None


def _as_int(value: t.Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and _CLEAN_INT.match(value):
        return int(value)
    return None


def _ipv4(address: t.Any) -> ipaddress.IPv4Address | None:
    """The host's address as an IPv4 address, or None when it is a name or IPv6."""
    if not isinstance(address, str):
        return None
    try:
        parsed = ipaddress.ip_address(address.strip().strip("[]").split("%")[0])
    except ValueError:
        return None
    return parsed if isinstance(parsed, ipaddress.IPv4Address) else None


def read_vip(value: t.Any, problem: t.Callable[[str], None]) -> ipaddress.IPv4Interface | None:
    """lemmy_proxy_vip as an IPv4 interface (address and prefix), or None after reporting why not."""
    example = "10.0.0.100/24"
    if not isinstance(value, str):
        problem("lemmy_proxy_vip is %s; set it to the shared IPv4 address with the prefix length of the proxies' subnet, such as %s" % (_show(value), example))
        return None
    text = value.strip()
    if "/" not in text:
        try:
            bare = ipaddress.ip_address(text)
        except ValueError:
            bare = None
        if isinstance(bare, ipaddress.IPv4Address):
            problem(
                "lemmy_proxy_vip is %s without a prefix length; write it with the prefix of the proxies' subnet, such as %s/24, "
                "so the plan can check that every proxy is on that subnet" % (_show(value), text)
            )
            return None
    try:
        parsed = ipaddress.ip_interface(text)
    except ValueError:
        problem("lemmy_proxy_vip is %s, which is not an IPv4 address with a prefix length; write it like %s" % (_show(value), example))
        return None
    if not isinstance(parsed, ipaddress.IPv4Interface):
        problem(
            "lemmy_proxy_vip is %s, an IPv6 address; this collection moves IPv4 virtual addresses only: use an IPv4 address such as %s, "
            "or publish every proxy in DNS instead (%s)" % (_show(value), example, DOC)
        )
        return None
    network = parsed.network
    if network.prefixlen > 30:
        problem(
            "lemmy_proxy_vip is %s; a /%d holds no room for two proxies and the shared address: give the prefix length of the proxies' "
            "subnet, such as /24" % (_show(value), network.prefixlen)
        )
        return None
    if parsed.ip in (network.network_address, network.broadcast_address):
        problem(
            "lemmy_proxy_vip is %s, the %s address of %s; choose a free host address in that subnet"
            % (_show(value), "network" if parsed.ip == network.network_address else "broadcast", network)
        )
        return None
    if parsed.ip.is_loopback or parsed.ip.is_multicast or parsed.ip.is_link_local or parsed.ip.is_unspecified:
        problem("lemmy_proxy_vip is %s, which cannot be a shared service address; choose a free address in the proxies' subnet" % _show(value))
        return None
    return parsed


def plan_vip(
    settings: t.Mapping[str, t.Any],
    proxies: t.Sequence[str],
    proxy_addresses: t.Mapping[str, str],
    host_addresses: t.Mapping[str, str],
    problem: t.Callable[[str], None],
) -> dict[str, t.Any] | None:
    """The VRRP view of the proxies, or None when lemmy_proxy_vip is not set.

    ``proxies`` are the inventory's lemmy_proxy hosts in natural order, including any that
    lemmy_plan_excluded_hosts leaves out of this run: they stay peers, so a proxy left out and
    brought back finds the same configuration. ``proxy_addresses`` maps each of them to its address,
    ``host_addresses`` every planned host to its own (the VIP must be none of them). Problems go to
    ``problem``, one sentence each.
    """
    raw = settings.get("lemmy_proxy_vip")
    router_raw = settings.get("lemmy_proxy_vip_router_id")
    preempt_raw = settings.get("lemmy_proxy_vip_preempt")
    if _unset(raw):
        for key, value in (("lemmy_proxy_vip_router_id", router_raw), ("lemmy_proxy_vip_preempt", preempt_raw)):
            if not _unset(value):
                problem(
                    "%s is set (%s) but lemmy_proxy_vip is not, so nothing would read it; set lemmy_proxy_vip to the proxies' "
                    "shared address, such as 10.0.0.100/24, or remove %s" % (key, _show(value), key)
                )
        return None

    problems_before: list[str] = []

    def report(text: str) -> None:
        problems_before.append(text)
        problem(text)

    vip = read_vip(raw, report)

    router_id = SETTING_DEFAULTS["lemmy_proxy_vip_router_id"] if _unset(router_raw) else _as_int(router_raw)
    if router_id is None or not ROUTER_ID_RANGE[0] <= router_id <= ROUTER_ID_RANGE[1]:
        report(
            "lemmy_proxy_vip_router_id is %s; set it to a whole number from %d to %d that no other VRRP group on the proxies' "
            "network uses, such as %d" % (_show(router_raw), ROUTER_ID_RANGE[0], ROUTER_ID_RANGE[1], SETTING_DEFAULTS["lemmy_proxy_vip_router_id"])
        )
        router_id = None

    preempt = SETTING_DEFAULTS["lemmy_proxy_vip_preempt"] if _unset(preempt_raw) else _as_bool(preempt_raw)
    if preempt is None:
        report("lemmy_proxy_vip_preempt is %s; set it to true or false" % _show(preempt_raw))

    members = list(proxies)
    if len(members) < 2:
        report(
            "lemmy_proxy_vip is %s but group lemmy_proxy has %s; a virtual address needs at least two proxies to move between: "
            "add a second host to lemmy_proxy, or remove lemmy_proxy_vip" % (_show(raw), "no host" if not members else "only %s" % members[0])
        )
    elif len(members) > MAX_PROXIES:
        report(
            "group lemmy_proxy has %d hosts but lemmy_proxy_vip gives distinct VRRP priorities to at most %d; "
            "keep at most %d proxies on one virtual address, or publish them in DNS (%s)" % (len(members), MAX_PROXIES, MAX_PROXIES, DOC)
        )

    own: dict[str, ipaddress.IPv4Address] = {}
    for host in members:
        address = proxy_addresses.get(host, host)
        parsed = _ipv4(address)
        subnet = " on %s" % vip.network if vip is not None else ""
        if parsed is None:
            report(
                "host %s: lemmy_proxy_vip needs each proxy's IPv4 address (VRRP speaks from it to the other proxies), but the host's "
                "address is %s; set lemmy_host_address on %s to its IPv4 address%s" % (host, _show(address), host, subnet)
            )
            continue
        own[host] = parsed
        if vip is not None and parsed not in vip.network:
            report(
                "host %s: its address %s is outside %s, the subnet of lemmy_proxy_vip %s; the virtual address can only move between "
                "proxies on one network segment: put every proxy on that subnet, fix lemmy_proxy_vip's address or prefix length, "
                "or publish the proxies in DNS instead (%s)" % (host, parsed, vip.network, _show(raw), DOC)
            )

    if vip is not None:
        for host in sorted(set(host_addresses) | set(own)):
            address = own.get(host) or _ipv4(host_addresses.get(host))
            if address is not None and address == vip.ip:
                report(
                    "lemmy_proxy_vip %s is the address of host %s; the shared address must belong to no host: choose a free address in %s"
                    % (_show(raw), host, vip.network)
                )

    if problems_before or vip is None or router_id is None or preempt is None:
        return None

    hosts: dict[str, dict[str, t.Any]] = {}
    for position, host in enumerate(members):
        hosts[host] = {
            "address": str(own[host]),
            "priority": TOP_PRIORITY - PRIORITY_STEP * position,
            # Without preemption every proxy starts as BACKUP (keepalived's nopreempt needs it); the election
            # then gives the address to the highest priority that answers.
            "state": "MASTER" if preempt and position == 0 else "BACKUP",
            "peers": [str(own[other]) for other in members if other != host],
        }
    return {
        "address": str(vip.ip),
        "prefix": vip.network.prefixlen,
        "cidr": "%s/%d" % (vip.ip, vip.network.prefixlen),
        "network": str(vip.network),
        "router_id": router_id,
        "preempt": preempt,
        "hosts": hosts,
    }
