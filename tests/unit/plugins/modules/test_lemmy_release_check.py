# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) fediscale.lemmy contributors
"""Tests for the lemmy_release_check module."""

from __future__ import annotations

import json
import typing as t

import pytest

from ansible.module_utils.testing import patch_module_args

from ansible_collections.fediscale.lemmy.plugins.modules import lemmy_release_check


def run_module(capsys: pytest.CaptureFixture[str], args: dict[str, t.Any]) -> tuple[int, dict[str, t.Any]]:
    with patch_module_args(args):
        with pytest.raises(SystemExit) as exc:
            lemmy_release_check.main()
    out = capsys.readouterr().out
    return int(exc.value.code or 0), json.loads(out)


@pytest.mark.parametrize("running, target, extra, step", [
    (["0.19.19"], "0.19.20", {}, "ok"),
    (["0.19.19", "0.19.20"], "0.19.20", {}, "resume"),
    (["0.19.20"], "0.19.20", {}, "noop"),
    ([], "0.19.20", {}, "install"),
    (["0.19.18"], "0.19.20", {"allow_skip": True}, "skip"),
    (["0.19.3"], "0.19.4", {"allow_incompatible": True}, "incompatible"),
    (["0.19.19"], "0.19.4", {"allow_skip": True}, "downgrade"),
    (["0.19.12"], "0.19.13", {"table_rows": {"post": 10, "post_like": 10, "comment_like": 10}}, "ok"),
    (["0.19.12"], "0.19.13", {"allow_write_block": True}, "ok"),
])
def test_allowed(capsys: pytest.CaptureFixture[str], running: list[str], target: str, extra: dict[str, t.Any], step: str) -> None:
    code, result = run_module(capsys, dict(running=running, target=target, **extra))
    assert code == 0
    assert result["step"] == step
    assert result["refused"] is False
    assert result["changed"] is False
    assert target in result["releases"]


@pytest.mark.parametrize("running, target, step, override", [
    (["0.19.4"], "0.19.20", "skip", "lemmy_upgrade_allow_skip"),
    (["0.19.19"], "0.19.4", "downgrade", "lemmy_upgrade_allow_skip"),
    (["0.19.19"], "0.19.99", "unknown", "lemmy_upgrade_allow_skip"),
    (["0.19.3"], "0.19.4", "incompatible", "lemmy_upgrade_allow_incompatible"),
    (["0.19.12"], "0.19.13", "ok", "lemmy_upgrade_allow_write_block"),
])
def test_refused(capsys: pytest.CaptureFixture[str], running: list[str], target: str, step: str, override: str) -> None:
    code, result = run_module(capsys, dict(running=running, target=target))
    assert code == 1
    assert result["failed"] is True
    assert result["step"] == step
    assert result["refused"] is True
    assert override in result["msg"]
    assert running[0] in result["msg"] and target in result["msg"]


def test_write_block_sizes_and_limit_reach_the_decision(capsys: pytest.CaptureFixture[str]) -> None:
    rows = {"post": 300_000, "post_like": 1_000_000, "comment_like": 200_000}
    code, result = run_module(capsys, dict(running=["0.19.12"], target="0.19.13", table_rows=rows))
    assert code == 1
    assert result["write_blocks"][0]["estimated_rows"] == 1_500_000
    assert result["write_block_rows"] == 100_000
    assert "about 1,500,000 rows" in result["msg"] and "-e lemmy_upgrade_allow_write_block=true" in result["msg"]
    code, result = run_module(capsys, dict(running=["0.19.12"], target="0.19.13", table_rows=rows, write_block_rows=2_000_000))
    assert code == 0
    assert result["write_blocks"][0]["over_limit"] is False
    assert result["write_blocks"][-1]["migration"].startswith("schema r rebuild")


def test_negative_write_block_rows(capsys: pytest.CaptureFixture[str]) -> None:
    code, result = run_module(capsys, dict(running=["0.19.12"], target="0.19.13", write_block_rows=-1))
    assert code == 1
    assert "lemmy_upgrade_write_block_rows" in result["msg"]


@pytest.mark.parametrize("target", ["1.0.0", "1.0.0-beta.1", "0.20.0"])
def test_newer_line_is_refused(capsys: pytest.CaptureFixture[str], target: str) -> None:
    code, result = run_module(capsys, dict(running=["0.19.20"], target=target, allow_skip=True, allow_incompatible=True,
                                           allow_write_block=True))
    assert code == 1
    assert result["step"] == "unsupported"
    assert result["strategy"]["migrate"] == "first_api_process"
    assert result["releases"][target]["migrate_only"] is False
    assert "lemmy_server migration --all run" in result["msg"]


def test_refusal_names_migrations(capsys: pytest.CaptureFixture[str]) -> None:
    _code, result = run_module(capsys, dict(running=["0.19.6"], target="0.19.7"))
    assert "2024-11-12-090437_move-triggers" in result["msg"]
    assert result["breaks_older"][0]["breaks_version"] == "0.19.6"


def test_check_mode_gives_same_answer(capsys: pytest.CaptureFixture[str]) -> None:
    _code, normal = run_module(capsys, dict(running=["0.19.19"], target="0.19.20"))
    _code, checked = run_module(capsys, dict(running=["0.19.19"], target="0.19.20", _ansible_check_mode=True))
    for key in ("step", "migrations", "strategy", "refused", "msg"):
        assert normal[key] == checked[key]
    assert checked["strategy"]["nodeinfo_path"] == "/nodeinfo/2.1"


def test_empty_target(capsys: pytest.CaptureFixture[str]) -> None:
    code, result = run_module(capsys, dict(running=["0.19.19"], target=" "))
    assert code == 1
    assert "lemmy_version" in result["msg"]


def test_missing_target(capsys: pytest.CaptureFixture[str]) -> None:
    code, result = run_module(capsys, dict(running=["0.19.19"]))
    assert code == 1
    assert "target" in result["msg"]
