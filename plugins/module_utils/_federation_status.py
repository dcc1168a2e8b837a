# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) fediscale.lemmy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Federation lag report: rows of Lemmy's outgoing queue state in, a report per shard and instance out.

Private to the collection: may change at any time. Pure Python, no Ansible imports.
"""

from __future__ import annotations

import datetime
import typing as t

# Lemmy's daily scheduled task deletes sent_activity rows older than 7 days: an instance further behind loses them.
ACTIVITY_RETENTION_DAYS = 7
DEFAULT_STALE_DAYS = 6.0


class StatusError(Exception):
    """The rows cannot be reported on (wrong shape or a shard count below 1)."""


def parse_time(value: t.Any) -> datetime.datetime | None:
    """A timestamptz as PostgreSQL's json gives it (ISO 8601, with offset), or None."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime.datetime):
        return value if value.tzinfo else value.replace(tzinfo=datetime.timezone.utc)
    text = str(value).strip().replace(" ", "T", 1)
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    # PostgreSQL writes offsets as +00 or +05:30; Python before 3.11 wants +00:00.
    if len(text) >= 3 and text[-3] in "+-" and text[-2:].isdigit():
        text += ":00"
    try:
        parsed = datetime.datetime.fromisoformat(text)
    except ValueError as error:
        raise StatusError("cannot read the time %r" % value) from error
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=datetime.timezone.utc)


def shard_of(instance_id: int, count: int) -> int:
    """The plan's sharding rule: shard i (1-based) owns the instances with id % N == i - 1."""
    return instance_id % count + 1


def _age(now: datetime.datetime, then: datetime.datetime | None) -> float | None:
    return None if then is None else max(0.0, (now - then).total_seconds())


def build_report(
    instances: t.Sequence[t.Mapping[str, t.Any]],
    newest_id: int | None,
    shard_count: int,
    now: datetime.datetime,
    stale_days: float = DEFAULT_STALE_DAYS,
) -> dict[str, t.Any]:
    """The report for the given instances.

    ``instances`` rows have ``id``, ``domain``, ``last_successful_id`` (None: no worker has seen it),
    ``fail_count``, ``last_retry``, ``last_successful_published_time`` and ``oldest_unsent_published``
    (the publish time of the first activity above ``last_successful_id``, None when nothing is unsent).
    """
    if not isinstance(shard_count, int) or isinstance(shard_count, bool) or shard_count < 1:
        raise StatusError("shard_count is %r; it must be the plan's number of federation senders, 1 or more" % (shard_count,))
    stale_after = float(stale_days) * 86400.0
    rows: list[dict[str, t.Any]] = []
    for raw in instances:
        try:
            instance_id = int(raw["id"])
            domain = str(raw["domain"])
        except (KeyError, TypeError, ValueError) as error:
            raise StatusError("an instance row has no id or domain: %r" % (dict(raw),)) from error
        last = raw.get("last_successful_id")
        last = None if last is None else int(last)
        oldest = _age(now, parse_time(raw.get("oldest_unsent_published")))
        behind = None if last is None or newest_id is None else max(0, int(newest_id) - last)
        shard = shard_of(instance_id, shard_count)
        rows.append(
            {
                "id": instance_id,
                "domain": domain,
                "shard": "%d/%d" % (shard, shard_count),
                "shard_index": shard,
                "last_successful_id": last,
                "newest_id": newest_id,
                "behind": behind,
                "oldest_unsent_age_seconds": oldest,
                "fail_count": int(raw.get("fail_count") or 0),
                "last_retry": raw.get("last_retry"),
                "last_successful_published_time": raw.get("last_successful_published_time"),
                "started": last is not None,
                "stale": oldest is not None and oldest > stale_after,
            }
        )
    rows.sort(key=lambda r: (r["shard_index"], r["id"]))

    shards = []
    for index in range(1, shard_count + 1):
        mine = [r for r in rows if r["shard_index"] == index]
        ages = [r["oldest_unsent_age_seconds"] for r in mine if r["oldest_unsent_age_seconds"] is not None]
        behinds = [r["behind"] for r in mine if r["behind"] is not None]
        shards.append(
            {
                "shard": "%d/%d" % (index, shard_count),
                "instances": len(mine),
                "not_started": sum(1 for r in mine if not r["started"]),
                "max_behind": max(behinds) if behinds else 0,
                "oldest_unsent_age_seconds": max(ages) if ages else None,
                "failing": sum(1 for r in mine if r["fail_count"] > 0),
                "fail_count": sum(r["fail_count"] for r in mine),
                "stale": sum(1 for r in mine if r["stale"]),
            }
        )

    warnings = [
        "instance %s (id %d, shard %s): oldest unsent activity is %s old, past %s days; Lemmy deletes activities after %d days, "
        "so they will never reach it: check that shard's sender (docker logs of the process with shard %s) and the instance's reachability"
        % (r["domain"], r["id"], r["shard"], human_age(r["oldest_unsent_age_seconds"]), _num(stale_days), ACTIVITY_RETENTION_DAYS, r["shard"])
        for r in rows
        if r["stale"]
    ]
    return {
        "generated_at": now.isoformat(),
        "newest_id": newest_id,
        "shard_count": shard_count,
        "stale_days": stale_days,
        "shards": shards,
        "instances": rows,
        "stale": [r["domain"] for r in rows if r["stale"]],
        "warnings": warnings,
    }


def _num(value: float) -> str:
    return ("%g" % value) if isinstance(value, float) else str(value)


def human_age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 120:
        return "%ds" % seconds
    if seconds < 7200:
        return "%dm" % (seconds // 60)
    if seconds < 172800:
        return "%.1fh" % (seconds / 3600)
    return "%.1fd" % (seconds / 86400)


def _table(header: t.Sequence[str], body: t.Sequence[t.Sequence[t.Any]]) -> list[str]:
    cells = [list(header)] + [["-" if c is None else str(c) for c in row] for row in body]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    return ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells]


def render_table(report: t.Mapping[str, t.Any]) -> list[str]:
    """The report as aligned text: shards, then instances, then the warnings."""
    lines = ["newest activity id: %s" % ("-" if report["newest_id"] is None else report["newest_id"]), ""]
    lines += _table(
        ("shard", "instances", "not started", "max behind", "oldest unsent", "failing", "fails", "stale"),
        [(s["shard"], s["instances"], s["not_started"], s["max_behind"], human_age(s["oldest_unsent_age_seconds"]), s["failing"], s["fail_count"], s["stale"])
         for s in report["shards"]],
    )
    lines.append("")
    lines += _table(
        ("shard", "instance", "last sent", "newest", "behind", "oldest unsent", "fails", "stale"),
        [(r["shard"], r["domain"], r["last_successful_id"], r["newest_id"], r["behind"], human_age(r["oldest_unsent_age_seconds"]), r["fail_count"],
          "STALE" if r["stale"] else "")
         for r in report["instances"]],
    )
    if report["warnings"]:
        lines.append("")
        lines += ["WARNING: " + w for w in report["warnings"]]
    return lines
