# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) fediscale.lemmy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The lemmy_prometheus_targets module as Ansible runs it."""

from __future__ import annotations

import json
import typing as t

import pytest

from ansible.module_utils.testing import patch_module_args

from ansible_collections.fediscale.lemmy.plugins.module_utils._plan import build_plan
from ansible_collections.fediscale.lemmy.plugins.modules import lemmy_prometheus_targets

GROUPS = {"lemmy_proxy": ["lb1"], "lemmy_api": ["web1"], "lemmy_ui": ["web1"], "lemmy_federation": ["web1"],
          "lemmy_scheduler": ["web1"], "pictrs": ["web1"], "lemmy_db": ["web1"]}
SECRETS = {name: {"kind": "string", "length": 32} for name in ("lemmy_database_password", "pictrs_api_key", "lemmy_admin_password")}
SETTINGS = {"lemmy_domain": "lemmy.example.org", "lemmy_version": "0.19.20", "secret_facts": SECRETS}
HOSTS = {"web1": {"ansible_host": "10.0.0.21"}}


def run(capsys: pytest.CaptureFixture[str], args: dict[str, t.Any]) -> tuple[int, dict[str, t.Any]]:
    with patch_module_args(args):
        with pytest.raises(SystemExit) as exited:
            lemmy_prometheus_targets.main()
    return int(exited.value.code or 0), json.loads(capsys.readouterr().out)


def test_returns_one_group_per_server_process(capsys: pytest.CaptureFixture[str]) -> None:
    plan = build_plan(GROUPS, HOSTS, dict(SETTINGS, lemmy_prometheus=True))
    code, result = run(capsys, {"plan": plan})
    assert code == 0 and result["changed"] is False and result["count"] == 3
    assert [g["targets"] for g in result["file_sd"]] == [["10.0.0.21:10002"], ["10.0.0.21:10003"], ["10.0.0.21:10004"]]
    assert [g["labels"]["shard"] for g in result["file_sd"]] == ["", "1/1", ""]


def test_plan_without_metrics_fails_saying_how_to_enable_them(capsys: pytest.CaptureFixture[str]) -> None:
    code, result = run(capsys, {"plan": build_plan(GROUPS, HOSTS, SETTINGS)})
    assert code == 1 and result["failed"] is True
    assert "set lemmy_prometheus: true" in result["msg"]
