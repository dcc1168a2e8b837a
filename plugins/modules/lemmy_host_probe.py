#!/usr/bin/python
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) fediscale.lemmy contributors

from __future__ import annotations

DOCUMENTATION = r"""
---
module: lemmy_host_probe
short_description: Read what the preflight gate checks on a host, in one call
version_added: 0.1.0
description:
  - Reads the OS (from C(/etc/os-release)), the Python that runs Ansible's modules, the free space under
    O(disk_path) and, with O(docker_socket), whether the Docker socket is there.
  - Returns the OS and Python as facts, named as C(ansible.builtin.setup) names them (C(os_family),
    C(distribution), C(distribution_release), C(distribution_version), C(distribution_major_version), C(python)),
    so the roles that read them need no fact gathering of their own.
  - The preflight gate (C(playbooks/tasks/preflight_gate.yml)) runs it on every planned host and hands the results
    to M(fediscale.lemmy.lemmy_preflight). It is also the gate's reachability test. The rolling upgrade's gate also
    lists each app host's Lemmy containers and images (O(containers_named)) and asks the server-side rendering
    address from each UI host (O(url)) in the same call.
author:
  - fediscale.lemmy maintainers (@fediscale)
extends_documentation_fragment:
  - fediscale.lemmy._attributes
  - fediscale.lemmy._attributes.READ_ONLY
options:
  disk_path:
    description: The folder whose file system must have room for images and data.
    type: path
    default: /var/lib
  docker_socket:
    description: The path of the Docker socket; when given, RV(docker_socket) says whether a socket is there.
    type: path
  containers_named:
    description:
      - With O(docker_socket), list the containers (running or not) whose names contain this, in RV(containers), and
        the images the host holds, in RV(images), as Docker Engine's API lists them (the same entries as
        C(community.docker.docker_host_info) with C(verbose_output)). The rolling upgrade's preflight decides from them.
    type: str
  url:
    description: An HTTP URL to ask from this host; RV(url_status) is the status it answered (C(-1) when nothing answered).
    type: str
seealso:
  - module: fediscale.lemmy.lemmy_preflight
  - module: ansible.builtin.setup
"""

EXAMPLES = r"""
- name: Reach the host and read its OS, Python, free disk space and Docker socket
  fediscale.lemmy.lemmy_host_probe:
    disk_path: /var/lib
    docker_socket: /var/run/docker.sock
  register: __lemmy_preflight_probe
"""

RETURN = r"""
ansible_facts:
  description: The OS and Python facts, named as C(ansible.builtin.setup) names them.
  returned: success
  type: dict
  sample:
    os_family: Debian
    distribution: Debian
    distribution_release: bookworm
    distribution_version: "12.8"
    distribution_major_version: "12"
    python: {version: {major: 3, minor: 11, micro: 2, releaselevel: final, serial: 0}, executable: /usr/bin/python3}
free_mb:
  description: Free space, in MiB, for an unprivileged user under O(disk_path); null when the folder does not exist.
  returned: success
  type: int
  sample: 40123
docker_socket:
  description: Whether a socket is at O(docker_socket).
  returned: when O(docker_socket) is given
  type: bool
  sample: true
containers:
  description: The containers whose names contain O(containers_named), as Docker Engine's API lists them.
  returned: when O(containers_named) is given and the socket answers
  type: list
  elements: dict
  sample: [{Names: [/lemmy-api-1], Image: "dessalines/lemmy:0.19.19", State: running, Labels: {}}]
images:
  description: The images the host holds, as Docker Engine's API lists them (C(RepoTags) names them).
  returned: when O(containers_named) is given and the socket answers
  type: list
  elements: dict
  sample: [{RepoTags: ["dessalines/lemmy:0.19.20"]}]
docker_error:
  description: Why the containers could not be listed.
  returned: when O(containers_named) is given and the socket does not answer
  type: str
url_status:
  description: The HTTP status O(url) answered, or C(-1) when nothing answered.
  returned: when O(url) is given
  type: int
  sample: 200
"""

import http.client
import json
import os
import socket
import stat
import sys
import typing as t
from urllib.parse import quote

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.urls import fetch_url

from ansible_collections.fediscale.lemmy.plugins.module_utils._preflight import os_facts


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read()
    except OSError:
        return None


def _free_mb(path: str) -> int | None:
    try:
        info = os.statvfs(path)
    except OSError:
        return None
    return int(info.f_bavail * info.f_frsize // (1024 * 1024))


def _is_socket(path: str) -> bool:
    try:
        return stat.S_ISSOCK(os.stat(path).st_mode)
    except OSError:
        return False


class _UnixConnection(http.client.HTTPConnection):
    """HTTP over Docker Engine's unix socket."""

    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self._path)


def _docker_get(path: str, query: str) -> t.Any:
    connection = _UnixConnection(path, timeout=30)
    try:
        connection.request("GET", query)
        response = connection.getresponse()
        body = response.read()
        if response.status != 200:
            raise OSError("Docker Engine answered %d for %s: %s" % (response.status, query, body[:200].decode("utf-8", "replace")))
        return json.loads(body)
    finally:
        connection.close()


def _url_status(module: AnsibleModule, url: str) -> int:
    """The status the URL answered; fetch_url gives -1 when nothing answered."""
    _response, info = fetch_url(module, url, method="GET", timeout=10)
    return int(info.get("status", -1))


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(disk_path=dict(type="path", default="/var/lib"), docker_socket=dict(type="path"),
                           containers_named=dict(type="str"), url=dict(type="str")),
        required_by={"containers_named": "docker_socket"},
        supports_check_mode=True,
    )
    facts: dict[str, t.Any] = os_facts(_read("/etc/os-release") or _read("/usr/lib/os-release"), _read("/etc/debian_version"))
    version = sys.version_info
    facts["python"] = {
        "version": {"major": version[0], "minor": version[1], "micro": version[2], "releaselevel": version[3], "serial": version[4]},
        "executable": sys.executable,
    }
    result: dict[str, t.Any] = dict(changed=False, ansible_facts=facts, free_mb=_free_mb(module.params["disk_path"]))
    if module.params["docker_socket"]:
        result["docker_socket"] = _is_socket(module.params["docker_socket"])
    if module.params["containers_named"] is not None and result["docker_socket"]:
        try:
            name_filter = quote(json.dumps({"name": [module.params["containers_named"]]}))
            result["containers"] = _docker_get(module.params["docker_socket"], "/containers/json?all=1&filters=" + name_filter)
            result["images"] = _docker_get(module.params["docker_socket"], "/images/json")
        except (OSError, ValueError) as error:
            result["docker_error"] = str(error)
    elif module.params["containers_named"] is not None:
        result["docker_error"] = "no Docker socket at %s" % module.params["docker_socket"]
    if module.params["url"]:
        result["url_status"] = _url_status(module, module.params["url"])
    module.exit_json(**result)


if __name__ == "__main__":
    main()
