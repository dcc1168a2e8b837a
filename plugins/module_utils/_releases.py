# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) fediscale.lemmy contributors

# Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
# Do not use this from other collections or standalone plugins/modules!

"""Release knowledge for Lemmy 0.19.x and the upgrade-step decision.

This is a private helper of the fediscale.lemmy collection: its interface may
change at any time. It is pure Python, so it can be tested without Ansible.

The table below records, for every 0.19 release, which database migrations it
adds and whether those migrations break binaries of the previous release that
are still running against the same database (a mixed-version fleet during a
rolling upgrade), and which migrations block writes (and sometimes reads)
while they run, with the tables whose size sets how long. It also records the
features the upgrade procedure depends on: environment-variable duty flags and
the migrate-only mode (both 0.19.4+), and the path of the nodeinfo document
that reports the running version.

Only the 0.19 line is supported: 0.20 and 1.0 change how migrations run
(`lemmy_server migration --all run`, and the process waits for a signal again
with every --disable-* flag), so check_step() refuses them outright.
"""

from __future__ import annotations

import re
import typing as t
from dataclasses import dataclass, field

STEP_INSTALL = "install"
STEP_NOOP = "noop"
STEP_OK = "ok"
STEP_RESUME = "resume"
STEP_SKIP = "skip"
STEP_DOWNGRADE = "downgrade"
STEP_UNKNOWN = "unknown"
STEP_INCOMPATIBLE = "incompatible"
STEP_UNSUPPORTED = "unsupported"

STEPS = (STEP_INSTALL, STEP_NOOP, STEP_OK, STEP_RESUME, STEP_SKIP, STEP_DOWNGRADE, STEP_UNKNOWN, STEP_INCOMPATIBLE,
         STEP_UNSUPPORTED)

SKIP_OVERRIDE = "lemmy_upgrade_allow_skip"
INCOMPATIBLE_OVERRIDE = "lemmy_upgrade_allow_incompatible"
WRITE_BLOCK_OVERRIDE = "lemmy_upgrade_allow_write_block"

# Above this many estimated rows (pg_class.reltuples) in the tables an index build of one step locks, the step
# needs WRITE_BLOCK_OVERRIDE. benchmarks/index_build_lock.py: a B-tree build holds writes for about 0.1 s per
# 100,000 rows (1 s per million); a trigram GIN build is about 150 times slower per row, so its rows count
# TRIGRAM_ROW_WEIGHT times (docs/upgrade.md).
WRITE_BLOCK_ROWS = 100_000
TRIGRAM_ROW_WEIGHT = 100

LOCK_SHARE = "SHARE"
LOCK_ACCESS_EXCLUSIVE = "ACCESS EXCLUSIVE"

_VERSION_RE = re.compile(r"^v?(\d+)\.(\d+)\.(\d+)(?:-([0-9A-Za-z.-]+))?$")

# First release with LEMMY_DISABLE_* / LEMMY_FEDERATE_* environment variables,
# with "all three --disable-* flags => migrate and exit 0", and with /nodeinfo/2.1.
_FEATURES_FROM = (0, 19, 4)
# The only line this collection upgrades: 0.19.0 <= version < 0.20.0.
_SUPPORTED_LINE = (0, 19)
# Tables that carry a trigger whose function lives in schema r (0.19.20), so that DROP SCHEMA r CASCADE
# drops and re-creates their triggers: each takes an ACCESS EXCLUSIVE lock until the transaction commits.
SCHEMA_R_TABLES = ("post", "comment", "post_like", "comment_like", "community", "community_follower", "person",
                   "local_user", "private_message", "site")
SCHEMA_R_REBUILD = "schema r rebuild (DROP SCHEMA r CASCADE, then its functions and triggers again)"


@dataclass(frozen=True)
class Break:
    """A migration of a release that breaks binaries of the previous release."""

    migration: str
    what_breaks: str


@dataclass(frozen=True)
class WriteBlock:
    """A migration that blocks writes to some tables while it runs."""

    migration: str
    # Tables it locks.
    tables: tuple[str, ...]
    # The strongest lock it takes: SHARE blocks writes, ACCESS EXCLUSIVE blocks reads and writes.
    lock: str
    what: str
    # Index builds: the lock lasts as long as reading every row of the indexed tables takes.
    # False for catalog-only changes (the schema r rebuild), which last milliseconds once they hold the lock.
    scales_with_rows: bool = True
    # Tables read to build an index, one entry per index (a table indexed twice counts twice).
    indexed: tuple[str, ...] = ()
    # How many B-tree rows one row of this build costs (TRIGRAM_ROW_WEIGHT for a trigram GIN index).
    row_weight: int = 1

    def as_dict(self) -> dict[str, t.Any]:
        return {
            "migration": self.migration,
            "tables": list(self.tables),
            "lock": self.lock,
            "what": self.what,
            "scales_with_rows": self.scales_with_rows,
            "indexed": list(self.indexed or (self.tables if self.scales_with_rows else ())),
            "row_weight": self.row_weight,
        }


@dataclass(frozen=True)
class Release:
    """What one release changes in the database."""

    version: str
    date: str
    # Number of schema migrations the release adds (0 = none, None = some, number not recorded).
    migration_count: int | None
    # Names of those migrations, as far as they are recorded.
    migrations: tuple[str, ...] = ()
    breaks: tuple[Break, ...] = ()
    note: str = ""
    # Migrations that block writes (index builds without CONCURRENTLY); the schema r rebuild is added by write_blocks.
    index_builds: tuple[WriteBlock, ...] = ()

    @property
    def adds_migrations(self) -> bool:
        return self.migration_count is None or self.migration_count > 0

    @property
    def migrations_complete(self) -> bool:
        """True when every migration of the release is named in the table."""
        return self.migration_count is not None and len(self.migrations) >= self.migration_count

    @property
    def breaks_older(self) -> bool:
        return bool(self.breaks)

    @property
    def rebuilds_schema_r(self) -> bool:
        """0.19.4+ rebuilds schema r in the transaction of the last pending migration, whenever one is pending."""
        parsed = parse_version(self.version)
        return parsed is not None and parsed >= _FEATURES_FROM and self.adds_migrations

    @property
    def write_blocks(self) -> tuple[WriteBlock, ...]:
        blocks = self.index_builds
        if self.rebuilds_schema_r:
            last = self.migrations[-1] if self.migrations_complete and self.migrations else "the last migration"
            blocks = blocks + (WriteBlock(
                SCHEMA_R_REBUILD, SCHEMA_R_TABLES, LOCK_ACCESS_EXCLUSIVE,
                "drops and re-creates the triggers of these tables in the transaction of {0}; the lock waits for "
                "every open transaction on them and every new query waits behind it, then it lasts until that "
                "transaction commits".format(last),
                scales_with_rows=False),)
        return blocks


_RELEASES: tuple[Release, ...] = (
    Release("0.19.0", "2023-12-15", None, (), (),
            "First 0.19 release; its migrations from 0.18 are not listed here (upgrade to 0.19.0 first, all at once)."),
    Release("0.19.1", "2023-12-20", 0),
    Release("0.19.2", "2024-01-10", 1, ("2024-01-02-094916_site-name-not-unique",)),
    Release("0.19.3", "2024-01-22", 0),
    Release(
        "0.19.4", "2024-06-07", 19,
        (
            "2023-10-24-131607_proxy_links",
            "2023-10-27-142514_post_url_content_type",
            "2023-12-19-210053_tolerable-batch-insert-speed",
            "2023-12-22-040137_make-mixed-sorting-directions-work-with-tuple-comparison",
            "2024-01-05-213000_community_aggregates_add_local_subscribers",
            "2024-01-15-100133_local-only-community",
            "2024-01-22-105746_lemmynsfw-changes",
            "2024-01-25-151400_remove_auto_resolve_report_trigger",
            "2024-02-12-211114_add_vote_display_mode_setting",
            "2024-02-15-171358_default_instance_sort_type",
            "2024-02-24-034523_replaceable-schema",
            "2024-02-27-204628_add_post_alt_text",
            "2024-02-28-144211_hide_posts",
            "2024-03-06-104706_local_image_user_opt",
            "2024-03-06-201637_url_blocklist",
            "2024-04-05-153647_alter_vote_display_mode_defaults",
            "2024-04-15-105932_community_followers_url_optional",
            "2024-04-23-020604_add_post_id_index",
            "2024-05-04-140749_separate_triggers",
        ),
        (
            Break("2023-10-24-131607_proxy_links",
                  "renames table image_upload to local_image, so the image code of 0.19.3 fails"),
            Break("2024-02-24-034523_replaceable-schema",
                  "drops the public functions hot_rank, scaled_rank and controversy_rank (moved to schema r); "
                  "the 0.19.3 scheduler calls hot_rank() unqualified, so its rank updates fail"),
            Break("2024-04-15-105932_community_followers_url_optional",
                  "makes community.followers_url nullable; 0.19.3 reads it as non-null, so it fails on every "
                  "community row without one"),
        ),
    ),
    Release("0.19.5", "2024-06-19", 1, ("2024-06-17-160323_fix_post_aggregates_featured_local",)),
    Release(
        "0.19.6", "2024-11-08", 4,
        (
            "2024-05-05-162540_add_image_detail_table",
            "2024-06-24-000000_ap_id_triggers",
            "2024-07-01-014711_exponential_controversy",
            "2024-08-03-155932_increase_post_url_max_length",
        ),
        (
            Break("2024-06-24-000000_ap_id_triggers",
                  "drops the ap_id defaults of post, comment and private_message; the new trigger fills ap_id with "
                  "r.local_url(), which needs the session setting lemmy.protocol_and_hostname that only 0.19.6+ "
                  "connections set, so 0.19.5 API processes cannot create local posts, comments or private messages "
                  "until they are replaced"),
        ),
        "2024-07-01-014711_exponential_controversy rewrites every post and comment aggregate row and can take about "
        "30 minutes on large servers.",
    ),
    Release(
        "0.19.7", "2024-11-15", 1, ("2024-11-12-090437_move-triggers",),
        (
            Break("2024-11-12-090437_move-triggers",
                  "drops the public functions community_aggregates_activity and site_aggregates_activity; "
                  "the 0.19.6 scheduler calls them unqualified, so its active-user counts fail"),
        ),
    ),
    Release("0.19.8", "2024-12-12", 0),
    Release("0.19.9", "2025-02-10", 0),
    Release("0.19.10", "2025-03-19", 2,
            ("2025-02-11-131045_ban-remove-content-pm", "2025-03-07-094522_enable_english_for_all"),
            (),
            "Also edits 2024-07-01-014711_exponential_controversy, which databases migrated by 0.19.6 do not run again."),
    Release(
        "0.19.11", "2025-04-08", 3,
        ("2025-01-10-135505_donation-dialog", "2025-02-24-173152_search-alt-text-of-posts",
         "2025-04-07-100344_registration-rate-limit"),
        index_builds=(
            WriteBlock("2025-02-24-173152_search-alt-text-of-posts", ("post",), LOCK_ACCESS_EXCLUSIVE,
                       "drops idx_post_trigram and builds it again as a trigram GIN index over name, body and "
                       "alt_text without CONCURRENTLY, in one transaction: post takes neither reads nor writes "
                       "until the build ends", row_weight=TRIGRAM_ROW_WEIGHT),
        ),
    ),
    Release(
        "0.19.12", "2025-06-13", 2, ("2025-03-11-015056_local_user_trigger", "2025-05-15-154113_missing_post_indexes"),
        index_builds=(
            WriteBlock("2025-05-15-154113_missing_post_indexes", ("post_read", "post_hide", "post_saved"), LOCK_SHARE,
                       "builds a B-tree index on post_id of each table without CONCURRENTLY; writes to all three "
                       "wait until the last build ends (marking posts read, hiding, saving)"),
        ),
    ),
    Release(
        "0.19.13", "2025-09-10", 1, ("2025-07-29-152742_add_indexes_for_aggregates_activity",),
        index_builds=(
            WriteBlock("2025-07-29-152742_add_indexes_for_aggregates_activity", ("post", "post_like", "comment_like"),
                       LOCK_SHARE,
                       "builds a B-tree index on published of each table without CONCURRENTLY; writes to all three "
                       "wait until the last build ends (new posts, votes)"),
        ),
    ),
    Release(
        "0.19.14", "2025-12-08", 1, ("2025-07-29-152743_post-aggregates-creator-community-indexes",),
        index_builds=(
            WriteBlock("2025-07-29-152743_post-aggregates-creator-community-indexes", ("post_aggregates",), LOCK_SHARE,
                       "builds two B-tree indexes (creator_id, community_id) without CONCURRENTLY; writes to "
                       "post_aggregates wait, and with them every new post, comment and vote, whose triggers "
                       "update it", indexed=("post_aggregates", "post_aggregates")),
        ),
    ),
    Release("0.19.15", "2025-12-24", 0),
    Release("0.19.16", "2026-03-03", 0),
    Release("0.19.17", "2026-03-23", 0),
    Release("0.19.18", "2026-04-20", 0),
    Release("0.19.19", "2026-06-09", 0),
    Release("0.19.20", "2026-07-21", 0),
)

RELEASES: dict[str, Release] = {r.version: r for r in _RELEASES}
ORDER: tuple[str, ...] = tuple(r.version for r in _RELEASES)


def parse_version(version: str) -> tuple[int, int, int] | None:
    """Return (major, minor, patch) of a version string, or None if it is not one.

    A leading "v" and a pre-release suffix (-beta.1, -rc.3) are accepted; the
    suffix is dropped here (see is_prerelease).
    """
    match = _match(version)
    if match is None:
        return None
    return int(match.group(1)), int(match.group(2)), int(match.group(3))


def _match(version: t.Any) -> re.Match[str] | None:
    if not isinstance(version, str):
        return None
    return _VERSION_RE.match(version.strip())


def is_prerelease(version: str) -> bool:
    """The version has a pre-release suffix (0.19.4-rc.3, 1.0.0-beta.1)."""
    match = _match(version)
    return match is not None and match.group(4) is not None


def _at_least(version: str, floor: tuple[int, int, int]) -> bool:
    """version >= floor, where a pre-release of floor itself (floor-rc.1) comes before floor."""
    parsed = parse_version(version)
    if parsed is None:
        return False
    return parsed > floor or (parsed == floor and not is_prerelease(version))


def in_supported_line(version: str) -> bool:
    """The version belongs to the 0.19 line, the only one this collection upgrades."""
    parsed = parse_version(version)
    return parsed is not None and parsed[:2] == _SUPPORTED_LINE


def is_newer_line(version: str) -> bool:
    """The version is of a line after 0.19 (0.20, 1.0, ...), whose migration procedure differs."""
    parsed = parse_version(version)
    return parsed is not None and parsed[:2] > _SUPPORTED_LINE


def normalize(version: str) -> str:
    """Strip whitespace and a leading "v"."""
    version = str(version).strip()
    return version[1:] if version.startswith("v") else version


def is_known(version: str) -> bool:
    return normalize(version) in RELEASES


def previous_release(version: str) -> str | None:
    """The release just before a known release, or None for the first / unknown ones."""
    version = normalize(version)
    if version not in RELEASES:
        return None
    index = ORDER.index(version)
    return ORDER[index - 1] if index > 0 else None


def has_env_flags(version: str) -> bool:
    """LEMMY_DISABLE_* and LEMMY_FEDERATE_* environment variables exist (0.19.4+, and its release candidates)."""
    parsed = parse_version(version)
    return parsed is not None and parsed >= _FEATURES_FROM


def has_migrate_only(version: str) -> bool:
    """All three --disable-* flags make the process migrate and exit 0: 0.19.4 to the last 0.19 release only.

    0.20 and 1.0 wait for a signal again with every --disable-* flag set, so a one-shot container would never
    exit; 1.0 migrates with `lemmy_server migration --all run` instead. A pre-release of 0.19.4 counts as
    older (its betas lack the mode), so it gets the first-API-process migration, which works with every release.
    """
    return in_supported_line(version) and _at_least(version, _FEATURES_FROM)


def nodeinfo_path(version: str) -> str:
    """Path of the nodeinfo document that reports software.version."""
    parsed = parse_version(version)
    if parsed is not None and parsed >= _FEATURES_FROM:
        return "/nodeinfo/2.1"
    return "/nodeinfo/2.0.json"


def rate_limit_column(version: str, key: str) -> str:
    """The local_site_rate_limit column of a plan rate-limit key (message, message_per_second, ...).

    0.19 names the columns like the keys; 1.0 (its pre-releases too) renamed them to <action>_max_requests and
    <action>_interval_seconds.
    """
    if (parse_version(version) or (0, 0, 0)) >= (1, 0, 0):
        if key.endswith("_per_second"):
            return key[: -len("_per_second")] + "_interval_seconds"
        return key + "_max_requests"
    return key


def releases_between(older: str, newer: str) -> list[Release]:
    """Known releases r with older < r <= newer, oldest first."""
    older, newer = normalize(older), normalize(newer)
    lo, hi = ORDER.index(older), ORDER.index(newer)
    return [RELEASES[v] for v in ORDER[lo + 1:hi + 1]]


def release_info(version: str) -> dict[str, t.Any]:
    """A plain-dict view of one release (for module output)."""
    version = normalize(version)
    rel = RELEASES.get(version)
    info: dict[str, t.Any] = {
        "version": version,
        "known": rel is not None,
        "env_flags": has_env_flags(version),
        "migrate_only": has_migrate_only(version),
        "nodeinfo_path": nodeinfo_path(version),
    }
    if rel is not None:
        info.update(
            date=rel.date,
            adds_migrations=rel.adds_migrations,
            migration_count=rel.migration_count,
            migrations=list(rel.migrations),
            migrations_complete=rel.migrations_complete,
            breaks_older=rel.breaks_older,
            breaks=[{"migration": b.migration, "what_breaks": b.what_breaks} for b in rel.breaks],
            note=rel.note,
        )
    return info


def strategy_for(target: str) -> dict[str, t.Any]:
    """How the upgrade procedure must treat the target release."""
    migrate_only = has_migrate_only(target)
    return {
        "migrate": "migrate_only" if migrate_only else "first_api_process",
        "env_flags": has_env_flags(target),
        "nodeinfo_path": nodeinfo_path(target),
        # Duties are always passed as CLI flags: every 0.19 release has them.
        "duty_flags": "cli",
    }


@dataclass
class StepDecision:
    """Result of check_step()."""

    step: str
    target: str
    running: list[str]
    oldest: str | None = None
    previous: str | None = None
    mid_upgrade: bool = False
    migrations: list[dict[str, t.Any]] = field(default_factory=list)
    breaks_older: list[dict[str, str]] = field(default_factory=list)
    strategy: dict[str, t.Any] = field(default_factory=dict)
    # Migrations of the step that block writes, each with its tables' estimated rows.
    write_blocks: list[dict[str, t.Any]] = field(default_factory=list)
    write_block_rows: int = WRITE_BLOCK_ROWS
    refused: bool = False
    overridden: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    msg: str = ""

    def as_dict(self) -> dict[str, t.Any]:
        return {
            "step": self.step,
            "target": self.target,
            "running": list(self.running),
            "oldest": self.oldest,
            "previous": self.previous,
            "mid_upgrade": self.mid_upgrade,
            "migrations": list(self.migrations),
            "breaks_older": list(self.breaks_older),
            "strategy": dict(self.strategy),
            "write_blocks": [dict(b) for b in self.write_blocks],
            "write_block_rows": self.write_block_rows,
            "refused": self.refused,
            "overridden": list(self.overridden),
            "reasons": list(self.reasons),
            "msg": self.msg,
        }


def _sort_key(version: str) -> tuple[int, tuple[int, int, int] | tuple[()], str]:
    parsed = parse_version(version)
    return (0, parsed, version) if parsed is not None else (1, (), version)


def _migrations_of(releases: t.Iterable[Release]) -> list[dict[str, t.Any]]:
    return [
        {
            "version": rel.version,
            "count": rel.migration_count,
            "names": list(rel.migrations),
            "names_complete": rel.migrations_complete,
        }
        for rel in releases
        if rel.adds_migrations
    ]


def _breaks_of(releases: t.Iterable[Release]) -> list[dict[str, str]]:
    return [
        {
            "version": rel.version,
            "breaks_version": previous_release(rel.version) or "",
            "migration": brk.migration,
            "what_breaks": brk.what_breaks,
        }
        for rel in releases
        for brk in rel.breaks
    ]


def _describe_breaks(breaks: list[dict[str, str]]) -> str:
    return "; ".join(
        "{version} migration {migration} {what} (breaks {old} binaries still running)".format(
            version=b["version"], migration=b["migration"], what=b["what_breaks"], old=b["breaks_version"] or "older")
        for b in breaks
    )


def _row_estimate(table_rows: t.Mapping[str, t.Any] | None, table: str) -> int | None:
    """pg_class.reltuples of a table, or None when not read or never analysed (-1)."""
    if table_rows is None:
        return None
    value = table_rows.get(table)
    if value is None or isinstance(value, bool):
        return None
    try:
        rows = int(float(value))
    except (TypeError, ValueError):
        return None
    return rows if rows >= 0 else None


def _write_blocks_of(
    releases: t.Iterable[Release], table_rows: t.Mapping[str, t.Any] | None, limit: int,
) -> list[dict[str, t.Any]]:
    blocks = []
    for rel in releases:
        for block in rel.write_blocks:
            entry = dict(block.as_dict(), version=rel.version)
            rows = {table: _row_estimate(table_rows, table) for table in block.tables} if block.scales_with_rows else {}
            entry["rows"] = rows
            if block.scales_with_rows:
                counted = [rows[table] for table in (block.indexed or block.tables)]
                estimate = None if any(r is None for r in counted) else sum(t.cast(int, r) for r in counted)
                entry["estimated_rows"] = estimate
                entry["weighted_rows"] = None if estimate is None else estimate * block.row_weight
                # Unknown sizes count as large: the lock may last minutes and nothing says otherwise.
                entry["over_limit"] = estimate is None or estimate * block.row_weight > limit
            else:
                entry["estimated_rows"] = None
                entry["weighted_rows"] = None
                entry["over_limit"] = False
            blocks.append(entry)
    return blocks


def _describe_write_blocks(blocks: list[dict[str, t.Any]], limit: int) -> str:
    parts = []
    for b in blocks:
        if b["estimated_rows"] is None:
            unknown = sorted(table for table, rows in b["rows"].items() if rows is None)
            size = ("the size of {0} is unknown (not read, or never analysed: run ANALYZE on them), so it counts as "
                    "above the limit of {1:,} rows").format(", ".join(unknown), limit)
        else:
            weight = "" if b["row_weight"] == 1 else ", each trigram GIN row counting as {0} (so {1:,})".format(
                b["row_weight"], b["weighted_rows"])
            size = "about {0:,} rows ({1}; pg_class.reltuples){2}, above the limit of {3:,} rows".format(
                b["estimated_rows"], ", ".join("{0} {1:,}".format(k, v) for k, v in b["rows"].items()), weight, limit)
        parts.append("{version} migration {migration} blocks {blocked} on {tables} ({lock} lock) while it runs: "
                     "it {what}; {size}".format(
                         version=b["version"], migration=b["migration"], tables=", ".join(b["tables"]),
                         blocked="reads and writes" if b["lock"] == LOCK_ACCESS_EXCLUSIVE else "writes",
                         lock=b["lock"], what=b["what"], size=size))
    return "; ".join(parts)


def _unsupported(decision: StepDecision, versions: list[str]) -> StepDecision:
    decision.step = STEP_UNSUPPORTED
    decision.refused = True
    reason = (
        "{0} {1} of a Lemmy line after 0.19, which this collection does not support yet: it upgrades "
        "0.19.0 to {2} only. From 0.20 on, a process with every --disable-* flag waits for a signal instead of "
        "exiting after the migrations, and 1.0 migrates with `lemmy_server migration --all run`, so the "
        "migration step of this playbook would never finish"
    ).format(", ".join(versions), "are" if len(versions) > 1 else "is", ORDER[-1])
    decision.reasons = [reason]
    decision.msg = ("Upgrade of Lemmy from {0} to {1} ({2}) refused before any change: {3}. No override exists; "
                    "set lemmy_version to a 0.19 release such as {4}.").format(
        ", ".join(decision.running) or "nothing", decision.target, decision.step, reason, ORDER[-1])
    return decision


def check_step(
    running: t.Sequence[str],
    target: str,
    allow_skip: bool = False,
    allow_incompatible: bool = False,
    allow_write_block: bool = False,
    table_rows: t.Mapping[str, t.Any] | None = None,
    write_block_rows: int = WRITE_BLOCK_ROWS,
) -> StepDecision:
    """Decide whether moving the fleet from the running versions to target is a safe rolling step.

    Steps:
      install       nothing runs yet (fresh install: no rolling upgrade to do)
      noop          every process already runs the target
      ok            every process runs the release just before the target, and its migrations are compatible
      resume        processes run the target and the release just before it (an interrupted upgrade)
      incompatible  an ok/resume step whose migrations break the binaries still running
      skip          some process runs a release older than the one just before the target
      downgrade     some process runs a release newer than the target
      unknown       the target or a running version is not in the release table
      unsupported   the target or a running version is of a line after 0.19 (0.20, 1.0)

    skip, downgrade and unknown are refused unless allow_skip; incompatible (and a skip whose
    releases break older binaries) is refused unless allow_incompatible; unsupported always.
    A step that still has to migrate, with an index build that locks tables of more than write_block_rows
    estimated rows (table_rows: table -> pg_class.reltuples; missing or None = unknown = large), is refused
    unless allow_write_block.
    """
    target_n = normalize(target)
    running_n = sorted({normalize(v) for v in running if str(v).strip()}, key=_sort_key)
    decision = StepDecision(step=STEP_OK, target=target_n, running=running_n, strategy=strategy_for(target_n),
                            write_block_rows=write_block_rows)
    decision.previous = previous_release(target_n)

    newer_line = [v for v in running_n + [target_n] if is_newer_line(v)]
    if newer_line:
        decision.oldest = running_n[0] if running_n else None
        return _unsupported(decision, sorted(set(newer_line), key=_sort_key))

    if not running_n:
        decision.step = STEP_INSTALL
        if is_known(target_n):
            decision.migrations = _migrations_of([RELEASES[ORDER[0]]] + releases_between(ORDER[0], target_n))
        decision.msg = "Nothing runs yet: a fresh install of {0} needs no rolling upgrade.".format(target_n)
        return decision

    unknown = [v for v in running_n + [target_n] if not is_known(v)]
    if unknown:
        decision.step = STEP_UNKNOWN
        decision.oldest = running_n[0]
        reason = (
            "version(s) {0} are not in the release table of this collection (known: {1} to {2}), "
            "so the migrations and compatibility of the step {3} -> {4} are unknown"
        ).format(", ".join(sorted(set(unknown), key=_sort_key)), ORDER[0], ORDER[-1], ", ".join(running_n), target_n)
        return _finish(decision, [(reason, SKIP_OVERRIDE, allow_skip)])

    decision.oldest = running_n[0]
    newer = [v for v in running_n if ORDER.index(v) > ORDER.index(target_n)]
    if newer:
        decision.step = STEP_DOWNGRADE
        reason = (
            "running version(s) {0} are newer than the target {1}: a downgrade does not revert the database "
            "migrations, so the older binaries would run against a newer schema"
        ).format(", ".join(newer), target_n)
        return _finish(decision, [(reason, SKIP_OVERRIDE, allow_skip)])

    others = [v for v in running_n if v != target_n]
    if not others:
        decision.step = STEP_NOOP
        decision.msg = "Every process already runs {0}: nothing to upgrade.".format(target_n)
        return decision

    decision.mid_upgrade = target_n in running_n
    involved = releases_between(decision.oldest, target_n)
    decision.migrations = _migrations_of(involved)
    decision.breaks_older = _breaks_of(involved)
    # A process that already runs the target migrated the database when it started: nothing is left to lock.
    if not decision.mid_upgrade:
        decision.write_blocks = _write_blocks_of(involved, table_rows, write_block_rows)

    checks: list[tuple[str, str, bool]] = []
    if decision.oldest != decision.previous:
        decision.step = STEP_SKIP
        skipped = ", ".join(r.version for r in involved[:-1])
        reason = (
            "the fleet runs {0} and the target is {1}: this skips {2} release(s) ({3}); a rolling upgrade "
            "must go one release at a time, so that every migration is compatible with the binaries still "
            "running"
        ).format(", ".join(running_n), target_n, len(involved) - 1, skipped)
        checks.append((reason, SKIP_OVERRIDE, allow_skip))
    else:
        decision.step = STEP_RESUME if decision.mid_upgrade else STEP_OK

    if decision.breaks_older:
        if decision.step != STEP_SKIP:
            decision.step = STEP_INCOMPATIBLE
        checks.append((
            "the migrations of this step break binaries that keep running during a rolling upgrade: "
            + _describe_breaks(decision.breaks_older),
            INCOMPATIBLE_OVERRIDE, allow_incompatible))

    large = [b for b in decision.write_blocks if b["over_limit"]]
    if large:
        checks.append((
            "the migrations of this step lock large tables until they finish: "
            + _describe_write_blocks(large, write_block_rows) + ". Plan a quiet window for it",
            WRITE_BLOCK_OVERRIDE, allow_write_block))
    return _finish(decision, checks)


def _finish(decision: StepDecision, checks: list[tuple[str, str, bool]]) -> StepDecision:
    failing = [(reason, var) for reason, var, allowed in checks if not allowed]
    decision.overridden = sorted({var for _reason, var, allowed in checks if allowed})
    decision.reasons = [reason for reason, _var, _allowed in checks]
    head = "Upgrade of Lemmy from {0} to {1} ({2})".format(", ".join(decision.running), decision.target, decision.step)
    if failing:
        decision.refused = True
        fixes = sorted({var for _reason, var in failing})
        decision.msg = "{0} refused before any change: {1}. To proceed anyway, set {2}.".format(
            head, "; and ".join(reason for reason, _var in failing),
            " and ".join("-e {0}=true".format(var) for var in fixes))
    elif checks:
        decision.msg = "{0} allowed by {1}: {2}.".format(head, ", ".join(decision.overridden), "; and ".join(decision.reasons))
    else:
        decision.msg = "{0}: one release ahead, migrations compatible with the binaries still running.".format(head)
    return decision
