#!/usr/bin/python
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) fediscale.lemmy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: lemmy_adopt
short_description: Read a lemmy-ansible host's settings and map them to this collection's inventory
version_added: 0.1.0
description:
  - Reads what lemmy-ansible 1.5.x left on a host (the text of C(lemmy.hjson), the parsed C(docker-compose.yml),
    the compose project's containers and the instance's rate limits) and returns what adopting the host needs.
  - Parses C(lemmy.hjson) with a Hjson subset parser (comments, quoteless keys and values, optional commas, quoted
    and multi-line strings); a mistake names its line and column.
  - Returns the starter inventory (the host in every group of the collection, the "small" topology), the global
    variables, the secrets (the database password and the pict-rs API key), the container names, the data paths
    and the versions.
  - Refuses, listing every problem with its fix, what it cannot adopt safely (an unknown Lemmy release, a pict-rs
    postgres repo, a database password shorter than the postgresql role accepts, no running postgres container).
  - Changes nothing. Its result holds secrets, so set C(no_log) to true on the task.
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
  host:
    description: The inventory name of the lemmy-ansible host; the starter inventory uses it too.
    type: str
    required: true
  host_vars:
    description:
      - The host's connection variables in the lemmy-ansible inventory (C(ansible_host), C(ansible_port), C(ansible_user),
        C(ansible_connection), C(ansible_python_interpreter), C(ansible_become)); they are copied into the starter inventory.
    type: dict
    default: {}
  project_dir:
    description: The compose project directory, C(<lemmy_base_dir>/<domain>) (for example C(/srv/lemmy/lemmy.example.org)).
    type: str
    required: true
  lemmy_hjson:
    description: The text of C(<project_dir>/lemmy.hjson).
    type: str
    required: true
  compose:
    description: C(<project_dir>/docker-compose.yml), parsed (for example with the C(from_yaml) filter).
    type: dict
    required: true
  containers:
    description:
      - The compose project's containers, each C({name, service, state}), or the rows of
        C(docker ps --format '{{json .}}') (C(Names), C(State), C(Labels)); the service is the C(com.docker.compose.service) label.
      - When given, a running container of the C(postgres) service is required.
    type: list
    elements: dict
  rate_limits:
    description: The row of Lemmy's C(local_site_rate_limit) table; its limits become C(lemmy_rate_limits).
    type: dict
  tls_files:
    description:
      - The certificate and key that lemmy-ansible's certbot keeps for the domain, C({certificate, key}), when they exist on the host.
      - Given, the starter inventory serves HTTPS with them (C(nginx_tls_enabled)).
    type: dict
  target_postgres_major:
    description: The major version of the PostgreSQL the database moves to, to warn when it is older than the source.
    type: int
seealso:
  - module: fediscale.lemmy.lemmy_plan
  - name: lemmy-ansible
    description: The single-host installer this module adopts from.
    link: https://github.com/LemmyNet/lemmy-ansible
"""

EXAMPLES = r"""
- name: Read the lemmy-ansible files
  ansible.builtin.slurp:
    src: "/srv/lemmy/lemmy.example.org/{{ item }}"
  loop: [lemmy.hjson, docker-compose.yml]
  register: __adopt_files
  no_log: true

- name: Map them to this collection's inventory
  fediscale.lemmy.lemmy_adopt:
    host: "{{ inventory_hostname }}"
    project_dir: /srv/lemmy/lemmy.example.org
    lemmy_hjson: "{{ __adopt_files.results[0].content | b64decode }}"
    compose: "{{ __adopt_files.results[1].content | b64decode | from_yaml }}"
  delegate_to: localhost
  register: __adopt
  no_log: true
"""

RETURN = r"""
adoption:
  description: What the adoption needs to know. C(secrets) holds the secrets; everything else holds none.
  returned: success
  type: dict
  contains:
    domain:
      description: The instance's domain (C(hostname) in lemmy.hjson).
      type: str
      sample: lemmy.example.org
    project:
      description: The compose project name.
      type: str
      sample: lemmyexampleorg
    containers:
      description: Compose service to container name.
      type: dict
      sample: {lemmy: lemmyexampleorg-lemmy-1, postgres: lemmyexampleorg-postgres-1}
    stop_order:
      description: The containers to stop before the final dump, writers first, each C({name, timeout}); never the postgres container.
      type: list
      elements: dict
    postgres_stop:
      description: The postgres container and its stop timeout, C({name, timeout}), stopped after the final dump.
      type: dict
    postgres_container:
      description: The container to dump the database from.
      type: str
    paths:
      description: C(lemmy_hjson), C(compose), C(pictrs) (pict-rs's /mnt on the host), C(postgres) and C(backup).
      type: dict
    database:
      description: The database C(name), C(user) and the C(host) lemmy.hjson names.
      type: dict
    versions:
      description: C(lemmy), C(lemmy_ui), C(pictrs_image), C(postgres_image), C(postgres_major).
      type: dict
    pictrs:
      description: C(repo_type) and C(store_type) of pict-rs.
      type: dict
    inventory:
      description: The starter C(hosts.yml), the host in every group of the collection and in C(lemmy_ansible).
      type: dict
    group_vars:
      description: The starter C(group_vars/all) without secrets.
      type: dict
    secrets:
      description: C(lemmy_database_password) and C(pictrs_api_key). Write them to a 0600 file, never show them.
      type: dict
    restore:
      description: How the database moves, C({format, warnings}).
      type: dict
    warnings:
      description: Things that work but need a look before the cutover.
      type: list
      elements: str
problems:
  description: Every reason the host cannot be adopted, each with its fix.
  returned: failure
  type: list
  elements: str
"""

import typing as t

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.fediscale.lemmy.plugins.module_utils._adopt import AdoptError, adopt, restore_mode
from ansible_collections.fediscale.lemmy.plugins.module_utils._plan import DATABASE_PASSWORD_MIN_LENGTH, KNOWN_VERSIONS


def run_module(module: AnsibleModule) -> dict[str, t.Any]:
    """Map the host, or fail listing every problem."""
    params = module.params
    try:
        result = adopt(
            params["host"],
            params["host_vars"] or {},
            params["project_dir"].rstrip("/"),
            params["lemmy_hjson"],
            params["compose"],
            KNOWN_VERSIONS,
            params["containers"],
            params["rate_limits"],
            DATABASE_PASSWORD_MIN_LENGTH,
            params["tls_files"],
        )
    except AdoptError as error:
        module.fail_json(msg="cannot adopt %s: %s" % (params["host"], "; ".join(error.problems)), problems=error.problems)
    result["restore"] = restore_mode(result["versions"]["postgres_major"], params["target_postgres_major"])
    return {"changed": False, "adoption": result}


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "host": {"type": "str", "required": True},
            "host_vars": {"type": "dict", "default": {}},
            "project_dir": {"type": "str", "required": True},
            "lemmy_hjson": {"type": "str", "required": True},
            "compose": {"type": "dict", "required": True},
            "containers": {"type": "list", "elements": "dict"},
            "rate_limits": {"type": "dict"},
            "tls_files": {"type": "dict"},
            "target_postgres_major": {"type": "int"},
        },
        supports_check_mode=True,
    )
    module.exit_json(**run_module(module))


if __name__ == "__main__":
    main()
