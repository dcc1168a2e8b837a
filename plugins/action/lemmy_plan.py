# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) fediscale.lemmy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action of fediscale.lemmy.lemmy_plan: plan from the inventory itself, on the controller.

Without O(settings), the action reads the groups, each planned host's variables, the plan-level
variables and the secrets' kinds (_plan_inputs.collect_plan_inputs) and plans in this process: no
module is sent anywhere, and no secret leaves the controller's memory. With O(settings), the inputs
are the caller's and the module runs as written.
"""

from __future__ import annotations

import typing as t

from ansible.errors import AnsibleError
from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

from ansible_collections.fediscale.lemmy.plugins.module_utils._plan import (
    PlanError,
    build_plan,
    format_problems,
    render_summary,
    render_table,
)
from ansible_collections.fediscale.lemmy.plugins.module_utils._plan_inputs import UNSET, collect_plan_inputs, plain

display = Display()

_INVENTORY_ARGS = frozenset({"excluded_hosts", "known_versions"})


class ActionModule(ActionBase):
    """Plan the Lemmy fleet from the inventory, or run the module with explicit inputs."""

    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp: t.Any = None, task_vars: dict[str, t.Any] | None = None) -> dict[str, t.Any]:
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        args = dict(self._task.args)
        if "settings" in args:
            result.update(self._execute_module(module_name="fediscale.lemmy.lemmy_plan", module_args=args, task_vars=task_vars))
            return result
        unknown = sorted(set(args) - _INVENTORY_ARGS)
        if unknown:
            result.update(failed=True, msg="lemmy_plan: %s is only read with settings; without settings the plan reads the inventory and "
                          "takes only excluded_hosts and known_versions" % ", ".join(unknown))
            return result

        hostvars = task_vars.get("hostvars") or {}
        # hostvars[host] works out every variable of the host: once per host, not once per key.
        views: dict[str, t.Any] = {}

        def host_value(host: str, key: str) -> t.Any:
            try:
                if host not in views:
                    views[host] = hostvars[host]
                values = views[host]
                return values[key] if key in values else UNSET
            except (AnsibleError, KeyError, TypeError, ValueError):
                return UNSET  # undefined on that host, or built from variables it cannot see

        def controller_value(key: str) -> t.Any:
            if key not in task_vars:
                return UNSET
            try:
                return self._templar.template(task_vars[key])
            except (AnsibleError, TypeError, ValueError):
                return UNSET

        inputs = collect_plan_inputs(
            task_vars.get("groups") or {},
            host_value,
            controller_value,
            lambda key: host_value("localhost", key),
        )
        excluded = plain(args.get("excluded_hosts")) or []
        try:
            plan = build_plan(
                inputs["groups"],
                inputs["host_vars"],
                inputs["settings"],
                plain(args.get("known_versions")),
                excluded,
                inputs["host_settings"],
            )
        except PlanError as error:
            for warning in error.warnings:
                display.warning(warning)
            result.update(failed=True, msg=format_problems(error.problems), problems=error.problems)
            return result
        for warning in plan["warnings"]:
            display.warning(warning)
        result.update(changed=False, plan=plan, table=render_table(plan), summary=render_summary(plan))
        return result
