# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) fediscale.lemmy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Inputs the planner refuses before any host is contacted, one class of wrong input per section."""

from __future__ import annotations

import copy
import json
import typing as t
from pathlib import Path

import pytest
import yaml

from ansible_collections.fediscale.lemmy.plugins.module_utils._plan import (
    DATABASE_PASSWORD_MIN_LENGTH,
    HOST_VAR_DEFAULTS,
    SETTING_DEFAULTS,
    PlanError,
    build_plan,
)

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


# --------------------------------------------------------------------------- helpers for the classes below

Mutation = t.Callable[[t.Dict[str, t.Any], t.Dict[str, t.Any], t.Dict[str, t.Any]], None]


def _setting(key: str, value: t.Any) -> Mutation:
    def apply(groups: dict[str, t.Any], host_vars: dict[str, t.Any], settings: dict[str, t.Any]) -> None:
        settings[key] = value

    return apply


def _host(host: str, key: str, value: t.Any) -> Mutation:
    def apply(groups: dict[str, t.Any], host_vars: dict[str, t.Any], settings: dict[str, t.Any]) -> None:
        host_vars.setdefault(host, {})[key] = value

    return apply


def _group(name: str, members: list[str]) -> Mutation:
    def apply(groups: dict[str, t.Any], host_vars: dict[str, t.Any], settings: dict[str, t.Any]) -> None:
        groups[name] = members

    return apply


def _secret(name: str, **fact: t.Any) -> Mutation:
    def apply(groups: dict[str, t.Any], host_vars: dict[str, t.Any], settings: dict[str, t.Any]) -> None:
        if fact.get("kind") == "absent":
            settings["secret_facts"].pop(name, None)
        else:
            settings["secret_facts"][name] = dict({"kind": "string", "length": 20, "differs_on": []}, **fact)

    return apply


OBJECT_STORAGE = [
    _setting("lemmy_ui_static_strategy", "object_storage"),
    _setting("lemmy_ui_static_bucket", "lemmy-static"),
    _setting("lemmy_ui_static_s3_endpoint", "https://s3.example.org"),
    _setting("nginx_static_origin", "https://s3.example.org"),
]


def _refused(mutations: list[Mutation], message: str, **kwargs: t.Any) -> None:
    groups, host_vars, settings = medium()
    for mutate in mutations:
        mutate(groups, host_vars, settings)
    problems = problems_of((groups, host_vars, settings), **kwargs)
    assert message in problems, problems


def _accepted(mutations: list[Mutation], **kwargs: t.Any) -> dict[str, t.Any]:
    groups, host_vars, settings = medium()
    for mutate in mutations:
        mutate(groups, host_vars, settings)
    return build_plan(groups, host_vars, settings, **kwargs)


def test_the_reference_inventory_plans_with_and_without_object_storage() -> None:
    assert _accepted([])["processes"]
    assert _accepted(OBJECT_STORAGE)["static_strategy"] == "object_storage"


# --------------------------------------------------------------------------- 1. secrets

VAULT = "set it in a vaulted file such as group_vars/all/vault.yml"


@pytest.mark.parametrize(
    ("mutations", "message"),
    [
        pytest.param([_secret("pictrs_api_key", kind="missing", length=0)], "pictrs_api_key is not set or is empty; " + VAULT, id="api-key-missing"),
        pytest.param([_secret("pictrs_api_key", kind="absent")], "pictrs_api_key is not set or is empty; " + VAULT, id="api-key-not-described"),
        pytest.param([_secret("pictrs_api_key", length=0)], "pictrs_api_key is not set or is empty; " + VAULT, id="api-key-empty"),
        pytest.param(
            [_secret("lemmy_admin_password", kind="missing", length=0)], "lemmy_admin_password is not set or is empty; " + VAULT, id="admin-missing"
        ),
        pytest.param([_secret("lemmy_admin_password", length=0)], "lemmy_admin_password is not set or is empty; " + VAULT, id="admin-empty"),
        pytest.param(
            [_secret("lemmy_admin_password", length=9)],
            "lemmy_admin_password has 9 characters; Lemmy accepts 10 to 60, choose one of that length",
            id="admin-too-short",
        ),
        pytest.param(
            [_secret("lemmy_admin_password", length=61)],
            "lemmy_admin_password has 61 characters; Lemmy accepts 10 to 60, choose one of that length",
            id="admin-too-long",
        ),
        pytest.param(
            [_secret("lemmy_database_password", length=11)],
            "lemmy_database_password has 11 characters, but the postgresql role on db1 refuses fewer than 12; choose a longer one",
            id="db-too-short-for-the-role",
        ),
        pytest.param(
            [_secret("lemmy_database_password", kind="missing", length=0)], "lemmy_database_password is not set or is empty; " + VAULT, id="db-missing"
        ),
        pytest.param(
            [_secret("lemmy_database_password", kind="integer", length=0)],
            'lemmy_database_password is a bare YAML number (an integer), not a string; quote it, as lemmy_database_password: "...", '
            "since YAML reads unquoted digits as a number and drops leading zeros",
            id="db-number",
        ),
        pytest.param(
            [_secret("lemmy_admin_password", kind="float", length=0)],
            'lemmy_admin_password is a bare YAML number (a float), not a string; quote it, as lemmy_admin_password: "...", '
            "since YAML reads unquoted digits as a number and drops leading zeros",
            id="admin-float",
        ),
        pytest.param(
            [_secret("pictrs_api_key", kind="boolean", length=0)],
            'pictrs_api_key is a YAML boolean (an unquoted yes, no, true or false), not a string; quote it, as pictrs_api_key: "..."',
            id="api-key-boolean",
        ),
        pytest.param(
            [_secret("pictrs_api_key", kind="list", length=0)], "pictrs_api_key is a list, not a string; set it to one string in a vaulted file", id="list"
        ),
        pytest.param(
            [_secret("lemmy_database_password", differs_on=["web2", "db1", "not-planned"])],
            "lemmy_database_password has another value on db1, web2 than on the controller, whose value the plan checks (values not shown); "
            "set it only in group_vars/all (or a vault file there), not on a group below all or on a host",
            id="differs-on-hosts",
        ),
        pytest.param(
            [*OBJECT_STORAGE, _secret("lemmy_ui_static_s3_secret_key", kind="missing", length=0)],
            "lemmy_ui_static_s3_secret_key is not set or is empty (lemmy_ui_static_strategy is object_storage); " + VAULT,
            id="s3-secret-key-missing",
        ),
        pytest.param(
            [*OBJECT_STORAGE, _secret("lemmy_ui_static_s3_access_key", length=0)],
            "lemmy_ui_static_s3_access_key is not set or is empty (lemmy_ui_static_strategy is object_storage); " + VAULT,
            id="s3-access-key-empty",
        ),
        pytest.param(
            [_setting("secret_facts", "hunter2")],
            'secret_facts is "hunter2"; pass a mapping of secret name to {kind, length, differs_on}',
            id="facts-not-a-mapping",
        ),
    ],
)
def test_secrets_are_refused(mutations: list[Mutation], message: str) -> None:
    _refused(mutations, message)


@pytest.mark.parametrize(
    "mutations",
    [
        pytest.param([_secret("lemmy_admin_password", length=10)], id="admin-10"),
        pytest.param([_secret("lemmy_admin_password", length=60)], id="admin-60"),
        pytest.param([_secret("lemmy_database_password", length=12)], id="db-12"),
        pytest.param(
            [_group("lemmy_db", []), _setting("lemmy_database_host", "pg.example.net"), _secret("lemmy_database_password", length=6)], id="external-db"
        ),
        pytest.param([_secret("lemmy_ui_static_s3_access_key", kind="missing", length=0)], id="s3-keys-unused-without-object-storage"),
        pytest.param([_secret("lemmy_database_password", differs_on=["excluded1"])], id="differs-only-off-the-fleet"),
    ],
)
def test_secrets_that_are_accepted(mutations: list[Mutation]) -> None:
    assert _accepted(mutations)["processes"]


def test_no_secret_value_reaches_the_plan_or_its_problems() -> None:
    # The planner is given only kinds and lengths; a caller that puts a value into secret_facts by
    # mistake still never sees it echoed.
    secret = "s3cret-value-that-must-never-show"
    groups, host_vars, settings = medium()
    settings["secret_facts"]["pictrs_api_key"] = {"kind": "string", "length": 5, "value": secret}
    settings["secret_facts"]["lemmy_admin_password"] = {"kind": "string", "length": secret, "differs_on": secret}
    plan = build_plan(groups, host_vars, settings)
    assert secret not in repr(plan)
    settings["secret_facts"]["lemmy_admin_password"] = {"kind": secret, "length": 3, "differs_on": [secret]}
    settings["secret_facts"]["lemmy_database_password"] = {"kind": "string", "length": 3, "differs_on": [secret, "web1"], "value": secret}
    settings["lemmy_version"] = "latest"
    with pytest.raises(PlanError) as caught:
        build_plan(groups, host_vars, settings)
    assert len(caught.value.problems) == 4, caught.value.problems
    assert secret not in str(caught.value) + repr(caught.value.problems) + repr(caught.value.warnings)


# --------------------------------------------------------------------------- 2. object storage


@pytest.mark.parametrize(
    ("bucket", "why"),
    [
        ("ab", "it has 2 characters and S3 allows 3 to 63"),
        ("a" * 64, "it has 64 characters and S3 allows 3 to 63"),
        ("Lemmy-Static", "S3 allows only lowercase letters, digits, dots and hyphens, starting and ending with a letter or digit"),
        ("lemmy_static", "S3 allows only lowercase letters, digits, dots and hyphens, starting and ending with a letter or digit"),
        ("-lemmy", "S3 allows only lowercase letters, digits, dots and hyphens, starting and ending with a letter or digit"),
        ("lemmy.", "S3 allows only lowercase letters, digits, dots and hyphens, starting and ending with a letter or digit"),
        ("lemmy..static", "S3 forbids two dots in a row"),
        ("192.168.5.4", "S3 forbids names formatted as an IP address"),
        ("xn--lemmy", 'S3 reserves the prefix "xn--"'),
        ("lemmy-s3alias", 'S3 reserves the suffix "-s3alias"'),
        ("lemmy--ol-s3", 'S3 reserves the suffix "--ol-s3"'),
    ],
)
def test_bucket_names_s3_forbids(bucket: str, why: str) -> None:
    _refused(
        [*OBJECT_STORAGE, _setting("lemmy_ui_static_bucket", bucket)],
        'lemmy_ui_static_bucket is "%s", which S3 refuses (%s); choose a name such as lemmy-static' % (bucket, why),
    )


@pytest.mark.parametrize("bucket", ["abc", "lemmy-static", "lemmy.static.example", "a" * 63, "0lemmy9"])
def test_bucket_names_s3_allows(bucket: str) -> None:
    assert _accepted([*OBJECT_STORAGE, _setting("lemmy_ui_static_bucket", bucket)])["static_strategy"] == "object_storage"


OTHER = "or choose another lemmy_ui_static_strategy (ip_hash, sticky, single)"


@pytest.mark.parametrize(
    ("mutations", "message"),
    [
        pytest.param(
            [_setting("lemmy_ui_static_s3_endpoint", "s3.example.org")],
            'lemmy_ui_static_s3_endpoint is "s3.example.org", which is not an http:// or https:// URL; '
            "write it with its scheme, such as https://s3.example.org",
            id="endpoint-without-scheme",
        ),
        pytest.param(
            [_setting("lemmy_ui_static_s3_endpoint", "ftp://s3.example.org")],
            'lemmy_ui_static_s3_endpoint is "ftp://s3.example.org", which is not an http:// or https:// URL; write it with its scheme, '
            "such as https://s3.example.org",
            id="endpoint-other-scheme",
        ),
        pytest.param(
            [_setting("nginx_static_origin", None)],
            "nginx_static_origin is not set but lemmy_ui_static_strategy is object_storage; set it to the S3 base URL as the proxy hosts reach it, "
            "such as https://s3.example.org (nginx proxies /static/ to <origin>/<bucket>/static/), " + OTHER,
            id="origin-missing",
        ),
        pytest.param(
            [_setting("nginx_static_origin", "s3.internal:9000")],
            'nginx_static_origin is "s3.internal:9000"; set it to the scheme and host of the S3 server only, without a path, such as https://s3.internal:9000',
            id="origin-without-scheme",
        ),
        pytest.param(
            [_setting("nginx_static_origin", "https://s3.example.org/lemmy-static/")],
            'nginx_static_origin is "https://s3.example.org/lemmy-static/"; set it to the scheme and host of the S3 server only, without a path, '
            "such as https://s3.example.org",
            id="origin-with-path",
        ),
        pytest.param(
            [_setting("nginx_static_origin", 9000)],
            "nginx_static_origin is 9000 but lemmy_ui_static_strategy is object_storage; set it to the S3 base URL as the proxy hosts reach it, "
            "such as https://s3.example.org (nginx proxies /static/ to <origin>/<bucket>/static/), " + OTHER,
            id="origin-not-a-string",
        ),
        pytest.param(
            [_setting("lemmy_ui_static_bucket", None)],
            "lemmy_ui_static_bucket is not set but lemmy_ui_static_strategy is object_storage; set it to the bucket name, such as lemmy-static, " + OTHER,
            id="bucket-missing",
        ),
    ],
)
def test_object_storage_settings_are_refused(mutations: list[Mutation], message: str) -> None:
    _refused([*OBJECT_STORAGE, *mutations], message)


def test_object_storage_settings_are_ignored_with_another_strategy() -> None:
    assert _accepted([_setting("nginx_static_origin", "nonsense"), _setting("lemmy_ui_static_bucket", "UPPER")])["static_strategy"] == "ip_hash"


# --------------------------------------------------------------------------- 3. addresses with ports


@pytest.mark.parametrize(
    ("mutations", "message"),
    [
        pytest.param(
            [_group("lemmy_db", []), _setting("lemmy_database_host", "db:5432")],
            'lemmy_database_host is "db:5432", which carries a port; set lemmy_database_host: db and lemmy_database_port: 5432',
            id="database-host",
        ),
        pytest.param(
            [_group("lemmy_db", []), _setting("lemmy_database_host", "[2001:db8::5]:5432")],
            'lemmy_database_host is "[2001:db8::5]:5432", which carries a port; set lemmy_database_host: 2001:db8::5 and lemmy_database_port: 5432',
            id="database-host-ipv6",
        ),
        pytest.param(
            [_host("web1", "lemmy_host_address", "10.0.0.21:8536")],
            'host web1: lemmy_host_address is "10.0.0.21:8536", which carries a port; give the address alone (lemmy_host_address: 10.0.0.21): '
            "the ports come from lemmy_api_base_port, lemmy_ui_base_port and pictrs_port",
            id="host-address",
        ),
        pytest.param(
            [_host("web1", "ansible_host", "10.0.0.21:2222")],
            'host web1: ansible_host is "10.0.0.21:2222", which carries a port; set ansible_host: 10.0.0.21 and ansible_port: 2222',
            id="ansible-host",
        ),
        pytest.param(
            [_host("web1", "lemmy_host_address", "web1.internal"), _host("web1", "ansible_host", "10.0.0.21:2222")],
            'host web1: ansible_host is "10.0.0.21:2222", which carries a port; set ansible_host: 10.0.0.21 and ansible_port: 2222',
            id="ansible-host-behind-an-address",
        ),
        pytest.param(
            [_host("web1", "lemmy_host_address", "2001:db8::zz")],
            'host web1: lemmy_host_address is "2001:db8::zz", which is neither a host name nor an IP address; '
            "write a host name, an IPv4 address or an IPv6 address (bracketed or bare)",
            id="broken-ipv6",
        ),
        pytest.param(
            [_host("web1", "lemmy_host_address", "[2001:db8::21")],
            'host web1: lemmy_host_address is "[2001:db8::21", which is neither a host name nor an IP address; '
            "write a host name, an IPv4 address or an IPv6 address (bracketed or bare)",
            id="unbalanced-bracket",
        ),
    ],
)
def test_addresses_with_ports_are_refused(mutations: list[Mutation], message: str) -> None:
    _refused(mutations, message)


@pytest.mark.parametrize(
    ("address", "upstream"),
    [("2001:db8::21", "[2001:db8::21]:8536"), ("[2001:db8::21]", "[2001:db8::21]:8536"), ("web1.internal", "web1.internal:8536")],
)
def test_addresses_without_ports_are_accepted(address: str, upstream: str) -> None:
    plan = _accepted([_host("web1", "lemmy_host_address", address)])
    assert plan["upstreams"]["api"][0] == upstream


@pytest.mark.parametrize("db_host", ["2001:db8::5", "[2001:db8::5]", "pg.example.net", "10.0.0.51"])
def test_external_database_without_port_is_accepted(db_host: str) -> None:
    assert _accepted([_group("lemmy_db", []), _setting("lemmy_database_host", db_host)])["database"]["host"] == db_host


# --------------------------------------------------------------------------- 4. clashes


@pytest.mark.parametrize(
    ("mutations", "message"),
    [
        pytest.param(
            [_group("lemmy_proxy", ["web1"]), _host("web1", "lemmy_ui_base_port", 80)],
            "host web1: nginx (nginx_listen_port) and lemmy-ui-1 both want port 80; change lemmy_ui_base_port or nginx_listen_port on web1 so the ports differ",
            id="nginx-and-ui",
        ),
        pytest.param(
            [_group("lemmy_proxy", ["web1"]), _host("web1", "nginx_listen_port", 8536)],
            "host web1: nginx (nginx_listen_port) and lemmy-api-1 both want port 8536; change lemmy_api_base_port or nginx_listen_port on web1 "
            "so the ports differ",
            id="nginx-and-api",
        ),
        pytest.param(
            [_group("lemmy_proxy", ["media1"]), _host("media1", "pictrs_port", 80)],
            "host media1: nginx (nginx_listen_port) and pictrs both want port 80; change nginx_listen_port or pictrs_port on media1 so the ports differ",
            id="nginx-and-pictrs",
        ),
        pytest.param(
            [_group("lemmy_proxy", ["web1"]), _host("web1", "nginx_tls_enabled", True), _host("web1", "lemmy_api_base_port", 443)],
            "host web1: nginx (nginx_tls_port) and lemmy-api-1 both want port 443; change lemmy_api_base_port or nginx_tls_port on web1 so the ports differ",
            id="nginx-tls-and-api",
        ),
        pytest.param(
            [_host("lb1", "nginx_tls_enabled", True), _host("lb1", "nginx_tls_port", 80)],
            "host lb1: nginx (nginx_listen_port) and nginx (nginx_tls_port) both want port 80; change nginx_listen_port or nginx_tls_port on lb1 "
            "so the ports differ",
            id="nginx-with-itself",
        ),
        pytest.param(
            [_host("lb1", "nginx_listen_port", "http")],
            'host lb1: nginx_listen_port is "http"; set it to a TCP port between 1 and 65535 such as 80',
            id="nginx-port-not-a-number",
        ),
        pytest.param(
            [_host("lb1", "nginx_tls_enabled", "sometimes")], 'host lb1: nginx_tls_enabled is "sometimes"; set it to true or false', id="tls-not-a-bool"
        ),
        pytest.param(
            [_host("web2", "ansible_host", "10.0.0.21")],
            "hosts web1 and web2 both have the address 10.0.0.21, so their processes and ports would collide on one machine; give each host its own "
            "ansible_host or lemmy_host_address, or merge them into one inventory host in several groups",
            id="two-hosts-one-address",
        ),
        pytest.param(
            [_host("web2", "ansible_host", "2001:DB8::1"), _host("web3", "lemmy_host_address", "[2001:db8:0::1]")],
            "hosts web2 and web3 both have the address 2001:DB8::1, so their processes and ports would collide on one machine; give each host its own "
            "ansible_host or lemmy_host_address, or merge them into one inventory host in several groups",
            id="two-hosts-one-ipv6-written-differently",
        ),
        pytest.param(
            [_host("media1", "lemmy_host_address", "DB1")],
            "hosts db1 and media1 both have the address db1, so their processes and ports would collide on one machine; give each host its own "
            "ansible_host or lemmy_host_address, or merge them into one inventory host in several groups",
            id="address-equal-to-another-host-name",
        ),
    ],
)
def test_clashes_are_refused(mutations: list[Mutation], message: str) -> None:
    _refused(mutations, message)


@pytest.mark.parametrize(
    "mutations",
    [
        pytest.param([_group("lemmy_proxy", ["web1"])], id="nginx-beside-api-and-ui"),
        pytest.param([_group("lemmy_proxy", ["web1"]), _host("web1", "nginx_tls_enabled", True)], id="tls-beside-api-and-ui"),
        pytest.param([_host("lb1", "lemmy_ui_base_port", 80)], id="ui-port-on-a-host-without-ui"),
    ],
)
def test_no_clash_is_accepted(mutations: list[Mutation]) -> None:
    assert _accepted(mutations)["processes"]


# --------------------------------------------------------------------------- 5. settings silently ignored


@pytest.mark.parametrize(
    ("host", "key", "value", "group"),
    [
        ("lb1", "lemmy_api_processes", 2, "lemmy_api"),
        ("work2", "lemmy_ui_processes", 2, "lemmy_ui"),
        ("web1", "lemmy_federation_processes", 3, "lemmy_federation"),
        ("web1", "lemmy_federation_indices", [1], "lemmy_federation"),
        ("work2", "lemmy_scheduler_processes", 1, "lemmy_scheduler"),
    ],
)
def test_a_count_outside_its_group_is_refused(host: str, key: str, value: t.Any, group: str) -> None:
    _refused(
        [_host(host, key, value)],
        "host %s: %s is set (%s) but %s is not in group %s, so nothing would read it; add %s to group %s, "
        "or remove %s from the host (and from any group_vars that reach it)" % (host, key, json_of(value), host, group, host, group, key),
    )


def json_of(value: t.Any) -> str:
    return json.dumps(value)


def test_a_count_on_an_excluded_host_is_not_reported() -> None:
    mutations = [_group("lemmy_proxy", ["lb1", "lb2"]), _host("lb1", "lemmy_api_processes", 2)]
    _refused(mutations, "host lb1: lemmy_api_processes is set (2) but lb1 is not in group lemmy_api, so nothing would read it; add lb1 to group "
             "lemmy_api, or remove lemmy_api_processes from the host (and from any group_vars that reach it)")
    assert _accepted(mutations, excluded_hosts=["lb1"])["excluded_hosts"] == ["lb1"]


def test_federation_counts_wait_while_federation_is_off() -> None:
    plan = _accepted([_group("lemmy_federation", []), _setting("lemmy_federation_enabled", False)])
    assert plan["federation"] == {"enabled": False, "count": 0}


@pytest.mark.parametrize(
    ("key", "controller", "hosts", "shown"),
    [
        ("nginx_api_balancing", "round_robin", {"lb1": "ip_hash"}, '"ip_hash" on lb1, but "round_robin" on the controller'),
        ("nginx_api_balancing", None, {"lb1": "ip_hash"}, '"ip_hash" on lb1, but not set on the controller'),
        ("lemmy_ui_static_strategy", "ip_hash", {"web1": "sticky", "web2": "sticky", "web3": "single"}, '"single" on web3; "sticky" on web1, web2, but'),
        ("pictrs_repo_type", "sled", {"media1": None}, "not set on media1, but"),
        ("lemmy_rate_limits", {"post": 6}, {"web1": {"post": 3}}, '{"post": 3} on web1, but {"post": 6} on the controller'),
        ("nginx_trusted_proxies", [], {"lb1": ["0.0.0.0/0"]}, '["0.0.0.0/0"] on lb1, but [] on the controller'),
        ("pictrs_cpus", 4, {"media1": 8}, "8 on media1, but 4 on the controller"),
        ("lemmy_database_pool_size", 10, {"web1": "10"}, '"10" on web1, but 10 on the controller'),
        ("lemmy_version", "0.19.20", {"web1": "0.19.19"}, '"0.19.19" on web1, but "0.19.20" on the controller'),
    ],
)
def test_a_plan_level_setting_that_differs_below_all_is_refused(key: str, controller: t.Any, hosts: dict[str, t.Any], shown: str) -> None:
    groups, host_vars, settings = medium()
    if controller is not None:
        settings[key] = controller
    host_settings = {host: {key: value} for host, value in hosts.items()}
    problems = problems_of((groups, host_vars, settings), host_settings=host_settings)
    line = [p for p in problems if p.startswith(key + " differs between hosts and the controller: ")]
    assert len(line) == 1, problems
    assert shown in line[0]
    assert line[0].endswith(
        "whose value the plan uses for the whole fleet; set it only in group_vars/all (or with -e), not on a group below all or on a host"
    )


def test_many_hosts_with_another_value_are_summed_up() -> None:
    groups, host_vars, settings = medium()
    groups["lemmy_api"] = groups["lemmy_ui"] = ["web%d" % i for i in range(1, 11)]
    host_settings = {"web%d" % i: {"nginx_api_balancing": "ip_hash"} for i in range(1, 11)}
    problems = problems_of((groups, host_vars, settings), host_settings=host_settings)
    assert any('"ip_hash" on web1, web2, web3, web4, web5, web6 and 4 more, but not set' in p for p in problems), problems


def test_equal_values_on_every_host_and_off_the_fleet_are_accepted() -> None:
    groups, host_vars, settings = medium()
    settings["nginx_api_balancing"] = "ip_hash"
    host_settings: dict[str, t.Any] = {h: {"nginx_api_balancing": "ip_hash", "pictrs_repo_type": None} for h in ("lb1", "web1", "db1")}
    host_settings["elsewhere"] = {"nginx_api_balancing": "round_robin"}
    host_settings["web3"] = {"nginx_api_balancing": "round_robin"}
    plan = build_plan(groups, host_vars, settings, excluded_hosts=["web3"], host_settings=host_settings)
    assert plan["api_balancing"] == "ip_hash"


# --------------------------------------------------------------------------- 7. pict-rs connection budget


@pytest.mark.parametrize(("cpus", "per_process"), [(1, 9), (2, 18), (3, 27), (4, 36), (5, 44), (16, 132)])
def test_pictrs_cpus_sets_the_budget_of_each_pictrs_process(cpus: int, per_process: int) -> None:
    plan = _accepted(
        [
            _group("pictrs", ["media1", "media2", "media3"]),
            _setting("pictrs_repo_type", "postgres"),
            _setting("pictrs_cpus", cpus),
            _setting("lemmy_database_max_connections", 1000),
        ]
    )
    assert plan["database"]["pictrs_pool_size"] == per_process
    assert plan["database"]["connections_needed"] == 7 * 10 + 3 * per_process
    assert plan["pictrs"]["cpus"] == cpus


def test_pictrs_cpus_default_is_4_so_36_connections_per_process() -> None:
    plan = _accepted([_group("pictrs", ["media1", "media2"]), _setting("pictrs_repo_type", "postgres")])
    assert plan["pictrs"]["cpus"] == 4
    assert plan["database"]["pictrs_pool_size"] == 36
    assert plan["database"]["connections_needed"] == 70 + 72


def test_sled_pictrs_opens_no_database_connection() -> None:
    plan = _accepted([_setting("pictrs_cpus", 64)])
    assert plan["database"]["pictrs_pool_size"] == 0
    assert plan["database"]["connections_needed"] == 70


@pytest.mark.parametrize(
    ("mutations", "message"),
    [
        pytest.param(
            [_setting("pictrs_database_pool_size", 16)],
            "pictrs_database_pool_size is set (16) but no longer read: pict-rs 0.5 has no pool-size setting, it opens 8 x CPUs + min(CPUs, 4) "
            "connections per process; remove it and set pictrs_cpus instead (default 4, so 36 connections per pict-rs process)",
            id="dropped-setting",
        ),
        pytest.param([_setting("pictrs_cpus", 0)], "pictrs_cpus is 0; set it to a positive integer such as 4", id="zero"),
        pytest.param([_setting("pictrs_cpus", 1.5)], "pictrs_cpus is 1.5; set it to a positive integer such as 4", id="fraction"),
        pytest.param([_setting("pictrs_cpus", 5000)], "pictrs_cpus is 5000; set it to the CPUs pict-rs may use, at most 1024, such as 4", id="huge"),
        pytest.param(
            [
                _group("pictrs", ["media1", "media2"]),
                _setting("pictrs_repo_type", "postgres"),
                _setting("lemmy_database_max_connections", 120),
            ],
            "database: the plan needs 142 connections (7 lemmy_server processes x lemmy_database_pool_size 10 + 2 pict-rs x 36 "
            "(8 x pictrs_cpus 4 + 4)) but lemmy_database_max_connections 120 leaves only 110 after 10 reserved; lower lemmy_database_pool_size "
            "to 5 or raise lemmy_database_max_connections to at least 152, or lower pictrs_cpus",
            id="budget-with-pictrs",
        ),
    ],
)
def test_pictrs_budget_refusals(mutations: list[Mutation], message: str) -> None:
    _refused(mutations, message)


def test_dropped_pictrs_pool_size_on_a_group_names_the_hosts() -> None:
    problems = problems_of(medium(), host_settings={"media1": {"pictrs_database_pool_size": 16}})
    assert problems == [
        "pictrs_database_pool_size is set on hosts (16 on media1) but no longer read: pict-rs 0.5 has no pool-size setting, it opens "
        "8 x CPUs + min(CPUs, 4) connections per process; remove it and set pictrs_cpus instead (default 4, so 36 connections per pict-rs process)"
    ]


# --------------------------------------------------------------------------- one source for lists and defaults

_ROOT = Path(__file__).resolve().parents[4]


def test_the_plan_tasks_leave_reading_the_inventory_to_the_action() -> None:
    """No key list to keep in step by hand: the lemmy_plan action reads HOST_VAR_KEYS, PLAN_LEVEL_KEYS and SECRET_KEYS itself."""
    tasks = yaml.safe_load((_ROOT / "playbooks" / "tasks" / "plan.yml").read_text(encoding="utf-8"))
    (plan_task,) = [task for task in tasks[0]["block"] if "fediscale.lemmy.lemmy_plan" in task]
    assert set(plan_task["fediscale.lemmy.lemmy_plan"]) == {"excluded_hosts"}
    assert "vars" not in tasks[0]


def test_nginx_port_defaults_are_the_nginx_role_defaults() -> None:
    defaults = yaml.safe_load((_ROOT / "roles" / "nginx" / "defaults" / "main.yml").read_text(encoding="utf-8"))
    for key in ("nginx_listen_port", "nginx_tls_port", "nginx_tls_enabled", "nginx_internal_enabled", "nginx_internal_port"):
        assert HOST_VAR_DEFAULTS[key] == defaults[key], key


def test_the_postgresql_role_takes_its_password_rule_from_the_plan() -> None:
    preflight = (_ROOT / "roles" / "postgresql" / "tasks" / "preflight.yml").read_text(encoding="utf-8")
    assert "postgresql_plan.database.password_min_length" in preflight
    assert _accepted([])["database"]["password_min_length"] == DATABASE_PASSWORD_MIN_LENGTH


def test_the_pictrs_role_takes_its_cpus_from_the_plan() -> None:
    defaults = yaml.safe_load((_ROOT / "roles" / "pictrs" / "defaults" / "main.yml").read_text(encoding="utf-8"))
    assert "pictrs_plan.pictrs.cpus" in defaults["pictrs_cpus"]
    assert "default(%d)" % SETTING_DEFAULTS["pictrs_cpus"] in defaults["pictrs_cpus"]
