# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) fediscale.lemmy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The operator lock's decisions: take, keep, refuse, break, read only in check mode; release only our own."""

from __future__ import annotations

import pytest

from ansible_collections.fediscale.lemmy.plugins.module_utils._lock import (
    ABSENT,
    BREAK,
    KEEP,
    LEAVE,
    READ_ONLY,
    REFUSE,
    REMOVE,
    TAKE,
    decide_release,
    decide_take,
    describe,
    parse_lock,
    render_lock,
)

OTHER = {"user": "alice", "host": "ctl1", "pid": 4242, "playbook": "rolling_upgrade.yml", "started": "2026-01-01T10:00:00Z", "token": "alice@ctl1:4242:x"}
WHERE = "lb1:/var/lib/fediscale-lemmy/operator.lock"


def test_a_free_lock_is_taken() -> None:
    assert decide_take(False, None, "me", False, False, WHERE)["action"] == TAKE


def test_a_lock_held_by_another_run_is_refused_naming_who_and_since_when() -> None:
    decision = decide_take(True, OTHER, "me", False, False, WHERE)
    assert decision["action"] == REFUSE
    assert decision["holder"] == OTHER
    assert "Another run holds the operator lock lb1:/var/lib/fediscale-lemmy/operator.lock: " in decision["msg"]
    assert "alice@ctl1 (pid 4242, rolling_upgrade.yml) since 2026-01-01T10:00:00Z" in decision["msg"]
    assert "-e lemmy_break_lock=true" in decision["msg"]


def test_our_own_lock_is_kept() -> None:
    assert decide_take(True, OTHER, OTHER["token"], False, False, WHERE)["action"] == KEEP


def test_a_lock_is_broken_only_on_purpose() -> None:
    assert decide_take(True, OTHER, "me", False, False, WHERE)["action"] == REFUSE
    decision = decide_take(True, OTHER, "me", True, False, WHERE)
    assert decision["action"] == BREAK
    assert "broke the operator lock" in decision["msg"] and "alice@ctl1" in decision["msg"]


def test_an_unreadable_lock_is_refused_too() -> None:
    decision = decide_take(True, None, "me", False, False, WHERE)
    assert decision["action"] == REFUSE
    assert "an unreadable lock" in decision["msg"]


@pytest.mark.parametrize("exists, current", [(False, None), (True, OTHER), (True, None)])
def test_check_mode_never_writes_and_never_refuses(exists: bool, current: dict | None) -> None:
    for break_lock in (False, True):
        assert decide_take(exists, current, "me", break_lock, True, WHERE)["action"] == READ_ONLY


def test_check_mode_says_a_real_run_would_be_refused() -> None:
    assert "a real run now would be refused" in decide_take(True, OTHER, "me", False, True, WHERE)["msg"]


def test_release_removes_only_our_own_lock() -> None:
    assert decide_release(True, OTHER, OTHER["token"], WHERE)["action"] == REMOVE
    left = decide_release(True, OTHER, "me", WHERE)
    assert left["action"] == LEAVE and "alice@ctl1" in left["msg"]
    assert decide_release(True, None, "me", WHERE)["action"] == LEAVE
    assert decide_release(False, None, "me", WHERE)["action"] == ABSENT


def test_the_lock_file_round_trips() -> None:
    assert parse_lock(render_lock(OTHER)) == OTHER


@pytest.mark.parametrize("text", [None, "", "not json", "[]", '{"user": "x"}', '{"token": ""}', '{"token": 5}'])
def test_content_we_did_not_write_is_no_lock(text: object) -> None:
    assert parse_lock(text) is None


def test_describe_a_partial_holder() -> None:
    assert describe({"token": "t"}) == "?@? (pid ?, ?) since an unknown time"
