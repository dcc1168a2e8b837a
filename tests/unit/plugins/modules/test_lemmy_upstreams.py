# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) fediscale.lemmy contributors
"""The lemmy_upstreams module on real files: converge, drain, undrain, idempotence, check mode, refusal, a failed nginx -t."""

from __future__ import annotations

import json
import typing as t
from pathlib import Path

import pytest

from ansible.module_utils.testing import patch_module_args

from ansible_collections.fediscale.lemmy.plugins.modules import lemmy_upstreams

POOLS = {
    "proxy": "lb1",
    "keepalive": 32,
    "max_fails": 3,
    "fail_timeout": "10s",
    "pools": {
        "api": {"name": "lemmy_api", "balancing": "round_robin", "servers": ["web1:8536", "[fd00::12]:8536"]},
        "ui": {"name": "lemmy_ui", "balancing": "round_robin", "servers": ["web1:1234", "[fd00::12]:1234"]},
    },
}


def run(capsys: pytest.CaptureFixture[str], args: dict[str, t.Any]) -> tuple[int, dict[str, t.Any]]:
    with patch_module_args(args):
        with pytest.raises(SystemExit) as exc:
            lemmy_upstreams.main()
    return int(exc.value.code or 0), json.loads(capsys.readouterr().out)


@pytest.fixture(name="proxy")
def fixture_proxy(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "drained").mkdir()
    (tmp_path / "pools.json").write_text(json.dumps(POOLS))
    return {"pools_file": str(tmp_path / "pools.json"), "drained_dir": str(tmp_path / "drained"), "upstreams_file": str(tmp_path / "upstreams.conf")}


def test_converge_drain_undrain_and_idempotence(proxy: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    Path(proxy["pools_file"]).unlink()
    code, result = run(capsys, dict(proxy, pools=POOLS, drained=[]))
    # The converge writes the pools a drain reads later.
    assert json.loads(Path(proxy["pools_file"]).read_text()) == POOLS
    assert code == 0 and result["changed"] is True and result["drained"] == []
    code, result = run(capsys, dict(proxy, pools=POOLS, drained=[]))
    assert code == 0 and result["changed"] is False

    code, result = run(capsys, dict(proxy, mark_down=["[fd00::12]:8536"]))
    assert code == 0 and result["changed"] is True and result["drained"] == ["[fd00::12]:8536"]
    assert (Path(proxy["drained_dir"]) / "[fd00::12]:8536").exists()
    assert "    server [fd00::12]:8536 down;\n" in Path(proxy["upstreams_file"]).read_text()

    code, result = run(capsys, dict(proxy, mark_down=["[fd00::12]:8536"]))
    assert code == 0 and result["changed"] is False

    code, result = run(capsys, dict(proxy, bring_back=["[fd00::12]:8536"]))
    assert code == 0 and result["changed"] is True and result["drained"] == []
    assert list(Path(proxy["drained_dir"]).iterdir()) == []
    assert " down;" not in Path(proxy["upstreams_file"]).read_text()


def test_check_mode_reports_a_diff_and_writes_nothing(proxy: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    code, result = run(capsys, dict(proxy, mark_down=["web1:8536"], _ansible_check_mode=True, _ansible_diff=True))
    assert code == 0 and result["changed"] is True and result["drained"] == ["web1:8536"]
    assert "server web1:8536 down;" in result["diff"][1]["after"]
    assert not Path(proxy["upstreams_file"]).exists() and list(Path(proxy["drained_dir"]).iterdir()) == []


def test_a_drain_that_empties_a_pool_is_refused_and_changes_nothing(proxy: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    run(capsys, dict(proxy, mark_down=["web1:1234"]))
    code, result = run(capsys, dict(proxy, mark_down=["[fd00::12]:1234"]))
    assert code == 1
    assert result["msg"].startswith("nginx drain on proxy lb1: draining [fd00::12]:1234 on proxy lb1 would leave the ui pool")
    assert sorted(p.name for p in Path(proxy["drained_dir"]).iterdir()) == ["web1:1234"]


def test_a_rejected_configuration_is_undone(proxy: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    run(capsys, dict(proxy, pools=POOLS, drained=[]))
    before = Path(proxy["upstreams_file"]).read_text()
    code, result = run(capsys, dict(proxy, mark_down=["web1:8536"], reload=True, test_command=["false"]))
    assert code == 1 and "rejected the configuration on proxy lb1; the drain was undone" in result["msg"]
    assert Path(proxy["upstreams_file"]).read_text() == before
    assert list(Path(proxy["drained_dir"]).iterdir()) == []


def test_a_proxy_never_configured_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, result = run(capsys, {"pools_file": str(tmp_path / "pools.json"), "drained_dir": str(tmp_path / "d"),
                                "upstreams_file": str(tmp_path / "u.conf"), "mark_down": ["web1:8536"]})
    assert code == 1 and "pools.json is missing on the proxy" in result["msg"] and "site.yml" in result["msg"]
