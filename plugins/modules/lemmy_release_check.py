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
    every 0.19 release (migrations, migrations that break older binaries, migrations that block writes,
    env-var flags, migrate-only mode, nodeinfo path).
  - Classifies the step as one of C(install), C(noop), C(ok), C(resume), C(incompatible), C(skip),
    C(downgrade), C(unknown) or C(unsupported), lists the migrations involved, what they break and what they
    lock, and says how the upgrade procedure must migrate and check versions.
  - Fails, naming the versions, the migrations, what breaks or what is locked, and the override variable, when
    the step is refused and not overridden. Changes nothing, so check mode gives the same answer.
  - A target or running version of a line after 0.19 (0.20, 1.0) is C(unsupported) and always refused, as those
    lines migrate differently (C(lemmy_server migration --all run)).
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
  allow_write_block:
    description:
      - Allow a step whose index builds lock tables of more than O(write_block_rows) estimated rows, or of an
        unknown size, so that writes to them wait until the build ends.
      - Playbooks map this to C(lemmy_upgrade_allow_write_block).
    type: bool
    default: false
  table_rows:
    description:
      - Estimated rows per table name of the Lemmy database (C(pg_class.reltuples)), such as 1200000 for
        C(post) and 30000000 for C(post_like).
      - Omitted, null, missing or negative (never analysed) means unknown, which counts as above the limit.
    type: dict
  write_block_rows:
    description:
      - The row limit above which a write-blocking index build needs O(allow_write_block). The estimate of a
        migration is the sum of the rows it indexes (a table indexed twice counts twice); a row of a trigram GIN
        index counts 100 times, as such a build is about that much slower per row.
      - Playbooks map this to C(lemmy_upgrade_write_block_rows).
    type: int
    default: 100000
notes:
  - The step C(resume) means that processes run the target and the release just before it, as after an
    interrupted rolling upgrade. It is treated like C(ok); if that release's migrations break the older
    binaries, the step is C(incompatible) again and still needs C(allow_incompatible).
  - The schema C(r) rebuild of every migrating release since 0.19.4 is listed in RV(write_blocks) but never
    refused, as it changes catalog rows only and so holds its locks for milliseconds once it has them.
  - A C(resume) step lists no RV(write_blocks), because the process that already runs the target migrated the database.
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

- name: Check a step whose index builds block writes, with the table sizes read from PostgreSQL
  fediscale.lemmy.lemmy_release_check:
    running: ["0.19.12"]
    target: "0.19.13"
    table_rows: {"post": 40000, "post_like": 52000, "comment_like": 8000}

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
write_blocks:
  description:
    - The migrations of the step that lock tables while they run, with the lock and the estimated rows.
    - C(scales_with_rows) is true for index builds, whose lock lasts as long as reading the indexed rows takes.
  returned: always
  type: list
  elements: dict
  sample:
    - version: "0.19.13"
      migration: 2025-07-29-152742_add_indexes_for_aggregates_activity
      tables: [post, post_like, comment_like]
      indexed: [post, post_like, comment_like]
      lock: SHARE
      what: builds a B-tree index on published of each table without CONCURRENTLY
      scales_with_rows: true
      rows: {"post": 40000, "post_like": 52000, "comment_like": 8000}
      row_weight: 1
      estimated_rows: 100000
      weighted_rows: 100000
      over_limit: false
write_block_rows:
  description: The row limit used for RV(write_blocks).
  returned: always
  type: int
  sample: 100000
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
    WRITE_BLOCK_ROWS,
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
        decision = check_step(
            running, params["target"], params["allow_skip"], params["allow_incompatible"],
            allow_write_block=params["allow_write_block"], table_rows=params["table_rows"],
            write_block_rows=params["write_block_rows"])
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
        allow_write_block=dict(type="bool", default=False),
        table_rows=dict(type="dict"),
        write_block_rows=dict(type="int", default=WRITE_BLOCK_ROWS),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    if not module.params["target"].strip():
        module.fail_json(msg="target must be a Lemmy version such as 0.19.20, got an empty string (set lemmy_version).")
    if module.params["write_block_rows"] < 0:
        module.fail_json(msg="write_block_rows must be 0 or more rows, got {0} (set lemmy_upgrade_write_block_rows).".format(
            module.params["write_block_rows"]))
    try:
        result = ReleaseCheck(module).run()
    except Exception as exc:  # pragma: no cover - defensive
        module.fail_json(msg="lemmy_release_check failed: {0}".format(exc), exception=traceback.format_exc())
    if result["refused"]:
        module.fail_json(**result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
