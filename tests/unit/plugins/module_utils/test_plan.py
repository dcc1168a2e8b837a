# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) fediscale.lemmy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Rules and messages of the placement planner, one case per rule."""

from __future__ import annotations

import copy
import math
import typing as t

import pytest

from ansible_collections.fediscale.lemmy.plugins.module_utils._plan import (
    API_ARGS,
    KNOWN_VERSIONS,
    RATE_LIMIT_DEFAULTS,
    SCHEDULER_ARGS,
    PlanError,
    build_plan,
    format_problems,
    hostport,
    natural_key,
    parse_positive_int,
    render_summary,
    render_table,
)

Inventory = t.Tuple[t.Dict[str, t.Any], t.Dict[str, t.Any], t.Dict[str, t.Any]]

# What playbooks/tasks/plan.yml derives from the other two secrets (the database password comes as database_password_set).
SECRETS_SET = {"pictrs_api_key": {"kind": "string", "length": 32}, "lemmy_admin_password": {"kind": "string", "length": 24}}


def medium() -> Inventory:
    """The reference topology: 3 API + 3 senders + 1 scheduler, dedicated proxy, media and db hosts."""
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
        "web2": {"ansible_host": "10.0.0.22", "lemmy_host_address": "web2.internal"},
        "work1": {"lemmy_federation_processes": 2},
    }
    settings = {"lemmy_domain": "lemmy.example.org", "lemmy_version": "0.19.20", "database_password_set": True, "secret_facts": SECRETS_SET}
    return groups, host_vars, settings


def problems_of(inventory: Inventory) -> list[str]:
    with pytest.raises(PlanError) as caught:
        build_plan(*inventory)
    return caught.value.problems


def by_name(plan: dict[str, t.Any], host: str) -> dict[str, dict[str, t.Any]]:
    return {p["name"]: p for p in plan["processes"] if p["host"] == host}


# --------------------------------------------------------------------------- a valid plan


def test_medium_plans_three_api_three_senders_one_scheduler() -> None:
    plan = build_plan(*medium())
    kinds = [p["kind"] for p in plan["processes"]]
    assert kinds.count("api") == 3
    assert kinds.count("ui") == 3
    assert kinds.count("federation") == 3
    assert kinds.count("scheduler") == 1
    assert kinds.count("pictrs") == 1
    senders = [(p["host"], p["slot"], p["shard_index"], p["shard_count"]) for p in plan["processes"] if p["kind"] == "federation"]
    assert senders == [("work1", 1, 1, 3), ("work1", 2, 2, 3), ("work2", 1, 3, 3)]
    assert plan["federation"] == {"enabled": True, "count": 3}
    assert plan["scheduler"] == {"host": "work1", "name": "lemmy-scheduler"}
    assert plan["warnings"] == []


def test_process_entries_follow_the_architecture_contract() -> None:
    plan = build_plan(*medium())
    api = by_name(plan, "web1")["lemmy-api-1"]
    assert api == {
        "host": "web1",
        "address": "10.0.0.21",
        "name": "lemmy-api-1",
        "kind": "api",
        "slot": 1,
        "port": 8536,
        "shard_index": None,
        "shard_count": None,
        "args": ["--disable-scheduled-tasks", "--disable-activity-sending"],
        "drain_key": "10.0.0.21:8536",
    }
    sender = by_name(plan, "work2")["lemmy-federation-3"]
    assert sender["port"] is None
    assert sender["args"] == [
        "--disable-http-server",
        "--disable-scheduled-tasks",
        "--federate-process-index",
        "3",
        "--federate-process-count",
        "3",
    ]
    scheduler = by_name(plan, "work1")["lemmy-scheduler"]
    assert scheduler["args"] == list(SCHEDULER_ARGS) == ["--disable-http-server", "--disable-activity-sending"]
    assert scheduler["port"] is None
    assert by_name(plan, "web1")["lemmy-ui-1"]["args"] == []
    assert by_name(plan, "media1")["pictrs"]["args"] == []
    assert list(API_ARGS) == api["args"]


def test_addresses_ports_and_upstreams() -> None:
    groups, host_vars, settings = medium()
    host_vars["web3"] = {"lemmy_api_processes": 2, "lemmy_ui_processes": "2", "lemmy_api_base_port": 9000, "lemmy_ui_base_port": 3000}
    host_vars["media1"] = {"pictrs_port": 8081}
    plan = build_plan(groups, host_vars, settings)
    assert plan["upstreams"]["api"] == ["10.0.0.21:8536", "web2.internal:8536", "web3:9000", "web3:9001"]
    assert plan["upstreams"]["ui"] == ["10.0.0.21:1234", "web2.internal:1234", "web3:3000", "web3:3001"]
    assert plan["upstreams"]["pictrs"] == ["media1:8081"]
    assert plan["hosts"]["web3"] == {"address": "web3", "processes": ["lemmy-api-1", "lemmy-api-2", "lemmy-ui-1", "lemmy-ui-2"]}
    assert plan["hosts"]["work1"]["processes"] == ["lemmy-federation-1", "lemmy-federation-2", "lemmy-scheduler"]
    assert "lb1" not in plan["hosts"] and "db1" not in plan["hosts"]


def test_processes_sorted_by_natural_host_then_kind_then_slot() -> None:
    groups, host_vars, settings = medium()
    groups["lemmy_api"] = ["web10", "web2", "web1"]
    groups["lemmy_ui"] = ["web2"]
    host_vars["web2"] = {"lemmy_api_processes": 2}
    plan = build_plan(groups, host_vars, settings)
    order = [(p["host"], p["name"]) for p in plan["processes"]]
    assert order[:6] == [
        ("media1", "pictrs"),
        ("web1", "lemmy-api-1"),
        ("web2", "lemmy-api-1"),
        ("web2", "lemmy-api-2"),
        ("web2", "lemmy-ui-1"),
        ("web10", "lemmy-api-1"),
    ]


def test_ipv6_addresses_are_bracketed_in_upstreams() -> None:
    groups, host_vars, settings = medium()
    host_vars["web1"] = {"lemmy_host_address": "2001:db8::21"}
    plan = build_plan(groups, host_vars, settings)
    assert plan["upstreams"]["api"][0] == "[2001:db8::21]:8536"
    assert hostport("10.0.0.1", 80) == "10.0.0.1:80"


def test_pins_are_honoured_and_unpinned_fill_the_smallest_free_indices() -> None:
    groups, host_vars, settings = medium()
    groups["lemmy_federation"] = ["work1", "work2", "work3"]
    host_vars["work1"] = {"lemmy_federation_processes": 2}
    host_vars["work2"] = {"lemmy_federation_processes": 2, "lemmy_federation_indices": [4, 1]}
    plan = build_plan(groups, host_vars, settings)
    senders = [(p["host"], p["slot"], p["shard_index"], p["name"]) for p in plan["processes"] if p["kind"] == "federation"]
    assert senders == [
        ("work1", 1, 2, "lemmy-federation-2"),
        ("work1", 2, 3, "lemmy-federation-3"),
        ("work2", 1, 4, "lemmy-federation-4"),
        ("work2", 2, 1, "lemmy-federation-1"),
        ("work3", 1, 5, "lemmy-federation-5"),
    ]


def test_pins_given_as_clean_strings_are_accepted() -> None:
    groups, host_vars, settings = medium()
    host_vars["work1"] = {"lemmy_federation_processes": "2", "lemmy_federation_indices": ["3", "1"]}
    plan = build_plan(groups, host_vars, settings)
    assert [p["shard_index"] for p in plan["processes"] if p["kind"] == "federation"] == [3, 1, 2]


def test_federation_disabled_plans_no_sender_and_warns_about_the_group() -> None:
    groups, host_vars, settings = medium()
    settings["lemmy_federation_enabled"] = False
    plan = build_plan(groups, host_vars, settings)
    assert plan["federation"] == {"enabled": False, "count": 0}
    assert not [p for p in plan["processes"] if p["kind"] == "federation"]
    assert any("lemmy_federation_enabled is false" in w and "work1, work2" in w for w in plan["warnings"])
    groups["lemmy_federation"] = []
    assert build_plan(groups, host_vars, settings)["warnings"] == []


def test_external_database() -> None:
    groups, host_vars, settings = medium()
    groups["lemmy_db"] = []
    settings["lemmy_database_host"] = "pg.example.net"
    database = build_plan(groups, host_vars, settings)["database"]
    assert database["host"] == "pg.example.net"
    assert database["address"] == "pg.example.net"
    assert database["managed"] is False


def test_defaults_of_the_global_settings() -> None:
    plan = build_plan(*medium())
    assert plan["ui_version"] == plan["version"] == "0.19.20"
    assert plan["static_strategy"] == "ip_hash"
    assert plan["api_balancing"] == "round_robin"
    assert plan["trusted_proxies"] == []
    assert plan["pictrs"] == {"repo_type": "sled", "hosts": ["media1"], "cpus": 4}
    assert plan["database"] == {
        "host": "db1",
        "address": "db1",
        "managed": True,
        "pool_size": 10,
        "pictrs_pool_size": 0,
        "max_connections": 200,
        "reserved": 10,
        "connections_needed": 70,
        "password_min_length": 12,
    }


# --------------------------------------------------------------------------- rate limits


@pytest.mark.parametrize("api_count", [1, 2, 3, 7, 32])
def test_round_robin_divides_the_count_keys_and_keeps_the_intervals(api_count: int) -> None:
    groups, host_vars, settings = medium()
    groups["lemmy_api"] = ["web1"]
    host_vars["web1"] = {"lemmy_api_processes": api_count}
    settings["lemmy_rate_limits"] = {"post": 12, "post_per_second": 300}
    settings["lemmy_database_max_connections"] = 1000
    limits = build_plan(groups, host_vars, settings)["rate_limits"]
    wanted = dict(RATE_LIMIT_DEFAULTS, post=12, post_per_second=300)
    for key, value in wanted.items():
        if key.endswith("_per_second"):
            assert limits[key] == value
        else:
            assert limits[key] == math.ceil(value / api_count)
            assert limits[key] * api_count >= value


def test_ip_hash_keeps_every_rate_limit() -> None:
    groups, host_vars, settings = medium()
    settings["nginx_api_balancing"] = "ip_hash"
    settings["lemmy_rate_limits"] = {"message": 90}
    assert build_plan(groups, host_vars, settings)["rate_limits"] == dict(RATE_LIMIT_DEFAULTS, message=90)


@pytest.mark.parametrize(("version", "register"), [("0.19.10", 3), ("0.19.11", 10), ("0.19.20", 10)])
def test_register_default_follows_the_release(version: str, register: int) -> None:
    groups, host_vars, settings = medium()
    settings["lemmy_version"] = version
    settings["nginx_api_balancing"] = "ip_hash"
    assert build_plan(groups, host_vars, settings)["rate_limits"]["register"] == register


# --------------------------------------------------------------------------- database budget


def test_pictrs_with_postgres_repo_counts_its_pool() -> None:
    # pict-rs 0.5 opens 8 x CPUs + min(CPUs, 4) connections per process; pictrs_cpus caps the CPUs.
    groups, host_vars, settings = medium()
    groups["pictrs"] = ["media1", "media2"]
    settings["pictrs_repo_type"] = "postgres"
    settings["pictrs_cpus"] = 1
    database = build_plan(groups, host_vars, settings)["database"]
    assert database["connections_needed"] == 7 * 10 + 2 * 9
    assert database["pictrs_pool_size"] == 9


def test_budget_message_suggests_a_pool_that_fits() -> None:
    groups, host_vars, settings = medium()
    settings["lemmy_database_max_connections"] = 60
    problems = problems_of((groups, host_vars, settings))
    assert problems == [
        "database: the plan needs 70 connections (7 lemmy_server processes x lemmy_database_pool_size 10) but "
        "lemmy_database_max_connections 60 leaves only 50 after 10 reserved; lower lemmy_database_pool_size to 7 "
        "or raise lemmy_database_max_connections to at least 80"
    ]
    settings["lemmy_database_pool_size"] = 7
    assert build_plan(groups, host_vars, settings)["database"]["connections_needed"] == 49
    settings["lemmy_database_pool_size"] = 10
    settings["lemmy_database_max_connections"] = 80
    assert build_plan(groups, host_vars, settings)["database"]["connections_needed"] == 70


def test_budget_exactly_at_the_limit_is_accepted() -> None:
    groups, host_vars, settings = medium()
    settings["lemmy_database_max_connections"] = 80
    settings["lemmy_database_reserved_connections"] = 10
    assert build_plan(groups, host_vars, settings)["database"]["connections_needed"] == 70
    settings["lemmy_database_max_connections"] = 79
    assert problems_of((groups, host_vars, settings))[0].startswith("database: the plan needs 70 connections")


# --------------------------------------------------------------------------- one case per rule

Mutation = t.Callable[[t.Dict[str, t.Any], t.Dict[str, t.Any], t.Dict[str, t.Any]], None]


def _set(target: str, key: str, value: t.Any) -> Mutation:
    def apply(groups: dict[str, t.Any], host_vars: dict[str, t.Any], settings: dict[str, t.Any]) -> None:
        if target == "groups":
            groups[key] = value
        elif target == "settings":
            settings[key] = value
        else:
            host_vars.setdefault(target, {})[key] = value

    return apply


def _drop(key: str) -> Mutation:
    def apply(groups: dict[str, t.Any], host_vars: dict[str, t.Any], settings: dict[str, t.Any]) -> None:
        settings.pop(key, None)

    return apply


RULES: list[tuple[str, list[Mutation], str]] = [
    (
        "count is a word",
        [_set("web2", "lemmy_api_processes", "two")],
        'host web2: lemmy_api_processes is "two"; set it to a positive integer such as 2',
    ),
    (
        "count is zero",
        [_set("web3", "lemmy_ui_processes", 0)],
        "host web3: lemmy_ui_processes is 0; set it to a positive integer such as 1, or remove web3 from group lemmy_ui",
    ),
    (
        "count is negative",
        [_set("work2", "lemmy_federation_processes", -1)],
        "host work2: lemmy_federation_processes is -1; set it to a positive integer such as 2",
    ),
    (
        "count is a float string",
        [_set("web1", "lemmy_api_processes", "2.0")],
        'host web1: lemmy_api_processes is "2.0"; set it to a positive integer such as 2',
    ),
    ("count is a bool", [_set("web1", "lemmy_api_processes", True)], "host web1: lemmy_api_processes is true; set it to a positive integer such as 2"),
    (
        "no scheduler",
        [_set("groups", "lemmy_scheduler", [])],
        "group lemmy_scheduler has no hosts; put exactly one host in it: without a scheduler hot ranks go stale, "
        "bans never expire and dead instances are never revived",
    ),
    (
        "two scheduler hosts",
        [_set("groups", "lemmy_scheduler", ["work2", "work1"])],
        "group lemmy_scheduler has 2 hosts (work1, work2); scheduled tasks must run in exactly one process, keep one host in the group",
    ),
    (
        "two scheduler processes",
        [_set("work1", "lemmy_scheduler_processes", 2)],
        "host work1: lemmy_scheduler_processes is 2; exactly one scheduler process may run, set it to 1 or remove it",
    ),
    (
        "no sender while federation is enabled",
        [_set("groups", "lemmy_federation", [])],
        "group lemmy_federation has no sender process, so no activity would leave this instance; "
        "put at least one host in lemmy_federation, or set lemmy_federation_enabled: false",
    ),
    (
        "duplicate pins",
        [_set("work1", "lemmy_federation_indices", [2, 2])],
        "federation index 2 is pinned by 2 senders (work1 slot 1, work1 slot 2); "
        "each index from 1 to 3 must be used exactly once: fix lemmy_federation_indices",
    ),
    (
        "a duplicate leaves an index missing",
        [_set("work1", "lemmy_federation_indices", [2, 2]), _set("work2", "lemmy_federation_indices", [1])],
        "no sender process has federation index 3 of 1..3, so instances with id % 3 == 2 would get no activities; "
        "fix lemmy_federation_indices so every index is used exactly once",
    ),
    (
        "out of range pin",
        [_set("work2", "lemmy_federation_indices", [4])],
        "host work2: lemmy_federation_indices has 4, but there are only 3 sender processes in total; use indices from 1 to 3",
    ),
    (
        "pin that is not a number",
        [_set("work1", "lemmy_federation_indices", [1, "x"])],
        'host work1: lemmy_federation_indices[1] is "x"; use whole numbers from 1 to 3 (the number of sender processes)',
    ),
    (
        "pin list of the wrong length",
        [_set("work1", "lemmy_federation_indices", [1])],
        "host work1: lemmy_federation_indices has 1 entry but lemmy_federation_processes is 2; give exactly one index per sender process",
    ),
    (
        "pins that are not a list",
        [_set("work2", "lemmy_federation_indices", 3)],
        "host work2: lemmy_federation_indices is 3; set it to a list with one shard index per sender process, such as [1]",
    ),
    ("no API", [_set("groups", "lemmy_api", [])], "group lemmy_api has no hosts; put at least one host in it to serve the API and federation inboxes"),
    ("no UI", [_set("groups", "lemmy_ui", [])], "group lemmy_ui has no hosts; put at least one host in it to serve the web interface"),
    ("no proxy", [_set("groups", "lemmy_proxy", [])], "group lemmy_proxy has no hosts; put at least one host in it to run nginx in front of the fleet"),
    (
        "two pict-rs with sled",
        [_set("groups", "pictrs", ["media1", "media2"])],
        "group pictrs has 2 hosts (media1, media2) but pictrs_repo_type is sled, a local file that cannot be shared; "
        "keep one host, or set pictrs_repo_type: postgres (pict-rs 0.5+ with object storage) to run several",
    ),
    ("no pict-rs", [_set("groups", "pictrs", [])], "group pictrs has no hosts; put one host in it to store and serve the instance's images"),
    (
        "trusts everyone (IPv4)",
        [_set("settings", "nginx_trusted_proxies", ["10.0.0.0/8", "0.0.0.0/0"])],
        'nginx_trusted_proxies[1] is "0.0.0.0/0", which trusts every address, so any client could forge its IP and dodge rate limits; '
        "list only your outer load balancers' addresses",
    ),
    (
        "trusts everyone (IPv6)",
        [_set("settings", "nginx_trusted_proxies", ["::/0"])],
        'nginx_trusted_proxies[0] is "::/0", which trusts every address, so any client could forge its IP and dodge rate limits; '
        "list only your outer load balancers' addresses",
    ),
    (
        "not a CIDR",
        [_set("settings", "nginx_trusted_proxies", ["10.0.0.0/33"])],
        'nginx_trusted_proxies[0] is "10.0.0.0/33", which is not a CIDR; write it like 10.0.0.0/24 or 2001:db8::/48',
    ),
    (
        "trusted proxies not a list",
        [_set("settings", "nginx_trusted_proxies", "10.0.0.0/8")],
        'nginx_trusted_proxies is "10.0.0.0/8"; set it to a list of CIDRs of your outer load balancers, such as ["10.0.0.0/24"], or []',
    ),
    (
        "missing domain",
        [_drop("lemmy_domain")],
        "lemmy_domain is not set; set it to the instance's public host name, such as lemmy.example.org, in group_vars/all",
    ),
    (
        "domain with a scheme",
        [_set("settings", "lemmy_domain", "https://lemmy.example.org")],
        'lemmy_domain is "https://lemmy.example.org"; set it to the bare public host name, such as lemmy.example.org (no scheme, port or path)',
    ),
    ("missing version", [_drop("lemmy_version")], 'lemmy_version is not set; set it to a release such as "0.19.20" in group_vars/all'),
    (
        "latest is refused",
        [_set("settings", "lemmy_version", "latest")],
        'lemmy_version is "latest"; floating tags are refused because a rolling upgrade needs an exact release: set it to one such as "0.19.20"',
    ),
    (
        "unknown version",
        [_set("settings", "lemmy_version", "0.19.21")],
        'lemmy_version is "0.19.21", which is not a release this collection knows (0.19.0 ... 0.19.20); set it to one of them such as "0.19.20"',
    ),
    (
        "unknown UI version",
        [_set("settings", "lemmy_ui_version", "0.18.5")],
        'lemmy_ui_version is "0.18.5", which is not a release this collection knows (0.19.0 ... 0.19.20); set it to one of them such as "0.19.20"',
    ),
    (
        "version with a v",
        [_set("settings", "lemmy_version", "v0.19.20")],
        'lemmy_version is "v0.19.20"; write the release without the "v", as "0.19.20"',
    ),
    (
        "version as a number",
        [_set("settings", "lemmy_version", 0.19)],
        'lemmy_version is 0.19, not a string; quote it, for example lemmy_version: "0.19.20"',
    ),
    (
        "password not set",
        [_set("settings", "database_password_set", False)],
        "lemmy_database_password is not set or is empty; set it in a vaulted file such as group_vars/all/vault.yml",
    ),
    (
        "object storage without bucket",
        [_set("settings", "lemmy_ui_static_strategy", "object_storage"), _set("settings", "lemmy_ui_static_s3_endpoint", "https://s3.example.org")],
        "lemmy_ui_static_bucket is not set but lemmy_ui_static_strategy is object_storage; set it to the bucket name, such as lemmy-static, "
        "or choose another lemmy_ui_static_strategy (ip_hash, sticky, single)",
    ),
    (
        "object storage without endpoint",
        [_set("settings", "lemmy_ui_static_strategy", "object_storage"), _set("settings", "lemmy_ui_static_bucket", "lemmy-static")],
        "lemmy_ui_static_s3_endpoint is not set but lemmy_ui_static_strategy is object_storage; set it to the S3 endpoint URL, such as "
        "https://s3.example.org, or choose another lemmy_ui_static_strategy (ip_hash, sticky, single)",
    ),
    (
        "unknown strategy",
        [_set("settings", "lemmy_ui_static_strategy", "cdn")],
        'lemmy_ui_static_strategy is "cdn"; set it to one of object_storage, ip_hash, sticky, single',
    ),
    (
        "unknown balancing",
        [_set("settings", "nginx_api_balancing", "least_conn")],
        'nginx_api_balancing is "least_conn"; set it to one of round_robin, ip_hash',
    ),
    ("unknown repo type", [_set("settings", "pictrs_repo_type", "sqlite")], 'pictrs_repo_type is "sqlite"; set it to one of sled, postgres'),
    (
        "two database hosts",
        [_set("groups", "lemmy_db", ["db2", "db1"])],
        "group lemmy_db has 2 hosts (db1, db2); this collection runs one PostgreSQL server, keep one host in the group "
        "or remove them all and point lemmy_database_host at an external server",
    ),
    (
        "no database at all",
        [_set("groups", "lemmy_db", [])],
        "no database: group lemmy_db has no host and lemmy_database_host is not set; put one host in lemmy_db, "
        "or set lemmy_database_host to your external PostgreSQL server",
    ),
    (
        "port clash between kinds",
        [_set("web1", "lemmy_ui_base_port", 8536)],
        "host web1: lemmy-api-1 and lemmy-ui-1 both want port 8536; change lemmy_api_base_port, lemmy_ui_base_port or pictrs_port on web1 "
        "so the port ranges do not overlap",
    ),
    (
        "port clash inside a range",
        [_set("web1", "lemmy_api_processes", 3), _set("web1", "lemmy_ui_base_port", 8538)],
        "host web1: lemmy-api-3 and lemmy-ui-1 both want port 8538; change lemmy_api_base_port, lemmy_ui_base_port or pictrs_port on web1 "
        "so the port ranges do not overlap",
    ),
    ("port out of range", [_set("media1", "pictrs_port", 70000)], "host media1: pictrs_port is 70000; set it to a TCP port between 1 and 65535 such as 8080"),
    (
        "port range past 65535",
        [_set("web1", "lemmy_api_base_port", 65535), _set("web1", "lemmy_api_processes", 2)],
        "host web1: lemmy_api_base_port 65535 with lemmy_api_processes 2 runs past port 65535; lower lemmy_api_base_port",
    ),
    (
        "pool size not a number",
        [_set("settings", "lemmy_database_pool_size", "ten")],
        'lemmy_database_pool_size is "ten"; set it to a positive integer such as 10',
    ),
    (
        "pool size below Lemmy's minimum",
        [_set("settings", "lemmy_database_pool_size", 1)],
        "lemmy_database_pool_size is 1; Lemmy always opens at least 2 connections per process, set it to 2 or more",
    ),
    (
        "reserve negative",
        [_set("settings", "lemmy_database_reserved_connections", -5)],
        "lemmy_database_reserved_connections is -5; set it to a whole number of 0 or more such as 10",
    ),
    (
        "unknown rate limit key",
        [_set("settings", "lemmy_rate_limits", {"posts": 3})],
        'lemmy_rate_limits has unknown key "posts"; use Lemmy\'s keys: ' + ", ".join(RATE_LIMIT_DEFAULTS),
    ),
    ("rate limit not positive", [_set("settings", "lemmy_rate_limits", {"post": 0})], "lemmy_rate_limits.post is 0; set it to a positive integer such as 6"),
    (
        "federation switch not a boolean",
        [_set("settings", "lemmy_federation_enabled", "maybe")],
        'lemmy_federation_enabled is "maybe"; set it to true or false',
    ),
    (
        "bad host address",
        [_set("web1", "lemmy_host_address", "web 1")],
        'host web1: lemmy_host_address is "web 1"; set it to a host name or IP address other hosts can reach it by',
    ),
    ("group not a list", [_set("groups", "lemmy_ui", "web1")], 'group lemmy_ui is "web1"; it must be a list of inventory host names'),
    (
        "pin outside the federation group",
        [_set("web1", "lemmy_federation_indices", [1])],
        "host web1: lemmy_federation_indices is set ([1]) but web1 is not in group lemmy_federation, so nothing would read it; "
        "add web1 to group lemmy_federation, or remove lemmy_federation_indices from the host (and from any group_vars that reach it)",
    ),
]


@pytest.mark.parametrize(("mutations", "message"), [pytest.param(m, msg, id=rule) for rule, m, msg in RULES])
def test_each_rule_reports_its_message(mutations: list[Mutation], message: str) -> None:
    groups, host_vars, settings = medium()
    for mutate in mutations:
        mutate(groups, host_vars, settings)
    assert message in problems_of((groups, host_vars, settings))


def test_the_reference_inventory_has_no_problem_so_each_rule_case_is_caused_by_its_mutation() -> None:
    assert build_plan(*medium())["processes"]


def test_every_problem_is_reported_at_once() -> None:
    groups, host_vars, settings = medium()
    chosen = [RULES[0], RULES[6], RULES[9], RULES[20], RULES[27], RULES[32], RULES[40]]
    for _rule, mutations, _message in chosen:
        for mutate in mutations:
            mutate(groups, host_vars, settings)
    problems = problems_of((groups, host_vars, settings))
    for _rule, _mutations, message in chosen:
        assert message in problems
    assert len(problems) == len(set(problems))


def test_plan_error_message_has_a_header_and_one_line_per_problem() -> None:
    groups, host_vars, settings = medium()
    settings["lemmy_version"] = "latest"
    host_vars["web2"] = {"lemmy_api_processes": "two"}
    with pytest.raises(PlanError) as caught:
        build_plan(groups, host_vars, settings)
    lines = str(caught.value).splitlines()
    assert lines[0] == "The inventory cannot be planned: 2 problems found. Fix all of them, then run again:"
    assert lines[1:] == ["- " + p for p in caught.value.problems]
    assert format_problems(["x"]).splitlines()[0].startswith("The inventory cannot be planned: 1 problem found.")


def test_input_is_not_modified() -> None:
    inventory = medium()
    before = copy.deepcopy(inventory)
    build_plan(*inventory)
    assert inventory == before


# --------------------------------------------------------------------------- warnings


@pytest.mark.parametrize(
    ("mutations", "fragment"),
    [
        pytest.param([_set("settings", "lemmy_ui_static_strategy", "single")], "lemmy_ui_static_strategy is single but there are 3 UI processes", id="single"),
        pytest.param([_set("settings", "lemmy_ui_version", "0.19.19")], "lemmy_ui_version 0.19.19 differs from lemmy_version 0.19.20", id="ui-version"),
        pytest.param(
            [_set("settings", "lemmy_database_host", "pg.example.net")], 'lemmy_database_host is "pg.example.net" but group lemmy_db holds db1', id="db-twice"
        ),
        pytest.param([_set("settings", "lemmy_colour", "blue")], "settings: ignored unknown key(s) lemmy_colour", id="unknown-setting"),
    ],
)
def test_warnings(mutations: list[Mutation], fragment: str) -> None:
    groups, host_vars, settings = medium()
    for mutate in mutations:
        mutate(groups, host_vars, settings)
    warnings = build_plan(groups, host_vars, settings)["warnings"]
    assert any(fragment in w for w in warnings), warnings


def test_single_strategy_with_one_ui_process_does_not_warn() -> None:
    groups, host_vars, settings = medium()
    groups["lemmy_ui"] = ["web1"]
    settings["lemmy_ui_static_strategy"] = "single"
    assert build_plan(groups, host_vars, settings)["warnings"] == []


# --------------------------------------------------------------------------- versions


def test_known_versions_can_be_injected() -> None:
    groups, host_vars, settings = medium()
    settings["lemmy_version"] = "1.0.0"
    assert build_plan(groups, host_vars, settings, known_versions=["0.19.20", "1.0.0"])["version"] == "1.0.0"
    problems = problems_of((groups, host_vars, settings))
    assert any(p.startswith('lemmy_version is "1.0.0", which is not a release') for p in problems)


def test_known_versions_default_is_0_19_0_to_0_19_20() -> None:
    assert KNOWN_VERSIONS[0] == "0.19.0" and KNOWN_VERSIONS[-1] == "0.19.20" and len(KNOWN_VERSIONS) == 21


# --------------------------------------------------------------------------- helpers


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1, 1),
        (12, 12),
        ("2", 2),
        (" 3 ", 3),
        (0, None),
        (-1, None),
        ("0", None),
        ("two", None),
        ("2.0", None),
        (2.0, None),
        (True, None),
        (None, None),
        ([2], None),
    ],
)
def test_parse_positive_int(value: t.Any, expected: int | None) -> None:
    assert parse_positive_int(value) == expected


def test_natural_key_orders_numbers_numerically() -> None:
    names = ["web10", "web2", "db1", "web1", "web01", "web"]
    assert sorted(names, key=natural_key) == ["db1", "web", "web01", "web1", "web2", "web10"]


def test_table_and_summary() -> None:
    plan = build_plan(*medium())
    table = render_table(plan)
    assert table[0].split() == ["HOST", "ADDRESS", "PROCESS", "KIND", "SHARD", "PORT"]
    assert len(table) == 1 + len(plan["processes"])
    rows = [line.split() for line in table[1:]]
    assert ["work2", "work2", "lemmy-federation-3", "federation", "3/3", "-"] in rows
    assert ["web1", "10.0.0.21", "lemmy-api-1", "api", "-", "8536"] in rows
    column = table[0].index("PROCESS")
    for line, proc in zip(table[1:], plan["processes"]):
        assert line[column:].startswith(proc["name"] + " ")
    summary = render_summary(plan)
    assert "federation senders: 3" in summary
    assert "database: db1, 70 of 190 connections needed (10 reserved, pool 10 per lemmy_server process)" in summary
