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
    ("0.19.6", 4, "2024-05-05-162540_add_image_detail_table"),
    ("0.19.6", 4, "2024-06-24-000000_ap_id_triggers"),
    ("0.19.10", 2, "2025-02-11-131045_ban-remove-content-pm"),
    ("0.19.10", 2, "2025-03-07-094522_enable_english_for_all"),
    ("0.19.12", 2, "2025-05-15-154113_missing_post_indexes"),
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


def test_every_migration_after_0190_is_named_in_run_order() -> None:
    for version in rel.ORDER[1:]:
        release = rel.RELEASES[version]
        assert release.migrations_complete, version
        assert len(release.migrations) == release.migration_count, version
        # Diesel runs pending migrations in name order, so the last name is the one schema r is rebuilt with.
        assert list(release.migrations) == sorted(release.migrations), version
    assert rel.release_info("0.19.4")["migrations_complete"] is True
    assert rel.release_info("0.19.0")["migrations_complete"] is False


@pytest.mark.parametrize("version, migration, words", [
    ("0.19.4", "2023-10-24-131607_proxy_links", ("image_upload", "local_image")),
    ("0.19.4", "2024-02-24-034523_replaceable-schema", ("hot_rank", "scheduler")),
    ("0.19.4", "2024-04-15-105932_community_followers_url_optional", ("followers_url", "nullable", "0.19.3")),
    ("0.19.6", "2024-06-24-000000_ap_id_triggers",
     ("r.local_url()", "lemmy.protocol_and_hostname", "0.19.5", "posts, comments or private messages")),
    ("0.19.7", "2024-11-12-090437_move-triggers", ("community_aggregates_activity", "site_aggregates_activity")),
])
def test_breaking_migrations_explain_what_breaks(version: str, migration: str, words: tuple[str, ...]) -> None:
    breaks = {b.migration: b.what_breaks for b in rel.RELEASES[version].breaks}
    assert migration in breaks
    for word in words:
        assert word in breaks[migration]


def test_only_known_breaking_releases_break() -> None:
    assert [v for v in rel.ORDER if rel.RELEASES[v].breaks_older] == ["0.19.4", "0.19.6", "0.19.7"]
    # 0.19.5 never reads remote_image.id, so the image detail table is not what breaks it.
    assert [b.migration for b in rel.RELEASES["0.19.6"].breaks] == ["2024-06-24-000000_ap_id_triggers"]
    assert len(rel.RELEASES["0.19.4"].breaks) == 3


@pytest.mark.parametrize("version, env, migrate_only, path", [
    ("0.19.0", False, False, "/nodeinfo/2.0.json"),
    ("0.19.3", False, False, "/nodeinfo/2.0.json"),
    ("0.19.4", True, True, "/nodeinfo/2.1"),
    ("0.19.20", True, True, "/nodeinfo/2.1"),
    # 0.19.4 betas lack migrate-and-exit: a pre-release of 0.19.4 gets the first-API-process migration.
    ("0.19.4-rc.3", True, False, "/nodeinfo/2.1"),
    ("0.19.5-beta.1", True, True, "/nodeinfo/2.1"),
    ("0.19.21", True, True, "/nodeinfo/2.1"),
    # 0.20 and 1.0 wait for a signal with every --disable-* flag: a migrate-only container would never exit.
    ("0.20.0", True, False, "/nodeinfo/2.1"),
    ("0.20.0-alpha.5", True, False, "/nodeinfo/2.1"),
    ("1.0.0", True, False, "/nodeinfo/2.1"),
    ("1.0.0-beta.1", True, False, "/nodeinfo/2.1"),
    ("v1.0.0", True, False, "/nodeinfo/2.1"),
    ("v0.19.19", True, True, "/nodeinfo/2.1"),
    ("0.18.5", False, False, "/nodeinfo/2.0.json"),
    ("garbage", False, False, "/nodeinfo/2.0.json"),
])
def test_features(version: str, env: bool, migrate_only: bool, path: str) -> None:
    assert rel.has_env_flags(version) is env
    assert rel.has_migrate_only(version) is migrate_only
    assert rel.nodeinfo_path(version) == path


@pytest.mark.parametrize("target, migrate", [
    ("0.19.3", "first_api_process"), ("0.19.4", "migrate_only"), ("0.19.20", "migrate_only"),
    ("1.0.0-beta.1", "first_api_process"), ("0.20.0", "first_api_process"),
])
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
    (["0.19.19"], "1.0.0-beta.1", "unsupported", True),
    (["0.19.19"], "1.0.0", "unsupported", True),
    (["0.19.20"], "0.20.0", "unsupported", True),
    (["1.0.0"], "0.19.20", "unsupported", True),
    ([], "1.0.0", "unsupported", True),
    (["0.19.10"], "0.19.11", "ok", True),
    (["0.19.12"], "0.19.13", "ok", True),
    (["0.19.12", "0.19.13"], "0.19.13", "resume", False),
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
                 "2024-04-15-105932_community_followers_url_optional", "followers_url",
                 "local_image", "hot_rank", "lemmy_upgrade_allow_incompatible"):
        assert text in decision.msg
    assert rel.SKIP_OVERRIDE not in decision.msg
    assert rel.WRITE_BLOCK_OVERRIDE not in decision.msg
    assert [b["breaks_version"] for b in decision.breaks_older] == ["0.19.3", "0.19.3", "0.19.3"]


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
    assert [b["version"] for b in decision.breaks_older] == ["0.19.4", "0.19.4", "0.19.4", "0.19.6", "0.19.7"]
    assert [b["migration"] for b in decision.breaks_older][3] == "2024-06-24-000000_ap_id_triggers"
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


@pytest.mark.parametrize("target", ["1.0.0", "1.0.0-beta.1", "0.20.0", "0.20.0-alpha.5"])
def test_newer_line_is_refused_whatever_the_overrides(target: str) -> None:
    decision = rel.check_step(["0.19.20"], target, allow_skip=True, allow_incompatible=True, allow_write_block=True,
                              table_rows={})
    assert decision.step == rel.STEP_UNSUPPORTED
    assert decision.refused
    assert decision.overridden == []
    for text in (target, "0.19.0 to 0.19.20", "lemmy_server migration --all run", "No override", "lemmy_version"):
        assert text in decision.msg


def test_write_blocking_releases() -> None:
    blocking = {v: [(b.migration, b.tables, b.lock) for b in rel.RELEASES[v].index_builds]
                for v in rel.ORDER if rel.RELEASES[v].index_builds}
    assert blocking == {
        "0.19.11": [("2025-02-24-173152_search-alt-text-of-posts", ("post",), rel.LOCK_ACCESS_EXCLUSIVE)],
        "0.19.12": [("2025-05-15-154113_missing_post_indexes", ("post_read", "post_hide", "post_saved"), rel.LOCK_SHARE)],
        "0.19.13": [("2025-07-29-152742_add_indexes_for_aggregates_activity", ("post", "post_like", "comment_like"),
                     rel.LOCK_SHARE)],
        "0.19.14": [("2025-07-29-152743_post-aggregates-creator-community-indexes", ("post_aggregates",), rel.LOCK_SHARE)],
    }
    for version, blocks in blocking.items():
        for migration, _tables, _lock in blocks:
            assert migration in rel.RELEASES[version].migrations


def test_schema_r_is_rebuilt_by_every_migrating_release_since_0194() -> None:
    rebuilding = [v for v in rel.ORDER if rel.RELEASES[v].rebuilds_schema_r]
    assert rebuilding == ["0.19.4", "0.19.5", "0.19.6", "0.19.7", "0.19.10", "0.19.11", "0.19.12", "0.19.13", "0.19.14"]
    block = rel.RELEASES["0.19.7"].write_blocks[-1]
    assert block.migration == rel.SCHEMA_R_REBUILD
    assert block.lock == rel.LOCK_ACCESS_EXCLUSIVE
    assert not block.scales_with_rows
    assert "2024-11-12-090437_move-triggers" in block.what
    assert {"post", "comment", "post_like", "comment_like"} <= set(block.tables)
    assert rel.RELEASES["0.19.2"].write_blocks == ()


def test_schema_r_rebuild_alone_is_listed_but_not_refused() -> None:
    decision = rel.check_step(["0.19.4"], "0.19.5")
    assert not decision.refused
    assert [b["migration"] for b in decision.write_blocks] == [rel.SCHEMA_R_REBUILD]
    assert decision.write_blocks[0]["over_limit"] is False


ROWS_0193 = {"post": 40_000, "post_like": 52_000, "comment_like": 8_000}


@pytest.mark.parametrize("rows, refused", [
    (ROWS_0193, False),                                   # exactly the limit
    (dict(ROWS_0193, comment_like=8_001), True),          # one row above
    ({"post": 1, "post_like": 1, "comment_like": 1}, False),
    ({"post": 2_000_000, "post_like": 30_000_000, "comment_like": 9_000_000}, True),
    ({"post": 10, "post_like": 10}, True),                # comment_like not read
    (dict(ROWS_0193, post=-1), True),                     # never analysed
    ({"post": 10.0, "post_like": "10", "comment_like": 10}, False),
    (None, True),                                         # sizes not read at all
])
def test_write_block_limit(rows: dict[str, object] | None, refused: bool) -> None:
    decision = rel.check_step(["0.19.12"], "0.19.13", table_rows=rows)
    assert decision.refused is refused
    assert (rel.WRITE_BLOCK_OVERRIDE in decision.msg) is refused
    allowed = rel.check_step(["0.19.12"], "0.19.13", table_rows=rows, allow_write_block=True)
    assert not allowed.refused
    assert allowed.overridden == ([rel.WRITE_BLOCK_OVERRIDE] if refused else [])


def test_write_block_refusal_names_step_tables_estimate_and_flag() -> None:
    rows = {"post": 2_000_000, "post_like": 30_000_000, "comment_like": 9_000_000, "comment": 5}
    decision = rel.check_step(["0.19.12"], "0.19.13", table_rows=rows)
    assert decision.refused
    for text in ("from 0.19.12 to 0.19.13", "2025-07-29-152742_add_indexes_for_aggregates_activity",
                 "post, post_like, comment_like", "SHARE", "about 41,000,000 rows", "post_like 30,000,000",
                 "pg_class.reltuples", "100,000", "-e lemmy_upgrade_allow_write_block=true", "refused before any change"):
        assert text in decision.msg
    assert rel.SKIP_OVERRIDE not in decision.msg
    block = decision.write_blocks[0]
    assert block["estimated_rows"] == 41_000_000
    assert block["rows"] == {"post": 2_000_000, "post_like": 30_000_000, "comment_like": 9_000_000}


def test_unknown_size_says_so() -> None:
    decision = rel.check_step(["0.19.10"], "0.19.11")
    assert decision.refused
    for text in ("2025-02-24-173152_search-alt-text-of-posts", "reads and writes on post", "ACCESS EXCLUSIVE",
                 "size of post is unknown", "ANALYZE", rel.WRITE_BLOCK_OVERRIDE):
        assert text in decision.msg


def test_table_indexed_twice_counts_twice() -> None:
    decision = rel.check_step(["0.19.13"], "0.19.14", table_rows={"post_aggregates": 60_000})
    assert decision.write_blocks[0]["estimated_rows"] == 120_000
    assert decision.refused
    assert not rel.check_step(["0.19.13"], "0.19.14", table_rows={"post_aggregates": 50_000}).refused


@pytest.mark.parametrize("posts, refused", [(1_000, False), (1_001, True), (50_000, True)])
def test_trigram_rows_count_more(posts: int, refused: bool) -> None:
    decision = rel.check_step(["0.19.10"], "0.19.11", table_rows={"post": posts})
    assert decision.refused is refused
    block = decision.write_blocks[0]
    assert block["row_weight"] == rel.TRIGRAM_ROW_WEIGHT
    assert block["weighted_rows"] == posts * rel.TRIGRAM_ROW_WEIGHT
    if refused:
        assert "each trigram GIN row counting as 100" in decision.msg


def test_write_block_limit_is_a_parameter() -> None:
    rows = {"post_aggregates": 60_000}
    assert not rel.check_step(["0.19.13"], "0.19.14", table_rows=rows, write_block_rows=1_000_000).refused
    decision = rel.check_step(["0.19.13"], "0.19.14", table_rows=rows, write_block_rows=0)
    assert decision.refused and "limit of 0 rows" in decision.msg
    assert decision.write_block_rows == 0


def test_resume_has_nothing_left_to_lock() -> None:
    decision = rel.check_step(["0.19.10", "0.19.11"], "0.19.11")
    assert decision.step == "resume"
    assert decision.write_blocks == []
    assert not decision.refused


def test_skip_over_write_blocking_releases_lists_them_all() -> None:
    rows = {"post": 10, "post_read": 10, "post_hide": 10, "post_saved": 10, "post_like": 10, "comment_like": 10,
            "post_aggregates": 10_000_000}
    decision = rel.check_step(["0.19.10"], "0.19.14", allow_skip=True, table_rows=rows)
    scaled = [(b["version"], b["over_limit"]) for b in decision.write_blocks if b["scales_with_rows"]]
    assert scaled == [("0.19.11", False), ("0.19.12", False), ("0.19.13", False), ("0.19.14", True)]
    assert [b["version"] for b in decision.write_blocks if not b["scales_with_rows"]] == [
        "0.19.11", "0.19.12", "0.19.13", "0.19.14"]
    assert decision.refused
    assert "0.19.14 migration" in decision.msg and "0.19.13 migration" not in decision.msg
    assert decision.as_dict()["write_blocks"] == decision.write_blocks


def test_install_lists_migrations_up_to_target() -> None:
    decision = rel.check_step([], "0.19.5")
    assert [m["version"] for m in decision.migrations] == ["0.19.0", "0.19.2", "0.19.4", "0.19.5"]
    assert decision.migrations[0]["count"] is None
