# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) fediscale.lemmy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The plan's derived views: what playbooks and roles read instead of recomputing topology.

Among them the drain keys, which must be exactly the server names nginx writes (IPv6 bracketed), and the
nginx drain path that consumes them.
"""

from __future__ import annotations

import re
import typing as t
from pathlib import Path

import pytest

from ansible_collections.fediscale.lemmy.plugins.module_utils import _releases
from ansible_collections.fediscale.lemmy.plugins.module_utils._drain import SERVER_KEY, drained_after, render_upstreams
from ansible_collections.fediscale.lemmy.plugins.module_utils._plan import KNOWN_VERSIONS, MIGRATE_ARGS, PlanError, build_plan

_ROOT = Path(__file__).resolve().parents[4]
SECRETS = {
    "lemmy_database_password": {"kind": "string", "length": 32, "differs_on": []},
    "pictrs_api_key": {"kind": "string", "length": 32, "differs_on": []},
    "lemmy_admin_password": {"kind": "string", "length": 24, "differs_on": []},
}


def inventory(**overrides: t.Any) -> tuple[dict[str, t.Any], dict[str, t.Any], dict[str, t.Any]]:
    groups = {
        "lemmy_proxy": ["lb1"],
        "lemmy_api": ["web1", "web2"],
        "lemmy_ui": ["web1", "web2"],
        "lemmy_federation": ["work1"],
        "lemmy_scheduler": ["work1"],
        "pictrs": ["media1"],
        "lemmy_db": ["db1"],
    }
    host_vars: dict[str, t.Any] = {
        "lb1": {"ansible_host": "10.0.0.5"},
        "web1": {"ansible_host": "fd00::11", "lemmy_api_processes": 2},
        "web2": {"lemmy_host_address": "[fd00::12]"},
        "work1": {"ansible_host": "10.0.0.31", "lemmy_federation_processes": 2},
    }
    settings: dict[str, t.Any] = {"lemmy_domain": "lemmy.example.org", "lemmy_version": "0.19.20", "secret_facts": SECRETS}
    for key, value in overrides.items():
        if key == "host_vars":
            for host, values in value.items():
                host_vars.setdefault(host, {}).update(values)
        elif key == "groups":
            groups.update(value)
        else:
            settings[key] = value
    return groups, host_vars, settings


# --------------------------------------------------------------------------- drain keys


def test_drain_keys_bracket_ipv6_like_the_upstreams() -> None:
    plan = build_plan(*inventory())
    assert plan["drain_keys"] == {
        "web1": {"lemmy-api-1": "[fd00::11]:8536", "lemmy-api-2": "[fd00::11]:8537", "lemmy-ui-1": "[fd00::11]:1234"},
        "web2": {"lemmy-api-1": "[fd00::12]:8536", "lemmy-ui-1": "[fd00::12]:1234"},
    }
    assert plan["upstreams"]["api"] == ["[fd00::11]:8536", "[fd00::11]:8537", "[fd00::12]:8536"]
    assert plan["upstreams"]["ui"] == ["[fd00::11]:1234", "[fd00::12]:1234"]


def test_every_drained_process_carries_its_upstream_key_and_no_other_does() -> None:
    plan = build_plan(*inventory())
    for proc in plan["processes"]:
        if proc["kind"] in ("api", "ui"):
            assert proc["drain_key"] in plan["upstreams"][proc["kind"]]
        else:
            assert proc["drain_key"] is None
    keys = [p["drain_key"] for p in plan["processes"] if p["drain_key"]]
    assert sorted(keys) == sorted(plan["upstreams"]["api"] + plan["upstreams"]["ui"])


def test_ipv4_and_names_are_not_bracketed() -> None:
    plan = build_plan(*inventory(host_vars={"web1": {"ansible_host": "10.0.0.11"}, "web2": {"lemmy_host_address": "web2.internal"}}))
    assert plan["drain_keys"]["web1"]["lemmy-api-2"] == "10.0.0.11:8537"
    assert plan["drain_keys"]["web2"]["lemmy-ui-1"] == "web2.internal:1234"


def test_the_nginx_drain_path_accepts_and_renders_ipv6_drain_keys() -> None:
    """The drain (_drain.py, used by lemmy_upstreams) takes the plan's keys as they are and marks exactly them down."""
    plan = build_plan(*inventory())
    keys = plan["upstreams"]["api"] + plan["upstreams"]["ui"]
    assert all(SERVER_KEY.match(key) for key in keys), SERVER_KEY.pattern
    # What the upgrade used to build from address and port: nginx knows no such server, and the drain refuses it.
    assert "fd00::11:8536" not in keys
    assert not SERVER_KEY.match("fd00::11:8536")

    pools = {
        "proxy": "lb1",
        "max_fails": 1,
        "fail_timeout": "10s",
        "keepalive": 32,
        "pools": {
            "api": {"name": "lemmy_api", "balancing": "round_robin", "servers": plan["upstreams"]["api"]},
            "ui": {"name": "lemmy_ui", "balancing": "ip_hash", "servers": plan["upstreams"]["ui"]},
        },
    }
    drained = drained_after(pools, [], [plan["drain_keys"]["web1"]["lemmy-api-2"], plan["drain_keys"]["web1"]["lemmy-ui-1"]], [])
    text = render_upstreams(pools, drained, "# managed", "pools.json", "drained")
    assert "    server [fd00::11]:8537 down;\n" in text
    assert "    server [fd00::11]:1234 down;\n" in text
    assert "    server [fd00::11]:8536 max_fails=1 fail_timeout=10s;\n" in text
    assert "    server [fd00::12]:1234 max_fails=1 fail_timeout=10s;\n" in text


def test_no_playbook_or_role_rebuilds_an_upstream_key_from_address_and_port() -> None:
    offenders = []
    for path in list((_ROOT / "playbooks").rglob("*.yml")) + list((_ROOT / "roles").rglob("*.yml")):
        text = path.read_text(encoding="utf-8")
        for pattern in (r"map\('join', ':'\)", r"address ~ ':' ~", r"\.address ~ ':'"):
            if re.search(pattern, text):
                offenders.append("%s: %s" % (path.relative_to(_ROOT), pattern))
    assert offenders == []


# --------------------------------------------------------------------------- other views


def test_first_api_and_ui_are_the_first_of_their_kind() -> None:
    plan = build_plan(*inventory())
    assert plan["first_api"]["name"] == "lemmy-api-1" and plan["first_api"]["host"] == "web1"
    assert plan["first_api"]["drain_key"] == "[fd00::11]:8536"
    assert plan["first_ui"]["host"] == "web1"


def test_host_groups() -> None:
    plan = build_plan(*inventory())
    assert plan["host_groups"] == {
        "lemmy_plan_app_hosts": ["media1", "web1", "web2", "work1"],
        "lemmy_plan_lemmy_hosts": ["web1", "web2", "work1"],
        "lemmy_plan_server_hosts": ["web1", "web2", "work1"],
        "lemmy_plan_ui_hosts": ["web1", "web2"],
        "lemmy_plan_federation_hosts": ["work1"],
        "lemmy_plan_pictrs_hosts": ["media1"],
        "lemmy_plan_db_host": ["db1"],
        "lemmy_plan_first_api_host": ["web1"],
        "lemmy_plan_first_ui_host": ["web1"],
    }


def test_host_groups_follow_natural_order_and_leave_out_an_external_database() -> None:
    groups, host_vars, settings = inventory(groups={"lemmy_api": ["web10", "web2"], "lemmy_ui": ["web10", "web2"], "lemmy_db": []})
    del host_vars["web1"]
    plan = build_plan(groups, host_vars, dict(settings, lemmy_database_host="db.example.org"))
    assert plan["host_groups"]["lemmy_plan_ui_hosts"] == ["web2", "web10"]
    assert plan["host_groups"]["lemmy_plan_db_host"] == []
    assert plan["first_api"]["host"] == "web2"


@pytest.mark.parametrize(
    ("lb1", "expected"),
    [
        ({}, {"address": "10.0.0.5:8480", "via": "internal", "host": "lb1"}),
        ({"nginx_internal_port": 9480}, {"address": "10.0.0.5:9480", "via": "internal", "host": "lb1"}),
        ({"nginx_internal_enabled": False}, {"address": "10.0.0.5:80", "via": "edge", "host": "lb1"}),
        ({"nginx_internal_enabled": "false", "nginx_listen_port": 8080}, {"address": "10.0.0.5:8080", "via": "edge", "host": "lb1"}),
        ({"nginx_internal_enabled": False, "nginx_tls_enabled": True}, {"address": "[fd00::11]:8536", "via": "api", "host": "web1"}),
        ({"ansible_host": "fd00::5"}, {"address": "[fd00::5]:8480", "via": "internal", "host": "lb1"}),
    ],
)
def test_the_ssr_address(lb1: dict[str, t.Any], expected: dict[str, t.Any]) -> None:
    plan = build_plan(*inventory(host_vars={"lb1": lb1}))
    assert plan["ssr"] == expected


@pytest.mark.parametrize("value", ["10.0.0.10:8480", "[fd00::10]:8480", "lemmy-internal.example:80", " 10.0.0.10:8480 "])
def test_lemmy_ui_internal_host_replaces_the_planned_ssr_address(value: str) -> None:
    plan = build_plan(*inventory(lemmy_ui_internal_host=value))
    assert plan["ssr"] == {"address": value.strip(), "via": "lemmy_ui_internal_host", "host": None}


@pytest.mark.parametrize("value", [None, ""])
def test_an_unset_lemmy_ui_internal_host_leaves_the_plan_its_choice(value: t.Any) -> None:
    assert build_plan(*inventory(lemmy_ui_internal_host=value))["ssr"]["via"] == "internal"


@pytest.mark.parametrize(
    ("value", "hint"),
    [
        ("http://10.0.0.10:8480", "10.0.0.10:8480"),
        ("10.0.0.10:8480/api", "10.0.0.10:8480"),
        ("10.0.0.10", "10.0.0.10:8537"),
        ("fd00::10:8480", None),
        (8480, None),
    ],
)
def test_a_bad_lemmy_ui_internal_host_is_refused_with_a_fix(value: t.Any, hint: str | None) -> None:
    with pytest.raises(PlanError) as caught:
        build_plan(*inventory(lemmy_ui_internal_host=value))
    (problem,) = [p for p in caught.value.problems if "lemmy_ui_internal_host" in p]
    assert problem.startswith("lemmy_ui_internal_host is ")
    assert "without a scheme or path" in problem and "10.0.0.5:8480" in problem
    if hint:
        assert "such as %s," % hint in problem


def test_no_role_or_playbook_falls_back_from_the_planned_ssr_address() -> None:
    """The SSR address is decided once, in the plan (the lemmy_plan action reads lemmy_ui_internal_host): no template reads it."""
    readers = [
        str(path.relative_to(_ROOT))
        for folder in ("roles", "playbooks")
        for path in sorted((_ROOT / folder).rglob("*.yml"))
        # Read in a template expression; prose in comments and messages may name it.
        if re.search(r"\{\{[^}]*(?<![\w.])lemmy_ui_internal_host\b", path.read_text(encoding="utf-8"))
    ]
    assert readers == []


def test_a_bad_internal_setting_is_refused_once() -> None:
    with pytest.raises(PlanError) as caught:
        build_plan(*inventory(host_vars={"lb1": {"nginx_internal_enabled": "sometimes"}}))
    assert caught.value.problems == ['host lb1: nginx_internal_enabled is "sometimes"; set it to true or false']


def test_the_internal_port_must_not_clash_with_a_process_on_the_proxy() -> None:
    groups = {"lemmy_proxy": ["web1"]}
    with pytest.raises(PlanError) as caught:
        build_plan(*inventory(groups=groups, host_vars={"web1": {"nginx_internal_port": 8536}, "lb1": {}}))
    assert any("nginx_internal_port" in p and "8536" in p for p in caught.value.problems), caught.value.problems


def test_database_clients_renderers_and_real_ip() -> None:
    plan = build_plan(*inventory(nginx_trusted_proxies=["192.0.2.0/24"]))
    # IPv6 without brackets, as getent and set_real_ip_from take them.
    assert plan["database_clients"] == ["10.0.0.31", "fd00::11", "fd00::12"]
    assert plan["ui_renderers"] == ["fd00::11", "fd00::12"]
    assert plan["real_ip_from"] == ["192.0.2.0/24", "fd00::11", "fd00::12"]
    postgres = build_plan(*inventory(pictrs_repo_type="postgres"))
    assert "media1" in postgres["database_clients"]


def test_release_and_migrate_views_come_from_the_release_table() -> None:
    plan = build_plan(*inventory())
    assert plan["release"] == _releases.strategy_for("0.19.20")
    assert plan["release"]["nodeinfo_path"] == "/nodeinfo/2.1"
    assert plan["migrate"] == {"args": list(MIGRATE_ARGS), "strategy": "migrate_only"}
    old = build_plan(*inventory(lemmy_version="0.19.3"))
    assert old["release"]["nodeinfo_path"] == "/nodeinfo/2.0.json"
    assert old["migrate"]["strategy"] == "first_api_process"


def test_known_versions_are_the_release_tables() -> None:
    assert tuple(KNOWN_VERSIONS) == _releases.ORDER


def test_no_role_defaults_to_a_lemmy_version() -> None:
    offenders = []
    for path in (_ROOT / "roles").glob("*/*/main.yml"):
        if path.parent.name not in ("defaults", "vars") or path.parts[-3] == "pictrs":
            continue
        text = path.read_text(encoding="utf-8")
        if re.search(r"default\(['\"]0\.\d+\.\d+['\"]\)|version\(['\"]0\.19\.4['\"]", text):
            offenders.append(str(path.relative_to(_ROOT)))
    assert offenders == []


# --------------------------------------------------------------------------- rate-limit columns


def test_the_rate_limit_columns_of_0_19_are_the_plan_keys() -> None:
    plan = build_plan(*inventory())
    assert plan["rate_limit_columns"] == {key: key for key in plan["rate_limits"]}


@pytest.mark.parametrize(
    ("version", "key", "column"),
    [
        ("0.19.20", "message_per_second", "message_per_second"),
        ("1.0.0-alpha.1", "message", "message_max_requests"),
        ("1.0.0", "message_per_second", "message_interval_seconds"),
        ("1.0.1", "import_user_settings", "import_user_settings_max_requests"),
    ],
)
def test_a_rate_limit_column_follows_the_release_that_named_it(version: str, key: str, column: str) -> None:
    assert _releases.rate_limit_column(version, key) == column


def test_no_role_compares_lemmy_versions_itself() -> None:
    """Which release does what is _releases' business: no role or playbook tests a Lemmy version in Jinja."""
    offenders = [
        str(path.relative_to(_ROOT))
        for folder in ("roles", "playbooks")
        for path in sorted((_ROOT / folder).rglob("*.yml"))
        if re.search(r"version\s*\(\s*['\"][0-9]", path.read_text(encoding="utf-8"))
    ]
    assert offenders == []


# --------------------------------------------------------------------------- images


def test_images_default_to_the_upstream_repositories_tagged_with_the_plan_versions() -> None:
    plan = build_plan(*inventory(lemmy_ui_version="0.19.19"))
    assert plan["images"] == {
        "server": "dessalines/lemmy:0.19.20",
        "ui": "dessalines/lemmy-ui:0.19.19",
        "pictrs": "asonix/pictrs:0.5.16",
    }


def test_a_repository_takes_the_plan_version_and_a_full_reference_wins() -> None:
    plan = build_plan(*inventory(
        lemmy_server_image_repository="registry.example.org:5000/lemmy/lemmy",
        lemmy_ui_image="registry.example.org:5000/lemmy/ui:custom-1",
        pictrs_image="asonix/pictrs@sha256:" + "a" * 64,
    ))
    assert plan["images"] == {
        "server": "registry.example.org:5000/lemmy/lemmy:0.19.20",
        "ui": "registry.example.org:5000/lemmy/ui:custom-1",
        "pictrs": "asonix/pictrs@sha256:" + "a" * 64,
    }


@pytest.mark.parametrize(
    ("key", "value", "words"),
    [
        ("lemmy_server_image", "dessalines/lemmy", "names no tag"),
        ("lemmy_ui_image", "Dessalines/Lemmy-UI:0.19.20", "image reference"),
        ("lemmy_server_image", "dessalines/lemmy: 0.19.20", "image reference"),
        ("lemmy_server_image_repository", "dessalines/lemmy:0.19.20", "repository alone"),
        ("pictrs_image", 0.5, "image reference"),
    ],
)
def test_a_wrong_image_is_refused_naming_the_variable(key: str, value: t.Any, words: str) -> None:
    with pytest.raises(PlanError) as caught:
        build_plan(*inventory(**{key: value}))
    line = next(p for p in caught.value.problems if p.startswith(key + " "))
    assert words in line


@pytest.mark.parametrize(
    ("key", "value", "example"),
    [
        ("lemmy_server_image", "dessalines/lemmy", "such as dessalines/lemmy:0.19.20"),
        ("lemmy_ui_image", "Dessalines/Lemmy-UI:0.19.20", "such as dessalines/lemmy-ui:0.19.20"),
        ("lemmy_ui_image_repository", "bad repo", "such as dessalines/lemmy-ui"),
        ("pictrs_image", "asonix/pictrs", "such as asonix/pictrs:0.5.16"),
        ("pictrs_image", 0.5, "such as asonix/pictrs:0.5.16"),
    ],
)
def test_an_image_refusal_suggests_a_reference_of_that_kind(key: str, value: t.Any, example: str) -> None:
    with pytest.raises(PlanError) as caught:
        build_plan(*inventory(**{key: value}))
    line = next(p for p in caught.value.problems if p.startswith(key + " "))
    assert example in line
    # A pict-rs or UI refusal never proposes the server's image.
    if not key.startswith("lemmy_server"):
        assert "dessalines/lemmy:" not in line
