# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) fediscale.lemmy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The lemmy_plan module as Ansible runs it, and the plan playbook on the example inventories."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import typing as t
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hyp_settings
from hypothesis import strategies as st

from ansible.module_utils.testing import patch_module_args

from ansible_collections.fediscale.lemmy.plugins.module_utils._plan import HOST_VAR_KEYS, PLAN_LEVEL_KEYS
from ansible_collections.fediscale.lemmy.plugins.modules import lemmy_plan

GROUPS = {
    "lemmy_proxy": ["lb1"],
    "lemmy_api": ["web1", "web2"],
    "lemmy_ui": ["web1", "web2"],
    "lemmy_federation": ["work1"],
    "lemmy_scheduler": ["work1"],
    "pictrs": ["media1"],
    "lemmy_db": ["db1"],
}
HOST_VARS = {"web1": {"ansible_host": "10.0.0.11", "lemmy_api_processes": 2}, "work1": {"lemmy_federation_processes": 3}}
SETTINGS = {
    "lemmy_domain": "lemmy.example.org",
    "lemmy_version": "0.19.20",
    "database_password_set": True,
    "secret_facts": {"pictrs_api_key": {"kind": "string", "length": 32}, "lemmy_admin_password": {"kind": "string", "length": 24}},
}


def run(capsys: pytest.CaptureFixture[str], args: dict[str, t.Any]) -> dict[str, t.Any]:
    """Run the module's main() with these arguments; return its JSON result."""
    with patch_module_args(args):
        with pytest.raises(SystemExit):
            lemmy_plan.main()
    return json.loads(capsys.readouterr().out)


def test_plans_and_reports_no_change(capsys: pytest.CaptureFixture[str]) -> None:
    result = run(capsys, {"groups": GROUPS, "host_vars": HOST_VARS, "settings": SETTINGS})
    assert result["changed"] is False
    assert "failed" not in result
    plan = result["plan"]
    assert [p["name"] for p in plan["processes"] if p["host"] == "web1"] == ["lemmy-api-1", "lemmy-api-2", "lemmy-ui-1"]
    assert plan["upstreams"]["api"] == ["10.0.0.11:8536", "10.0.0.11:8537", "web2:8536"]
    assert plan["federation"] == {"enabled": True, "count": 3}
    assert result["table"][0].split() == ["HOST", "ADDRESS", "PROCESS", "KIND", "SHARD", "PORT"]
    assert any("3/3" in line for line in result["table"])
    assert "federation senders: 3" in result["summary"]


@pytest.mark.parametrize("missing", ["groups", "settings"])
def test_the_module_alone_needs_groups_and_settings(capsys: pytest.CaptureFixture[str], missing: str) -> None:
    args = {"groups": GROUPS, "host_vars": HOST_VARS, "settings": SETTINGS}
    del args[missing]
    result = run(capsys, args)
    assert result["failed"] is True
    assert "call it by its FQCN, fediscale.lemmy.lemmy_plan, so that the action reads the inventory" in result["msg"]


def test_check_mode_gives_the_same_plan(capsys: pytest.CaptureFixture[str]) -> None:
    normal = run(capsys, {"groups": GROUPS, "host_vars": HOST_VARS, "settings": SETTINGS})
    checked = run(capsys, {"groups": GROUPS, "host_vars": HOST_VARS, "settings": SETTINGS, "_ansible_check_mode": True})
    assert checked["changed"] is False
    assert checked["plan"] == normal["plan"]


def test_fails_with_every_problem(capsys: pytest.CaptureFixture[str]) -> None:
    host_vars = dict(HOST_VARS, web2={"lemmy_api_processes": "two"})
    settings = dict(SETTINGS, lemmy_version="latest", database_password_set=False)
    result = run(capsys, {"groups": GROUPS, "host_vars": host_vars, "settings": settings})
    assert result["failed"] is True
    assert 'host web2: lemmy_api_processes is "two"; set it to a positive integer such as 2' in result["problems"]
    assert len(result["problems"]) == 3
    lines = result["msg"].splitlines()
    assert lines[0] == "The inventory cannot be planned: 3 problems found. Fix all of them, then run again:"
    assert lines[1:] == ["- " + p for p in result["problems"]]
    assert "plan" not in result


def test_plan_warnings_become_ansible_warnings(capsys: pytest.CaptureFixture[str]) -> None:
    settings = dict(SETTINGS, lemmy_ui_static_strategy="single")
    result = run(capsys, {"groups": GROUPS, "host_vars": HOST_VARS, "settings": settings})
    assert result["plan"]["warnings"]
    # ansible-core 2.19 returns plain strings, later releases structured events: look for the text.
    shown = json.dumps(result["warnings"])
    for warning in result["plan"]["warnings"]:
        assert json.dumps(warning)[1:-1] in shown


def test_injected_known_versions(capsys: pytest.CaptureFixture[str]) -> None:
    settings = dict(SETTINGS, lemmy_version="0.19.19")
    result = run(capsys, {"groups": GROUPS, "host_vars": HOST_VARS, "settings": settings, "known_versions": ["0.19.20"]})
    assert result["failed"] is True
    assert result["problems"] == ['lemmy_version is "0.19.19", which is not a release this collection knows (0.19.20); set it to one of them such as "0.19.20"']


def test_excluded_hosts_leave_the_plan_and_are_named(capsys: pytest.CaptureFixture[str]) -> None:
    result = run(capsys, {"groups": GROUPS, "host_vars": HOST_VARS, "settings": SETTINGS, "excluded_hosts": ["web2"]})
    plan = result["plan"]
    assert plan["excluded_hosts"] == ["web2"]
    assert plan["upstreams"]["api"] == ["10.0.0.11:8536", "10.0.0.11:8537"]
    assert "web2" not in plan["hosts"]
    assert "planning without web2" in json.dumps(result["warnings"])


_json_like = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=10)),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)
_SETTING_KEYS = sorted(set(PLAN_LEVEL_KEYS) | {"secret_facts", "database_password_set"})


@hyp_settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.dictionaries(st.sampled_from(_SETTING_KEYS), _json_like, max_size=5),
    st.dictionaries(st.sampled_from(["web1", "web2", "work1", "lb1"]), st.dictionaries(st.sampled_from(HOST_VAR_KEYS), _json_like, max_size=4), max_size=3),
    st.dictionaries(st.sampled_from(["web1", "media1"]), st.dictionaries(st.sampled_from(PLAN_LEVEL_KEYS), _json_like, max_size=3), max_size=2),
    _json_like,
)
def test_the_module_answers_any_input_with_a_plan_or_problems(
    capsys: pytest.CaptureFixture[str], settings: dict[str, t.Any], host_vars: dict[str, t.Any], host_settings: dict[str, t.Any], excluded: t.Any
) -> None:
    args = {"groups": GROUPS, "host_vars": host_vars, "settings": dict(SETTINGS, **settings), "host_settings": host_settings, "excluded_hosts": excluded}
    result = run(capsys, args)
    assert "exception" not in result, result.get("exception")
    if result.get("failed"):
        assert result["problems"], result
        assert result["msg"].splitlines()[0].startswith("The inventory cannot be planned: %d problem" % len(result["problems"]))
    else:
        assert result["plan"]["processes"]


# --------------------------------------------------------------------------- the playbook, end to end

_HERE = Path(__file__).resolve()
_ROOT = _HERE.parents[4]
_PLAYBOOK = shutil.which("ansible-playbook", path=os.path.dirname(sys.executable)) or shutil.which("ansible-playbook")


def _collections_path() -> Path | None:
    """The folder that holds ansible_collections/fediscale/lemmy for this tree."""
    parts = _ROOT.parts
    if "ansible_collections" in parts:
        return Path(*parts[: len(parts) - 1 - parts[::-1].index("ansible_collections")])
    linked = _ROOT / ".collections"
    return linked if (linked / "ansible_collections" / "fediscale" / "lemmy").exists() else None


def _playbook_env(tmp_path: Path, collections: Path) -> dict[str, str]:
    env = dict(
        os.environ,
        ANSIBLE_COLLECTIONS_PATH=str(collections),
        ANSIBLE_LOCAL_TEMP=str(tmp_path / "tmp"),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_PYTHON_INTERPRETER=sys.executable,
    )
    # ansible-test narrows PYTHONPATH to module code; the playbook needs the full controller.
    for name in ("ANSIBLE_CONFIG", "PYTHONPATH"):
        env.pop(name, None)
    return env


def _run_plan(tmp_path: Path, inventory: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    collections = _collections_path()
    if not _PLAYBOOK or collections is None:
        pytest.skip("ansible-playbook or the collection path is not available")
    env = _playbook_env(tmp_path, collections)
    # Inside `ansible-test units --venv` the ansible-playbook on PATH is a shim that cannot load the
    # controller; these end-to-end tests then run in the plain pytest stage of the test command.
    probe = subprocess.run([str(_PLAYBOOK), "--version"], env=env, capture_output=True, text=True, check=False)
    if probe.returncode != 0:
        pytest.skip("ansible-playbook cannot start here: %s" % probe.stderr.strip().splitlines()[-1:])
    return subprocess.run(
        [str(_PLAYBOOK), "-i", str(inventory), str(_ROOT / "plan.yml"), *extra],
        cwd=str(tmp_path),
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.mark.parametrize(("example", "api", "senders", "scheduler_host"), [("small", 1, 1, "lemmy1"), ("medium", 3, 3, "work1"), ("large", 32, 12, "sched1")])
def test_example_inventories_plan_cleanly(tmp_path: Path, example: str, api: int, senders: int, scheduler_host: str) -> None:
    out = tmp_path / "plan.json"
    result = _run_plan(tmp_path, _ROOT / "inventories" / "examples" / example, "-e", "lemmy_plan_file=%s" % out)
    assert result.returncode == 0, result.stdout + result.stderr
    plan = json.loads(out.read_text())
    kinds = [p["kind"] for p in plan["processes"]]
    assert kinds.count("api") == api
    assert sorted(p["shard_index"] for p in plan["processes"] if p["kind"] == "federation") == list(range(1, senders + 1))
    assert plan["scheduler"]["host"] == scheduler_host
    assert plan["warnings"] == []
    assert "%d/%d" % (senders, senders) in result.stdout


def test_playbook_excludes_the_hosts_named_in_lemmy_plan_excluded_hosts(tmp_path: Path) -> None:
    out = tmp_path / "plan.json"
    extra = json.dumps({"lemmy_plan_excluded_hosts": ["web3"], "lemmy_plan_file": str(out)})
    result = _run_plan(tmp_path, _ROOT / "inventories" / "examples" / "medium", "-e", extra)
    assert result.returncode == 0, result.stdout + result.stderr
    plan = json.loads(out.read_text())
    assert plan["excluded_hosts"] == ["web3"]
    assert "web3" not in plan["hosts"]
    assert not [u for u in plan["upstreams"]["api"] + plan["upstreams"]["ui"] if u.startswith("10.0.0.23:")]
    assert "planning without web3" in result.stdout + result.stderr


def test_playbook_never_prints_the_password_and_fails_listing_problems(tmp_path: Path) -> None:
    secret = "s3cret-that-must-not-leak"
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(
        json.dumps(
            {
                "all": {
                    "vars": {"lemmy_domain": "lemmy.example.org", "lemmy_version": "latest", "lemmy_database_password": secret},
                    "children": {
                        "lemmy_proxy": {"hosts": {"web1": None}},
                        "lemmy_api": {"hosts": {"web1": {"lemmy_api_processes": 2}, "web2": {"lemmy_api_processes": "two"}}},
                        "lemmy_ui": {"hosts": {"web1": None}},
                        "lemmy_federation": {"hosts": {"web2": None}},
                        "lemmy_scheduler": {"hosts": {"web2": None}},
                        "pictrs": {"hosts": {"web2": None}},
                        "lemmy_db": {"hosts": {"web2": None}},
                    },
                }
            }
        )
    )
    result = _run_plan(tmp_path, inventory, "-vvv")
    assert result.returncode != 0
    assert secret not in result.stdout + result.stderr
    assert 'host web2: lemmy_api_processes is \\"two\\"' in result.stdout or 'host web2: lemmy_api_processes is "two"' in result.stdout
    assert "lemmy_version is" in result.stdout


@pytest.mark.parametrize("broken", [False, True], ids=["plans", "refuses"])
def test_playbook_never_prints_any_secret_even_with_vvv(tmp_path: Path, broken: bool) -> None:
    secrets = {
        "lemmy_database_password": "db-secret-4f1c9e0a77",
        "pictrs_api_key": "pictrs-secret-8b2d41",
        "lemmy_admin_password": "admin-secret-3e9f" if not broken else "adm-9chr",
        "lemmy_ui_static_s3_access_key": "s3-access-secret-5a6b",
        "lemmy_ui_static_s3_secret_key": "s3-secret-secret-7c8d",
    }
    plain = {
        "lemmy_domain": "lemmy.example.org",
        "lemmy_version": "0.19.20",
        "lemmy_ui_static_strategy": "object_storage",
        "lemmy_ui_static_bucket": "lemmy-static",
        "lemmy_ui_static_s3_endpoint": "https://s3.example.org",
        "nginx_static_origin": "https://s3.example.org",
    }
    children = {name: {"hosts": {host: None for host in hosts}} for name, hosts in GROUPS.items()}
    if broken:
        # Another value on a group below all: refused by name, never by value.
        children["lemmy_api"]["vars"] = {"pictrs_api_key": "group-secret-0d0d0d"}
        secrets["group"] = "group-secret-0d0d0d"
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(json.dumps({"all": {"vars": dict(plain, **{k: v for k, v in secrets.items() if k != "group"}), "children": children}}))
    out = tmp_path / "plan.json"
    result = _run_plan(tmp_path, inventory, "-vvv", "-e", "lemmy_plan_file=%s" % out)
    text = result.stdout + result.stderr + (out.read_text() if out.exists() else "")
    for value in secrets.values():
        assert value not in text
    if broken:
        assert result.returncode != 0
        assert "lemmy_admin_password has 8 characters; Lemmy accepts 10 to 60" in text
        assert "pictrs_api_key has another value on web1, web2 than on the controller" in text
    else:
        assert result.returncode == 0, text
