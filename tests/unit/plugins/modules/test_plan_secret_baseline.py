# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) fediscale.lemmy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""playbooks/tasks/plan.yml finds a secret set below `all` by comparing each host with the controller's
inventory value (hostvars['localhost']), as it does for the plan-level settings: a secret given as a play
variable, which every host of the play sees alike, is not taken for a value set on a group."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

_ROOT = Path(__file__).resolve().parents[4]
_PLAYBOOK = shutil.which("ansible-playbook", path=os.path.dirname(sys.executable)) or shutil.which("ansible-playbook")

GROUPS = {
    "lemmy_proxy": ["lb1"],
    "lemmy_api": ["web1", "web2"],
    "lemmy_ui": ["web1", "web2"],
    "lemmy_federation": ["work1"],
    "lemmy_scheduler": ["work1"],
    "pictrs": ["media1"],
    "lemmy_db": ["db1"],
}
ALL_VARS = {
    "lemmy_domain": "lemmy.example.org",
    "lemmy_version": "0.19.20",
    "lemmy_database_password": "db-password-in-all-1",
    "pictrs_api_key": "pictrs-key-in-all-2",
    "lemmy_admin_password": "admin-password-in-all-3",
}


def _collections_path() -> Path | None:
    parts = _ROOT.parts
    if "ansible_collections" in parts:
        return Path(*parts[: len(parts) - 1 - parts[::-1].index("ansible_collections")])
    linked = _ROOT / ".collections"
    return linked if (linked / "ansible_collections" / "fediscale" / "lemmy").exists() else None


def _run(tmp_path: Path, play_vars: dict[str, str], group_vars: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    collections = _collections_path()
    if not _PLAYBOOK or collections is None:
        pytest.skip("ansible-playbook or the collection path is not available")
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(collections), ANSIBLE_LOCAL_TEMP=str(tmp_path / "tmp"),
               ANSIBLE_NOCOLOR="1", ANSIBLE_PYTHON_INTERPRETER=sys.executable)
    for name in ("ANSIBLE_CONFIG", "PYTHONPATH"):
        env.pop(name, None)
    probe = subprocess.run([str(_PLAYBOOK), "--version"], env=env, capture_output=True, text=True, check=False)
    if probe.returncode != 0:
        pytest.skip("ansible-playbook cannot start here: %s" % probe.stderr.strip().splitlines()[-1:])
    children = {name: {"hosts": {host: None for host in hosts}} for name, hosts in GROUPS.items()}
    if group_vars:
        children["lemmy_api"]["vars"] = group_vars
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(json.dumps({"all": {"vars": ALL_VARS, "children": children}}))
    playbook = tmp_path / "plan_with_play_vars.yml"
    playbook.write_text(json.dumps([{
        "name": "Plan with play variables",
        "hosts": "localhost",
        "gather_facts": False,
        "vars": play_vars,
        "tasks": [{"name": "Compute the plan", "ansible.builtin.import_tasks": str(_ROOT / "playbooks" / "tasks" / "plan.yml")}],
    }]))
    return subprocess.run([str(_PLAYBOOK), "-i", str(inventory), str(playbook)], cwd=str(tmp_path), env=env,
                          capture_output=True, text=True, timeout=300, check=False)


@pytest.mark.parametrize("name", ["pictrs_api_key", "lemmy_admin_password", "lemmy_database_password"])
def test_a_secret_given_as_a_play_variable_is_not_a_value_below_all(tmp_path: Path, name: str) -> None:
    result = _run(tmp_path, {name: "play-level-secret-value-9"})
    text = result.stdout + result.stderr
    assert result.returncode == 0, text
    assert "another value on" not in text
    assert "play-level-secret-value-9" not in text


def test_a_secret_set_on_a_group_below_all_is_still_refused(tmp_path: Path) -> None:
    result = _run(tmp_path, {}, {"pictrs_api_key": "group-secret-value-8"})
    text = result.stdout + result.stderr
    assert result.returncode != 0
    assert "pictrs_api_key has another value on web1, web2 than on the controller" in text
    assert "group-secret-value-8" not in text
