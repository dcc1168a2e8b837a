# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) fediscale.lemmy contributors
"""The lemmy_files module on real files: writes what differs, owner and mode included, check mode, no content shown."""

from __future__ import annotations

import json
import os
import stat
import typing as t
from pathlib import Path

import pytest

from ansible.module_utils.testing import patch_module_args

from ansible_collections.fediscale.lemmy.plugins.modules import lemmy_files

ME = str(os.getuid())
MY_GROUP = str(os.getgid())


def run(capsys: pytest.CaptureFixture[str], args: dict[str, t.Any]) -> tuple[int, dict[str, t.Any]]:
    with patch_module_args(args):
        with pytest.raises(SystemExit) as exc:
            lemmy_files.main()
    return int(exc.value.code or 0), json.loads(capsys.readouterr().out)


def test_writes_only_what_differs_with_its_mode(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a, b = tmp_path / "lemmy-api-1.hjson", tmp_path / "lemmy-scheduler.hjson"
    files = [{"path": str(a), "content": '{"password": "s3cret-1"}\n'}, {"path": str(b), "content": "{}\n"}]
    code, result = run(capsys, {"files": files, "owner": ME, "group": MY_GROUP, "mode": "0600"})
    assert code == 0 and result["changed"] is True and result["changed_files"] == [str(a), str(b)]
    assert a.read_text() == '{"password": "s3cret-1"}\n' and stat.S_IMODE(a.stat().st_mode) == 0o600
    # The secret is not in what the module returns.
    assert "s3cret-1" not in json.dumps(result)

    code, result = run(capsys, {"files": files, "owner": ME, "group": MY_GROUP, "mode": "0600"})
    assert code == 0 and result["changed"] is False and result["changed_files"] == []

    b.chmod(0o644)
    files[0]["content"] = '{"password": "s3cret-2"}\n'
    code, result = run(capsys, {"files": files, "owner": ME, "group": MY_GROUP, "mode": "0600"})
    assert result["changed_files"] == [str(a), str(b)]
    assert stat.S_IMODE(b.stat().st_mode) == 0o600 and "s3cret-2" in a.read_text()
    # No temporary file is left beside them.
    assert sorted(p.name for p in tmp_path.iterdir()) == [a.name, b.name]


def test_check_mode_reports_and_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "fresh" / "lemmy-api-1.hjson"
    code, result = run(capsys, {"files": [{"path": str(target), "content": "{}"}], "owner": ME, "group": MY_GROUP, "_ansible_check_mode": True})
    assert code == 0 and result["changed_files"] == [str(target)] and not target.parent.exists()


def test_an_unknown_owner_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, result = run(capsys, {"files": [{"path": str(tmp_path / "x"), "content": "{}"}], "owner": "no-such-user-here"})
    assert code == 1 and "no-such-user-here" in result["msg"]


def test_directories_come_first_and_get_their_owner_and_mode(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    conf, cache = tmp_path / "lemmy", tmp_path / "cache" / "lemmy"
    # The cache's parent does not exist yet, as /var/cache/nginx before nginx is installed.
    args = {"directories": [{"path": str(conf), "owner": ME, "group": MY_GROUP},
                            {"path": str(cache), "owner": ME, "group": MY_GROUP, "mode": "0700"}],
            "files": [{"path": str(conf / "site.conf"), "text": "server {}\n"}], "owner": ME, "group": MY_GROUP, "mode": "0644"}
    code, result = run(capsys, args)
    assert code == 0 and result["changed_directories"] == [str(conf), str(cache)] and result["changed_files"] == [str(conf / "site.conf")]
    assert stat.S_IMODE(conf.stat().st_mode) == 0o755 and stat.S_IMODE(cache.stat().st_mode) == 0o700
    code, result = run(capsys, args)
    assert result["changed"] is False and result["changed_directories"] == [] and result["changed_files"] == []


def test_a_public_file_shows_its_diff_and_a_secret_never(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    site, secret = tmp_path / "site.conf", tmp_path / "lemmy-api-1.hjson"
    site.write_text("listen 80;\n")
    files = [{"path": str(site), "text": "listen 8080;\n"}, {"path": str(secret), "content": '{"password": "s3cret-3"}'}]
    code, result = run(capsys, {"files": files, "owner": ME, "group": MY_GROUP, "mode": "0644", "_ansible_diff": True, "_ansible_check_mode": True})
    assert code == 0 and result["changed_files"] == [str(site), str(secret)]
    assert result["diff"] == [{"before_header": str(site), "after_header": str(site), "before": "listen 80;\n", "after": "listen 8080;\n"}]
    assert "s3cret-3" not in json.dumps(result)
    # Check mode wrote nothing.
    assert site.read_text() == "listen 80;\n" and not secret.exists()


def test_a_file_needs_exactly_one_of_content_and_text(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, result = run(capsys, {"files": [{"path": str(tmp_path / "x"), "content": "first-value", "text": "second-value"}]})
    assert code == 1 and "mutually exclusive" in result["msg"]
    code, result = run(capsys, {"files": [{"path": str(tmp_path / "x")}]})
    assert code == 1 and "one of the following is required" in result["msg"]
