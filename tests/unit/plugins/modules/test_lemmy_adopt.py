# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) fediscale.lemmy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The lemmy_adopt module as Ansible runs it."""

from __future__ import annotations

import json
import typing as t

import pytest

from ansible.module_utils.testing import patch_module_args

from ansible_collections.fediscale.lemmy.plugins.modules import lemmy_adopt

PASSWORD = "Zq8sF3kLmN0pR7tUvW2x"
DIR = "/srv/lemmy/lemmy.example.org"
LEMMY_HJSON = '{\n  database: {\n    host: postgres\n    password: "%s"\n  }\n  hostname: "lemmy.example.org"\n  pictrs: {\n    api_key: "%s"\n  }\n}\n' % (
    PASSWORD, PASSWORD)
COMPOSE = {
    "services": {
        "lemmy": {"image": "dessalines/lemmy:0.19.20"},
        "lemmy-ui": {"image": "dessalines/lemmy-ui:0.19.20"},
        "pictrs": {"image": "asonix/pictrs:0.5", "volumes": ["./volumes/pictrs:/mnt:Z"]},
        "postgres": {"image": "pgautoupgrade/pgautoupgrade:16-alpine", "environment": ["POSTGRES_PASSWORD=%s" % PASSWORD]},
    }
}
RUNNING = [{"Names": "lemmyexampleorg-postgres-1", "State": "running", "Labels": "com.docker.compose.service=postgres"}]


def run(capsys: pytest.CaptureFixture[str], args: dict[str, t.Any]) -> dict[str, t.Any]:
    with patch_module_args(args):
        with pytest.raises(SystemExit):
            lemmy_adopt.main()
    return json.loads(capsys.readouterr().out)


def test_returns_the_adoption_with_its_secrets(capsys: pytest.CaptureFixture[str]) -> None:
    result = run(capsys, {"host": "lemmy1", "project_dir": DIR + "/", "lemmy_hjson": LEMMY_HJSON, "compose": COMPOSE,
                          "containers": RUNNING, "target_postgres_major": 15})
    assert result["changed"] is False
    adoption = result["adoption"]
    assert adoption["project_dir"] == DIR
    assert adoption["secrets"]["lemmy_database_password"] == PASSWORD
    assert "runs PostgreSQL 16 and the target runs 15" in adoption["restore"]["warnings"][0]


def test_refusal_lists_problems_without_the_secret(capsys: pytest.CaptureFixture[str]) -> None:
    result = run(capsys, {"host": "lemmy1", "project_dir": DIR, "lemmy_hjson": LEMMY_HJSON, "compose": COMPOSE, "containers": []})
    assert result["failed"] is True
    assert result["problems"] == [
        "no container of compose project lemmyexampleorg runs the postgres service on lemmy1 (expected lemmyexampleorg-postgres-1); "
        "start the stack with lemmy-ansible first"
    ]
    assert PASSWORD not in json.dumps({k: v for k, v in result.items() if k != "invocation"})
