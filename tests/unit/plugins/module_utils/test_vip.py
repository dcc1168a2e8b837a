# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) fediscale.lemmy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The proxies' virtual address: the VRRP view the plan carries, and what it refuses."""

from __future__ import annotations

import copy
import typing as t

import pytest

from ansible_collections.fediscale.lemmy.plugins.module_utils import _vip
from ansible_collections.fediscale.lemmy.plugins.module_utils._plan import PLAN_LEVEL_KEYS, SETTING_DEFAULTS, PlanError, build_plan

Inventory = t.Tuple[t.Dict[str, t.Any], t.Dict[str, t.Any], t.Dict[str, t.Any]]

SECRETS_SET = {
    "lemmy_database_password": {"kind": "string", "length": 32, "differs_on": []},
    "pictrs_api_key": {"kind": "string", "length": 32, "differs_on": []},
    "lemmy_admin_password": {"kind": "string", "length": 24, "differs_on": []},
}


def two_proxies(**settings: t.Any) -> Inventory:
    groups = {
        "lemmy_proxy": ["lb2", "lb1"],
        "lemmy_api": ["web1", "web2"],
        "lemmy_ui": ["web1", "web2"],
        "lemmy_federation": ["work1"],
        "lemmy_scheduler": ["work1"],
        "pictrs": ["media1"],
        "lemmy_db": ["db1"],
    }
    host_vars = {
        "lb1": {"lemmy_host_address": "10.0.0.11"},
        "lb2": {"ansible_host": "10.0.0.12"},
        "web1": {"ansible_host": "10.0.0.21"},
        "web2": {"ansible_host": "10.0.0.22"},
    }
    base = {
        "lemmy_domain": "lemmy.example.org",
        "lemmy_version": "0.19.20",
        "secret_facts": copy.deepcopy(SECRETS_SET),
        "lemmy_proxy_vip": "10.0.0.100/24",
    }
    base.update(settings)
    return groups, host_vars, base


def problems_of(inventory: Inventory, **kwargs: t.Any) -> list[str]:
    with pytest.raises(PlanError) as caught:
        build_plan(*inventory, **kwargs)
    return caught.value.problems


# --------------------------------------------------------------------------- the view


def test_the_plan_carries_the_vrrp_view_of_every_proxy() -> None:
    plan = build_plan(*two_proxies())
    assert plan["vip"] == {
        "address": "10.0.0.100",
        "prefix": 24,
        "cidr": "10.0.0.100/24",
        "network": "10.0.0.0/24",
        "router_id": 51,
        "preempt": False,
        "hosts": {
            "lb1": {"address": "10.0.0.11", "priority": 200, "state": "BACKUP", "peers": ["10.0.0.12"]},
            "lb2": {"address": "10.0.0.12", "priority": 190, "state": "BACKUP", "peers": ["10.0.0.11"]},
        },
    }


def test_no_vip_gives_none_and_changes_nothing_else() -> None:
    groups, host_vars, settings = two_proxies()
    del settings["lemmy_proxy_vip"]
    plan = build_plan(groups, host_vars, settings)
    assert plan["vip"] is None
    with_vip = build_plan(*two_proxies())
    # Only the VRRP view and where server-side rendering goes (the virtual address) differ.
    assert {k: v for k, v in plan.items() if k not in ("vip", "ssr")} == {k: v for k, v in with_vip.items() if k not in ("vip", "ssr")}
    assert (plan["ssr"]["address"], with_vip["ssr"]["address"]) == ("10.0.0.11:8480", "10.0.0.100:8480")


@pytest.mark.parametrize("unset", [None, "", "  "])
def test_an_empty_vip_is_no_vip(unset: t.Any) -> None:
    assert build_plan(*two_proxies(lemmy_proxy_vip=unset))["vip"] is None


def test_one_proxy_without_vip_is_still_fine() -> None:
    groups, host_vars, settings = two_proxies(lemmy_proxy_vip=None)
    groups["lemmy_proxy"] = ["lb1"]
    assert build_plan(groups, host_vars, settings)["vip"] is None


def test_preempt_makes_the_first_proxy_the_master() -> None:
    groups, host_vars, settings = two_proxies(lemmy_proxy_vip_preempt=True, lemmy_proxy_vip_router_id="7")
    groups["lemmy_proxy"].append("lb3")
    host_vars["lb3"] = {"ansible_host": "10.0.0.13"}
    vip = build_plan(groups, host_vars, settings)["vip"]
    assert vip["router_id"] == 7 and vip["preempt"] is True
    assert [(h, v["priority"], v["state"]) for h, v in vip["hosts"].items()] == [("lb1", 200, "MASTER"), ("lb2", 190, "BACKUP"), ("lb3", 180, "BACKUP")]
    assert vip["hosts"]["lb2"]["peers"] == ["10.0.0.11", "10.0.0.13"]


@pytest.mark.parametrize("value", ["false", "no", False])
def test_preempt_takes_yaml_booleans(value: t.Any) -> None:
    assert build_plan(*two_proxies(lemmy_proxy_vip_preempt=value))["vip"]["preempt"] is False


def test_an_excluded_proxy_stays_a_peer() -> None:
    # lb2 left out of this run (unreachable): lb1 keeps it as a peer, so nothing changes when it is back.
    plan = build_plan(*two_proxies(), excluded_hosts=["lb2"])
    assert plan["vip"]["hosts"]["lb1"]["peers"] == ["10.0.0.12"]
    assert list(plan["vip"]["hosts"]) == ["lb1", "lb2"]


def test_the_vip_settings_are_plan_level_keys() -> None:
    for key in _vip.SETTING_DEFAULTS:
        assert key in PLAN_LEVEL_KEYS
        assert key in SETTING_DEFAULTS


def test_a_vip_set_on_a_group_below_all_is_refused() -> None:
    problems = problems_of(two_proxies(), host_settings={"lb2": {"lemmy_proxy_vip": "10.0.0.101/24"}})
    assert len(problems) == 1
    assert problems[0].startswith('lemmy_proxy_vip differs between hosts and the controller: "10.0.0.101/24" on lb2')


# --------------------------------------------------------------------------- refusals, one message each

_SUBNET_FIX = "put every proxy on that subnet, fix lemmy_proxy_vip's address or prefix length, or publish the proxies in DNS instead"


@pytest.mark.parametrize(
    ("settings", "proxies", "message"),
    [
        pytest.param(
            {},
            ["lb1"],
            'lemmy_proxy_vip is "10.0.0.100/24" but group lemmy_proxy has only lb1; a virtual address needs at least two proxies to move '
            "between: add a second host to lemmy_proxy, or remove lemmy_proxy_vip",
            id="one-proxy",
        ),
        pytest.param(
            # lb2 (10.0.0.12) is on 10.0.0.12/30, lb1 (10.0.0.11) is not.
            {"lemmy_proxy_vip": "10.0.0.14/30"},
            None,
            'host lb1: its address 10.0.0.11 is outside 10.0.0.12/30, the subnet of lemmy_proxy_vip "10.0.0.14/30"; the virtual address can '
            "only move between proxies on one network segment: " + _SUBNET_FIX + " (docs/high-availability.md)",
            id="outside-subnet",
        ),
        pytest.param(
            {"lemmy_proxy_vip": "10.0.0.300/24"},
            None,
            'lemmy_proxy_vip is "10.0.0.300/24", which is not an IPv4 address with a prefix length; write it like 10.0.0.100/24',
            id="malformed",
        ),
        pytest.param(
            {"lemmy_proxy_vip": "10.0.0.100"},
            None,
            'lemmy_proxy_vip is "10.0.0.100" without a prefix length; write it with the prefix of the proxies\' subnet, such as 10.0.0.100/24, '
            "so the plan can check that every proxy is on that subnet",
            id="no-prefix",
        ),
        pytest.param(
            {"lemmy_proxy_vip": "vip.example.org/24"},
            None,
            'lemmy_proxy_vip is "vip.example.org/24", which is not an IPv4 address with a prefix length; write it like 10.0.0.100/24',
            id="a-name",
        ),
        pytest.param(
            {"lemmy_proxy_vip": 167772260},
            None,
            "lemmy_proxy_vip is 167772260; set it to the shared IPv4 address with the prefix length of the proxies' subnet, such as 10.0.0.100/24",
            id="a-number",
        ),
        pytest.param(
            {"lemmy_proxy_vip": "fd00::100/64"},
            None,
            'lemmy_proxy_vip is "fd00::100/64", an IPv6 address; this collection moves IPv4 virtual addresses only: use an IPv4 address such as '
            "10.0.0.100/24, or publish every proxy in DNS instead (docs/high-availability.md)",
            id="ipv6",
        ),
        pytest.param(
            {"lemmy_proxy_vip": "10.0.0.100/32"},
            None,
            'lemmy_proxy_vip is "10.0.0.100/32"; a /32 holds no room for two proxies and the shared address: give the prefix length of the '
            "proxies' subnet, such as /24",
            id="host-prefix",
        ),
        pytest.param(
            {"lemmy_proxy_vip": "10.0.0.255/24"},
            None,
            'lemmy_proxy_vip is "10.0.0.255/24", the broadcast address of 10.0.0.0/24; choose a free host address in that subnet',
            id="broadcast",
        ),
        pytest.param(
            {"lemmy_proxy_vip": "10.0.0.0/24"},
            None,
            'lemmy_proxy_vip is "10.0.0.0/24", the network address of 10.0.0.0/24; choose a free host address in that subnet',
            id="network-address",
        ),
        pytest.param(
            {"lemmy_proxy_vip": "10.0.0.12/24"},
            None,
            'lemmy_proxy_vip "10.0.0.12/24" is the address of host lb2; the shared address must belong to no host: choose a free address in 10.0.0.0/24',
            id="a-proxy-address",
        ),
        pytest.param(
            {"lemmy_proxy_vip": "10.0.0.21/24"},
            None,
            'lemmy_proxy_vip "10.0.0.21/24" is the address of host web1; the shared address must belong to no host: choose a free address in 10.0.0.0/24',
            id="another-host-address",
        ),
        pytest.param(
            {"lemmy_proxy_vip_router_id": 0},
            None,
            "lemmy_proxy_vip_router_id is 0; set it to a whole number from 1 to 255 that no other VRRP group on the proxies' network uses, such as 51",
            id="router-id-0",
        ),
        pytest.param(
            {"lemmy_proxy_vip_router_id": 256},
            None,
            "lemmy_proxy_vip_router_id is 256; set it to a whole number from 1 to 255 that no other VRRP group on the proxies' network uses, such as 51",
            id="router-id-256",
        ),
        pytest.param(
            {"lemmy_proxy_vip_router_id": "fifty"},
            None,
            'lemmy_proxy_vip_router_id is "fifty"; set it to a whole number from 1 to 255 that no other VRRP group on the proxies\' network uses, '
            "such as 51",
            id="router-id-word",
        ),
        pytest.param(
            {"lemmy_proxy_vip_router_id": True},
            None,
            "lemmy_proxy_vip_router_id is true; set it to a whole number from 1 to 255 that no other VRRP group on the proxies' network uses, such as 51",
            id="router-id-boolean",
        ),
        pytest.param(
            {"lemmy_proxy_vip_router_id": 5.5},
            None,
            "lemmy_proxy_vip_router_id is 5.5; set it to a whole number from 1 to 255 that no other VRRP group on the proxies' network uses, such as 51",
            id="router-id-float",
        ),
        pytest.param({"lemmy_proxy_vip_preempt": "sometimes"}, None, 'lemmy_proxy_vip_preempt is "sometimes"; set it to true or false', id="preempt"),
        pytest.param(
            {"lemmy_proxy_vip": None, "lemmy_proxy_vip_router_id": 9},
            None,
            "lemmy_proxy_vip_router_id is set (9) but lemmy_proxy_vip is not, so nothing would read it; set lemmy_proxy_vip to the proxies' "
            "shared address, such as 10.0.0.100/24, or remove lemmy_proxy_vip_router_id",
            id="router-id-without-vip",
        ),
        pytest.param(
            {"lemmy_proxy_vip": "", "lemmy_proxy_vip_preempt": True},
            None,
            "lemmy_proxy_vip_preempt is set (true) but lemmy_proxy_vip is not, so nothing would read it; set lemmy_proxy_vip to the proxies' "
            "shared address, such as 10.0.0.100/24, or remove lemmy_proxy_vip_preempt",
            id="preempt-without-vip",
        ),
    ],
)
def test_vip_refusals(settings: dict[str, t.Any], proxies: list[str] | None, message: str) -> None:
    groups, host_vars, base = two_proxies(**settings)
    if proxies is not None:
        groups["lemmy_proxy"] = proxies
    assert problems_of((groups, host_vars, base)) == [message]


def test_a_proxy_known_only_by_name_is_refused_with_the_fix() -> None:
    groups, host_vars, settings = two_proxies()
    host_vars["lb2"] = {}
    assert problems_of((groups, host_vars, settings)) == [
        'host lb2: lemmy_proxy_vip needs each proxy\'s IPv4 address (VRRP speaks from it to the other proxies), but the host\'s address is "lb2"; '
        "set lemmy_host_address on lb2 to its IPv4 address on 10.0.0.0/24"
    ]


def test_an_ipv6_proxy_address_is_refused() -> None:
    groups, host_vars, settings = two_proxies()
    host_vars["lb2"] = {"lemmy_host_address": "fd00::12"}
    problems = problems_of((groups, host_vars, settings))
    assert problems == [
        'host lb2: lemmy_proxy_vip needs each proxy\'s IPv4 address (VRRP speaks from it to the other proxies), but the host\'s address is '
        '"fd00::12"; set lemmy_host_address on lb2 to its IPv4 address on 10.0.0.0/24'
    ]


def test_every_vip_problem_is_listed_at_once() -> None:
    groups, host_vars, settings = two_proxies(lemmy_proxy_vip="10.9.0.100/24", lemmy_proxy_vip_router_id=999)
    host_vars["lb2"] = {}
    problems = problems_of((groups, host_vars, settings))
    assert [p.split(";")[0] for p in problems] == [
        "lemmy_proxy_vip_router_id is 999",
        "host lb1: its address 10.0.0.11 is outside 10.9.0.0/24, the subnet of lemmy_proxy_vip \"10.9.0.100/24\"",
        "host lb2: lemmy_proxy_vip needs each proxy's IPv4 address (VRRP speaks from it to the other proxies), but the host's address is \"lb2\"",
    ]


def test_too_many_proxies_for_distinct_priorities() -> None:
    proxies = ["lb%d" % n for n in range(1, _vip.MAX_PROXIES + 2)]
    addresses = {host: "10.0.0.%d" % (10 + n) for n, host in enumerate(proxies)}
    problems: list[str] = []
    assert _vip.plan_vip({"lemmy_proxy_vip": "10.0.0.200/24"}, proxies, addresses, addresses, problems.append) is None
    assert problems == [
        "group lemmy_proxy has 21 hosts but lemmy_proxy_vip gives distinct VRRP priorities to at most 20; keep at most 20 proxies on one "
        "virtual address, or publish them in DNS (docs/high-availability.md)"
    ]


@pytest.mark.parametrize("count", [2, 3, _vip.MAX_PROXIES])
def test_priorities_are_distinct_and_valid(count: int) -> None:
    proxies = ["lb%d" % n for n in range(1, count + 1)]
    addresses = {host: "10.0.0.%d" % (10 + n) for n, host in enumerate(proxies)}
    problems: list[str] = []
    view = _vip.plan_vip({"lemmy_proxy_vip": "10.0.0.200/24"}, proxies, addresses, addresses, problems.append)
    assert problems == []
    priorities = [entry["priority"] for entry in view["hosts"].values()]
    assert len(set(priorities)) == count
    assert all(1 <= p <= 254 for p in priorities)
    for host, entry in view["hosts"].items():
        assert sorted(entry["peers"]) == sorted(a for h, a in addresses.items() if h != host)


@pytest.mark.parametrize(
    "value",
    [[], {}, ["10.0.0.100/24"], {"address": "10.0.0.100"}, float("nan"), "10.0.0.100/24/1", "10.0.0.100/x", "/24", "0.0.0.0/24", "127.0.0.5/8",
     "224.0.0.18/24"],
)
def test_odd_vip_values_give_one_problem_and_no_error(value: t.Any) -> None:
    problems = problems_of(two_proxies(lemmy_proxy_vip=value))
    assert len(problems) >= 1
    assert all(p.startswith("lemmy_proxy_vip is ") or p.startswith("host lb") for p in problems), problems
