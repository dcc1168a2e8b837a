# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) fediscale.lemmy contributors
"""The judging of the fault windows (tests/load/judge_window.py)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

_PATH = Path(__file__).resolve().parents[2] / "load" / "judge_window.py"
_SPEC = importlib.util.spec_from_file_location("judge_window", _PATH)
assert _SPEC is not None and _SPEC.loader is not None
judge = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(judge)


def _load(total=600, failed=0, rate=25.0, bad=0, by_status=None, timeline=None, started_at=1000.0, wanted=25.0):
    return {"total": total, "failed": failed, "latency_max_ms": 3012.5, "duration_s": total / rate, "rate_achieved": rate,
            "rate_wanted": wanted,
            "bad_content": bad, "failures_by_status": by_status or {}, "started_at": started_at,
            "timeline": timeline or []}


def test_no_failures_passes_a_clean_window_and_names_each_problem():
    assert judge.judge_no_failures(_load()) == []
    # A busy machine may not reach the rate asked for: a speed figure, not a failure.
    assert judge.judge_no_failures(_load(rate=7.5)) == []
    problems = judge.judge_no_failures(_load(failed=2, bad=1, wanted=10.0, by_status={"502": 2}))
    assert len(problems) == 3
    assert "2 requests failed" in problems[0] and "502" in problems[0]
    assert "wrong content" in problems[1]
    assert "asked for 10.0 req/s, below 20" in problems[2]
    assert judge.judge_no_failures(_load(total=0)) == ["the load sent no request"]


def test_figures_line_prints_requests_failed_slowest_and_seconds():
    line = judge.figures_line("host_stop", _load(total=500))
    assert line.startswith("window host_stop: 500 requests, 0 failed, slowest request 3012 ms, 20.0 s (25.0 req/s of 25 asked)")


RECAP = """
PLAY [x] ****
TASK [y] ****
ok: [web1]
PLAY RECAP *********************************************************************
db1                        : ok=40   changed=0    unreachable=0    failed=0    skipped=9    rescued=0    ignored=0
lb1                        : ok=61   changed=0    unreachable=0    failed=0    skipped=20   rescued=0    ignored=0
web2                       : ok=70   changed=3    unreachable=0    failed=0    skipped=12   rescued=0    ignored=0
"""


def test_recap_is_parsed_per_host():
    recap = judge.parse_recap(RECAP)
    assert recap["web2"] == {"ok": 70, "changed": 3, "unreachable": 0, "failed": 0}
    assert set(recap) == {"db1", "lb1", "web2"}
    assert judge.parse_recap("no recap here") == {}


def test_heal_allows_changes_only_on_the_healed_host():
    recap = judge.parse_recap(RECAP)
    assert judge.judge_heal(recap, "web2", ["db1", "lb1", "web2"]) == []
    problems = judge.judge_heal(recap, "db1", ["db1", "lb1", "web2", "web1"])
    assert any("lacks the hosts ['web1']" in p for p in problems)
    assert any("changed 3 things on web2" in p for p in problems)
    recap["lb1"]["unreachable"] = 1
    assert any("lb1 failed=0 unreachable=1" in p for p in judge.judge_heal(recap, "web2", []))


UPSTREAMS = """
upstream lemmy_api {
    server web1:8536 down;
    server web2:8536 max_fails=1 fail_timeout=10s;
    keepalive 32;
}

upstream lemmy_ui {
    ip_hash;
    server web1:1234 down;
    server web2:1234 down;
    keepalive 32;
}
"""


def test_pools_with_every_server_down_are_refused():
    pools = judge.parse_upstreams(UPSTREAMS)
    assert pools["lemmy_api"] == {"up": ["web2:8536"], "down": ["web1:8536"]}
    assert pools["lemmy_ui"] == {"up": [], "down": ["web1:1234", "web2:1234"]}
    problems = judge.judge_pools({"lb1": UPSTREAMS})
    assert problems == ["lb1: upstream lemmy_ui has no server up (down: ['web1:1234', 'web2:1234'])"]
    assert judge.judge_pools({"lb1": UPSTREAMS.replace("web2:1234 down", "web2:1234")}) == []
    assert judge.judge_pools({"lb1": "# empty"}) == ["lb1: no upstream block found"]
    # A marker on disk counts too: the next render takes that server down.
    fixed = UPSTREAMS.replace("web2:1234 down", "web2:1234")
    assert judge.judge_pools({"lb1:upstreams.conf": fixed}, ["web1:8536"]) == []
    problems = judge.judge_pools({"lb1:upstreams.conf": fixed}, ["web2:8536", "web2:1234"])
    assert problems == ["lb1:upstreams.conf: upstream lemmy_api would have no server up once the markers ['web2:1234', 'web2:8536'] "
                        "are rendered", "lb1:upstreams.conf: upstream lemmy_ui would have no server up once the markers "
                        "['web2:1234', 'web2:8536'] are rendered"]


def _federation(**changes):
    # Activities every second from t=0; the sender saves every 10 s (at 0, 10, 20); killed at 25, restarted at 27.
    facts = {
        "kill_at": 25.0, "restarted_at": 27.0, "save_seconds": 10, "sender_period_seconds": 2,
        "instances": [1, 2],
        "activities": [[i + 1, float(i)] for i in range(40)],
        "samples": [[float(at), inst, {0: 1, 10: 11, 20: 21, 26: 21, 28: 29, 30: 31}[at]]
                    for at in (0, 10, 20, 26, 28, 30) for inst in (1, 2)],
        "owners": [[1, "work1/a/1", 0.0, 30.0], [2, "work1/a/1", 0.0, 30.0]],
        "restart_count_before": 0, "restart_count_after": 1,
    }
    facts.update(changes)
    return facts


def test_federation_accepts_a_resume_within_the_save_window():
    problems, summary = judge.judge_federation(_federation())
    assert problems == []
    # Saved up to activity 21 (published at 20); activities 22..26 (from 21 on) are sent again: 4 s behind.
    assert summary["redelivery_s"] == 4.0
    assert summary["max_id_at_kill"] == 26


def test_federation_refuses_a_state_that_goes_back_or_lags_too_far():
    samples = [s for s in _federation()["samples"] if s[0] != 28]
    samples.append([28.0, 1, 5])
    problems, _summary = judge.judge_federation(_federation(samples=samples))
    assert any("instance 1: last_successful_id went back" in p for p in problems)
    # Saved only at 0 (activity 1): activity 2, published at 1, is 24 s behind at the kill, more than 10 s + 2 x 2 s + margin.
    stale = [[float(at), inst, 1 if at < 28 else 31] for at in (0, 10, 20, 26, 28, 30) for inst in (1, 2)]
    problems, summary = judge.judge_federation(_federation(samples=stale))
    assert summary["redelivery_s"] == 24.0
    assert any("24.0 s behind" in p for p in problems)


def test_federation_refuses_two_owners_no_catch_up_and_no_restart():
    owners = [[1, "work1/a/1", 0.0, 30.0], [1, "work1/b/1", 20.0, 30.0], [2, "work1/a/1", 0.0, 30.0]]
    samples = [s for s in _federation()["samples"] if s[0] < 28]
    problems, _summary = judge.judge_federation(_federation(owners=owners, samples=samples, restart_count_after=0))
    assert any("instance 1: owned by 2 senders" in p for p in problems)
    assert any("1 times two senders owned one instance at once" in p for p in problems)
    assert any("did not catch up" in p for p in problems)
    assert any("was not restarted" in p for p in problems)


def _timeline(failed_at):
    return [{"second": s, "requests": 25, "failed": failed_at.get(s, 0)} for s in range(40)]


def test_outage_wants_failures_as_errors_only_during_the_outage():
    load = _load(failed=30, by_status={"400": 20, "500": 10}, timeline=_timeline({s: 3 for s in range(10, 20)}))
    problems, summary = judge.judge_outage(load, down_at=1010.0, recovered_at=1021.0)
    assert problems == []
    assert summary["failed_during"] == 30 and summary["failed_outside"] == 0
    # An outage no request noticed hides the errors.
    problems, _summary = judge.judge_outage(_load(), 1010.0, 1021.0)
    assert any("errors are hidden" in p for p in problems)
    # Failures long after the recovery, timeouts, and 200 answers with wrong content are reported.
    load = _load(failed=5, bad=2, by_status={"error:TimeoutError": 5}, timeline=_timeline({35: 5}))
    problems, summary = judge.judge_outage(load, 1010.0, 1021.0)
    assert summary["failed_outside"] == 5
    assert len(problems) == 3


def test_snapshots_must_not_change():
    before = {"web1": ["/lemmy-api-1 abc 2026-01-01 0 true"]}
    assert judge.judge_snapshots(before, {"web1": ["/lemmy-api-1 abc 2026-01-01 0 true"]}) == []
    problems = judge.judge_snapshots(before, {"web1": ["/lemmy-api-1 abc 2026-01-02 1 true"]})
    assert len(problems) == 1 and problems[0].startswith("web1: containers changed")


def test_report_judges_every_window_and_names_a_missing_one(tmp_path, capsys):
    folder = tmp_path / "api_crash"
    folder.mkdir()
    (folder / "load.json").write_text(json.dumps(_load()))
    (folder / "facts.json").write_text(json.dumps({"container": "lemmy-api-1", "restart_count_before": 0,
                                                   "restart_count_after": 1}))
    assert judge.report(str(tmp_path)) == 1
    out = capsys.readouterr().out
    assert "| api_crash | SIGKILL of one lemmy_server API process | ok: 0 failed of 600" in out
    assert "FAILED host_stop: window missing" in out


@pytest.mark.parametrize("count_after", [0, 1])
def test_api_crash_wants_a_restart(count_after):
    facts = {"container": "lemmy-api-1", "restart_count_before": 0, "restart_count_after": count_after}
    problems, _summary = judge.judge_window("api_crash", _load(), facts)
    assert bool(problems) == (count_after == 0)


def test_gate_wants_a_refusal_naming_the_down_host_and_an_allowed_run_without_it():
    good = {"refused_rc": 2, "refusal": "- host web2: unreachable (no answer); bring it back, or run with -e lemmy_allow_unreachable=web2",
            "allowed_rc": 0, "upstream_lines_removed": ["-    server web2:8536 max_fails=1 fail_timeout=10s;"]}
    assert judge.judge_gate(good, "web2") == []
    assert "was not refused naming it" in judge.judge_gate(dict(good, refused_rc=0), "web2")[0]
    assert "was not refused naming it" in judge.judge_gate(dict(good, refusal=""), "web2")[0]
    assert "failed (rc 2)" in judge.judge_gate(dict(good, allowed_rc=2), "web2")[0]
    assert "did not drop" in judge.judge_gate(dict(good, upstream_lines_removed=[]), "web2")[0]
    problems, result = judge.judge_window("host_stop", _load(), {"host": "web2", "down_s": 30.0, "gate": good})
    assert problems == []
    assert "site.yml --check refused (rc 2" in result and "1 upstream servers dropped" in result


ONE_DRAINED = """
upstream lemmy_api {
    server web1:8536 max_fails=1 fail_timeout=10s;
    server web2:8536 down;
    keepalive 32;
}
"""


def test_upgrade_interrupt_wants_the_killed_runs_lock_refused_then_a_rerun_that_completes():
    refusal = ("Another run holds the operator lock lb1:/var/lib/fediscale-lemmy/operator.lock: root@ci (pid 42, rolling_upgrade.yml) "
               "since 2026-12-03T08:00:00Z. ... break the lock on purpose with -e lemmy_break_lock=true.")
    facts = {"configs_after_kill": {"lb1:cat /etc/nginx/lemmy/upstreams.conf": ONE_DRAINED}, "drained_at_kill": ["web2:8536"],
             "rerun_rc": 0, "lock_refused_rc": 2, "lock_refusal": refusal, "version_after": "0.19.20", "target": "0.19.20"}
    problems, result = judge.judge_window("upgrade_interrupt", _load(), facts)
    assert problems == []
    assert "a run before breaking the killed run's lock: rc 2" in result
    for broken in ({"lock_refused_rc": 0}, {"lock_refusal": ""}, {"lock_refusal": refusal.replace("lemmy_break_lock", "x")}):
        problems, _result = judge.judge_window("upgrade_interrupt", _load(), dict(facts, **broken))
        assert len(problems) == 1 and "was not refused" in problems[0], problems
    problems, _result = judge.judge_window("upgrade_interrupt", _load(), dict(facts, rerun_rc=2, version_after="0.19.19"))
    assert len(problems) == 2
