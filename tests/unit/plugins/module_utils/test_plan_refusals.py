# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) fediscale.lemmy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Inputs the planner refuses before any host is contacted, one class of wrong input per section."""

from __future__ import annotations

import copy
import typing as t

import pytest

from ansible_collections.fediscale.lemmy.plugins.module_utils._plan import PlanError, build_plan

Inventory = t.Tuple[t.Dict[str, t.Any], t.Dict[str, t.Any], t.Dict[str, t.Any]]

# What playbooks/tasks/plan.yml derives from the secrets: kind and length, never the values.
SECRETS_SET = {
    "lemmy_database_password": {"kind": "string", "length": 32, "differs_on": []},
    "pictrs_api_key": {"kind": "string", "length": 32, "differs_on": []},
    "lemmy_admin_password": {"kind": "string", "length": 24, "differs_on": []},
    "lemmy_ui_static_s3_access_key": {"kind": "string", "length": 20, "differs_on": []},
    "lemmy_ui_static_s3_secret_key": {"kind": "string", "length": 40, "differs_on": []},
}


def medium() -> Inventory:
    groups = {
        "lemmy_proxy": ["lb1"],
        "lemmy_api": ["web1", "web2", "web3"],
        "lemmy_ui": ["web1", "web2", "web3"],
        "lemmy_federation": ["work1", "work2"],
        "lemmy_scheduler": ["work1"],
        "pictrs": ["media1"],
        "lemmy_db": ["db1"],
    }
    host_vars = {
        "web1": {"ansible_host": "10.0.0.21"},
        "web2": {"ansible_host": "10.0.0.22"},
        "web3": {"ansible_host": "10.0.0.23"},
        "work1": {"lemmy_federation_processes": 2},
    }
    settings = {"lemmy_domain": "lemmy.example.org", "lemmy_version": "0.19.20", "secret_facts": copy.deepcopy(SECRETS_SET)}
    return groups, host_vars, settings


def problems_of(inventory: Inventory, **kwargs: t.Any) -> list[str]:
    with pytest.raises(PlanError) as caught:
        build_plan(*inventory, **kwargs)
    return caught.value.problems


# --------------------------------------------------------------------------- excluded hosts


def test_excluded_hosts_are_taken_out_of_every_group() -> None:
    plan = build_plan(*medium(), excluded_hosts=["web3", "web2"])
    assert plan["excluded_hosts"] == ["web2", "web3"]
    assert not [p for p in plan["processes"] if p["host"] in ("web2", "web3")]
    assert plan["upstreams"]["api"] == ["10.0.0.21:8536"]
    assert plan["upstreams"]["ui"] == ["10.0.0.21:1234"]
    assert "web2" not in plan["hosts"] and "web3" not in plan["hosts"]
    assert any("planning without web2, web3 (lemmy_plan_excluded_hosts)" in w for w in plan["warnings"]), plan["warnings"]


def test_no_exclusion_gives_an_empty_list_and_no_warning() -> None:
    plan = build_plan(*medium())
    assert plan["excluded_hosts"] == []
    assert plan["warnings"] == []
    assert build_plan(*medium(), excluded_hosts=[])["excluded_hosts"] == []


def test_excluded_sender_host_renumbers_the_shards() -> None:
    plan = build_plan(*medium(), excluded_hosts=["work2"])
    senders = [(p["host"], p["shard_index"], p["shard_count"]) for p in plan["processes"] if p["kind"] == "federation"]
    assert senders == [("work1", 1, 2), ("work1", 2, 2)]


def test_excluded_host_keeps_its_group_settings_without_complaint() -> None:
    # work1 runs the senders (lemmy_federation_processes: 2): excluded, its counts are not "outside its group".
    groups, host_vars, settings = medium()
    groups["lemmy_scheduler"] = ["work2"]
    plan = build_plan(groups, host_vars, settings, excluded_hosts=["work1"])
    assert plan["excluded_hosts"] == ["work1"]
    assert [p["host"] for p in plan["processes"] if p["kind"] == "federation"] == ["work2"]


def test_an_unknown_excluded_name_only_warns() -> None:
    plan = build_plan(*medium(), excluded_hosts=["web9"])
    assert plan["excluded_hosts"] == ["web9"]
    assert any("lemmy_plan_excluded_hosts names web9, which no Lemmy group holds" in w for w in plan["warnings"])
    assert len(plan["processes"]) == len(build_plan(*medium())["processes"])


@pytest.mark.parametrize(
    ("excluded", "message"),
    [
        pytest.param(
            ["work1"],
            "group lemmy_scheduler has no hosts (lemmy_plan_excluded_hosts removed work1 from it); put exactly one host in it",
            id="scheduler-host",
        ),
        pytest.param(["lb1"], "group lemmy_proxy has no hosts (lemmy_plan_excluded_hosts removed lb1 from it)", id="proxy"),
        pytest.param(["db1"], "no database: group lemmy_db has no host (lemmy_plan_excluded_hosts removed db1 from it)", id="database"),
        pytest.param(
            ["web1", "web2", "web3"], "group lemmy_api has no hosts (lemmy_plan_excluded_hosts removed web1, web2, web3 from it)", id="every-api-host"
        ),
        pytest.param("web1", 'lemmy_plan_excluded_hosts is "web1"; set it to a list of inventory host names', id="not-a-list"),
        pytest.param(["web1", 3], "lemmy_plan_excluded_hosts[1] is 3; list inventory host names only", id="not-a-name"),
    ],
)
def test_exclusion_that_leaves_a_broken_fleet_is_refused_naming_the_exclusion(excluded: t.Any, message: str) -> None:
    problems = problems_of(medium(), excluded_hosts=excluded)
    assert any(message in p for p in problems), problems
