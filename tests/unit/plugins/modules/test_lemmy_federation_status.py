# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) fediscale.lemmy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The lemmy_federation_status module as Ansible runs it, with psql's output faked."""

from __future__ import annotations

import json
import typing as t

import pytest

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.testing import patch_module_args

from ansible_collections.fediscale.lemmy.plugins.modules import lemmy_federation_status

# json_agg puts a line break between elements, as psql prints it.
PSQL_OUT = (
    '{"now" : "2026-12-02T12:00:00+00:00", "newest_id" : 2, "instances" : [{"id":2,"domain":"lagging.example","last_successful_id":0,'
    '"fail_count":40,"last_retry":null,"last_successful_published_time":null,"oldest_unsent_published":"2026-11-26T00:00:00+00:00"}, \n'
    ' {"id":3,"domain":"recent.example","last_successful_id":1,"fail_count":2,"last_retry":null,"last_successful_published_time":null,'
    '"oldest_unsent_published":"2026-12-02T11:00:00+00:00"}]}\n'
)


def run(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, rc: int, out: str, err: str = "") -> tuple[dict[str, t.Any], list[t.Any]]:
    calls: list[t.Any] = []

    def fake_run(_self: AnsibleModule, argv: list[str], **kwargs: t.Any) -> tuple[int, str, str]:
        calls.append((argv, kwargs))
        return rc, out, err

    monkeypatch.setattr(AnsibleModule, "run_command", fake_run)
    monkeypatch.setattr(AnsibleModule, "get_bin_path", lambda _self, name, required=False: "/usr/bin/" + name)
    with patch_module_args({"shard_count": 3, "login_password": "s3cret-password"}):
        with pytest.raises(SystemExit):
            lemmy_federation_status.main()
    return json.loads(capsys.readouterr().out), calls


def test_reads_multiline_psql_json_and_keeps_the_password_off_the_command_line(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    result, calls = run(capsys, monkeypatch, 0, PSQL_OUT)
    assert result["changed"] is False
    assert result["report"]["stale"] == ["lagging.example"]
    assert [r["shard"] for r in result["report"]["instances"]] == ["1/3", "3/3"]
    argv, kwargs = calls[0]
    assert "s3cret-password" not in " ".join(argv)
    assert kwargs["environ_update"]["PGPASSWORD"] == "s3cret-password"
    assert "SET default_transaction_read_only = on" in argv


def test_psql_failure_names_the_connection(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    result, _calls = run(capsys, monkeypatch, 2, "", "psql: error: password authentication failed\n")
    assert result["failed"] is True
    assert result["msg"] == "psql could not read the federation state as lemmy@127.0.0.1:5432/lemmy: psql: error: password authentication failed"
    assert "s3cret-password" not in json.dumps(result)
