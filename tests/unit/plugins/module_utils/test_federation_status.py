# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) fediscale.lemmy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The federation lag report from fixture rows of Lemmy's queue state."""

from __future__ import annotations

import datetime
import json

import pytest

from ansible_collections.fediscale.lemmy.plugins.module_utils._federation_status import (
    StatusError,
    build_report,
    human_age,
    parse_time,
    render_table,
    shard_of,
)

NOW = datetime.datetime(2026, 12, 2, 12, 0, tzinfo=datetime.timezone.utc)

# As psql's json_agg writes them: timestamptz with a +00 offset.
ROWS = [
    {"id": 2, "domain": "peer1.example", "last_successful_id": 1200, "fail_count": 0, "last_retry": None,
     "last_successful_published_time": "2026-12-02T11:59:58+00", "oldest_unsent_published": None},
    {"id": 3, "domain": "peer2.example", "last_successful_id": 1190, "fail_count": 4, "last_retry": "2026-12-02T11:58:00+00",
     "last_successful_published_time": "2026-12-02T11:50:00+00", "oldest_unsent_published": "2026-12-02T11:55:00+00"},
    {"id": 4, "domain": "dead.example", "last_successful_id": 10, "fail_count": 77, "last_retry": "2026-12-02T06:00:00+00",
     "last_successful_published_time": "2026-11-25T00:00:00+00", "oldest_unsent_published": "2026-11-26T00:00:00+00"},
    {"id": 5, "domain": "new.example", "last_successful_id": None, "fail_count": 0, "last_retry": None,
     "last_successful_published_time": None, "oldest_unsent_published": None},
    {"id": 6, "domain": "slow.example", "last_successful_id": 600, "fail_count": 1, "last_retry": None,
     "last_successful_published_time": None, "oldest_unsent_published": "2026-11-26T13:00:00.5+00"},
]


def report() -> dict:
    return build_report(ROWS, 1200, 3, NOW)


def test_shards_follow_the_plans_rule() -> None:
    assert [shard_of(i, 3) for i in range(1, 7)] == [2, 3, 1, 2, 3, 1]
    got = {r["domain"]: r["shard"] for r in report()["instances"]}
    assert got == {"peer1.example": "3/3", "peer2.example": "1/3", "dead.example": "2/3", "new.example": "3/3", "slow.example": "1/3"}


def test_instance_rows() -> None:
    rows = {r["domain"]: r for r in report()["instances"]}
    assert rows["peer1.example"]["behind"] == 0 and rows["peer1.example"]["oldest_unsent_age_seconds"] is None
    assert rows["peer2.example"]["behind"] == 10 and rows["peer2.example"]["oldest_unsent_age_seconds"] == 300.0
    assert rows["peer2.example"]["fail_count"] == 4
    assert rows["new.example"]["started"] is False and rows["new.example"]["behind"] is None
    # 6 days 23 hours old: stale; 5 days 23 hours: not yet.
    assert rows["dead.example"]["stale"] is True and rows["dead.example"]["oldest_unsent_age_seconds"] == 6.5 * 86400
    assert rows["slow.example"]["stale"] is False
    # Sorted by shard, then id.
    assert [r["id"] for r in report()["instances"]] == [3, 6, 4, 2, 5]


def test_shard_rows() -> None:
    shards = report()["shards"]
    assert shards == [
        {"shard": "1/3", "instances": 2, "not_started": 0, "max_behind": 600, "oldest_unsent_age_seconds": 514799.5,
         "failing": 2, "fail_count": 5, "stale": 0},
        {"shard": "2/3", "instances": 1, "not_started": 0, "max_behind": 1190, "oldest_unsent_age_seconds": 6.5 * 86400,
         "failing": 1, "fail_count": 77, "stale": 1},
        {"shard": "3/3", "instances": 2, "not_started": 1, "max_behind": 0, "oldest_unsent_age_seconds": None,
         "failing": 0, "fail_count": 0, "stale": 0},
    ]


def test_stale_instance_gets_a_warning_naming_shard_and_the_7_day_limit() -> None:
    got = report()
    assert got["stale"] == ["dead.example"]
    assert len(got["warnings"]) == 1
    assert got["warnings"][0].startswith("instance dead.example (id 4, shard 2/3): oldest unsent activity is 6.5d old, past 6 days;")
    assert "Lemmy deletes activities after 7 days" in got["warnings"][0]


def test_stale_days_is_configurable() -> None:
    assert build_report(ROWS, 1200, 3, NOW, stale_days=5)["stale"] == ["slow.example", "dead.example"]


def test_report_is_json_and_the_table_shows_every_instance() -> None:
    got = report()
    json.dumps(got)
    lines = render_table(got)
    assert lines[0] == "newest activity id: 1200"
    assert lines[2].split() == ["shard", "instances", "not", "started", "max", "behind", "oldest", "unsent", "failing", "fails", "stale"]
    body = "\n".join(lines)
    for row in ROWS:
        assert row["domain"] in body
    assert any(line.startswith("2/3") and "dead.example" in line and line.endswith("STALE") for line in lines)
    assert lines[-1].startswith("WARNING: instance dead.example")


def test_no_activities_and_no_instances() -> None:
    got = build_report([], None, 2, NOW)
    assert got["instances"] == [] and [s["instances"] for s in got["shards"]] == [0, 0]
    assert render_table(got)[0] == "newest activity id: -"


@pytest.mark.parametrize("count", [0, -1, True, "3"])
def test_bad_shard_count(count: object) -> None:
    with pytest.raises(StatusError, match="shard_count"):
        build_report(ROWS, 1200, count, NOW)  # type: ignore[arg-type]


def test_row_without_id() -> None:
    with pytest.raises(StatusError, match="no id or domain"):
        build_report([{"domain": "x"}], 1, 1, NOW)


@pytest.mark.parametrize("text,want", [
    ("2026-12-02T11:55:00+00", datetime.datetime(2026, 12, 2, 11, 55, tzinfo=datetime.timezone.utc)),
    ("2026-12-02 11:55:00.25+05:30", datetime.datetime(2026, 12, 2, 6, 25, 0, 250000, tzinfo=datetime.timezone.utc)),
    ("2026-12-02T11:55:00Z", datetime.datetime(2026, 12, 2, 11, 55, tzinfo=datetime.timezone.utc)),
    (None, None),
])
def test_parse_time(text: str | None, want: datetime.datetime | None) -> None:
    assert parse_time(text) == want


def test_human_age() -> None:
    assert [human_age(s) for s in (None, 5, 300, 5400 * 2, 6.5 * 86400)] == ["-", "5s", "5m", "3.0h", "6.5d"]
