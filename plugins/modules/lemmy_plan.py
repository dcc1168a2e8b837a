#!/usr/bin/python
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) fediscale.lemmy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: lemmy_plan
short_description: Plan which host runs which Lemmy process
version_added: 0.1.0
description:
  - Computes the complete placement of a horizontally scaled Lemmy fleet from the inventory
    groups, a few per-host variables and the global settings, and validates it.
  - The result lists every process on every host (kind, container name, port, CLI flags,
    federation shard index and count), the nginx upstreams, the trusted proxies, the database
    connection budget and the per-process rate limits.
  - It reports every problem at once, each naming the host or the variable, what is wrong and how to fix it.
  - Federation senders are numbered deterministically, by host in natural name order (C(web2) before C(web10)),
    then local slot. Pinned indices (C(lemmy_federation_indices)) are honoured, unpinned senders take the
    smallest free indices in that order. Sender I(i) of I(N) owns the instances whose C(id % N == i - 1).
  - Runs on the controller and changes nothing.
  - Without O(settings), the action reads the inventory itself, the way C(playbooks/tasks/plan.yml) uses it - the groups,
    each planned host's variables, the plan-level variables as the play sees them (C(group_vars/all) and C(-e)) and each
    host's own value of them (so a value set on a group below C(all) is refused), and the secrets' kind and length - and
    plans without sending a module anywhere. Only O(excluded_hosts) and O(known_versions) are then taken.
  - With O(settings), O(groups), O(host_vars) and O(host_settings) are the caller's.
author:
  - fediscale.lemmy maintainers (@fediscale)
extends_documentation_fragment:
  - fediscale.lemmy._attributes
  - fediscale.lemmy._attributes.read_only
  - fediscale.lemmy._attributes.actiongroup_lemmy
attributes:
  check_mode:
    support: full
  diff_mode:
    support: N/A
  idempotent:
    support: full
options:
  groups:
    description:
      - Group name to list of inventory host names, for the groups C(lemmy_proxy), C(lemmy_ui), C(lemmy_api),
        C(lemmy_federation), C(lemmy_scheduler), C(pictrs) and C(lemmy_db). Missing groups are empty.
      - C(lemmy_db) is optional when C(lemmy_database_host) in O(settings) names an external server.
      - Required with O(settings); without them the inventory's groups are read.
    type: dict
  host_vars:
    description:
      - Inventory host name to that host's settings. Unset keys take their defaults.
      - C(lemmy_host_address) is how other hosts reach the host; it defaults to C(ansible_host), then the inventory name.
      - C(lemmy_api_processes), C(lemmy_ui_processes), C(lemmy_federation_processes) count the processes of each kind
        on a host of that group (default 1). They must be positive integers; clean integer strings such as C("2")
        from INI inventories are accepted.
      - C(lemmy_scheduler_processes) may only be 1.
      - C(lemmy_federation_indices) pins the shard index of each sender process on the host, one entry per process.
      - C(lemmy_api_base_port) (default 8536) and C(lemmy_ui_base_port) (default 1234) are the ports of slot 1;
        slot I(n) listens on base + I(n) - 1. C(pictrs_port) defaults to 8080.
      - C(nginx_listen_port) (default 80), C(nginx_tls_enabled) (default false) and C(nginx_tls_port) (default 443),
        the nginx role's variables, are read on the C(lemmy_proxy) hosts so that no process takes nginx's ports.
      - A count set on a host outside the group that reads it (for example C(lemmy_api_processes) on a host not in
        C(lemmy_api)) is refused. Addresses must not carry a port; IPv6 literals, bare or bracketed, are accepted.
    type: dict
    default: {}
  host_settings:
    description:
      - Inventory host name to that host's own values of the plan-level variables (the keys of O(settings) except the
        derived C(secret_facts) and C(database_password_set)). A key left out is not compared.
      - Any value that differs from O(settings) (the controller's) is refused, because the plan reads these once for the whole
        fleet, so they belong in C(group_vars/all).
    type: dict
    default: {}
  settings:
    description:
      - The global variables, under their inventory names.
      - Required are C(lemmy_domain), C(lemmy_version) and C(secret_facts).
      - C(secret_facts) describes the secrets C(lemmy_database_password), C(pictrs_api_key), C(lemmy_admin_password),
        C(lemmy_ui_static_s3_access_key) and C(lemmy_ui_static_s3_secret_key) without their values, each as
        C({kind, length, differs_on}), where C(kind) is one of C(missing), C(string), C(integer), C(float), C(boolean), C(list),
        C(mapping), C(other); C(length) the length of a string; C(differs_on) the hosts that see another value.
        Never pass the secrets themselves.
      - C(database_password_set), a boolean, stands for C(secret_facts.lemmy_database_password) when that is absent.
      - C(lemmy_ui_version) defaults to C(lemmy_version). Floating tags such as C(latest) are refused.
      - C(pictrs_repo_type) is C(sled) (default; exactly one pict-rs host) or C(postgres) (pict-rs 0.5+, several hosts).
      - C(lemmy_ui_static_strategy) is C(ip_hash) (default; no extra infrastructure, a client keeps its UI process),
        C(object_storage) (needs a valid S3 C(lemmy_ui_static_bucket), an http(s) C(lemmy_ui_static_s3_endpoint), the S3 keys
        and C(nginx_static_origin), an http(s) URL without a path), C(sticky) or C(single).
      - C(nginx_api_balancing) is C(round_robin) (default) or C(ip_hash). C(nginx_trusted_proxies) is a list of CIDRs
        (default empty); C(0.0.0.0/0) and C(::/0) are refused.
      - C(lemmy_ui_internal_host), when set, is the host:port (IPv6 bracketed, no scheme) lemmy-ui's server-side rendering
        calls, and becomes C(ssr.address); unset, the plan picks the internal nginx of the first proxy.
      - C(lemmy_database_pool_size) (default 10) is the pool of every lemmy_server process,
        C(lemmy_database_max_connections) (default 200) the PostgreSQL limit, C(lemmy_database_reserved_connections)
        (default 10) what stays free for superuser and maintenance sessions.
      - C(pictrs_cpus) (default 4) caps the CPUs of each pict-rs container; pict-rs 0.5 opens 8 x CPUs + min(CPUs, 4)
        connections (36 for 4), budgeted per pict-rs process with the postgres repo. C(pictrs_database_pool_size) is
        refused, since pict-rs has no such setting.
      - C(lemmy_rate_limits) holds the wanted per-client limits under Lemmy's keys (defaults are Lemmy's).
        C(lemmy_federation_enabled) defaults to true. C(lemmy_database_host) names an external database server.
      - C(lemmy_prometheus) (default false) gives every lemmy_server process a C(metrics) entry C({bind, port, target}), with
        port C(lemmy_prometheus_base_port) (host variable, default 10002) plus its place among the host's lemmy_server
        processes, bound to C(lemmy_prometheus_bind) (host variable) or else the host's address, which must then be an IP.
      - C(lemmy_proxy_vip) (default unset) is an IPv4 address with the prefix length of the proxies' subnet, such as
        C(10.0.0.100/24), that the C(lemmy_proxy) hosts share with VRRP; it needs two proxies or more, each with an IPv4 address
        on that subnet, and must be no host's address. C(lemmy_proxy_vip_router_id) (default 51) is the VRRP router id, 1 to 255;
        C(lemmy_proxy_vip_preempt) (default false) lets the first proxy take the address back when it returns.
      - Leave it out to have the action read every input from the inventory.
    type: dict
  known_versions:
    description:
      - Lemmy releases to accept for C(lemmy_version) and C(lemmy_ui_version).
      - Defaults to the releases this collection knows, 0.19.0 to 0.19.20.
    type: list
    elements: str
  excluded_hosts:
    description:
      - Inventory host names to take out of every group before planning (C(lemmy_plan_excluded_hosts)), for example hosts
        found unreachable. Their processes are not planned, so nginx never lists them.
      - The plan carries them as C(excluded_hosts) and warns about them. A name that no group holds only warns.
      - Must be a list of host names.
    type: raw
    default: []
notes:
  - The per-process rate limits are C(ceil(wanted / API processes)) for the count keys when
    C(nginx_api_balancing=round_robin), because Lemmy counts requests in each process's memory; the
    C(*_per_second) keys (refill intervals in seconds) are kept. With C(ip_hash) every key is kept.
  - C(database.connections_needed) is the pool size times every lemmy_server process (API, senders, scheduler),
    plus 8 x C(pictrs_cpus) + min(C(pictrs_cpus), 4) for every pict-rs process when C(pictrs_repo_type=postgres). It must fit
    in C(lemmy_database_max_connections - lemmy_database_reserved_connections). The one-off migration process
    of a rolling upgrade runs while the scheduler is stopped, so it needs no extra budget.
seealso:
  - name: Lemmy horizontal scaling
    description: How Lemmy splits API, federation sending and scheduled tasks over processes.
    link: https://join-lemmy.org/docs/administration/horizontal_scaling.html
"""

EXAMPLES = r"""
- name: Plan the fleet of the inventory (what playbooks/tasks/plan.yml does)
  fediscale.lemmy.lemmy_plan:
    excluded_hosts: "{{ lemmy_plan_excluded_hosts | default([], true) }}"
  register: __lemmy_plan_result

- name: Plan a fleet from explicit groups
  fediscale.lemmy.lemmy_plan:
    groups:
      lemmy_proxy: [lb1]
      lemmy_api: [web1, web2]
      lemmy_ui: [web1, web2]
      lemmy_federation: [work1]
      lemmy_scheduler: [work1]
      pictrs: [media1]
      lemmy_db: [db1]
    host_vars:
      web1: {ansible_host: 10.0.0.11, lemmy_api_processes: 2}
      work1: {lemmy_federation_processes: 3, lemmy_federation_indices: [1, 2, 3]}
    settings:
      lemmy_domain: lemmy.example.org
      lemmy_version: "0.19.20"
      secret_facts:
        lemmy_database_password: {kind: string, length: 32, differs_on: []}
        pictrs_api_key: {kind: string, length: 32, differs_on: []}
        lemmy_admin_password: {kind: string, length: 24, differs_on: []}
  register: __lemmy_plan_result

- name: Show the placement
  ansible.builtin.debug:
    msg: "{{ __lemmy_plan_result.table }}"
"""

RETURN = r"""
plan:
  description: The placement. Its schema is fixed in docs/architecture.md.
  returned: success
  type: dict
  contains:
    domain:
      description: The public host name.
      type: str
      sample: lemmy.example.org
    version:
      description: The lemmy_server release.
      type: str
      sample: "0.19.20"
    ui_version:
      description: The lemmy-ui release.
      type: str
      sample: "0.19.20"
    processes:
      description:
        - Every process, sorted by host (natural order), then kind (api, ui, federation, scheduler, pictrs), then slot.
        - Federation senders are named by their shard index, API and UI processes by their local slot.
      type: list
      elements: dict
      sample:
        - host: web1
          address: 10.0.0.11
          name: lemmy-api-1
          kind: api
          slot: 1
          port: 8536
          shard_index: null
          shard_count: null
          args: ["--disable-scheduled-tasks", "--disable-activity-sending"]
        - host: work1
          address: work1
          name: lemmy-federation-2
          kind: federation
          slot: 2
          port: null
          shard_index: 2
          shard_count: 3
          args: ["--disable-http-server", "--disable-scheduled-tasks", "--federate-process-index", "2", "--federate-process-count", "3"]
    hosts:
      description: Every host that runs a process, with its address and process names.
      type: dict
      sample: {web1: {address: 10.0.0.11, processes: [lemmy-api-1, lemmy-ui-1]}}
    upstreams:
      description: nginx upstream members as C(address:port) (IPv6 addresses in brackets).
      type: dict
      sample: {api: ["10.0.0.11:8536", "web2:8536"], ui: ["10.0.0.11:1234", "web2:1234"], pictrs: ["media1:8080"]}
    federation:
      description: Whether senders run and how many (N).
      type: dict
      sample: {enabled: true, count: 3}
    scheduler:
      description: The one process that runs scheduled tasks.
      type: dict
      sample: {host: work1, name: lemmy-scheduler}
    pictrs:
      description: The pict-rs metadata repository type, hosts and the CPUs each pict-rs container may use.
      type: dict
      sample: {repo_type: sled, hosts: [media1], cpus: 4}
    database:
      description:
        - The database server and its connection budget. C(managed) is true when a C(lemmy_db) host runs it.
        - C(pictrs_pool_size) is the budget per pict-rs process (0 with the sled repo).
        - C(password_min_length) is the shortest database password the postgresql role accepts.
      type: dict
      sample: {host: db1, address: db1, managed: true, pool_size: 10, pictrs_pool_size: 0, max_connections: 200,
               reserved: 10, connections_needed: 70, password_min_length: 12}
    rate_limits:
      description: The rate limits to store in Lemmy's database, per API process.
      type: dict
      sample: {message: 60, message_per_second: 60, post: 2, post_per_second: 600}
    trusted_proxies:
      description: CIDRs that nginx trusts for X-Forwarded-For.
      type: list
      elements: str
      sample: ["10.0.0.0/24"]
    static_strategy:
      description: How lemmy-ui static assets survive a rolling upgrade.
      type: str
      sample: ip_hash
    api_balancing:
      description: The nginx balancing method for the API pool.
      type: str
      sample: round_robin
    excluded_hosts:
      description: The hosts left out by O(excluded_hosts), sorted.
      type: list
      elements: str
      sample: ["web2"]
    vip:
      description:
        - The proxies' shared address (C(lemmy_proxy_vip)) and the VRRP view of every C(lemmy_proxy) host, or null when
          C(lemmy_proxy_vip) is not set. Proxies are ranked in natural order; a proxy left out by O(excluded_hosts) stays a peer.
        - C(state) is C(MASTER) for the first proxy only with C(preempt); otherwise every proxy starts as C(BACKUP).
      type: dict
      sample: {address: 10.0.0.100, prefix: 24, cidr: 10.0.0.100/24, network: 10.0.0.0/24, router_id: 51, preempt: false,
               hosts: {lb1: {address: 10.0.0.11, priority: 200, state: BACKUP, peers: [10.0.0.12]},
                       lb2: {address: 10.0.0.12, priority: 190, state: BACKUP, peers: [10.0.0.11]}}}
    warnings:
      description: Things that work but deserve a look.
      type: list
      elements: str
      sample: []
table:
  description: The processes as aligned text lines (host, address, process, kind, shard i/N, port), header first.
  returned: success
  type: list
  elements: str
  sample:
    - "HOST   ADDRESS    PROCESS             KIND        SHARD  PORT"
    - "web1   10.0.0.11  lemmy-api-1         api         -      8536"
    - "work1  work1      lemmy-federation-1  federation  1/3    -"
summary:
  description: A few lines that sum the plan up.
  returned: success
  type: list
  elements: str
  sample: ["federation senders: 3", "scheduler: lemmy-scheduler on work1"]
problems:
  description: Every problem found, one sentence each, naming the host or variable and the fix.
  returned: failure
  type: list
  elements: str
  sample: ['host web2: lemmy_api_processes is "two"; set it to a positive integer such as 2']
"""

import typing as t

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.fediscale.lemmy.plugins.module_utils._plan import (
    PlanError,
    build_plan,
    format_problems,
    render_summary,
    render_table,
)


def run_module(module: AnsibleModule) -> dict[str, t.Any]:
    """Plan, or fail listing every problem."""
    if module.params["settings"] is None or module.params["groups"] is None:
        # The action plans from the inventory when settings are left out; the module alone cannot read it.
        module.fail_json(msg="lemmy_plan without the fediscale.lemmy action plugin needs groups and settings; call it by its FQCN, "
                             "fediscale.lemmy.lemmy_plan, so that the action reads the inventory, or pass both")
    try:
        plan = build_plan(
            module.params["groups"],
            module.params["host_vars"] or {},
            module.params["settings"],
            module.params["known_versions"],
            module.params["excluded_hosts"],
            module.params["host_settings"],
        )
    except PlanError as error:
        for warning in error.warnings:
            module.warn(warning)
        module.fail_json(msg=format_problems(error.problems), problems=error.problems)
    for warning in plan["warnings"]:
        module.warn(warning)
    return {"changed": False, "plan": plan, "table": render_table(plan), "summary": render_summary(plan)}


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "groups": {"type": "dict"},
            "host_vars": {"type": "dict", "default": {}},
            "host_settings": {"type": "dict", "default": {}},
            "settings": {"type": "dict"},
            "known_versions": {"type": "list", "elements": "str"},
            "excluded_hosts": {"type": "raw", "default": []},
        },
        supports_check_mode=True,
    )
    module.exit_json(**run_module(module))


if __name__ == "__main__":
    main()
