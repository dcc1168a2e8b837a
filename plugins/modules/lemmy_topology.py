#!/usr/bin/python
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) fediscale.lemmy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: lemmy_topology
short_description: Draw a Lemmy plan as a Graphviz graph
version_added: 0.1.0
description:
  - Turns the plan made by M(fediscale.lemmy.lemmy_plan) into Graphviz DOT text, one cluster per host.
  - It shows the nginx proxies (and the internal nginx that lemmy-ui's server-side rendering calls), the UI and API
    pools, every API and UI process with its port, every federation sender with its shard I(i/N), the scheduler,
    pict-rs with its files or object storage, and the database, with the traffic between them.
  - Runs on the controller and changes nothing. It also reports where the Graphviz C(dot) program is, so a playbook
    can render the text as SVG (C(dot -Tsvg)) or say clearly that Graphviz is missing.
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
    type: dict
    required: true
  proxies:
    description:
      - The C(lemmy_proxy) hosts, which the plan does not list, as a mapping of inventory host name to its address, or to
        its host variables C(lemmy_host_address) and C(ansible_host) (the first one set is the address, as in the plan),
        or a list of host names. The first in natural name order runs the internal nginx.
      - Hosts in the plan's C(excluded_hosts) are left out.
    type: raw
    default: []
  pictrs_store_types:
    description:
      - Inventory host name of a pict-rs host to its C(pictrs_store_type), C(filesystem) (default) or C(object_storage).
    type: dict
    default: {}
  internal_port:
    description:
      - The internal nginx port on the first proxy (C(nginx_internal_port)).
    type: int
    default: 8480
  static_origin:
    description:
      - The S3 origin of C(/static/) (C(nginx_static_origin)), shown when the plan's static strategy is C(object_storage).
    type: str
seealso:
  - module: fediscale.lemmy.lemmy_plan
  - name: Graphviz DOT language
    description: The text format this module returns.
    link: https://graphviz.org/doc/info/lang.html
"""

EXAMPLES = r"""
- name: Draw the plan
  fediscale.lemmy.lemmy_topology:
    plan: "{{ lemmy_plan }}"
    proxies: {lb1: 10.0.0.10}
  register: __lemmy_topology

- name: Render it as SVG
  ansible.builtin.command:
    argv: ["{{ __lemmy_topology.dot_executable }}", -Tsvg]
    stdin: "{{ __lemmy_topology.dot }}"
  register: __lemmy_topology_svg
  changed_when: false
  when: __lemmy_topology.dot_executable is not none
"""

RETURN = r"""
dot:
  description: The graph as Graphviz DOT text.
  returned: success
  type: str
  sample: "digraph lemmy {\n  ...\n}\n"
dot_executable:
  description: The path of the Graphviz C(dot) program on the controller, or null when Graphviz is not installed.
  returned: success
  type: str
  sample: /usr/bin/dot
"""

import typing as t

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.fediscale.lemmy.plugins.module_utils._topology import TopologyError, build_dot


def run_module(module: AnsibleModule) -> dict[str, t.Any]:
    """Draw the plan, or fail naming the value that cannot be drawn."""
    try:
        dot = build_dot(
            module.params["plan"],
            module.params["proxies"] or [],
            module.params["pictrs_store_types"],
            module.params["internal_port"],
            module.params["static_origin"],
        )
    except TopologyError as error:
        module.fail_json(msg=str(error))
    return {"changed": False, "dot": dot, "dot_executable": module.get_bin_path("dot")}


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "plan": {"type": "dict", "required": True},
            "proxies": {"type": "raw", "default": []},
            "pictrs_store_types": {"type": "dict", "default": {}},
            "internal_port": {"type": "int", "default": 8480},
            "static_origin": {"type": "str"},
        },
        supports_check_mode=True,
    )
    module.exit_json(**run_module(module))


if __name__ == "__main__":
    main()
