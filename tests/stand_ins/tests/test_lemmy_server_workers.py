# SPDX-License-Identifier: GPL-3.0-or-later
"""lemmy_server stand-in contract: duty flags, scheduler ticks, federation sharding and queue state."""
from __future__ import annotations

import socket

import pytest
from conftest import LemmyProcess, LemmyRunner, PgDatabase, free_port, wait_until

SENDER_ARGS = ["--disable-http-server", "--disable-scheduled-tasks"]


def _ticks(db: PgDatabase) -> list[tuple[float, str, str]]:
    return [(float(r[0]), r[1], r[2]) for r in db.query("SELECT extract(epoch FROM tick_at), process, version FROM standin_scheduler_tick")]


def test_scheduler_ticks_are_wall_clock_aligned(lemmy: LemmyRunner, postgres: PgDatabase) -> None:
    """Scheduler: each tick is recorded at a multiple of the period, with process and version."""
    lemmy.start("0.19.20", ["--disable-http-server", "--disable-activity-sending"], scheduler_period=2)
    ticks = wait_until(lambda: len(_ticks(postgres)) >= 2 and _ticks(postgres), 60, "two scheduler ticks")
    for tick_at, _process, version in ticks:
        assert tick_at % 2 == 0, ticks
        assert version == "0.19.20"


def test_two_schedulers_run_the_same_tick_twice(lemmy: LemmyRunner, postgres: PgDatabase) -> None:
    """Scheduler: two processes without --disable-scheduled-tasks both run every tick (the duplicate the docs warn of)."""
    lemmy.migrate()
    for _attempt in range(2):
        lemmy.start("0.19.20", ["--disable-http-server", "--disable-activity-sending"], scheduler_period=1)

    def duplicated() -> bool:
        rows = postgres.query("SELECT tick_at FROM standin_scheduler_tick GROUP BY tick_at HAVING count(DISTINCT process) = 2")
        return bool(rows)

    wait_until(duplicated, 60, "a tick recorded by both schedulers")


def test_disable_scheduled_tasks_runs_no_ticks(lemmy: LemmyRunner, postgres: PgDatabase) -> None:
    """--disable-scheduled-tasks: the process records no ticks while a scheduler process does."""
    lemmy.migrate()
    quiet = lemmy.start("0.19.20", ["--disable-scheduled-tasks", "--disable-activity-sending"], scheduler_period=1)
    quiet.wait_ready()
    lemmy.start("0.19.20", ["--disable-http-server", "--disable-activity-sending"], scheduler_period=1)
    wait_until(lambda: len({t[0] for t in _ticks(postgres)}) >= 3, 60, "three ticks of the scheduler process")
    quiet_process = quiet.get("/api/v3/standin/whoami").json()["process"]
    assert quiet_process not in {t[1] for t in _ticks(postgres)}


def test_disable_http_server_binds_nothing(lemmy: LemmyRunner, postgres: PgDatabase) -> None:
    """--disable-http-server: no listener at all (not even the 503 startup server); other duties still run."""
    port = free_port()
    lemmy.start("0.19.20", ["--disable-http-server", "--disable-activity-sending"], port=port, scheduler_period=1)
    wait_until(lambda: _ticks(postgres), 60, "a scheduler tick")
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()


@pytest.fixture
def instances(lemmy: LemmyRunner, postgres: PgDatabase) -> dict[str, list[int]]:
    """A migrated database with remote instances: alive ones, a dead one (4 days silent) and a blocked one."""
    code, out, _err = lemmy.run_to_exit("0.19.20", ["--disable-http-server", "--disable-scheduled-tasks", "--disable-activity-sending"])
    assert code == 0, out
    alive = [postgres.query("INSERT INTO instance (domain) VALUES (%s) RETURNING id", (f"r{i}.remote.test",))[0][0] for i in range(6)]
    dead = postgres.query("INSERT INTO instance (domain, published) VALUES ('dead.remote.test', now() - interval '4 days') RETURNING id")[0][0]
    blocked = postgres.query("INSERT INTO instance (domain) VALUES ('blocked.remote.test') RETURNING id")[0][0]
    postgres.execute("INSERT INTO federation_blocklist (instance_id) VALUES (%s)", (blocked,))
    local = postgres.query("SELECT id FROM instance WHERE domain = 'lemmy.test'")[0][0]
    return {"alive": alive, "excluded": [dead, blocked, local]}


def _owners(db: PgDatabase) -> list[tuple[int, str, int, int]]:
    return [tuple(r) for r in db.query("SELECT instance_id, process, shard_index, shard_count FROM standin_federation_owner")]


def test_senders_shard_instances_by_id_modulo_count(lemmy: LemmyRunner, postgres: PgDatabase, instances: dict[str, list[int]]) -> None:
    """Sender: process i of N owns instances with id % N == i - 1; local, dead and blocked instances get no worker."""
    for index in (1, 2):
        lemmy.start("0.19.20", [*SENDER_ARGS, "--federate-process-index", str(index), "--federate-process-count", "2"])
    wait_until(lambda: {r[0] for r in _owners(postgres)} >= set(instances["alive"]), 60, "every alive instance to get an owner")
    owners = _owners(postgres)
    for instance_id, _process, shard_index, shard_count in owners:
        assert shard_count == 2 and instance_id % 2 == shard_index - 1, owners
    assert len({r[0] for r in owners}) == len(owners), f"an instance has two owners: {owners}"
    assert not {r[0] for r in owners} & set(instances["excluded"]), owners
    assert len({r[1] for r in owners}) == 2


def test_sender_env_forms_from_0_19_4(lemmy: LemmyRunner, postgres: PgDatabase, instances: dict[str, list[int]]) -> None:
    """Sender: LEMMY_FEDERATE_PROCESS_INDEX/COUNT (0.19.4+) select the shard like the flags."""
    lemmy.start("0.19.20", SENDER_ARGS, env={"LEMMY_FEDERATE_PROCESS_INDEX": "2", "LEMMY_FEDERATE_PROCESS_COUNT": "3"})
    expected = {i for i in instances["alive"] if i % 3 == 1}
    wait_until(lambda: {r[0] for r in _owners(postgres)} == expected, 60, f"ownership of {sorted(expected)}")


def _queue(db: PgDatabase) -> dict[int, int]:
    return {r[0]: r[1] for r in db.query("SELECT instance_id, last_successful_id FROM federation_queue_state")}


def _add_activities(db: PgDatabase, tag: str, count: int = 3) -> int:
    for n in range(count):
        db.execute("INSERT INTO sent_activity (ap_id, data) VALUES (%s, '{}')", (f"https://lemmy.test/activities/{tag}{n}",))
    return int(db.query("SELECT max(id) FROM sent_activity")[0][0])


def _alive_queue(db: PgDatabase, instances: dict[str, list[int]]) -> dict[int, int]:
    return {k: v for k, v in _queue(db).items() if k in instances["alive"]}


def test_queue_state_starts_at_latest_and_is_saved_on_sigterm(lemmy: LemmyRunner, postgres: PgDatabase,
                                                              instances: dict[str, list[int]]) -> None:
    """Sender: a new instance starts at the newest activity (no back-fill); with the default 60 s period nothing more is
    written while the test runs, and SIGTERM saves every worker's state and exits 0."""
    newest_before = _add_activities(postgres, "old")
    sender = lemmy.start("0.19.20", SENDER_ARGS)
    wait_until(lambda: set(_queue(postgres)) >= set(instances["alive"]), 60, "queue state rows for the new instances")
    assert set(_queue(postgres).values()) == {newest_before}
    newest = _add_activities(postgres, "new")
    wait_until(lambda: f"Sent activities up to id {newest} " in sender.container.logs()[0], 60, "the sender to reach the new activities")
    assert set(_alive_queue(postgres, instances).values()) == {newest_before}, "state is written at most every 60 s, or at stop"
    assert sender.stop() == 0
    assert f"Saved federation state of {len(instances['alive'])} instances" in sender.container.logs()[0]
    assert _alive_queue(postgres, instances) == {i: newest for i in instances["alive"]}


def test_queue_state_of_every_worker_is_saved_periodically(lemmy: LemmyRunner, postgres: PgDatabase,
                                                           instances: dict[str, list[int]]) -> None:
    """Sender: every worker (not only one) writes its own state once the save period passed, while the process runs.

    STANDIN_SAVE_STATE_SECONDS is the stand-in's knob for Lemmy's fixed 60 s SAVE_STATE_EVERY_TIME.
    """
    sender = lemmy.start("0.19.20", SENDER_ARGS, env={"STANDIN_SAVE_STATE_SECONDS": "1"})
    wait_until(lambda: set(_queue(postgres)) >= set(instances["alive"]), 60, "queue state rows for the new instances")
    for round_ in range(2):
        newest = _add_activities(postgres, f"round{round_}-")
        wait_until(lambda newest=newest: _alive_queue(postgres, instances) == {i: newest for i in instances["alive"]}, 60,
                   f"every one of the {len(instances['alive'])} workers to save state up to activity {newest}")
    assert sender.container.running(), "the state was written while the sender ran, not at its stop"


def test_restarted_worker_writes_its_first_progress_at_once(lemmy: LemmyRunner, postgres: PgDatabase,
                                                            instances: dict[str, list[int]]) -> None:
    """Sender: a worker that resumes a saved state writes its first progress at once (its last write time starts at the
    epoch), even when the save period (here the stand-in's knob, 1 h) has not passed."""
    first = lemmy.start("0.19.20", SENDER_ARGS)
    wait_until(lambda: set(_queue(postgres)) >= set(instances["alive"]), 60, "queue state rows for the new instances")
    assert first.stop() == 0
    lemmy.start("0.19.20", SENDER_ARGS, env={"STANDIN_SAVE_STATE_SECONDS": "3600"})
    newest = _add_activities(postgres, "after-restart")
    wait_until(lambda: _alive_queue(postgres, instances) == {i: newest for i in instances["alive"]}, 60,
               f"the resumed workers to save state up to activity {newest}")


@pytest.mark.parametrize("index,count,assertion", [("0", "1", "process_index > 0"), ("1", "0", "process_count > 0"),
                                                   ("3", "2", "process_index <= process_count")])
def test_bad_shard_from_0_19_4_panics_sender_only(lemmy: LemmyRunner, postgres: PgDatabase, instances: dict[str, list[int]],
                                                  index: str, count: str, assertion: str) -> None:
    """0.19.4+: a bad index/count panics the sending task only: HTTP keeps serving, nothing is sent, exit is non-zero."""
    proc: LemmyProcess = lemmy.start("0.19.20", ["--disable-scheduled-tasks", "--federate-process-index", index,
                                                 "--federate-process-count", count])
    proc.wait_ready()
    wait_until(lambda: "panicked" in proc.container.logs()[1], 60, "the sender's panic line")
    assert f"assertion failed: {assertion}" in proc.container.logs()[1]
    assert proc.get("/api/v3/site").status == 200
    assert _owners(postgres) == [] and _queue(postgres) == {}
    assert proc.stop() != 0


def test_count_zero_before_0_19_4_panics_on_remainder(lemmy: LemmyRunner, postgres: PgDatabase, instances: dict[str, list[int]]) -> None:
    """0.19.3: count=0 panics the sending task (remainder by zero); HTTP keeps serving."""
    proc = lemmy.start("0.19.3", ["--disable-scheduled-tasks", "--federate-process-count", "0"])
    proc.wait_ready()
    wait_until(lambda: "remainder with a divisor of zero" in proc.container.logs()[1], 60, "the sender's panic line")
    assert proc.get("/api/v3/site").status == 200
    assert _owners(postgres) == []


def test_index_out_of_range_before_0_19_4_sends_nothing_silently(lemmy: LemmyRunner, postgres: PgDatabase,
                                                                 instances: dict[str, list[int]]) -> None:
    """0.19.3: index > count matches no instance and prints no panic."""
    proc = lemmy.start("0.19.3", [*SENDER_ARGS, "--federate-process-index", "5", "--federate-process-count", "2"])
    wait_until(lambda: "Federating to 0 instances" in proc.container.logs()[0], 60, "the sender loop")
    assert "panicked" not in proc.container.logs()[1]
    assert _owners(postgres) == []
    assert proc.stop() == 0


def test_disable_activity_sending_sends_nothing(lemmy: LemmyRunner, postgres: PgDatabase, instances: dict[str, list[int]]) -> None:
    """--disable-activity-sending: no worker, no queue state, while a sender process does own instances."""
    quiet = lemmy.start("0.19.20", ["--disable-scheduled-tasks", "--disable-activity-sending"])
    quiet.wait_ready()
    lemmy.start("0.19.20", SENDER_ARGS)
    wait_until(lambda: {r[0] for r in _owners(postgres)} >= set(instances["alive"]), 60, "the sender to own every instance")
    quiet_process = quiet.get("/api/v3/standin/whoami").json()["process"]
    assert quiet_process not in {r[1] for r in _owners(postgres)}
    assert "Federating to" not in quiet.container.logs()[0]
