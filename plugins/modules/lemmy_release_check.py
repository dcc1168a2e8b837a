#!/usr/bin/python
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) fediscale.lemmy contributors

from __future__ import annotations

DOCUMENTATION = r"""
---
module: lemmy_release_check
short_description: Decide whether a Lemmy version step is safe for a rolling upgrade
version_added: 0.1.0
description:
  - Compares the Lemmy versions that run now with the target version, using the collection's table of
    every 0.19 release (migrations, migrations that break older binaries, env-var flags, migrate-only mode,
    nodeinfo path).
  - Classifies the step as one of C(install), C(noop), C(ok), C(resume), C(incompatible), C(skip),
    C(downgrade) or C(unknown), lists the migrations involved and what they break, and says how the upgrade
    procedure must migrate and check versions.
  - Fails, naming the versions, the migrations, what breaks and the override variable, when the step is
    refused and not overridden. Changes nothing, so check mode gives the same answer.
author:
  - fediscale.lemmy maintainers (@fediscale)
extends_documentation_fragment:
  - fediscale.lemmy._attributes
  - fediscale.lemmy._attributes.READ_ONLY
  - fediscale.lemmy._attributes.ACTIONGROUP_LEMMY
options:
  running:
    description:
      - The versions that the Lemmy backend processes run now, one entry per process or per distinct version.
      - Several versions mean the fleet is in the middle of an upgrade.
      - An empty list means nothing runs yet (fresh install).
    type: list
    elements: str
    required: true
  target:
    description:
      - The version to upgrade to, for example C(0.19.20).
    type: str
    required: true
  allow_skip:
    description:
      - Allow a step that is not exactly one release ahead (C(skip)), a C(downgrade), or a version missing
        from the release table (C(unknown)).
      - Playbooks map this to C(lemmy_upgrade_allow_skip).
    type: bool
    default: false
  allow_incompatible:
    description:
      - Allow a step whose migrations break the binaries that keep running during a rolling upgrade.
      - Playbooks map this to C(lemmy_upgrade_allow_incompatible).
    type: bool
    default: false
notes:
  - The step C(resume) means that processes run the target and the release just before it, as after an
    interrupted rolling upgrade. It is treated like C(ok); if that release's migrations break the older
    binaries, the step is C(incompatible) again and still needs C(allow_incompatible).
  - The step C(install) (nothing runs) is never refused here; a rolling upgrade has nothing to roll then,
    and the rolling upgrade playbook tells the user to run the site playbook instead.
seealso:
  - name: Lemmy horizontal scaling
    description: Upstream notes on rolling upgrades and backwards-incompatible migrations.
    link: https://join-lemmy.org/docs/administration/horizontal_scaling.html
  - module: fediscale.lemmy.lemmy_plan
"""

EXAMPLES = r"""
- name: Check the step from the running versions to the target
  fediscale.lemmy.lemmy_release_check:
    running: ["0.19.19"]
    target: "0.19.20"
  register: release_check

- name: Allow an upgrade that skips releases
  fediscale.lemmy.lemmy_release_check:
    running: ["0.19.18"]
    target: "0.19.20"
    allow_skip: true

- name: Allow the 0.19.3 to 0.19.4 step, whose migrations break 0.19.3 binaries
  fediscale.lemmy.lemmy_release_check:
    running: ["0.19.3"]
    target: "0.19.4"
    allow_incompatible: true
"""

RETURN = r"""
step:
  description: The kind of step.
  returned: always
  type: str
  sample: ok
target:
  description: The normalised target version.
  returned: always
  type: str
  sample: "0.19.20"
running:
  description: The distinct running versions, oldest first.
  returned: always
  type: list
  elements: str
  sample: ["0.19.19"]
oldest:
  description: The oldest running version, or null when nothing runs.
  returned: always
  type: str
  sample: "0.19.19"
previous:
  description: The release just before the target, or null when the target is unknown or the first 0.19 release.
  returned: always
  type: str
  sample: "0.19.19"
mid_upgrade:
  description: Whether some processes already run the target while others do not.
  returned: always
  type: bool
  sample: false
migrations:
  description: The releases of the step that add database migrations, with the recorded names.
  returned: always
  type: list
  elements: dict
  sample: [{"version": "0.19.7", "count": 1, "names": ["2024-11-12-090437_move-triggers"], "names_complete": true}]
breaks_older:
  description: The migrations of the step that break binaries of an older release, and what breaks.
  returned: always
  type: list
  elements: dict
  sample:
    - version: "0.19.7"
      breaks_version: "0.19.6"
      migration: 2024-11-12-090437_move-triggers
      what_breaks: drops the public functions community_aggregates_activity and site_aggregates_activity
strategy:
  description: How the upgrade procedure treats the target.
  returned: always
  type: dict
  contains:
    migrate:
      description: C(migrate_only) (one container with all three --disable-* flags that exits 0) or
        C(first_api_process) (start one new API process and wait for HTTP 200).
      type: str
    env_flags:
      description: Whether the target reads LEMMY_DISABLE_* / LEMMY_FEDERATE_* environment variables.
      type: bool
    nodeinfo_path:
      description: The path whose software.version reports the running version of the target.
      type: str
    duty_flags:
      description: How duties are passed; always C(cli).
      type: str
  sample: {"migrate": "migrate_only", "env_flags": true, "nodeinfo_path": "/nodeinfo/2.1", "duty_flags": "cli"}
refused:
  description: Whether the step is refused. The module fails when it is.
  returned: always
  type: bool
  sample: false
overridden:
  description: The override variables that allowed a step that would otherwise be refused.
  returned: always
  type: list
  elements: str
  sample: []
reasons:
  description: Every reason for refusing the step, overridden or not.
  returned: always
  type: list
  elements: str
  sample: []
msg:
  description: A one-line summary, or the reason for refusing with the variable that overrides it.
  returned: always
  type: str
  sample: "Upgrade of Lemmy from 0.19.19 to 0.19.20 (ok): one release ahead, migrations compatible with the binaries still running."
releases:
  description: The release-table entries of the target and of every running version.
  returned: always
  type: dict
  sample: {"0.19.20": {"version": "0.19.20", "known": true, "nodeinfo_path": "/nodeinfo/2.1"}}
"""

import traceback
import typing as t

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.fediscale.lemmy.plugins.module_utils._releases import (
    check_step,
    release_info,
)


class ReleaseCheck:
    """Runs the step decision for the module parameters."""

    def __init__(self, module: AnsibleModule) -> None:
        self.module = module

    def run(self) -> dict[str, t.Any]:
        params = self.module.params
        running = [str(v) for v in params["running"] or []]
        decision = check_step(running, params["target"], params["allow_skip"], params["allow_incompatible"])
        result = decision.as_dict()
        versions = decision.running + [decision.target]
        result["releases"] = {v: release_info(v) for v in versions}
        result["changed"] = False
        return result


def main() -> None:
    argument_spec = dict(
        running=dict(type="list", elements="str", required=True),
        target=dict(type="str", required=True),
        allow_skip=dict(type="bool", default=False),
        allow_incompatible=dict(type="bool", default=False),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    if not module.params["target"].strip():
        module.fail_json(msg="target must be a Lemmy version such as 0.19.20, got an empty string (set lemmy_version).")
    try:
        result = ReleaseCheck(module).run()
    except Exception as exc:  # pragma: no cover - defensive
        module.fail_json(msg="lemmy_release_check failed: {0}".format(exc), exception=traceback.format_exc())
    if result["refused"]:
        module.fail_json(**result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
