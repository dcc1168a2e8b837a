#!/usr/bin/python
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) fediscale.lemmy contributors

from __future__ import annotations

DOCUMENTATION = r"""
---
module: lemmy_files
short_description: Write several small files, and the directories that hold them, in one call
version_added: 0.1.0
description:
  - Creates each directory of O(directories) that is missing, and fixes its owner and mode, then writes each file of
    O(files) whose content, owner or mode differs, atomically (a temporary file in the same directory, then a
    rename), and reports which changed. One call for every config file of a host instead of a task per file.
  - A file given as C(content) is a secret, such as the config files of the C(lemmy_server) role. Its content is never
    shown, in a diff or anywhere else. Run the task with C(no_log).
  - A file given as C(text) is public, such as an nginx configuration. With C(--diff), its changes are shown.
author:
  - fediscale.lemmy maintainers (@fediscale)
extends_documentation_fragment:
  - fediscale.lemmy._attributes
attributes:
  check_mode:
    support: full
    details:
      - Reports which directories and files would change; writes nothing.
  diff_mode:
    support: partial
    details:
      - Files given as C(text) only. A file given as C(content) holds a secret and shows no diff.
  idempotent:
    support: full
options:
  files:
    description: The files, each with its C(path) and either C(content) or C(text). Their directories must exist or be in O(directories).
    type: list
    elements: dict
    default: []
    suboptions:
      path:
        description: Where the file goes.
        type: path
        required: true
      content:
        description: What it holds, when that is a secret.
        type: str
      text:
        description: What it holds, when that is public (shown in a diff).
        type: str
  directories:
    description: Directories to create first, or whose owner and mode to fix. Missing parents are created too, with the default mode.
    type: list
    elements: dict
    default: []
    suboptions:
      path:
        description: The directory.
        type: path
        required: true
      owner:
        description: Its owner, a user name or a numeric id.
        type: str
        default: root
      group:
        description: Its group, a group name or a numeric id.
        type: str
        default: root
      mode:
        description: Its mode, in octal.
        type: str
        default: "0755"
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

- name: Write the nginx site and its headers (public, shown with --diff)
  fediscale.lemmy.lemmy_files:
    directories:
      - path: /etc/nginx/lemmy
    files:
      - path: /etc/nginx/lemmy/headers.conf
        text: "{{ lookup('ansible.builtin.template', 'headers.conf.j2') }}"
    mode: "0644"
"""

RETURN = r"""
changed_files:
  description: The paths written (or, in check mode, that would be), in the order given.
  returned: success
  type: list
  elements: str
  sample: [/etc/lemmy/lemmy-api-1.hjson]
changed_directories:
  description: The directories created or fixed (or, in check mode, that would be), in the order given.
  returned: success
  type: list
  elements: str
  sample: [/etc/nginx/lemmy]
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


def _directory_needs(path: str, uid: int, gid: int, mode: int) -> bool:
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return True
    return info.st_uid != uid or info.st_gid != gid or (info.st_mode & 0o7777) != mode


def _read_text(path: str) -> str:
    try:
        with open(path, "rb") as handle:
            return handle.read().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return ""


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            files=dict(type="list", elements="dict", default=[],
                       options=dict(path=dict(type="path", required=True), content=dict(type="str", no_log=True), text=dict(type="str")),
                       mutually_exclusive=[("content", "text")], required_one_of=[("content", "text")]),
            directories=dict(type="list", elements="dict", default=[],
                             options=dict(path=dict(type="path", required=True), owner=dict(type="str", default="root"),
                                          group=dict(type="str", default="root"), mode=dict(type="str", default="0755"))),
            owner=dict(type="str", default="root"),
            group=dict(type="str", default="root"),
            mode=dict(type="str", default="0600"),
        ),
        supports_check_mode=True,
    )
    params = module.params
    changed_directories: list[str] = []
    for entry in params["directories"]:
        try:
            uid, gid, mode = _id(entry["owner"], pwd.getpwnam), _id(entry["group"], grp.getgrnam), int(str(entry["mode"]), 8)
        except (KeyError, ValueError) as error:
            module.fail_json(msg="directory %s: owner %r, group %r or mode %r is not valid on this host: %s"
                             % (entry["path"], entry["owner"], entry["group"], entry["mode"], error))
        if _directory_needs(entry["path"], uid, gid, mode):
            changed_directories.append(entry["path"])
            if not module.check_mode:
                try:
                    if not os.path.isdir(entry["path"]):
                        # Missing parents come first, as the file module makes them (root's, default mode).
                        parent = os.path.dirname(entry["path"].rstrip("/"))
                        if parent:
                            os.makedirs(parent, exist_ok=True)
                        os.mkdir(entry["path"], mode)
                    os.chown(entry["path"], uid, gid)
                    os.chmod(entry["path"], mode)
                except OSError as error:
                    module.fail_json(msg="could not create %s: %s" % (entry["path"], error), changed_directories=changed_directories[:-1])
    try:
        uid = _id(params["owner"], pwd.getpwnam)
        gid = _id(params["group"], grp.getgrnam)
        mode = int(str(params["mode"]), 8)
    except (KeyError, ValueError) as error:
        module.fail_json(msg="owner %r, group %r or mode %r is not valid on this host: %s" % (params["owner"], params["group"], params["mode"], error))
    changed: list[str] = []
    diffs: list[dict[str, str]] = []
    for entry in params["files"]:
        public = entry["text"] is not None
        content = (entry["text"] if public else entry["content"]).encode("utf-8")
        if _needs_write(entry["path"], content, uid, gid, mode):
            changed.append(entry["path"])
            if public and module._diff:
                diffs.append({"before_header": entry["path"], "after_header": entry["path"],
                              "before": _read_text(entry["path"]), "after": entry["text"]})
            if not module.check_mode:
                try:
                    _write(entry["path"], content, uid, gid, mode)
                except OSError as error:
                    module.fail_json(msg="could not write %s: %s" % (entry["path"], error), changed_files=changed[:-1],
                                     changed_directories=changed_directories)
    result: dict[str, t.Any] = dict(changed=bool(changed or changed_directories), changed_files=changed, changed_directories=changed_directories)
    if diffs:
        result["diff"] = diffs
    module.exit_json(**result)


if __name__ == "__main__":
    main()
