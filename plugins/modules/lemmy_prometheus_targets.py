#!/usr/bin/python
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) fediscale.lemmy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: lemmy_prometheus_targets
short_description: Prometheus file_sd targets for every lemmy_server process of a plan
version_added: 0.1.0
description:
  - Turns the plan made by M(fediscale.lemmy.lemmy_plan) with C(lemmy_prometheus=true) into the groups of a Prometheus
    C(file_sd_configs) file, one group per lemmy_server process (API, federation senders, scheduler).
  - Each group has the process's metrics address (C(host:port), IPv6 bracketed) and the labels C(job), C(kind), C(host),
    C(process) and C(shard) (C(i/N) for federation senders, empty otherwise). Lemmy serves the metrics on C(/metrics),
    which is Prometheus's default C(metrics_path).
  - Runs on the controller and changes nothing; write RV(file_sd) with M(ansible.builtin.copy).
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
    description:
      - The plan, as stored in C(hostvars['localhost']['lemmy_plan']) by C(playbooks/tasks/plan.yml).
      - A plan made without C(lemmy_prometheus=true) fails with a message saying so.
    type: dict
    required: true
  job:
    description:
      - The value of the C(job) label of every target.
    type: str
    default: lemmy
seealso:
  - module: fediscale.lemmy.lemmy_plan
  - name: Prometheus file-based service discovery
    description: The format of RV(file_sd).
    link: https://prometheus.io/docs/prometheus/latest/configuration/configuration/#file_sd_config
"""

EXAMPLES = r"""
- name: Describe the metrics targets
  fediscale.lemmy.lemmy_prometheus_targets:
    plan: "{{ lemmy_plan }}"
  register: __lemmy_targets

- name: Write them where Prometheus reads file_sd files
  ansible.builtin.copy:
    content: "{{ __lemmy_targets.file_sd | to_nice_json }}\n"
    dest: /etc/prometheus/file_sd/lemmy.json
    mode: "0644"
"""

RETURN = r"""
file_sd:
  description: The file_sd groups, one per lemmy_server process, in the plan's order.
  returned: success
  type: list
  elements: dict
  sample:
    - targets: ["10.0.0.31:10002"]
      labels: {job: lemmy, kind: federation, host: work1, process: lemmy-federation-1, shard: 1/3}
count:
  description: How many targets there are.
  returned: success
  type: int
  sample: 7
"""

import typing as t

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.fediscale.lemmy.plugins.module_utils._prometheus import TargetsError, file_sd


def run_module(module: AnsibleModule) -> dict[str, t.Any]:
    try:
        groups = file_sd(module.params["plan"], module.params["job"])
    except TargetsError as error:
        module.fail_json(msg=str(error))
    return {"changed": False, "file_sd": groups, "count": len(groups)}


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "plan": {"type": "dict", "required": True},
            "job": {"type": "str", "default": "lemmy"},
        },
        supports_check_mode=True,
    )
    module.exit_json(**run_module(module))


if __name__ == "__main__":
    main()
