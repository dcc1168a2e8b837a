# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) fediscale.lemmy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the planner reads from the inventory, gathered in one place (the lemmy_plan action plugin calls it).

The caller passes three readers, each returning UNSET for a variable it cannot read (undefined, or built
from magic variables of another host that fail to template):
  host_value(host, key)    the host's effective value (its hostvars)
  controller_value(key)    the value the play sees on the controller (play vars and -e included)
  baseline_value(key)      the controller's own inventory value (hostvars['localhost'])

A plan-level variable or a secret is "set below all" on a host when the host's value differs from the
baseline: play vars and -e, which every host sees alike, are not mistaken for one. Secrets leave this
module only as their kind, length and the hosts that see another value.
"""

from __future__ import annotations

import typing as t
from collections.abc import Mapping

from ansible_collections.fediscale.lemmy.plugins.module_utils._plan import (
    GROUP_NAMES,
    HOST_VAR_KEYS,
    PLAN_LEVEL_KEYS,
    SECRET_KEYS,
)


class _Unset:
    """A variable the reader could not read."""

    def __repr__(self) -> str:
        return "UNSET"


UNSET: t.Any = _Unset()

Reader = t.Callable[[str], t.Any]
HostReader = t.Callable[[str, str], t.Any]


def plain(value: t.Any) -> t.Any:
    """Plain Python data (dict, list, str, int, float, bool, None) from what a templar returns."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [plain(v) for v in value]
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return str(value)
    return value


def secret_kind(value: t.Any) -> str:
    """How a secret is written, without its value (one of _plan.SECRET_KINDS)."""
    if value is None or value is UNSET:
        return "missing"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    if isinstance(value, Mapping):
        return "mapping"
    if isinstance(value, (list, tuple, set, frozenset)):
        return "list"
    return "other"


def planned_groups(groups: Mapping[str, t.Any]) -> dict[str, list[str]]:
    """The planner's groups, each as the inventory lists it (missing groups empty)."""
    return {name: [str(h) for h in (groups.get(name) or [])] for name in GROUP_NAMES}


def planned_hosts(groups: Mapping[str, list[str]]) -> list[str]:
    """Every host of the planner's groups once, in group order."""
    seen: list[str] = []
    for name in GROUP_NAMES:
        for host in groups.get(name, []):
            if host not in seen:
                seen.append(host)
    return seen


def _differs(value: t.Any, baseline: t.Any) -> bool:
    return value is not UNSET and (baseline is UNSET or plain(value) != plain(baseline))


def collect_plan_inputs(
    groups: Mapping[str, t.Any],
    host_value: HostReader,
    controller_value: Reader,
    baseline_value: Reader,
) -> dict[str, t.Any]:
    """The keyword arguments of _plan.build_plan: groups, host_vars, host_settings, settings (with secret_facts)."""
    plan_groups = planned_groups(groups)
    hosts = planned_hosts(plan_groups)

    host_vars: dict[str, dict[str, t.Any]] = {}
    host_settings: dict[str, dict[str, t.Any]] = {}
    baselines = {key: baseline_value(key) for key in PLAN_LEVEL_KEYS + SECRET_KEYS}
    secret_differs: dict[str, list[str]] = {name: [] for name in SECRET_KEYS}
    for host in hosts:
        row = {}
        for key in HOST_VAR_KEYS:
            value = host_value(host, key)
            row[key] = None if value is UNSET else plain(value)
        host_vars[host] = row
        differing = {}
        for key in PLAN_LEVEL_KEYS:
            value = host_value(host, key)
            if _differs(value, baselines[key]):
                differing[key] = plain(value)
        host_settings[host] = differing
        for name in SECRET_KEYS:
            if _differs(host_value(host, name), baselines[name]):
                secret_differs[name].append(host)

    settings: dict[str, t.Any] = {}
    for key in PLAN_LEVEL_KEYS:
        value = controller_value(key)
        settings[key] = None if value is UNSET else plain(value)
    facts = {}
    for name in SECRET_KEYS:
        value = controller_value(name)
        facts[name] = {
            "kind": secret_kind(value),
            "length": len(value) if isinstance(value, str) else 0,
            "differs_on": secret_differs[name],
        }
    settings["secret_facts"] = facts
    return {"groups": plan_groups, "host_vars": host_vars, "host_settings": host_settings, "settings": settings}
