# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) fediscale.lemmy contributors
"""lemmy_missing_packages: which packages dpkg does not report installed."""

from __future__ import annotations

import json
import shutil
import typing as t

import pytest

from ansible.module_utils.testing import patch_module_args

from ansible_collections.fediscale.lemmy.plugins.modules import lemmy_missing_packages

DPKG = "docker.io\tinstalled\npython3-requests\tconfig-files\nnginx\tnot-installed\nlibc6\tinstalled\n"


def test_only_installed_packages_are_not_missing_and_the_order_is_kept() -> None:
    names = ["python3-requests", "docker.io", "nginx", "never-heard-of-it", "docker.io=20.10*", "libc6:amd64"]
    # Removed with its config files left, known but not installed, unknown, a version pin: all missing.
    assert lemmy_missing_packages.missing_from(names, DPKG) == ["python3-requests", "nginx", "never-heard-of-it", "docker.io=20.10*"]


@pytest.mark.skipif(shutil.which("dpkg-query") is None, reason="needs dpkg")
def test_the_module_asks_dpkg_on_this_machine(capsys: pytest.CaptureFixture[str]) -> None:
    with patch_module_args({"names": ["dpkg", "fediscale-no-such-package"]}):
        with pytest.raises(SystemExit) as exc:
            lemmy_missing_packages.main()
    result: dict[str, t.Any] = json.loads(capsys.readouterr().out)
    assert not exc.value.code and result["changed"] is False
    assert result["missing"] == ["fediscale-no-such-package"]
