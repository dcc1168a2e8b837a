# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) fediscale.lemmy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Any value for any setting or host variable gives a plan or problems, never a Python error."""

from __future__ import annotations

import json
import math
import typing as t

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ansible_collections.fediscale.lemmy.plugins.module_utils._plan import (
    HOST_VAR_KEYS,
    PLAN_LEVEL_KEYS,
    RATE_LIMIT_DEFAULTS,
    SECRET_KEYS,
    PlanError,
    build_plan,
    render_summary,
    render_table,
)

GROUPS = {
    "lemmy_proxy": ["lb1"],
    "lemmy_api": ["web1", "web2"],
    "lemmy_ui": ["web1", "web2"],
    "lemmy_federation": ["work1"],
    "lemmy_scheduler": ["work1"],
    "pictrs": ["media1"],
    "lemmy_db": ["db1"],
}
HOSTS = sorted({h for members in GROUPS.values() for h in members})
GOOD_SETTINGS = {
    "lemmy_domain": "lemmy.example.org",
    "lemmy_version": "0.19.20",
    "secret_facts": {name: {"kind": "string", "length": 20, "differs_on": []} for name in SECRET_KEYS},
}

# JSON-like values, with the awkward ones YAML and Jinja produce: huge and non-finite numbers,
# booleans, numeric strings, nested lists and mappings.
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(10**400), max_value=10**400),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([math.inf, -math.inf, math.nan, 1e400, 2.0, -1, 0, 65536, "2.0", "1e400", "nan", "inf", "", " ", "two", "0", "-3", "2"]),
    st.text(max_size=12),
)
json_like = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=12)
secret_kinds = st.sampled_from(["missing", "string", "integer", "float", "boolean", "list", "mapping", "other"])
secret_fact = st.one_of(json_like, st.fixed_dictionaries({"kind": secret_kinds | json_like, "length": json_like, "differs_on": json_like}))

# Mappings with the keys the planner looks for, so their values are reached, not only the shape.
rate_limits = st.dictionaries(st.sampled_from(sorted(RATE_LIMIT_DEFAULTS)) | st.text(max_size=6), json_like, max_size=5)
value_of = {"lemmy_rate_limits": st.one_of(rate_limits, json_like)}

setting_keys = st.sampled_from(sorted(set(PLAN_LEVEL_KEYS) | {"database_password_set", "secret_facts"}))
host_var_keys = st.sampled_from(HOST_VAR_KEYS)


@st.composite
def inventories(draw: st.DrawFn) -> tuple[dict[str, t.Any], dict[str, t.Any], dict[str, t.Any], dict[str, t.Any], t.Any]:
    settings_ = dict(GOOD_SETTINGS)
    settings_["secret_facts"] = dict(settings_["secret_facts"])
    for key in draw(st.lists(setting_keys, max_size=6)):
        settings_[key] = draw(value_of.get(key, json_like))
    if isinstance(settings_.get("secret_facts"), dict):
        for name in draw(st.lists(st.sampled_from(SECRET_KEYS), max_size=3)):
            settings_["secret_facts"][name] = draw(secret_fact)
    host_vars: dict[str, t.Any] = {}
    for host in draw(st.lists(st.sampled_from(HOSTS), max_size=4)):
        host_vars[host] = {key: draw(json_like) for key in draw(st.lists(host_var_keys, max_size=4))}
    host_settings = {
        host: {key: draw(json_like) for key in draw(st.lists(st.sampled_from(PLAN_LEVEL_KEYS), max_size=3))}
        for host in draw(st.lists(st.sampled_from(HOSTS), max_size=2))
    }
    groups: dict[str, t.Any] = dict(GROUPS)
    for name in draw(st.lists(st.sampled_from(sorted(GROUPS)), max_size=2)):
        groups[name] = draw(st.one_of(json_like, st.lists(st.sampled_from(HOSTS + ["new1"]), max_size=3)))
    excluded = draw(st.one_of(st.none(), st.lists(st.sampled_from(HOSTS), max_size=2), json_like))
    return groups, host_vars, settings_, host_settings, excluded


def _plan_or_problems(groups: t.Any, host_vars: t.Any, settings_: t.Any, host_settings: t.Any, excluded: t.Any) -> list[str]:
    try:
        plan = build_plan(groups, host_vars, settings_, excluded_hosts=excluded, host_settings=host_settings)
    except PlanError as error:
        assert error.problems, "a PlanError must carry at least one problem"
        assert all(isinstance(p, str) and p and "\n" not in p for p in error.problems)
        str(error)
        return error.problems
    # A plan is complete and renders.
    assert render_table(plan) and render_summary(plan)
    json.dumps(plan)
    return []


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(inventories())
def test_any_value_anywhere_gives_a_plan_or_problems(inventory: tuple[t.Any, ...]) -> None:
    _plan_or_problems(*inventory)


@settings(max_examples=150, deadline=None)
@given(json_like, json_like, json_like, json_like, json_like)
def test_any_shape_of_the_arguments_gives_a_plan_or_problems(groups: t.Any, host_vars: t.Any, settings_: t.Any, host_settings: t.Any, excluded: t.Any) -> None:
    _plan_or_problems(groups, host_vars, settings_, host_settings, excluded)


COUNT_KEYS = ("lemmy_api_processes", "lemmy_ui_processes", "lemmy_federation_processes")


@pytest.mark.parametrize("key", COUNT_KEYS)
@pytest.mark.parametrize(
    "value",
    [math.inf, -math.inf, math.nan, 1e400, True, False, [2], {"n": 2}, -1, "2.0", 2.0, "", "nan", "1e400", 10**400, 257],
    ids=repr,
)
def test_a_bad_count_is_one_problem_naming_host_and_variable(key: str, value: t.Any) -> None:
    host = {"lemmy_api_processes": "web1", "lemmy_ui_processes": "web2", "lemmy_federation_processes": "work1"}[key]
    problems = _plan_or_problems(GROUPS, {host: {key: value}}, GOOD_SETTINGS, {}, None)
    assert len(problems) == 1, problems
    assert problems[0].startswith("host %s: %s is " % (host, key)), problems
    assert "; " in problems[0]


@pytest.mark.parametrize("value", [math.inf, math.nan, 1e400, True, [1], {"a": 1}, -5, "2.0", "ten", 10**400], ids=repr)
@pytest.mark.parametrize("key", ["lemmy_database_pool_size", "lemmy_database_max_connections", "pictrs_cpus"])
def test_a_bad_global_count_is_one_problem_naming_the_variable(key: str, value: t.Any) -> None:
    problems = _plan_or_problems(GROUPS, {}, dict(GOOD_SETTINGS, **{key: value}), {}, None)
    assert len(problems) == 1 and key in problems[0], problems


def test_none_means_the_default() -> None:
    assert _plan_or_problems(GROUPS, {"web1": {"lemmy_api_processes": None}}, dict(GOOD_SETTINGS, pictrs_cpus=None), {}, None) == []


@pytest.mark.parametrize("value", [10**400, 2**63, "9" * 400])
def test_a_huge_rate_limit_is_divided_without_floats(value: t.Any) -> None:
    assert _plan_or_problems(GROUPS, {}, dict(GOOD_SETTINGS, lemmy_rate_limits={"post": value}), {}, None) == []
