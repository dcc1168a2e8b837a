#!/usr/bin/python
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) fediscale.lemmy contributors

from __future__ import annotations

DOCUMENTATION = r"""
---
module: lemmy_lock
short_description: Take or release the lock that lets one operator run the fleet's playbooks at a time
version_added: 0.1.0
description:
  - Takes the operator lock, a small file that names its holder (user@host of the controller, pid, playbook,
    start time), created atomically with C(O_EXCL) so two runs can never both hold it.
  - Fails with a message naming the holder and since when if another run holds it, unless O(break_lock) is set.
  - Releases the lock only if this run holds it (same O(holder.token)); someone else's lock is left alone.
  - In check mode it only reads the lock and warns when another run holds it; it never writes.
  - Always reports C(changed=false); the lock is bookkeeping of one run, not state of the host, and reporting
    it would make every run look like a change.
author:
  - fediscale.lemmy maintainers (@fediscale)
extends_documentation_fragment:
  - fediscale.lemmy._attributes
attributes:
  check_mode:
    support: full
    details:
      - Reads the lock only; warns when another run holds it.
  diff_mode:
    support: none
  idempotent:
    support: full
    details:
      - Taking a lock the run already holds, or releasing a lock that is not held, does nothing.
options:
  path:
    description: The lock file. Its directory is created (mode 0755) when missing.
    type: path
    required: true
  state:
    description: C(present) takes the lock, C(absent) releases it.
    type: str
    choices: [present, absent]
    default: present
  holder:
    description: Who takes or releases the lock.
    type: dict
    required: true
    suboptions:
      user:
        description: The user on the controller.
        type: str
      host:
        description: The controller's host name.
        type: str
      pid:
        description: The pid of the C(ansible-playbook) process.
        type: int
      playbook:
        description: The playbook that runs.
        type: str
      started:
        description: When the run started (ISO 8601, UTC).
        type: str
      token:
        description: What identifies this run; only the same token releases the lock.
        type: str
        required: true
  break_lock:
    description:
      - Replace a lock another run holds. Only for a lock whose run is gone; playbooks map this to C(lemmy_break_lock).
    type: bool
    default: false
seealso:
  - module: fediscale.lemmy.lemmy_preflight
"""

EXAMPLES = r"""
- name: Take the operator lock
  fediscale.lemmy.lemmy_lock:
    path: /var/lib/fediscale-lemmy/operator.lock
    holder:
      user: admin
      host: controller
      pid: 4242
      playbook: site.yml
      started: "2026-01-01T10:00:00Z"
      token: admin@controller:4242:2026-01-01T10:00:00Z

- name: Release it
  fediscale.lemmy.lemmy_lock:
    path: /var/lib/fediscale-lemmy/operator.lock
    state: absent
    holder:
      token: admin@controller:4242:2026-01-01T10:00:00Z
"""

RETURN = r"""
action:
  description: What was done, among C(take), C(keep), C(break), C(read_only) (check mode), C(remove), C(leave), C(absent).
  returned: success
  type: str
  sample: take
holder:
  description: The holder found in the lock file before this task, or null.
  returned: always
  type: dict
  sample: {"user": "admin", "host": "controller", "pid": 4242, "playbook": "site.yml", "started": "2026-01-01T10:00:00Z"}
msg:
  description: What happened, naming the lock and its holder.
  returned: always
  type: str
  sample: took the operator lock lb1:/var/lib/fediscale-lemmy/operator.lock
"""

import errno
import os
import socket
import traceback
import typing as t

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.fediscale.lemmy.plugins.module_utils._lock import (
    BREAK,
    LEAVE,
    READ_ONLY,
    REFUSE,
    REMOVE,
    TAKE,
    decide_release,
    decide_take,
    parse_lock,
    render_lock,
)


def _read(path: str) -> tuple[bool, dict[str, t.Any] | None]:
    try:
        with open(path, encoding="utf-8") as handle:
            return True, parse_lock(handle.read(4096))
    except FileNotFoundError:
        return False, None
    except UnicodeDecodeError:
        return True, None


def _create(path: str, content: str) -> bool:
    """Create the lock file only if it does not exist (O_EXCL); False when another run was first."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except OSError as exc:
        if exc.errno == errno.EEXIST:
            return False
        raise
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(content)
        handle.flush()
        os.fsync(handle.fileno())
    return True


def run(module: AnsibleModule) -> dict[str, t.Any]:
    params = module.params
    path = params["path"]
    holder = dict(params["holder"])
    token = holder["token"]
    where = "%s:%s" % (socket.gethostname(), path)
    exists, current = _read(path)
    if params["state"] == "absent":
        decision = decide_release(exists, current, token, where)
        if decision["action"] == REMOVE and not module.check_mode:
            os.unlink(path)
        if decision["action"] == LEAVE:
            module.warn(decision["msg"])
        return {"action": decision["action"], "holder": current, "msg": decision["msg"]}

    decision = decide_take(exists, current, token, params["break_lock"], module.check_mode, where)
    if decision["action"] == READ_ONLY and current is not None:
        module.warn(decision["msg"])
    if decision["action"] == REFUSE:
        module.fail_json(msg=decision["msg"], holder=current, action=REFUSE, changed=False)
    if decision["action"] in (TAKE, BREAK):
        directory = os.path.dirname(path)
        if directory and not os.path.isdir(directory):
            os.makedirs(directory, mode=0o755)
        if decision["action"] == BREAK:
            module.warn(decision["msg"])
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
        if not _create(path, render_lock(holder)):
            # Another run created it between our read and our create: read who, refuse.
            exists, current = _read(path)
            again = decide_take(exists, current, token, False, False, where)
            if again["action"] == REFUSE:
                module.fail_json(msg=again["msg"], holder=current, action=REFUSE, changed=False)
    return {"action": decision["action"], "holder": current, "msg": decision["msg"]}


def main() -> None:
    argument_spec = dict(
        path=dict(type="path", required=True),
        state=dict(type="str", choices=["present", "absent"], default="present"),
        holder=dict(
            type="dict",
            required=True,
            options=dict(
                user=dict(type="str"),
                host=dict(type="str"),
                pid=dict(type="int"),
                playbook=dict(type="str"),
                started=dict(type="str"),
                token=dict(type="str", required=True, no_log=False),
            ),
        ),
        break_lock=dict(type="bool", default=False),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    try:
        result = run(module)
    except OSError as exc:
        module.fail_json(msg="lemmy_lock could not use %s: %s" % (module.params["path"], exc), exception=traceback.format_exc())
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
