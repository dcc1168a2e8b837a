# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) fediscale.lemmy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The lemmy_topology module as Ansible runs it."""

from __future__ import annotations

import json
import shutil
import typing as t

import pytest

from ansible.module_utils.testing import patch_module_args

from ansible_collections.fediscale.lemmy.plugins.module_utils._plan import build_plan
from ansible_collections.fediscale.lemmy.plugins.modules import lemmy_topology

GROUPS = {"lemmy_proxy": ["lb1"], "lemmy_api": ["web1"], "lemmy_ui": ["web1"], "lemmy_federation": ["web1"],
          "lemmy_scheduler": ["web1"], "pictrs": ["web1"], "lemmy_db": ["web1"]}
SECRETS = {name: {"kind": "string", "length": 32} for name in ("lemmy_database_password", "pictrs_api_key", "lemmy_admin_password")}
PLAN = build_plan(GROUPS, {}, {"lemmy_domain": "lemmy.example.org", "lemmy_version": "0.19.20", "secret_facts": SECRETS})


def run(capsys: pytest.CaptureFixture[str], args: dict[str, t.Any]) -> dict[str, t.Any]:
    with patch_module_args(args):
        with pytest.raises(SystemExit):
            lemmy_topology.main()
    return json.loads(capsys.readouterr().out)


def test_returns_dot_text_and_the_dot_program(capsys: pytest.CaptureFixture[str]) -> None:
    result = run(capsys, {"plan": PLAN, "proxies": {"lb1": "10.0.0.10"}})
    assert result["changed"] is False
    assert result["dot"].startswith("digraph lemmy {")
    assert '"lb1/nginx" -> "pool/api"' in result["dot"]
    assert result["dot_executable"] == shutil.which("dot")


def test_bad_store_type_fails_with_the_host(capsys: pytest.CaptureFixture[str]) -> None:
    result = run(capsys, {"plan": PLAN, "proxies": ["lb1"], "pictrs_store_types": {"web1": "nfs"}})
    assert result["failed"] is True
    assert result["msg"] == "host web1: pictrs_store_type is 'nfs'; use filesystem or object_storage"
