# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) fediscale.lemmy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Properties of the shard numbering and the placement, over random fleets."""

from __future__ import annotations

import random
import typing as t

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ansible_collections.fediscale.lemmy.plugins.module_utils._plan import PlanError, build_plan, natural_key, shard_of

SETTINGS = {
    "lemmy_domain": "lemmy.example.org",
    "lemmy_version": "0.19.20",
    "database_password_set": True,
    "secret_facts": {"pictrs_api_key": {"kind": "string", "length": 32}, "lemmy_admin_password": {"kind": "string", "length": 24}},
    "lemmy_database_pool_size": 2,
    "lemmy_database_max_connections": 100000,
}

host_names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=8).filter(lambda s: s[0].isalpha())


@st.composite
def fleets(draw: st.DrawFn) -> dict[str, t.Any]:
    """A valid fleet: random sender hosts and counts, some of them pinned to a valid permutation."""
    senders = draw(st.lists(host_names, min_size=1, max_size=12, unique=True))
    counts = {host: draw(st.integers(min_value=1, max_value=4)) for host in senders}
    total = sum(counts.values())
    permutation = draw(st.permutations(list(range(1, total + 1))))
    pinned_hosts = draw(st.lists(st.sampled_from(senders), unique=True, max_size=len(senders)))
    # Pinned hosts take their indices from the front of the permutation; the rest stay free.
    pins: dict[str, list[int]] = {}
    cursor = 0
    for host in pinned_hosts:
        pins[host] = list(permutation[cursor : cursor + counts[host]])
        cursor += counts[host]
    api_hosts = draw(st.lists(host_names, min_size=1, max_size=6, unique=True))
    api_counts = {host: draw(st.integers(min_value=1, max_value=3)) for host in api_hosts}
    host_vars: dict[str, dict[str, t.Any]] = {}
    for host in senders:
        host_vars.setdefault(host, {})["lemmy_federation_processes"] = counts[host]
        if host in pins:
            host_vars[host]["lemmy_federation_indices"] = pins[host]
    for host in api_hosts:
        host_vars.setdefault(host, {})["lemmy_api_processes"] = api_counts[host]
        host_vars[host]["lemmy_ui_processes"] = api_counts[host]
    groups = {
        "lemmy_proxy": [api_hosts[0]],
        "lemmy_api": api_hosts,
        "lemmy_ui": api_hosts,
        "lemmy_federation": senders,
        "lemmy_scheduler": [senders[0]],
        "pictrs": [api_hosts[-1]],
        "lemmy_db": [senders[-1]],
    }
    return {"groups": groups, "host_vars": host_vars, "pins": pins, "counts": counts, "total": total, "api_counts": api_counts}


def senders_of(plan: dict[str, t.Any]) -> list[dict[str, t.Any]]:
    return [p for p in plan["processes"] if p["kind"] == "federation"]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fleet=fleets(), instance_ids=st.lists(st.integers(min_value=1, max_value=2**31 - 1), max_size=200))
def test_every_instance_is_owned_by_exactly_one_sender(fleet: dict[str, t.Any], instance_ids: list[int]) -> None:
    plan = build_plan(fleet["groups"], fleet["host_vars"], SETTINGS)
    senders = senders_of(plan)
    total = fleet["total"]
    assert plan["federation"]["count"] == total
    assert sorted(p["shard_index"] for p in senders) == list(range(1, total + 1))
    assert {p["shard_count"] for p in senders} == {total}
    for instance_id in instance_ids:
        # Lemmy's rule, written out: process i of N owns id % N == i - 1.
        owners = [p for p in senders if instance_id % p["shard_count"] == p["shard_index"] - 1]
        assert len(owners) == 1
        assert owners[0]["shard_index"] == shard_of(instance_id, total)


@settings(max_examples=200, deadline=None)
@given(fleet=fleets())
def test_pins_are_kept_and_free_indices_go_in_host_then_slot_order(fleet: dict[str, t.Any]) -> None:
    plan = build_plan(fleet["groups"], fleet["host_vars"], SETTINGS)
    senders = senders_of(plan)
    for proc in senders:
        assert proc["name"] == "lemmy-federation-%d" % proc["shard_index"]
        assert "--federate-process-index" in proc["args"]
        assert proc["args"][proc["args"].index("--federate-process-index") + 1] == str(proc["shard_index"])
        assert proc["args"][proc["args"].index("--federate-process-count") + 1] == str(fleet["total"])
        if proc["host"] in fleet["pins"]:
            assert proc["shard_index"] == fleet["pins"][proc["host"]][proc["slot"] - 1]
    unpinned = sorted((p for p in senders if p["host"] not in fleet["pins"]), key=lambda p: (natural_key(p["host"]), p["slot"]))
    pinned_indices = {i for pins in fleet["pins"].values() for i in pins}
    free = [i for i in range(1, fleet["total"] + 1) if i not in pinned_indices]
    assert [p["shard_index"] for p in unpinned] == free


@settings(max_examples=100, deadline=None)
@given(fleet=fleets(), seed=st.integers(min_value=0, max_value=2**32 - 1))
def test_plan_is_stable_and_independent_of_input_order(fleet: dict[str, t.Any], seed: int) -> None:
    first = build_plan(fleet["groups"], fleet["host_vars"], SETTINGS)
    assert build_plan(fleet["groups"], fleet["host_vars"], SETTINGS) == first
    shuffler = random.Random(seed)
    groups = {}
    for name in shuffler.sample(list(fleet["groups"]), len(fleet["groups"])):
        members = list(fleet["groups"][name])
        shuffler.shuffle(members)
        groups[name] = members
    host_vars = {host: fleet["host_vars"][host] for host in shuffler.sample(list(fleet["host_vars"]), len(fleet["host_vars"]))}
    assert build_plan(groups, host_vars, SETTINGS) == first


@settings(max_examples=100, deadline=None)
@given(fleet=fleets())
def test_ports_are_unique_per_host_and_upstreams_match_the_counts(fleet: dict[str, t.Any]) -> None:
    plan = build_plan(fleet["groups"], fleet["host_vars"], SETTINGS)
    seen: set[tuple[str, int]] = set()
    for proc in plan["processes"]:
        if proc["port"] is not None:
            assert (proc["host"], proc["port"]) not in seen
            seen.add((proc["host"], proc["port"]))
    assert len(plan["upstreams"]["api"]) == sum(fleet["api_counts"].values())
    assert len(plan["upstreams"]["ui"]) == sum(fleet["api_counts"].values())
    names = [(p["host"], p["name"]) for p in plan["processes"]]
    assert len(names) == len(set(names))


@settings(max_examples=150, deadline=None)
@given(fleet=fleets(), data=st.data())
def test_broken_pins_are_always_refused(fleet: dict[str, t.Any], data: st.DataObject) -> None:
    host = data.draw(st.sampled_from(sorted(fleet["counts"])))
    count = fleet["counts"][host]
    total = fleet["total"]
    kind = data.draw(st.sampled_from(["duplicate", "out_of_range", "length"]))
    if kind == "duplicate" and total > 1:
        # Pin another host's index, or repeat one index on this host.
        other = data.draw(st.integers(min_value=1, max_value=total))
        pins = [other] * count if count > 1 else None
        if pins is None:
            taken = [i for h, p in fleet["pins"].items() if h != host for i in p]
            if not taken:
                return
            pins = [taken[0]]
    elif kind == "out_of_range":
        pins = [data.draw(st.integers(min_value=total + 1, max_value=total + 50))] + list(range(1, count))
    else:
        pins = list(range(1, count + 2))
    host_vars = dict(fleet["host_vars"])
    host_vars[host] = dict(host_vars[host], lemmy_federation_indices=pins)
    with pytest.raises(PlanError) as caught:
        build_plan(fleet["groups"], host_vars, SETTINGS)
    assert any("lemmy_federation_indices" in problem for problem in caught.value.problems)
