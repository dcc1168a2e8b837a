# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) fediscale.lemmy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Tests for the lemmy_upgrade_actions module (the decisions themselves: module_utils/test_upgrade.py)."""

from __future__ import annotations

import json
import typing as t

import pytest

from ansible.module_utils.testing import patch_module_args

from ansible_collections.fediscale.lemmy.plugins.module_utils._plan import build_plan
from ansible_collections.fediscale.lemmy.plugins.modules import lemmy_upgrade_actions

SECRETS = {name: {"kind": "string", "length": 24, "differs_on": []} for name in ("lemmy_database_password", "pictrs_api_key", "lemmy_admin_password")}
GROUPS = {"lemmy_proxy": ["lb1"], "lemmy_api": ["web1"], "lemmy_ui": ["web1"], "lemmy_federation": ["work1"], "lemmy_scheduler": ["work1"],
          "pictrs": ["media1"], "lemmy_db": ["db1"]}


def run(capsys: pytest.CaptureFixture[str], args: dict[str, t.Any]) -> tuple[int, dict[str, t.Any]]:
    with patch_module_args(args):
        with pytest.raises(SystemExit) as exc:
            lemmy_upgrade_actions.main()
    return int(exc.value.code or 0), json.loads(capsys.readouterr().out)


def test_actions_in_order(capsys: pytest.CaptureFixture[str]) -> None:
    settings = {"lemmy_domain": "lemmy.example.org", "lemmy_version": "0.19.20", "secret_facts": SECRETS}
    plan = build_plan(GROUPS, {"web1": {"ansible_host": "fd00::11"}}, settings)
    old = "dessalines/lemmy:0.19.19"
    containers = {
        "web1": [{"name": "lemmy-api-1", "image": old, "running": True}, {"name": "lemmy-ui-1", "image": "dessalines/lemmy-ui:0.19.19", "running": True}],
        "work1": [{"name": "lemmy-federation-1", "image": old, "running": True, "shard": "1/1"}, {"name": "lemmy-scheduler", "image": old, "running": True}],
    }
    code, result = run(capsys, {"plan": plan, "containers": containers, "server_image": "dessalines/lemmy:0.19.20", "ui_image": "dessalines/lemmy-ui:0.19.20"})
    assert code == 0 and result["changed"] is False
    assert [(a["step"], a["action"], a["name"]) for a in result["actions"]] == [
        ("fence", "stop", "lemmy-scheduler"),
        ("migrate", "migrate", "lemmy-migrate"),
        ("api", "replace", "lemmy-api-1"),
        ("federation", "replace", "lemmy-federation-1"),
        ("ui", "replace", "lemmy-ui-1"),
        ("scheduler", "replace", "lemmy-scheduler"),
    ]
    assert result["actions"][2]["drain_key"] == "[fd00::11]:8536"
    assert result["migrate"]["host"] == "web1"
    assert result["summary"][0] == "fence: 1 stop"


def test_a_plan_that_is_not_one_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    code, result = run(capsys, {"plan": {"domain": "x"}, "containers": {}, "server_image": "a", "ui_image": "b"})
    assert code == 1
    assert "fediscale.lemmy.lemmy_plan" in result["msg"]


def test_the_fence_scope_needs_no_target_and_reads_docker_host_info(capsys: pytest.CaptureFixture[str]) -> None:
    settings = {"lemmy_domain": "lemmy.example.org", "lemmy_version": "0.19.20", "secret_facts": SECRETS}
    plan = build_plan(GROUPS, {}, settings)
    listed = {"web1": [{"Names": ["/lemmy-scheduler"], "Image": "dessalines/lemmy:0.19.20", "State": "running", "Labels": {}, "Command": "x"}]}
    code, result = run(capsys, {"plan": plan, "containers": listed, "scope": "fence"})
    assert code == 0
    assert [(a["host"], a["name"], a["state"]) for a in result["actions"]] == [("web1", "lemmy-scheduler", "stopped")]
    assert result["running"] == {"server": ["0.19.20"], "ui": []}


def test_the_upgrade_scope_needs_both_targets(capsys: pytest.CaptureFixture[str]) -> None:
    settings = {"lemmy_domain": "lemmy.example.org", "lemmy_version": "0.19.20", "secret_facts": SECRETS}
    plan = build_plan(GROUPS, {}, settings)
    code, result = run(capsys, {"plan": plan, "containers": {}, "server_image": "dessalines/lemmy:0.19.20"})
    assert code == 1 and "ui_image" in result["msg"]
