# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) fediscale.lemmy contributors
"""The lemmy_lock module on a real file: atomic take, refusal naming the holder, break, release, check mode."""

from __future__ import annotations

import json
import typing as t
from pathlib import Path

import pytest

from ansible.module_utils.testing import patch_module_args

from ansible_collections.fediscale.lemmy.plugins.modules import lemmy_lock

ME = {"user": "bob", "host": "ctl2", "pid": 99, "playbook": "site.yml", "started": "2026-01-02T09:00:00Z", "token": "bob@ctl2:99:a"}
OTHER = {"user": "alice", "host": "ctl1", "pid": 4242, "playbook": "rolling_upgrade.yml", "started": "2026-01-01T10:00:00Z", "token": "alice@ctl1:4242:b"}


def run(capsys: pytest.CaptureFixture[str], args: dict[str, t.Any]) -> tuple[int, dict[str, t.Any]]:
    with patch_module_args(args):
        with pytest.raises(SystemExit) as exc:
            lemmy_lock.main()
    return int(exc.value.code or 0), json.loads(capsys.readouterr().out)


def test_take_refuse_break_release(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "missing-dir" / "operator.lock"
    code, result = run(capsys, {"path": str(path), "holder": OTHER})
    assert code == 0 and result["action"] == "take" and result["changed"] is False
    assert json.loads(path.read_text())["user"] == "alice"

    code, result = run(capsys, {"path": str(path), "holder": ME})
    assert code == 1 and result["action"] == "refuse"
    assert "alice@ctl1 (pid 4242, rolling_upgrade.yml) since 2026-01-01T10:00:00Z" in result["msg"]
    assert json.loads(path.read_text())["token"] == OTHER["token"]

    code, result = run(capsys, {"path": str(path), "holder": ME, "state": "absent"})
    assert code == 0 and result["action"] == "leave" and path.exists()

    code, result = run(capsys, {"path": str(path), "holder": ME, "break_lock": True})
    assert code == 0 and result["action"] == "break" and result["holder"]["user"] == "alice"
    assert json.loads(path.read_text())["token"] == ME["token"]

    code, result = run(capsys, {"path": str(path), "holder": ME})
    assert code == 0 and result["action"] == "keep"

    code, result = run(capsys, {"path": str(path), "holder": ME, "state": "absent"})
    assert code == 0 and result["action"] == "remove" and not path.exists()


def test_check_mode_reads_only(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "fresh-host" / "operator.lock"
    code, result = run(capsys, {"path": str(path), "holder": ME, "_ansible_check_mode": True})
    assert code == 0 and result["action"] == "read_only" and not path.parent.exists()

    path.parent.mkdir()
    path.write_text(json.dumps(OTHER))
    code, result = run(capsys, {"path": str(path), "holder": ME, "break_lock": True, "_ansible_check_mode": True})
    assert code == 0 and result["action"] == "read_only"
    assert "a real run now would be refused" in json.dumps(result.get("warnings")), result
    assert json.loads(path.read_text())["token"] == OTHER["token"]


def test_a_run_that_loses_the_race_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "operator.lock"
    real_read = lemmy_lock._read

    def read_before_the_other_run_writes(p: str) -> tuple[bool, t.Any]:
        found = real_read(p)
        if not path.exists():
            path.write_text(json.dumps(OTHER))
        return found

    monkeypatch.setattr(lemmy_lock, "_read", read_before_the_other_run_writes)
    code, result = run(capsys, {"path": str(path), "holder": ME})
    assert code == 1 and "alice@ctl1" in result["msg"]
    assert json.loads(path.read_text())["token"] == OTHER["token"]
