# -*- coding: utf-8 -*-
# Copyright (c) fediscale.lemmy contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The operator lock's decisions: take, keep, refuse or break a lock; release only our own.

Private to this collection; it may change at any time. Pure functions, no Ansible imports. The lock
is a small JSON file (holder user@host, pid, playbook, start time, token) that lemmy_lock creates with
O_EXCL, so two runs can never both take it.
"""

from __future__ import annotations

import json
import typing as t

HOLDER_KEYS = ("user", "host", "pid", "playbook", "started", "token")

# Actions of decide_take().
TAKE = "take"            # the lock is free: create it
KEEP = "keep"            # we hold it already (a second entry point of the same run): nothing to do
REFUSE = "refuse"        # someone else holds it: stop with who and since when
BREAK = "break"          # someone else holds it and lemmy_break_lock is set: replace it
READ_ONLY = "read_only"  # check mode: never write, only say what a real run would do

# Actions of decide_release().
REMOVE = "remove"
LEAVE = "leave"          # held by another run (or unreadable): never remove someone else's lock
ABSENT = "absent"


def parse_lock(text: t.Any) -> dict[str, t.Any] | None:
    """The holder recorded in a lock file, or None when the content is not a lock we wrote."""
    if not isinstance(text, str):
        return None
    try:
        data = json.loads(text)
    except ValueError:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("token"), str) or not data["token"]:
        return None
    return {key: data.get(key) for key in HOLDER_KEYS}


def render_lock(holder: t.Mapping[str, t.Any]) -> str:
    """The lock file's content for a holder."""
    return json.dumps({key: holder.get(key) for key in HOLDER_KEYS}, sort_keys=True) + "\n"


def describe(holder: t.Mapping[str, t.Any] | None) -> str:
    """user@host (pid N, playbook P) since T."""
    if holder is None:
        return "an unreadable lock (not written by this collection, or truncated)"
    return "%s@%s (pid %s, %s) since %s" % (
        holder.get("user") or "?", holder.get("host") or "?", holder.get("pid") or "?", holder.get("playbook") or "?",
        holder.get("started") or "an unknown time")


def decide_take(
    exists: bool,
    current: t.Mapping[str, t.Any] | None,
    token: str,
    break_lock: bool,
    check_mode: bool,
    where: str,
) -> dict[str, t.Any]:
    """Decide what taking the lock does.

    ``exists``: a lock file is there; ``current``: its parsed holder (None if unreadable); ``where``:
    host:path of the lock, for the messages. Returns ``action``, ``msg`` and ``holder`` (the current one).
    """
    if not exists:
        if check_mode:
            return {"action": READ_ONLY, "holder": None, "msg": "check mode: the lock %s is free; a real run takes it" % where}
        return {"action": TAKE, "holder": None, "msg": "took the operator lock %s" % where}
    if current is not None and current.get("token") == token:
        return {"action": KEEP, "holder": dict(current), "msg": "this run holds the operator lock %s already" % where}
    held = describe(current)
    if check_mode:
        return {
            "action": READ_ONLY,
            "holder": dict(current) if current else None,
            "msg": "check mode: the operator lock %s is held by %s; a real run now would be refused" % (where, held),
        }
    if break_lock:
        return {
            "action": BREAK,
            "holder": dict(current) if current else None,
            "msg": "broke the operator lock %s held by %s (lemmy_break_lock=true) and took it" % (where, held),
        }
    return {
        "action": REFUSE,
        "holder": dict(current) if current else None,
        "msg": (
            "Another run holds the operator lock %s: %s. Only one site.yml or rolling_upgrade.yml may run at a time; "
            "wait for it to finish. If that run is gone (killed, or its controller crashed), break the lock on purpose "
            "with -e lemmy_break_lock=true." % (where, held)
        ),
    }


def decide_release(exists: bool, current: t.Mapping[str, t.Any] | None, token: str, where: str) -> dict[str, t.Any]:
    """Decide what releasing the lock does: remove it only when this run holds it."""
    if not exists:
        return {"action": ABSENT, "msg": "the operator lock %s is not held" % where}
    if current is not None and current.get("token") == token:
        return {"action": REMOVE, "msg": "released the operator lock %s" % where}
    return {
        "action": LEAVE,
        "msg": "left the operator lock %s alone: it is held by %s, not by this run" % (where, describe(current)),
    }
