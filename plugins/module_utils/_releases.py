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
rolling upgrade). It also records the features the upgrade procedure depends
on: environment-variable duty flags and the migrate-only mode (both 0.19.4+),
and the path of the nodeinfo document that reports the running version.
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

STEPS = (STEP_INSTALL, STEP_NOOP, STEP_OK, STEP_RESUME, STEP_SKIP, STEP_DOWNGRADE, STEP_UNKNOWN, STEP_INCOMPATIBLE)

SKIP_OVERRIDE = "lemmy_upgrade_allow_skip"
INCOMPATIBLE_OVERRIDE = "lemmy_upgrade_allow_incompatible"

_VERSION_RE = re.compile(r"^v?(\d+)\.(\d+)\.(\d+)(?:-([0-9A-Za-z.-]+))?$")

# First release with LEMMY_DISABLE_* / LEMMY_FEDERATE_* environment variables,
# with "all three --disable-* flags => migrate and exit 0", and with /nodeinfo/2.1.
_FEATURES_FROM = (0, 19, 4)


@dataclass(frozen=True)
class Break:
    """A migration of a release that breaks binaries of the previous release."""

    migration: str
    what_breaks: str


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
            "2024-02-24-034523_replaceable-schema",
            "2024-02-28-144211_hide_posts",
            "2024-03-06-201637_url_blocklist",
            "2024-05-04-140749_separate_triggers",
        ),
        (
            Break("2023-10-24-131607_proxy_links",
                  "renames table image_upload to local_image, so the image code of 0.19.3 fails"),
            Break("2024-02-24-034523_replaceable-schema",
                  "drops the public functions hot_rank, scaled_rank and controversy_rank (moved to schema r); "
                  "the 0.19.3 scheduler calls hot_rank() unqualified, so its rank updates fail"),
        ),
    ),
    Release("0.19.5", "2024-06-19", 1, ("2024-06-17-160323_fix_post_aggregates_featured_local",)),
    Release(
        "0.19.6", "2024-11-08", 4,
        ("add_image_detail_table", "ap_id_triggers", "exponential_controversy", "increase_post_url_max_length"),
        (
            Break("add_image_detail_table",
                  "drops the column remote_image.id, which 0.19.5 still uses"),
        ),
        "exponential_controversy can take up to about 30 minutes on large servers.",
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
    Release("0.19.10", "2025-03-19", 3,
            ("exponential_controversy (modified)", "ban-remove-content-pm", "enable_english_for_all")),
    Release("0.19.11", "2025-04-08", 3,
            ("donation-dialog", "search-alt-text-of-posts", "2025-04-07-100344_registration-rate-limit")),
    Release("0.19.12", "2025-06-13", 2, ("local_user_trigger", "missing_post_indexes")),
    Release("0.19.13", "2025-09-10", 1, ("2025-07-29-152742_add_indexes_for_aggregates_activity",)),
    Release("0.19.14", "2025-12-08", 1, ("2025-07-29-152743_post-aggregates-creator-community-indexes",)),
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
    suffix does not count for feature checks.
    """
    if not isinstance(version, str):
        return None
    match = _VERSION_RE.match(version.strip())
    if match is None:
        return None
    return int(match.group(1)), int(match.group(2)), int(match.group(3))


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
    """LEMMY_DISABLE_* and LEMMY_FEDERATE_* environment variables exist (0.19.4+)."""
    parsed = parse_version(version)
    return parsed is not None and parsed >= _FEATURES_FROM


def has_migrate_only(version: str) -> bool:
    """All three --disable-* flags make the process migrate and exit 0 (0.19.4+)."""
    parsed = parse_version(version)
    return parsed is not None and parsed >= _FEATURES_FROM


def nodeinfo_path(version: str) -> str:
    """Path of the nodeinfo document that reports software.version."""
    parsed = parse_version(version)
    if parsed is not None and parsed >= _FEATURES_FROM:
        return "/nodeinfo/2.1"
    return "/nodeinfo/2.0.json"


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


def check_step(
    running: t.Sequence[str],
    target: str,
    allow_skip: bool = False,
    allow_incompatible: bool = False,
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

    skip, downgrade and unknown are refused unless allow_skip; incompatible (and a skip whose
    releases break older binaries) is refused unless allow_incompatible.
    """
    target_n = normalize(target)
    running_n = sorted({normalize(v) for v in running if str(v).strip()}, key=_sort_key)
    decision = StepDecision(step=STEP_OK, target=target_n, running=running_n, strategy=strategy_for(target_n))
    decision.previous = previous_release(target_n)

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
