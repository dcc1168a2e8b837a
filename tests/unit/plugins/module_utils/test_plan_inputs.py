# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) fediscale.lemmy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the lemmy_plan action reads from the inventory (_plan_inputs.collect_plan_inputs)."""

from __future__ import annotations

import typing as t

import pytest

from ansible_collections.fediscale.lemmy.plugins.module_utils._plan import (
    GROUP_NAMES,
    HOST_VAR_KEYS,
    PLAN_LEVEL_KEYS,
    SECRET_KEYS,
    build_plan,
)
from ansible_collections.fediscale.lemmy.plugins.module_utils._plan_inputs import UNSET, collect_plan_inputs, plain, secret_kind

GROUPS = {"lemmy_proxy": ["lb1"], "lemmy_api": ["web1", "web2"], "lemmy_ui": ["web1"], "lemmy_db": ["db1"], "ungrouped": ["other"]}
SECRET = "s3cr3t-value-that-must-not-leak"


def readers(
    hosts: dict[str, dict[str, t.Any]], controller: dict[str, t.Any], baseline: dict[str, t.Any]
) -> tuple[t.Callable[[str, str], t.Any], t.Callable[[str], t.Any], t.Callable[[str], t.Any]]:
    return (
        lambda host, key: hosts.get(host, {}).get(key, UNSET),
        lambda key: controller.get(key, UNSET),
        lambda key: baseline.get(key, UNSET),
    )


def test_every_planner_key_is_read_from_every_planned_host_only() -> None:
    asked: list[tuple[str, str]] = []

    def host_value(host: str, key: str) -> t.Any:
        asked.append((host, key))
        return UNSET

    controller_asked: list[str] = []

    def controller_value(key: str) -> t.Any:
        controller_asked.append(key)
        return UNSET

    inputs = collect_plan_inputs(GROUPS, host_value, controller_value, lambda _key: UNSET)
    assert sorted(inputs["groups"]) == sorted(GROUP_NAMES)
    assert inputs["groups"]["lemmy_federation"] == []
    assert {host for host, _key in asked} == {"lb1", "web1", "web2", "db1"}
    for host in ("lb1", "web1", "web2", "db1"):
        assert {key for h, key in asked if h == host} == set(HOST_VAR_KEYS) | set(PLAN_LEVEL_KEYS) | set(SECRET_KEYS)
        assert inputs["host_vars"][host] == dict.fromkeys(HOST_VAR_KEYS)
    assert set(controller_asked) == set(PLAN_LEVEL_KEYS) | set(SECRET_KEYS)
    assert set(inputs["settings"]) == set(PLAN_LEVEL_KEYS) | {"secret_facts"}


def test_a_value_set_below_all_is_passed_for_that_host_only() -> None:
    hosts = {
        "web1": {"nginx_api_balancing": "ip_hash", "lemmy_domain": "lemmy.example.org"},  # a group var below all, and the -e value
        "web2": {"lemmy_domain": "lemmy.example.org"},
    }
    controller = {"nginx_api_balancing": "round_robin", "lemmy_domain": "lemmy.example.org"}
    baseline = {"nginx_api_balancing": "round_robin", "lemmy_domain": "lemmy.example.org"}
    inputs = collect_plan_inputs(GROUPS, *readers(hosts, controller, baseline))
    assert inputs["host_settings"]["web1"] == {"nginx_api_balancing": "ip_hash"}
    assert inputs["host_settings"]["web2"] == {}
    assert inputs["settings"]["nginx_api_balancing"] == "round_robin"


def test_a_play_variable_the_hosts_do_not_see_is_not_a_difference() -> None:
    inputs = collect_plan_inputs(GROUPS, *readers({}, {"lemmy_version": "0.19.20"}, {}))
    assert all(row == {} for row in inputs["host_settings"].values())
    assert inputs["settings"]["lemmy_version"] == "0.19.20"


def test_a_value_only_a_host_has_counts_as_set_below_all() -> None:
    inputs = collect_plan_inputs(GROUPS, *readers({"web2": {"pictrs_repo_type": "postgres"}}, {}, {}))
    assert inputs["host_settings"]["web2"] == {"pictrs_repo_type": "postgres"}
    assert inputs["settings"]["pictrs_repo_type"] is None


def test_secrets_leave_only_as_kind_length_and_the_hosts_that_differ() -> None:
    hosts = {"web1": {"pictrs_api_key": SECRET}, "web2": {"pictrs_api_key": "another-value"}, "db1": {"lemmy_admin_password": 12345}}
    controller = {"pictrs_api_key": SECRET, "lemmy_database_password": "x" * 30, "lemmy_admin_password": 1234567890}
    baseline = {"pictrs_api_key": SECRET, "lemmy_admin_password": 1234567890}
    inputs = collect_plan_inputs(GROUPS, *readers(hosts, controller, baseline))
    facts = inputs["settings"]["secret_facts"]
    assert facts["pictrs_api_key"] == {"kind": "string", "length": len(SECRET), "differs_on": ["web2"]}
    assert facts["lemmy_database_password"] == {"kind": "string", "length": 30, "differs_on": []}
    assert facts["lemmy_admin_password"] == {"kind": "integer", "length": 0, "differs_on": ["db1"]}
    assert facts["lemmy_ui_static_s3_secret_key"] == {"kind": "missing", "length": 0, "differs_on": []}
    assert SECRET not in repr(inputs) and "another-value" not in repr(inputs)


@pytest.mark.parametrize(
    ("value", "kind"),
    [(UNSET, "missing"), (None, "missing"), (True, "boolean"), (10, "integer"), (1.5, "float"), ("x", "string"),
     ({"a": 1}, "mapping"), (["a"], "list"), (object(), "other")],
)
def test_secret_kinds(value: t.Any, kind: str) -> None:
    assert secret_kind(value) == kind


def test_plain_turns_mappings_and_sequences_into_plain_data() -> None:
    class Tagged(str):
        pass

    class Lazy(dict):  # type: ignore[type-arg]
        pass

    value = plain(Lazy(limits=(Tagged("1"), 2, 3.5, True, None)))
    assert value == {"limits": ["1", 2, 3.5, True, None]}
    assert value.__class__ is dict and value["limits"][0].__class__ is str


def test_the_collected_inputs_plan_the_fleet() -> None:
    hosts = {"lb1": {"ansible_host": "10.0.0.5"}, "web1": {"ansible_host": "10.0.0.11", "lemmy_api_processes": 2},
             "web2": {"ansible_host": "10.0.0.12"}, "db1": {"ansible_host": "10.0.0.41"}}
    controller = {"lemmy_domain": "lemmy.example.org", "lemmy_version": "0.19.20", "lemmy_database_password": "d" * 32,
                  "pictrs_api_key": "p" * 32, "lemmy_admin_password": "a" * 24}
    groups = dict(GROUPS, lemmy_federation=["web2"], lemmy_scheduler=["web2"], pictrs=["web2"])
    inputs = collect_plan_inputs(groups, *readers(hosts, controller, dict(controller)))
    plan = build_plan(inputs["groups"], inputs["host_vars"], inputs["settings"], None, [], inputs["host_settings"])
    assert [p["name"] for p in plan["processes"] if p["host"] == "web1"] == ["lemmy-api-1", "lemmy-api-2", "lemmy-ui-1"]
    assert plan["upstreams"]["api"] == ["10.0.0.11:8536", "10.0.0.11:8537", "10.0.0.12:8536"]
