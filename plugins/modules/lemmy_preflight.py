#!/usr/bin/python
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) fediscale.lemmy contributors

from __future__ import annotations

DOCUMENTATION = r"""
---
module: lemmy_preflight
short_description: Decide whether every planned host answered and fits, before a run changes anything
version_added: 0.1.0
description:
  - Runs on the controller with what the playbook read from every planned host (reachability, OS family,
    Python version, free disk space, Docker socket) and decides whether the run may go on.
  - Fails with one message naming every host and what is wrong with it, and how to fix it, when a host is
    unreachable (and not allowed to be) or does not fit.
  - Hosts named in O(allow_unreachable) that do not answer are left out and returned in RV(left_out), so
    the playbook plans without them.
  - Changes nothing.
author:
  - fediscale.lemmy maintainers (@fediscale)
extends_documentation_fragment:
  - fediscale.lemmy._attributes
  - fediscale.lemmy._attributes.READ_ONLY
options:
  hosts:
    description:
      - Every planned host and what it does, among C(app) (runs containers), C(db) (runs PostgreSQL) and
        C(proxy) (runs nginx).
    type: dict
    required: true
  reports:
    description:
      - What the playbook read from each host, by host name.
      - Keys C(unreachable) (bool), C(msg), C(failed), C(os_family), C(distribution), C(python_version),
        C(free_mb) (as M(fediscale.lemmy.lemmy_host_probe) reads it) or C(df) (the output of C(df -Pk PATH)),
        C(disk_path), C(docker_socket) (bool).
    type: dict
    required: true
  allow_unreachable:
    description:
      - Hosts that may be left out when they do not answer, as a comma-separated string or a list.
      - Playbooks map this to C(lemmy_allow_unreachable).
    type: raw
  require_docker_socket:
    description:
      - Whether every app host must already have the Docker socket (true for an upgrade, false for a first
        deployment, which installs Docker Engine).
    type: bool
    default: false
  docker_socket:
    description: The path of the Docker socket on the app hosts.
    type: str
    default: /var/run/docker.sock
  min_free_mb:
    description: The free disk space, in MiB, that every app and database host needs under the C(disk_path) of its report.
    type: int
    default: 2048
  min_python:
    description: The oldest Python on the hosts that Ansible's modules run on.
    type: str
    default: "3.9"
  may_leave_out:
    description:
      - Whether this playbook can leave hosts out at all. When false, an unreachable host is refused even if it
        is named in O(allow_unreachable).
    type: bool
    default: true
  indispensable:
    description: Hosts that may never be left out, mapped to the reason shown when they do not answer.
    type: dict
    default: {}
seealso:
  - module: fediscale.lemmy.lemmy_plan
"""

EXAMPLES = r"""
- name: Decide the preflight gate
  fediscale.lemmy.lemmy_preflight:
    hosts:
      web1: [app]
      db1: [db]
      lb1: [proxy]
    reports:
      web1: {os_family: Debian, python_version: "3.11.2", df: "Filesystem 1024-blocks Used Available Capacity Mounted\n/dev/sda1 100 1 9000000 1% /"}
      db1: {unreachable: true, msg: "Failed to connect to the host via ssh"}
      lb1: {os_family: Debian, python_version: "3.11.2"}
    allow_unreachable: db1
  register: preflight
"""

RETURN = r"""
ok:
  description: Whether the run may go on.
  returned: always
  type: bool
  sample: true
left_out:
  description: The unreachable hosts that were allowed to be left out, sorted.
  returned: always
  type: list
  elements: str
  sample: ["web2"]
blocking:
  description: Each host that stops the run, with what is wrong with it.
  returned: always
  type: dict
  sample: {"web2": ["host web2: unreachable (...); bring it back, or run with -e lemmy_allow_unreachable=web2 ..."]}
problems:
  description: Every problem, one line each.
  returned: always
  type: list
  elements: str
  sample: []
gate_warnings:
  description: Names in O(allow_unreachable) of hosts that answered after all (also shown as warnings).
  returned: always
  type: list
  elements: str
  sample: []
msg:
  description: The decision in one message.
  returned: always
  type: str
  sample: "Preflight: all 6 planned hosts answered and fit"
"""

import traceback
import typing as t

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.fediscale.lemmy.plugins.module_utils._preflight import (
    decide,
    parse_df_free_mb,
    parse_version,
)


def _reports(raw: t.Mapping[str, t.Any]) -> dict[str, dict[str, t.Any]]:
    out: dict[str, dict[str, t.Any]] = {}
    for host, report in raw.items():
        report = dict(report) if isinstance(report, dict) else {"failed": True, "msg": "no report"}
        if "df" in report:
            report["free_mb"] = parse_df_free_mb(report.pop("df"))
        out[str(host)] = report
    return out


def main() -> None:
    argument_spec = dict(
        hosts=dict(type="dict", required=True),
        reports=dict(type="dict", required=True),
        allow_unreachable=dict(type="raw"),
        require_docker_socket=dict(type="bool", default=False),
        docker_socket=dict(type="str", default="/var/run/docker.sock"),
        min_free_mb=dict(type="int", default=2048),
        min_python=dict(type="str", default="3.9"),
        may_leave_out=dict(type="bool", default=True),
        indispensable=dict(type="dict", default={}),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    params = module.params
    min_python = parse_version(params["min_python"])
    if min_python is None:
        module.fail_json(msg="min_python is %r; set it to a version such as 3.9" % params["min_python"])
    try:
        hosts = {str(host): [str(role) for role in (roles or [])] for host, roles in params["hosts"].items()}
        result = decide(
            hosts,
            _reports(params["reports"]),
            allow_unreachable=params["allow_unreachable"],
            require_docker_socket=params["require_docker_socket"],
            min_free_mb=params["min_free_mb"],
            min_python=min_python,
            may_leave_out=params["may_leave_out"],
            indispensable={str(k): str(v) for k, v in params["indispensable"].items()},
            docker_socket=params["docker_socket"],
        )
    except Exception as exc:  # pragma: no cover - defensive
        module.fail_json(msg="lemmy_preflight failed: {0}".format(exc), exception=traceback.format_exc())
    # Each warning goes through module.warn; the result keeps them as gate_warnings (a `warnings` key is deprecated).
    for warning in result["warnings"]:
        module.warn(warning)
    result["gate_warnings"] = result.pop("warnings")
    result["changed"] = False
    if not result["ok"]:
        module.fail_json(**result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
