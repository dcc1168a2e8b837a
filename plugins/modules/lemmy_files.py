#!/usr/bin/python
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) fediscale.lemmy contributors

from __future__ import annotations

DOCUMENTATION = r"""
---
module: lemmy_files
short_description: Write several small files with one owner and mode in one call
version_added: 0.1.0
description:
  - Writes each file of O(files) whose content, owner or mode differs, atomically (a temporary file in the same
    directory, then a rename), and reports which changed. One call for every config file of a host instead of a
    template task per file.
  - Meant for files that hold secrets, such as the config files of the C(lemmy_server) role. It shows no content and
    no diff. Run it with C(no_log).
author:
  - fediscale.lemmy maintainers (@fediscale)
extends_documentation_fragment:
  - fediscale.lemmy._attributes
attributes:
  check_mode:
    support: full
    details:
      - Reports which files would change; writes nothing.
  diff_mode:
    support: none
    details:
      - The files hold secrets.
  idempotent:
    support: full
options:
  files:
    description: The files, each with its C(path) and C(content). Their directories must exist.
    type: list
    elements: dict
    required: true
    suboptions:
      path:
        description: Where the file goes.
        type: path
        required: true
      content:
        description: What it holds.
        type: str
        required: true
  owner:
    description: Owner of every file, a user name or a numeric id (which need not exist on the host).
    type: str
    default: root
  group:
    description: Group of every file, a group name or a numeric id.
    type: str
    default: root
  mode:
    description: Mode of every file, in octal.
    type: str
    default: "0600"
seealso:
  - module: ansible.builtin.template
"""

EXAMPLES = r"""
- name: Write the config file of each process (secret, 0600)
  fediscale.lemmy.lemmy_files:
    files:
      - path: /etc/lemmy/lemmy-api-1.hjson
        content: "{}"
    owner: "1000"
    group: "1000"
    mode: "0600"
  no_log: true
"""

RETURN = r"""
changed_files:
  description: The paths written (or, in check mode, that would be), in the order given.
  returned: success
  type: list
  elements: str
  sample: [/etc/lemmy/lemmy-api-1.hjson]
"""

import grp
import os
import pwd
import tempfile
import typing as t

from ansible.module_utils.basic import AnsibleModule


def _id(value: str, lookup: t.Callable[[str], t.Any]) -> int:
    text = str(value).strip()
    return int(text) if text.isdigit() else int(lookup(text)[2])


def _needs_write(path: str, content: bytes, uid: int, gid: int, mode: int) -> bool:
    try:
        stat = os.stat(path)
        with open(path, "rb") as handle:
            current = handle.read()
    except FileNotFoundError:
        return True
    return current != content or stat.st_uid != uid or stat.st_gid != gid or (stat.st_mode & 0o7777) != mode


def _write(path: str, content: bytes, uid: int, gid: int, mode: int) -> None:
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", dir=os.path.dirname(path) or ".")
    try:
        # Owner and mode before the content arrives: the secret is never readable by anyone else.
        os.fchown(fd, uid, gid)
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            files=dict(type="list", elements="dict", required=True,
                       options=dict(path=dict(type="path", required=True), content=dict(type="str", required=True, no_log=True))),
            owner=dict(type="str", default="root"),
            group=dict(type="str", default="root"),
            mode=dict(type="str", default="0600"),
        ),
        supports_check_mode=True,
    )
    params = module.params
    try:
        uid = _id(params["owner"], pwd.getpwnam)
        gid = _id(params["group"], grp.getgrnam)
        mode = int(str(params["mode"]), 8)
    except (KeyError, ValueError) as error:
        module.fail_json(msg="owner %r, group %r or mode %r is not valid on this host: %s" % (params["owner"], params["group"], params["mode"], error))
    changed: list[str] = []
    for entry in params["files"]:
        content = entry["content"].encode("utf-8")
        if _needs_write(entry["path"], content, uid, gid, mode):
            changed.append(entry["path"])
            if not module.check_mode:
                try:
                    _write(entry["path"], content, uid, gid, mode)
                except OSError as error:
                    module.fail_json(msg="could not write %s: %s" % (entry["path"], error), changed_files=changed[:-1])
    module.exit_json(changed=bool(changed), changed_files=changed)


if __name__ == "__main__":
    main()
