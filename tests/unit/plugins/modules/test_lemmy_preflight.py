# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) fediscale.lemmy contributors
"""The lemmy_preflight module: df output in, one refusal out."""

from __future__ import annotations

import json
import typing as t

import pytest

from ansible.module_utils.testing import patch_module_args

from ansible_collections.fediscale.lemmy.plugins.modules import lemmy_preflight

DF = "Filesystem 1024-blocks Used Available Capacity Mounted on\n/dev/sda1 41152736 8 40000000 1% /\n"
FIT = {"os_family": "Debian", "python_version": "3.11.2", "df": DF}


def run(capsys: pytest.CaptureFixture[str], args: dict[str, t.Any]) -> tuple[int, dict[str, t.Any]]:
    with patch_module_args(args):
        with pytest.raises(SystemExit) as exc:
            lemmy_preflight.main()
    return int(exc.value.code or 0), json.loads(capsys.readouterr().out)


def test_passes_and_reads_df(capsys: pytest.CaptureFixture[str]) -> None:
    code, result = run(capsys, {"hosts": {"web1": ["app"]}, "reports": {"web1": FIT}})
    assert code == 0 and result["ok"] is True and result["changed"] is False


def test_refuses_with_one_message(capsys: pytest.CaptureFixture[str]) -> None:
    code, result = run(capsys, {"hosts": {"web1": ["app"], "web2": ["app"]},
                                "reports": {"web1": dict(FIT, df=DF.replace("40000000", "1000")), "web2": {"unreachable": True, "msg": "gone"}}})
    assert code == 1 and result["failed"] is True
    assert sorted(result["blocking"]) == ["web1", "web2"]
    assert "host web1: only 0 MiB free on /var/lib" in result["msg"] and "host web2: unreachable (gone)" in result["msg"]


def test_leaves_out_on_purpose(capsys: pytest.CaptureFixture[str]) -> None:
    code, result = run(capsys, {"hosts": {"web1": ["app"], "web2": ["app"]},
                                "reports": {"web1": FIT, "web2": {"unreachable": True}}, "allow_unreachable": ["web2"]})
    assert code == 0 and result["left_out"] == ["web2"]


def test_refuses_a_bad_minimum_python(capsys: pytest.CaptureFixture[str]) -> None:
    code, result = run(capsys, {"hosts": {}, "reports": {}, "min_python": "three"})
    assert code == 1 and "min_python" in result["msg"]
