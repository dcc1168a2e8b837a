# SPDX-License-Identifier: GPL-3.0-or-later
"""lemmy_server stand-in contract: startup server, migrations, mixed versions, first-start setup, shutdown."""
from __future__ import annotations

import threading

import pytest
from conftest import HttpReply, LemmyRunner, PgDatabase, wait_until


def _migrations(db: PgDatabase) -> int:
    return int(db.query("SELECT count(*) FROM __diesel_schema_migrations")[0][0])


def _exists(db: PgDatabase, sql: str) -> bool:
    return bool(db.query(sql)[0][0])


def _table(db: PgDatabase, name: str) -> bool:
    return _exists(db, f"SELECT to_regclass('public.{name}') IS NOT NULL")


def _function(db: PgDatabase, qualified: str) -> bool:
    return _exists(db, f"SELECT count(*) > 0 FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace"
                       f" WHERE n.nspname || '.' || p.proname = '{qualified}'")


def test_startup_answers_503_while_migrating(lemmy: LemmyRunner) -> None:
    """Startup: the port is bound at once and every path answers 503 "Lemmy is currently starting" until migrated."""
    proc = lemmy.start(migration_seconds=8)

    def first_answer() -> HttpReply | None:
        try:
            return proc.get("/api/v3/site")
        except OSError:
            return None

    reply = wait_until(first_answer, 60, "the startup server to answer")
    assert reply.status == 503, reply
    assert reply.json() == {"error": "Lemmy is currently starting"}
    assert proc.get("/nodeinfo/2.1").status == 503
    proc.wait_ready()
    assert proc.get("/api/v3/site").status == 200


def test_no_pending_migrations_means_no_migration_delay(lemmy: LemmyRunner, postgres: PgDatabase) -> None:
    """Migrations: the migration time is only spent when migrations are pending."""
    lemmy.migrate("0.19.20")
    before = _migrations(postgres)
    proc = lemmy.start("0.19.20", migration_seconds=3600)
    proc.wait_ready(timeout=60)
    assert "No migrations pending" in proc.container.logs()[0]
    assert _migrations(postgres) == before


def test_migrations_per_release_change_the_schema(lemmy: LemmyRunner, postgres: PgDatabase) -> None:
    """Migrations: 0.19.4 renames image_upload -> local_image and moves hot_rank into schema r; 0.19.11 sets register=10."""
    lemmy.migrate("0.19.3")
    n_0193 = _migrations(postgres)
    assert _table(postgres, "image_upload") and not _table(postgres, "local_image")
    assert _function(postgres, "public.hot_rank") and not _function(postgres, "r.hot_rank")
    assert postgres.query("SELECT register FROM local_site_rate_limit")[0][0] == 3
    lemmy.migrate("0.19.4")
    n_0194 = _migrations(postgres)
    assert n_0194 > n_0193
    assert _table(postgres, "local_image") and not _table(postgres, "image_upload")
    assert _function(postgres, "r.hot_rank") and not _function(postgres, "public.hot_rank")
    lemmy.migrate("0.19.19")
    assert _migrations(postgres) > n_0194
    assert postgres.query("SELECT register FROM local_site_rate_limit")[0][0] == 10


def _ticks(db: PgDatabase, version: str) -> list[tuple[bool, str | None]]:
    return [(bool(r[0]), r[1]) for r in db.query("SELECT ok, error FROM standin_scheduler_tick WHERE version = %s ORDER BY id", (version,))]


def test_old_scheduler_fails_against_newer_schema(lemmy: LemmyRunner, postgres: PgDatabase) -> None:
    """Mixed versions: 0.19.3's scheduler calls the unqualified hot_rank, which 0.19.4's migrations removed."""
    args = ["--disable-http-server", "--disable-activity-sending"]
    old = lemmy.start("0.19.3", args, scheduler_period=1)
    wait_until(lambda: _ticks(postgres, "0.19.3"), 60, "a 0.19.3 tick on its own schema")
    assert all(ok for ok, _tick in _ticks(postgres, "0.19.3")), _ticks(postgres, "0.19.3")
    assert old.stop() == 0
    postgres.execute("DELETE FROM standin_scheduler_tick")
    lemmy.migrate("0.19.4")
    old = lemmy.start("0.19.3", args, scheduler_period=1)
    lemmy.start("0.19.4", args, scheduler_period=1)
    wait_until(lambda: _ticks(postgres, "0.19.3") and _ticks(postgres, "0.19.4"), 60, "ticks of both schedulers")
    old_ticks, new_ticks = _ticks(postgres, "0.19.3"), _ticks(postgres, "0.19.4")
    assert not old_ticks[0][0] and "hot_rank" in (old_ticks[0][1] or ""), old_ticks
    assert new_ticks[0][0], new_ticks
    assert "Failed to update post hot_ranks" in old.container.logs()[0]
    assert old.container.running(), "the failing scheduler logs the error and keeps running, as Lemmy's does"


def test_0_19_19_and_0_19_20_share_a_schema(lemmy: LemmyRunner, postgres: PgDatabase) -> None:
    """Mixed versions: 0.19.20 adds no migrations, so 0.19.19 and 0.19.20 serve side by side without errors."""
    lemmy.migrate("0.19.19")
    before = _migrations(postgres)
    new = lemmy.start("0.19.20", ["--disable-activity-sending"], scheduler_period=1)
    old = lemmy.start("0.19.19", ["--disable-activity-sending"], scheduler_period=1)
    new.wait_ready()
    old.wait_ready()
    assert "No migrations pending" in new.container.logs()[0]
    assert _migrations(postgres) == before
    assert old.get("/api/v3/site").json()["version"] == "0.19.19"
    assert new.get("/api/v3/site").json()["version"] == "0.19.20"
    wait_until(lambda: _ticks(postgres, "0.19.19") and _ticks(postgres, "0.19.20"), 60, "ticks of both schedulers")
    assert all(ok for ok, _tick in _ticks(postgres, "0.19.19") + _ticks(postgres, "0.19.20"))


def test_concurrent_migrators_one_fails_schema_stays_consistent(lemmy: LemmyRunner, postgres: PgDatabase) -> None:
    """Migrations: no lock in 0.19; of two processes migrating at once one fails "Couldn't run DB Migrations"."""
    first = lemmy.start("0.19.20", migration_seconds=10)
    second = lemmy.start("0.19.20", migration_seconds=10)
    procs = [first, second]
    failed = wait_until(lambda: [p for p in procs if not p.container.running()], 120, "one of two concurrent migrators to exit")
    assert len(failed) == 1, [p.container.output() for p in procs]
    loser = failed[0]
    winner = second if loser is first else first
    assert loser.container.exit_code() != 0
    assert "Couldn't run DB Migrations" in loser.container.output()
    winner.wait_ready(timeout=120)
    check = lemmy.start("0.19.20", ["--disable-scheduled-tasks", "--disable-activity-sending"], migration_seconds=3600)
    check.wait_ready()
    assert "No migrations pending" in check.container.logs()[0]
    assert _function(postgres, "r.hot_rank")
    assert postgres.query("SELECT count(*) FROM local_site")[0][0] == 1


@pytest.mark.parametrize("setup", [True, False], ids=["with-setup", "without-setup"])
def test_first_start_creates_site_and_rate_limits(lemmy: LemmyRunner, postgres: PgDatabase, setup: bool) -> None:
    """Setup: the first start creates site, local_site (site_setup = config has `setup`), rate-limit row with defaults."""
    proc = lemmy.start("0.19.20", ["--disable-scheduled-tasks", "--disable-activity-sending"], setup=setup)
    proc.wait_ready()
    name, site_setup = postgres.query("SELECT s.name, l.site_setup FROM site s JOIN local_site l ON l.site_id = s.id")[0]
    assert (name, site_setup) == (("Contract Test", True) if setup else ("New Site", False))
    admins = postgres.query("SELECT p.name FROM person p JOIN local_user u ON u.person_id = p.id WHERE u.admin")
    assert admins == ([("admin",)] if setup else [])
    limits = postgres.query("SELECT message, message_per_second, post, post_per_second, register, register_per_second, image,"
                            " image_per_second, comment, comment_per_second, search, search_per_second, import_user_settings,"
                            " import_user_settings_per_second FROM local_site_rate_limit")
    assert limits == [(180, 60, 6, 600, 10, 3600, 6, 3600, 6, 600, 60, 600, 1, 86400)]
    site = proc.get("/api/v3/site").json()
    assert site["site_view"]["local_site"]["site_setup"] is setup
    assert site["site_view"]["local_site_rate_limit"]["message"] == 180
    assert proc.stop() == 0
    again = lemmy.start("0.19.20", ["--disable-scheduled-tasks", "--disable-activity-sending"], setup=True)
    again.wait_ready()
    assert postgres.query("SELECT count(*) FROM site")[0][0] == 1, "setup runs on the first start only"


@pytest.mark.parametrize("sig", ["TERM", "INT"])
def test_signal_finishes_in_flight_request_then_exits_0(lemmy: LemmyRunner, sig: str) -> None:
    """Shutdown: SIGTERM/SIGINT stop accepting, finish the request in flight, exit 0."""
    proc = lemmy.start("0.19.20")
    proc.wait_ready()
    result: dict[str, HttpReply] = {}
    slow = threading.Thread(target=lambda: result.setdefault("reply", proc.get("/api/v3/standin/sleep?seconds=3")))
    slow.start()
    wait_until(lambda: proc.get("/api/v3/standin/whoami").json()["in_flight"] >= 2, 30, "the slow request to be in flight")
    proc.container.signal(sig)
    slow.join(60)
    assert result["reply"].status == 200
    assert proc.container.wait_exit() == 0
    assert f"Received SIG{sig}" in proc.container.logs()[0]


def test_process_stays_light(lemmy: LemmyRunner, postgres: PgDatabase) -> None:
    """Resources: a process running every duty stays below 40 MB RSS."""
    proc = lemmy.start("0.19.20", scheduler_period=1)
    proc.wait_ready()
    wait_until(lambda: _ticks(postgres, "0.19.20"), 60, "a scheduler tick")
    for _attempt in range(20):
        proc.get("/api/v3/site")
    status = proc.container.exec("cat", "/proc/1/status").stdout
    rss_kb = int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:")))
    assert rss_kb < 40 * 1024, f"RSS {rss_kb} kB"
