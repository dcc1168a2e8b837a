#!/usr/bin/python
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) fediscale.lemmy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: lemmy_upgrade_actions
short_description: Decide what a rolling upgrade does to each Lemmy container, in order, and why
version_added: 0.1.0
description:
  - From the plan (M(fediscale.lemmy.lemmy_plan)) and the containers observed on the hosts, lists the actions of a
    rolling upgrade in order, each for one host, kind and container, with the reason.
  - The steps are C(fence) (stop every running scheduler that is old or misplaced, and every sender when the
    running sender set is not the plan's), C(migrate) (once, unless a lemmy_server process already runs the target),
    C(api), C(federation), C(ui) and C(scheduler) (started last).
  - The actions are C(stop), C(remove), C(migrate), C(replace) (API and UI replacements carry the C(drain_key) nginx
    knows the server by) and C(skip) (the container already runs the target).
  - A rerun after an interruption decides again from what runs, so what already runs the target is skipped.
  - With O(scope=fence) it lists only the fence, the stops that keep one scheduler and one sender per shard index.
    site.yml runs it without a target before it starts processes, and the upgrade runs it with the target
    before it migrates and before it starts the senders.
  - Runs on the controller and changes nothing.
author:
  - fediscale.lemmy maintainers (@fediscale)
extends_documentation_fragment:
  - fediscale.lemmy._attributes
  - fediscale.lemmy._attributes.read_only
attributes:
  check_mode:
    support: full
  diff_mode:
    support: N/A
  idempotent:
    support: full
options:
  plan:
    description: The plan, as M(fediscale.lemmy.lemmy_plan) returns it (C(hostvars['localhost']['lemmy_plan'])).
    type: dict
    required: true
  containers:
    description:
      - Host name to the Lemmy containers found there, each with C(name), C(image), C(running) and, for senders,
        C(shard) (C(i/N), the label the lemmy_server role sets) or C(command) (the container's flags).
      - A container as M(community.docker.docker_host_info) lists it (C(Names), C(Image), C(State), C(Labels),
        C(Command)) is read as it is.
      - Names other than C(lemmy-api-N), C(lemmy-federation-N), C(lemmy-scheduler) and C(lemmy-ui-N) are ignored.
    type: dict
    required: true
  scope:
    description:
      - V(upgrade) orders the whole upgrade; V(fence) lists only the fence.
    type: str
    choices: [upgrade, fence]
    default: upgrade
  server_image:
    description:
      - The target lemmy_server image. Required with O(scope=upgrade).
      - With O(scope=fence), an old scheduler on the planned host is stopped too, and what the plan no longer
        places on a host is removed (C(state=absent)) rather than stopped.
    type: str
  ui_image:
    description: The target lemmy-ui image. Required with O(scope=upgrade).
    type: str
  images:
    description:
      - The images each host holds, as C(community.docker.docker_host_info) lists them (C(images=true)) or as plain
        references. With O(scope=upgrade), RV(pull) names the target images a host lacks.
    type: dict
seealso:
  - module: fediscale.lemmy.lemmy_release_check
  - module: fediscale.lemmy.lemmy_plan
"""

EXAMPLES = r"""
- name: Decide the upgrade's actions
  fediscale.lemmy.lemmy_upgrade_actions:
    plan: "{{ lemmy_plan }}"
    containers:
      web1:
        - {name: lemmy-api-1, image: "dessalines/lemmy:0.19.19", running: true}
      work1:
        - {name: lemmy-federation-1, image: "dessalines/lemmy:0.19.19", running: true, shard: "1/1"}
        - {name: lemmy-scheduler, image: "dessalines/lemmy:0.19.19", running: true}
    server_image: "dessalines/lemmy:0.19.20"
    ui_image: "dessalines/lemmy-ui:0.19.20"
  register: __lemmy_upgrade_actions

- name: Show them
  ansible.builtin.debug:
    msg: "{{ __lemmy_upgrade_actions.summary }}"
"""

RETURN = r"""
actions:
  description: Every action in order, each with C(order), C(step), C(action), C(host), C(kind), C(name) and C(why).
  returned: success
  type: list
  elements: dict
  sample:
    - {order: 1, step: fence, action: stop, host: work1, kind: scheduler, name: lemmy-scheduler,
       why: "runs dessalines/lemmy:0.19.19: no old scheduler may run against the new schema; it starts again last"}
    - {order: 3, step: api, action: replace, host: web1, kind: api, name: lemmy-api-1, drain_key: "[fd00::11]:8536",
       image: "dessalines/lemmy:0.19.20", why: "runs dessalines/lemmy:0.19.19"}
by_host:
  description: The same actions per host, then per step.
  returned: success
  type: dict
  sample: {web1: {api: [{name: lemmy-api-1, action: replace}]}}
running:
  description: What runs now, C(server) the lemmy_server releases (image tags) and C(ui) the lemmy-ui images.
  returned: success
  type: dict
  sample: {server: ["0.19.19"], ui: ["dessalines/lemmy-ui:0.19.19"]}
migrate:
  description: Whether the step migrates, how (C(migrate_only) or C(first_api_process)), on which host, and why.
  returned: with O(scope=upgrade)
  type: dict
  sample: {needed: true, strategy: migrate_only, host: web1, config_of: lemmy-api-1, why: "one-shot container ..."}
sender_set_changes:
  description: Whether a running sender is not one of the plan's, so every sender stops before the new set starts.
  returned: success
  type: bool
  sample: false
fence_hosts:
  description: The hosts where the fence stops or removes a C(scheduler), and those where it stops or removes a sender
    (C(federation)). The upgrade's fence steps run on these hosts only.
  returned: with O(scope=upgrade)
  type: dict
  sample: {scheduler: [work1], federation: []}
pull:
  description: Per host, the target images it lacks (hosts of O(images) only; hosts with nothing to pull are left out).
  returned: with O(scope=upgrade)
  type: dict
  sample: {web2: ["dessalines/lemmy-ui:0.19.20"]}
summary:
  description: One line per step, counting its actions.
  returned: success
  type: list
  elements: str
  sample: ["fence: 1 stop", "migrate: 1 migrate", "api: 2 replace"]
"""

import traceback
import typing as t

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.fediscale.lemmy.plugins.module_utils._upgrade import decide, decide_fence


def run_module(module: AnsibleModule) -> dict[str, t.Any]:
    plan = module.params["plan"]
    if not isinstance(plan.get("processes"), list) or "scheduler" not in plan:
        module.fail_json(msg="plan has no processes or scheduler; pass the result of fediscale.lemmy.lemmy_plan (hostvars['localhost']['lemmy_plan'])")
    try:
        if module.params["scope"] == "fence":
            result = decide_fence(plan, module.params["containers"], module.params["server_image"])
        else:
            result = decide(plan, module.params["containers"], module.params["server_image"], module.params["ui_image"], module.params["images"])
    except (KeyError, TypeError, ValueError) as error:
        module.fail_json(msg="cannot decide the upgrade from this plan and these containers: %s" % error, exception=traceback.format_exc())
    return dict(changed=False, **result)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "plan": {"type": "dict", "required": True},
            "containers": {"type": "dict", "required": True},
            "scope": {"type": "str", "choices": ["upgrade", "fence"], "default": "upgrade"},
            "server_image": {"type": "str"},
            "ui_image": {"type": "str"},
            "images": {"type": "dict"},
        },
        required_if=[("scope", "upgrade", ("server_image", "ui_image"))],
        supports_check_mode=True,
    )
    module.exit_json(**run_module(module))


if __name__ == "__main__":
    main()
