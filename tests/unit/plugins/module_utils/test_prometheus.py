# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) fediscale.lemmy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Metrics ports in the plan and the Prometheus file_sd targets made from them."""

from __future__ import annotations

import copy
import json
import typing as t

import pytest

from ansible_collections.fediscale.lemmy.plugins.module_utils._plan import PlanError, build_plan
from ansible_collections.fediscale.lemmy.plugins.module_utils._prometheus import TargetsError, file_sd

SECRETS_SET = {"pictrs_api_key": {"kind": "string", "length": 32}, "lemmy_admin_password": {"kind": "string", "length": 24}}


def inventory(**settings: t.Any) -> tuple[dict[str, t.Any], dict[str, t.Any], dict[str, t.Any]]:
    groups = {
        "lemmy_proxy": ["lb1"],
        "lemmy_api": ["web1", "web2"],
        "lemmy_ui": ["web1", "web2"],
        "lemmy_federation": ["work1", "web2"],
        "lemmy_scheduler": ["work1"],
        "pictrs": ["media1"],
        "lemmy_db": ["db1"],
    }
    host_vars = {
        "web1": {"ansible_host": "10.0.0.21", "lemmy_api_processes": 2},
        "web2": {"ansible_host": "10.0.0.22"},
        "work1": {"ansible_host": "10.0.0.31", "lemmy_federation_processes": 2},
        "media1": {"ansible_host": "10.0.0.41"},
        "db1": {"ansible_host": "10.0.0.51"},
        "lb1": {"ansible_host": "10.0.0.11"},
    }
    base = {"lemmy_domain": "lemmy.example.org", "lemmy_version": "0.19.20", "database_password_set": True,
            "secret_facts": SECRETS_SET, "lemmy_prometheus": True}
    base.update(settings)
    return groups, host_vars, base


def problems_of(inv: t.Any) -> list[str]:
    with pytest.raises(PlanError) as caught:
        build_plan(*inv)
    return caught.value.problems


def metrics_of(plan: dict[str, t.Any]) -> dict[tuple[str, str], t.Any]:
    return {(p["host"], p["name"]): p.get("metrics") for p in plan["processes"]}


def test_every_server_process_gets_its_own_port_per_host() -> None:
    got = metrics_of(build_plan(*inventory()))
    assert got[("web1", "lemmy-api-1")] == {"bind": "10.0.0.21", "port": 10002, "target": "10.0.0.21:10002"}
    assert got[("web1", "lemmy-api-2")]["port"] == 10003
    # web2: one API process, then one sender: the sender counts on from the API.
    assert got[("web2", "lemmy-api-1")]["port"] == 10002
    assert got[("web2", "lemmy-federation-1")]["port"] == 10003
    assert [got[("work1", n)]["port"] for n in ("lemmy-federation-2", "lemmy-federation-3", "lemmy-scheduler")] == [10002, 10003, 10004]
    # lemmy-ui and pict-rs are not lemmy_server: no metrics entry.
    assert got[("web1", "lemmy-ui-1")] is None
    assert got[("media1", "pictrs")] is None


def test_off_by_default_leaves_the_process_entries_unchanged() -> None:
    plan = build_plan(*inventory(lemmy_prometheus=None))
    assert all("metrics" not in p for p in plan["processes"])


def test_base_port_and_bind_come_from_the_host() -> None:
    inv = inventory()
    inv[1]["work1"].update({"lemmy_prometheus_base_port": 9300, "lemmy_prometheus_bind": "0.0.0.0"})
    got = metrics_of(build_plan(*inv))
    assert got[("work1", "lemmy-scheduler")] == {"bind": "0.0.0.0", "port": 9302, "target": "10.0.0.31:9302"}


def test_host_name_address_needs_an_explicit_bind() -> None:
    inv = inventory()
    inv[1]["work1"] = {"ansible_host": "work1.internal", "lemmy_federation_processes": 2}
    problems = problems_of(inv)
    assert len(problems) == 1
    assert problems[0].startswith('host work1: lemmy_prometheus is true but the host\'s address "work1.internal" is not an IP address')
    inv[1]["work1"]["lemmy_prometheus_bind"] = "0.0.0.0"
    assert metrics_of(build_plan(*inv))[("work1", "lemmy-scheduler")]["target"] == "work1.internal:10004"


def test_bad_bind_is_refused() -> None:
    inv = inventory()
    inv[1]["web2"]["lemmy_prometheus_bind"] = "localhost"
    assert problems_of(inv) == ['host web2: lemmy_prometheus_bind is "localhost"; set it to an IP address such as 0.0.0.0 or the host\'s own IP']


def test_metrics_port_clashing_with_an_api_port_is_refused() -> None:
    inv = inventory()
    inv[1]["web1"]["lemmy_prometheus_base_port"] = 8537  # lemmy-api-2 listens there
    problems = problems_of(inv)
    assert problems == [
        "host web1: lemmy-api-1 metrics and lemmy-api-2 both want port 8537; change lemmy_api_base_port or lemmy_prometheus_base_port "
        "on web1 so the port ranges do not overlap"
    ]


def test_metrics_port_clashing_with_nginx_is_refused() -> None:
    inv = inventory()
    inv[0]["lemmy_api"].append("lb1")
    inv[0]["lemmy_ui"].append("lb1")
    inv[1]["lb1"].update({"lemmy_prometheus_base_port": 80})
    problems = problems_of(inv)
    assert len(problems) == 1 and "nginx (nginx_listen_port) and lemmy-api-1 metrics both want port 80" in problems[0]
    assert "change lemmy_prometheus_base_port or nginx_listen_port on lb1" in problems[0]


def test_metrics_range_past_65535_is_refused() -> None:
    inv = inventory()
    inv[1]["work1"]["lemmy_prometheus_base_port"] = 65534
    assert problems_of(inv) == [
        "host work1: lemmy_prometheus_base_port 65534 with 3 lemmy_server processes runs past port 65535; lower lemmy_prometheus_base_port"
    ]


@pytest.mark.parametrize("value", ["maybe", 3, [True]])
def test_lemmy_prometheus_must_be_a_boolean(value: t.Any) -> None:
    problems = problems_of(inventory(lemmy_prometheus=value))
    assert any(p.startswith("lemmy_prometheus is ") and p.endswith("set it to true or false") for p in problems)


def test_file_sd_has_one_group_per_server_process_with_labels() -> None:
    groups = file_sd(build_plan(*inventory()))
    assert len(groups) == 7  # 3 API, 3 senders, 1 scheduler
    assert groups[0] == {
        "targets": ["10.0.0.21:10002"],
        "labels": {"job": "lemmy", "kind": "api", "host": "web1", "process": "lemmy-api-1", "shard": ""},
    }
    senders = [(g["labels"]["host"], g["labels"]["shard"], g["targets"][0]) for g in groups if g["labels"]["kind"] == "federation"]
    assert senders == [("web2", "1/3", "10.0.0.22:10003"), ("work1", "2/3", "10.0.0.31:10002"), ("work1", "3/3", "10.0.0.31:10003")]
    targets = [g["targets"][0] for g in groups]
    assert len(set(targets)) == len(targets)
    json.dumps(groups)  # file_sd is JSON


def test_file_sd_ipv6_targets_are_bracketed() -> None:
    inv = inventory()
    inv[1]["web1"]["ansible_host"] = "fd00::21"
    groups = file_sd(build_plan(*inv))
    assert groups[0]["targets"] == ["[fd00::21]:10002"]


def test_file_sd_of_a_plan_without_metrics_says_how_to_fix() -> None:
    plan = build_plan(*inventory(lemmy_prometheus=False))
    with pytest.raises(TargetsError, match="set lemmy_prometheus: true"):
        file_sd(plan)


def test_file_sd_of_an_empty_plan_is_empty() -> None:
    assert file_sd({"processes": []}) == []


def test_file_sd_job_name() -> None:
    groups = file_sd(copy.deepcopy(build_plan(*inventory())), job="lemmy-prod")
    assert {g["labels"]["job"] for g in groups} == {"lemmy-prod"}
