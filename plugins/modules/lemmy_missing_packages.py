#!/usr/bin/python
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) fediscale.lemmy contributors

from __future__ import annotations

DOCUMENTATION = r"""
---
module: lemmy_missing_packages
short_description: Name the Debian packages that are not installed yet
version_added: 0.1.0
description:
  - Asks dpkg which of O(names) are installed and returns the others in RV(missing), in the order given.
  - The roles install only what it returns, so a converge where everything is installed does not load apt's cache on
    every host. A name dpkg does not know (a version pin such as C(docker.io=20.10*), a package never installed)
    counts as missing, and C(ansible.builtin.apt) then handles it.
author:
  - fediscale.lemmy maintainers (@fediscale)
extends_documentation_fragment:
  - fediscale.lemmy._attributes
  - fediscale.lemmy._attributes.READ_ONLY
options:
  names:
    description: The package names.
    type: list
    elements: str
    required: true
seealso:
  - module: ansible.builtin.apt
"""

EXAMPLES = r"""
- name: Find the Docker Engine packages that are not installed yet
  fediscale.lemmy.lemmy_missing_packages:
    names: [docker.io, python3-requests]
  register: __docker_engine_missing

- name: Install them
  ansible.builtin.apt:
    name: "{{ __docker_engine_missing.missing }}"
    state: present
  when: __docker_engine_missing.missing | length > 0
"""

RETURN = r"""
missing:
  description: The names of O(names) that dpkg does not report installed, in the order given.
  returned: success
  type: list
  elements: str
  sample: [python3-requests]
"""

import typing as t

from ansible.module_utils.basic import AnsibleModule


def installed_from(output: str) -> set[str]:
    """Package names that `dpkg-query -W -f='${Package}\\t${db:Status-Status}\\n'` reports installed."""
    names = set()
    for line in output.splitlines():
        name, sep, status = line.partition("\t")
        if sep and status.strip() == "installed":
            names.add(name.strip())
    return names


def missing_from(names: t.Sequence[str], output: str) -> list[str]:
    installed = installed_from(output)
    return [name for name in names if name.split(":", 1)[0] not in installed]


def main() -> None:
    module = AnsibleModule(argument_spec=dict(names=dict(type="list", elements="str", required=True)), supports_check_mode=True)
    names = [name for name in module.params["names"] if name]
    output = ""
    if names:
        # dpkg-query exits 1 when it does not know a name; it still lists the ones it knows.
        dpkg_query = module.get_bin_path("dpkg-query", required=True)
        _rc, output, _err = module.run_command([dpkg_query, "-W", "-f=${Package}\t${db:Status-Status}\n", "--"] + names)
    module.exit_json(changed=False, missing=missing_from(names, output))


if __name__ == "__main__":
    main()
