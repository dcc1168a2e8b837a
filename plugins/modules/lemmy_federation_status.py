#!/usr/bin/python
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) fediscale.lemmy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: lemmy_federation_status
short_description: Report how far Lemmy's outgoing federation is behind, per shard and per instance
version_added: 0.1.0
description:
  - Reads Lemmy's tables C(federation_queue_state), C(sent_activity) and C(instance) in a read-only transaction, with
    C(psql) on the host it runs on (usually the database host), as the Lemmy database user.
  - For every remote instance it reports the shard that owns it (C(i/N), shard I(i) owns the instances whose
    C(id % N == i - 1), the plan's rule), the last activity id sent to it against the newest one, the age of the oldest
    activity not yet sent, and the failure count; per shard it sums these up.
  - Instances whose oldest unsent activity is older than O(stale_days) are listed with a warning, because Lemmy's daily
    task deletes activities older than 7 days and they would never reach that instance.
  - The password is passed to C(psql) in its environment, never on its command line.
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
  shard_count:
    description:
      - The number of federation senders, the plan's C(federation.count).
    type: int
    required: true
  stale_days:
    description:
      - An instance whose oldest unsent activity is older than this many days is reported as stale.
    type: float
    default: 6.0
  login_host:
    description:
      - The PostgreSQL server to connect to, as C(psql -h) takes it.
    type: str
    default: 127.0.0.1
  login_port:
    description:
      - Its port.
    type: int
    default: 5432
  login_user:
    description:
      - The Lemmy database user. It only needs to read the three tables.
    type: str
    default: lemmy
  login_password:
    description:
      - Its password, given to C(psql) as C(PGPASSWORD).
    type: str
    required: true
  database:
    description:
      - The Lemmy database.
    type: str
    default: lemmy
requirements:
  - C(psql) (the PostgreSQL client) on the host the module runs on.
seealso:
  - module: fediscale.lemmy.lemmy_plan
"""

EXAMPLES = r"""
- name: Read the federation lag
  fediscale.lemmy.lemmy_federation_status:
    shard_count: "{{ lemmy_plan.federation.count }}"
    login_password: "{{ lemmy_database_password }}"
  register: __lemmy_federation
"""

RETURN = r"""
report:
  description: The report for machines.
  returned: success
  type: dict
  contains:
    newest_id:
      description: The newest C(sent_activity.id), or null when there are no activities.
      type: int
    shards:
      description: One entry per shard, C(shard), C(instances), C(not_started), C(max_behind), C(oldest_unsent_age_seconds),
        C(failing), C(fail_count), C(stale).
      type: list
      elements: dict
    instances:
      description: One entry per remote instance, C(id), C(domain), C(shard), C(last_successful_id), C(newest_id), C(behind),
        C(oldest_unsent_age_seconds), C(fail_count), C(last_retry), C(started), C(stale).
      type: list
      elements: dict
    stale:
      description: The domains of the stale instances.
      type: list
      elements: str
    warnings:
      description: One sentence per stale instance, saying what to check.
      type: list
      elements: str
  sample:
    newest_id: 1200
    shards: [{shard: 1/3, instances: 4, not_started: 0, max_behind: 3, oldest_unsent_age_seconds: 12.5, failing: 1, fail_count: 4, stale: 0}]
    instances: [{id: 3, domain: peer2.example, shard: 1/3, last_successful_id: 1197, newest_id: 1200, behind: 3, fail_count: 4}]
    stale: []
    warnings: []
table:
  description: The report as aligned text lines for people.
  returned: success
  type: list
  elements: str
  sample: ["newest activity id: 1200", "", "shard  instances  not started  max behind  oldest unsent  failing  fails  stale"]
"""

import json
import typing as t

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.fediscale.lemmy.plugins.module_utils._federation_status import StatusError, build_report, parse_time, render_table

# One row of JSON: the newest activity and every remote instance with its queue state and oldest unsent activity.
# The local instance (the one the site belongs to) is not a federation target.
QUERY = """
SELECT json_build_object(
  'now', now(),
  'newest_id', (SELECT max(id) FROM sent_activity),
  'instances', coalesce((
    SELECT json_agg(row ORDER BY row.id) FROM (
      SELECT i.id, i.domain, q.last_successful_id, coalesce(q.fail_count, 0) AS fail_count, q.last_retry,
             q.last_successful_published_time,
             (SELECT s.published FROM sent_activity s WHERE s.id > q.last_successful_id ORDER BY s.id LIMIT 1) AS oldest_unsent_published
      FROM instance i
      LEFT JOIN federation_queue_state q ON q.instance_id = i.id
      WHERE i.id NOT IN (SELECT s.instance_id FROM site s JOIN local_site l ON l.site_id = s.id)
    ) row), '[]'::json))
"""


def run_module(module: AnsibleModule) -> dict[str, t.Any]:
    psql = module.get_bin_path("psql", required=True)
    p = module.params
    argv = [psql, "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-h", p["login_host"], "-p", str(p["login_port"]),
            "-U", p["login_user"], "-d", p["database"],
            "-c", "SET default_transaction_read_only = on", "-c", QUERY]
    rc, out, err = module.run_command(argv, environ_update={"PGPASSWORD": p["login_password"], "PGCONNECT_TIMEOUT": "10"})
    if rc != 0:
        module.fail_json(msg="psql could not read the federation state as %s@%s:%s/%s: %s"
                         % (p["login_user"], p["login_host"], p["login_port"], p["database"], err.strip()), rc=rc)
    try:
        data = json.loads(out.strip())
        now = parse_time(data["now"])
        report = build_report(data["instances"], data["newest_id"], p["shard_count"], now, p["stale_days"])
    except (ValueError, KeyError, IndexError, StatusError) as error:
        module.fail_json(msg="cannot report on the federation state: %s" % error)
    for warning in report["warnings"]:
        module.warn(warning)
    return {"changed": False, "report": report, "table": render_table(report)}


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "shard_count": {"type": "int", "required": True},
            "stale_days": {"type": "float", "default": 6.0},
            "login_host": {"type": "str", "default": "127.0.0.1"},
            "login_port": {"type": "int", "default": 5432},
            "login_user": {"type": "str", "default": "lemmy"},
            "login_password": {"type": "str", "required": True, "no_log": True},
            "database": {"type": "str", "default": "lemmy"},
        },
        supports_check_mode=True,
    )
    module.exit_json(**run_module(module))


if __name__ == "__main__":
    main()
