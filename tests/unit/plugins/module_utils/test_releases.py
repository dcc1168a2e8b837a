# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) fediscale.lemmy contributors
"""Tests for the release table and the upgrade-step decision."""

from __future__ import annotations

import pytest

from ansible_collections.fediscale.lemmy.plugins.module_utils import _releases as rel


def test_table_covers_every_019_release_in_order() -> None:
    assert rel.ORDER == tuple("0.19.{0}".format(i) for i in range(21))
    dates = [rel.RELEASES[v].date for v in rel.ORDER]
    assert dates == sorted(dates)


@pytest.mark.parametrize("version", ["0.19.1", "0.19.3", "0.19.8", "0.19.9"] + ["0.19.{0}".format(i) for i in range(15, 21)])
def test_releases_without_migrations(version: str) -> None:
    release = rel.RELEASES[version]
    assert not release.adds_migrations
    assert release.migrations == ()
    assert not release.breaks_older


@pytest.mark.parametrize("version, count, name", [
    ("0.19.2", 1, "2024-01-02-094916_site-name-not-unique"),
    ("0.19.4", 19, "2024-02-24-034523_replaceable-schema"),
    ("0.19.5", 1, "2024-06-17-160323_fix_post_aggregates_featured_local"),
    ("0.19.6", 4, "add_image_detail_table"),
    ("0.19.7", 1, "2024-11-12-090437_move-triggers"),
    ("0.19.11", 3, "2025-04-07-100344_registration-rate-limit"),
    ("0.19.13", 1, "2025-07-29-152742_add_indexes_for_aggregates_activity"),
    ("0.19.14", 1, "2025-07-29-152743_post-aggregates-creator-community-indexes"),
])
def test_releases_with_migrations(version: str, count: int, name: str) -> None:
    release = rel.RELEASES[version]
    assert release.adds_migrations
    assert release.migration_count == count
    assert name in release.migrations


def test_0194_names_are_partial() -> None:
    info = rel.release_info("0.19.4")
    assert info["migration_count"] == 19
    assert len(info["migrations"]) < 19
    assert info["migrations_complete"] is False


@pytest.mark.parametrize("version, migration, words", [
    ("0.19.4", "2023-10-24-131607_proxy_links", ("image_upload", "local_image")),
    ("0.19.4", "2024-02-24-034523_replaceable-schema", ("hot_rank", "scheduler")),
    ("0.19.6", "add_image_detail_table", ("remote_image.id",)),
    ("0.19.7", "2024-11-12-090437_move-triggers", ("community_aggregates_activity", "site_aggregates_activity")),
])
def test_breaking_migrations_explain_what_breaks(version: str, migration: str, words: tuple[str, ...]) -> None:
    breaks = {b.migration: b.what_breaks for b in rel.RELEASES[version].breaks}
    assert migration in breaks
    for word in words:
        assert word in breaks[migration]


def test_only_known_breaking_releases_break() -> None:
    assert [v for v in rel.ORDER if rel.RELEASES[v].breaks_older] == ["0.19.4", "0.19.6", "0.19.7"]


@pytest.mark.parametrize("version, env, migrate_only, path", [
    ("0.19.0", False, False, "/nodeinfo/2.0.json"),
    ("0.19.3", False, False, "/nodeinfo/2.0.json"),
    ("0.19.4", True, True, "/nodeinfo/2.1"),
    ("0.19.20", True, True, "/nodeinfo/2.1"),
    ("0.19.4-rc.3", True, True, "/nodeinfo/2.1"),
    ("v0.19.19", True, True, "/nodeinfo/2.1"),
    ("0.18.5", False, False, "/nodeinfo/2.0.json"),
    ("garbage", False, False, "/nodeinfo/2.0.json"),
])
def test_features(version: str, env: bool, migrate_only: bool, path: str) -> None:
    assert rel.has_env_flags(version) is env
    assert rel.has_migrate_only(version) is migrate_only
    assert rel.nodeinfo_path(version) == path


@pytest.mark.parametrize("target, migrate", [("0.19.3", "first_api_process"), ("0.19.4", "migrate_only"), ("0.19.20", "migrate_only")])
def test_strategy(target: str, migrate: str) -> None:
    strategy = rel.strategy_for(target)
    assert strategy["migrate"] == migrate
    assert strategy["nodeinfo_path"] == rel.nodeinfo_path(target)
    assert strategy["duty_flags"] == "cli"


@pytest.mark.parametrize("version, previous", [("0.19.0", None), ("0.19.1", "0.19.0"), ("0.19.20", "0.19.19"), ("0.20.0", None)])
def test_previous_release(version: str, previous: str | None) -> None:
    assert rel.previous_release(version) == previous


@pytest.mark.parametrize("running, target, step, refused", [
    ([], "0.19.20", "install", False),
    (["0.19.20"], "0.19.20", "noop", False),
    (["0.19.20", "0.19.20"], "0.19.20", "noop", False),
    (["0.19.19"], "0.19.20", "ok", False),
    (["0.19.19", "0.19.19"], "0.19.20", "ok", False),
    (["0.19.19", "0.19.20"], "0.19.20", "resume", False),
    (["0.19.4", "0.19.5"], "0.19.5", "resume", False),
    (["0.19.3"], "0.19.4", "incompatible", True),
    (["0.19.3", "0.19.4"], "0.19.4", "incompatible", True),
    (["0.19.5"], "0.19.6", "incompatible", True),
    (["0.19.6"], "0.19.7", "incompatible", True),
    (["0.19.4"], "0.19.5", "ok", False),
    (["0.19.18"], "0.19.20", "skip", True),
    (["0.19.18", "0.19.19"], "0.19.20", "skip", True),
    (["0.19.3", "0.19.4"], "0.19.20", "skip", True),
    (["0.19.19"], "0.19.4", "downgrade", True),
    (["0.19.19", "0.19.20"], "0.19.19", "downgrade", True),
    (["0.19.19"], "0.19.21", "unknown", True),
    (["0.18.5"], "0.19.0", "unknown", True),
    (["0.19.19"], "1.0.0-beta.1", "unknown", True),
])
def test_step(running: list[str], target: str, step: str, refused: bool) -> None:
    decision = rel.check_step(running, target)
    assert decision.step == step
    assert decision.refused is refused
    assert decision.step in rel.STEPS


@pytest.mark.parametrize("running, target, skip, incompatible, refused, overridden", [
    (["0.19.18"], "0.19.20", True, False, False, [rel.SKIP_OVERRIDE]),
    (["0.19.19"], "0.19.4", True, False, False, [rel.SKIP_OVERRIDE]),
    (["0.19.19"], "0.19.21", True, False, False, [rel.SKIP_OVERRIDE]),
    (["0.19.3"], "0.19.4", False, True, False, [rel.INCOMPATIBLE_OVERRIDE]),
    (["0.19.3"], "0.19.4", True, False, True, []),
    # a skip over a breaking release needs both overrides
    (["0.19.5"], "0.19.7", True, False, True, [rel.SKIP_OVERRIDE]),
    (["0.19.5"], "0.19.7", False, True, True, [rel.INCOMPATIBLE_OVERRIDE]),
    (["0.19.5"], "0.19.7", True, True, False, [rel.INCOMPATIBLE_OVERRIDE, rel.SKIP_OVERRIDE]),
    # a skip over releases that break nothing needs only allow_skip
    (["0.19.15"], "0.19.20", True, False, False, [rel.SKIP_OVERRIDE]),
])
def test_overrides(running: list[str], target: str, skip: bool, incompatible: bool, refused: bool, overridden: list[str]) -> None:
    decision = rel.check_step(running, target, allow_skip=skip, allow_incompatible=incompatible)
    assert decision.refused is refused
    assert decision.overridden == sorted(overridden)


def test_refusal_message_names_versions_migrations_and_override() -> None:
    decision = rel.check_step(["0.19.3"], "0.19.4")
    assert decision.refused
    for text in ("0.19.3", "0.19.4", "2023-10-24-131607_proxy_links", "2024-02-24-034523_replaceable-schema",
                 "local_image", "hot_rank", "lemmy_upgrade_allow_incompatible"):
        assert text in decision.msg
    assert rel.SKIP_OVERRIDE not in decision.msg
    assert [b["breaks_version"] for b in decision.breaks_older] == ["0.19.3", "0.19.3"]


@pytest.mark.parametrize("running, target, words", [
    (["0.19.4"], "0.19.20", ("0.19.4", "0.19.20", "skips 15 release", rel.SKIP_OVERRIDE, rel.INCOMPATIBLE_OVERRIDE)),
    (["0.19.19"], "0.19.4", ("newer than the target 0.19.4", rel.SKIP_OVERRIDE)),
    (["0.19.19"], "0.19.21", ("0.19.21", "not in the release table", rel.SKIP_OVERRIDE)),
])
def test_refusal_messages(running: list[str], target: str, words: tuple[str, ...]) -> None:
    msg = rel.check_step(running, target).msg
    for word in words:
        assert word in msg


def test_skip_lists_every_migration_in_range() -> None:
    decision = rel.check_step(["0.19.3"], "0.19.7", allow_skip=True, allow_incompatible=True)
    assert [m["version"] for m in decision.migrations] == ["0.19.4", "0.19.5", "0.19.6", "0.19.7"]
    assert [b["version"] for b in decision.breaks_older] == ["0.19.4", "0.19.4", "0.19.6", "0.19.7"]
    assert not decision.refused
    assert "allowed by" in decision.msg


def test_compatible_step_without_migrations() -> None:
    decision = rel.check_step(["0.19.19"], "0.19.20")
    assert decision.migrations == []
    assert decision.breaks_older == []
    assert decision.strategy["migrate"] == "migrate_only"
    assert decision.previous == "0.19.19"
    assert not decision.mid_upgrade


def test_compatible_step_with_migrations() -> None:
    decision = rel.check_step(["0.19.12"], "0.19.13")
    assert decision.step == "ok"
    assert decision.migrations == [{"version": "0.19.13", "count": 1,
                                    "names": ["2025-07-29-152742_add_indexes_for_aggregates_activity"], "names_complete": True}]


def test_old_target_uses_first_api_process() -> None:
    decision = rel.check_step(["0.19.2"], "0.19.3")
    assert decision.step == "ok"
    assert decision.strategy == {"migrate": "first_api_process", "env_flags": False, "nodeinfo_path": "/nodeinfo/2.0.json", "duty_flags": "cli"}


def test_running_is_normalised_and_sorted() -> None:
    decision = rel.check_step(["0.19.20", " v0.19.19", ""], "v0.19.20")
    assert decision.running == ["0.19.19", "0.19.20"]
    assert decision.target == "0.19.20"
    assert decision.oldest == "0.19.19"
    assert decision.step == "resume"
    assert decision.mid_upgrade


def test_as_dict_round_trip() -> None:
    data = rel.check_step(["0.19.6"], "0.19.7").as_dict()
    assert data["step"] == "incompatible"
    assert data["refused"] is True
    assert data["breaks_older"][0]["migration"] == "2024-11-12-090437_move-triggers"


def test_install_lists_migrations_up_to_target() -> None:
    decision = rel.check_step([], "0.19.5")
    assert [m["version"] for m in decision.migrations] == ["0.19.0", "0.19.2", "0.19.4", "0.19.5"]
    assert decision.migrations[0]["count"] is None
