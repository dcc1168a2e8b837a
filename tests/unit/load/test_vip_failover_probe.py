# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) fediscale.lemmy contributors
"""The failover probe of the virtual address (tests/load/failover_probe.py): its targets and its judge."""

from __future__ import annotations

import http.server
import importlib.util
import json
import threading
from pathlib import Path

import pytest

_PATH = Path(__file__).resolve().parents[2] / "load" / "failover_probe.py"
_SPEC = importlib.util.spec_from_file_location("failover_probe", _PATH)
assert _SPEC is not None and _SPEC.loader is not None
probe = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(probe)

KILL = 1000.0


def _run(failures_at: list[float], until: float = 1010.0, rate: float = 40.0) -> list[list]:
    """Requests every 1/rate s from 995 to ``until``, each answered in 10 ms, failing at the given send times."""
    records = []
    failing = {round(f, 3) for f in failures_at}
    for step in range(int((until - 995.0) * rate)):
        stamp = round(995.0 + step / rate, 3)
        records.append([stamp, 0.01, stamp not in failing, "ConnectionResetError" if stamp in failing else 200])
    return records


@pytest.mark.parametrize(
    ("host", "allowed"),
    [("10.213.76.100", True), ("127.0.0.1", True), ("192.168.1.5", True), ("::1", True), ("8.8.8.8", False), ("lb1", False), ("fd00::1", False)],
)
def test_only_lab_and_loopback_targets(host: str, allowed: bool) -> None:
    assert probe.allowed_target(host) is allowed


def test_a_clean_failover() -> None:
    verdict = probe.judge(_run([1000.1, 1000.125, 1000.3]), KILL, failover_at=1000.8, rejoin_at=1005.0)
    assert verdict["failed"] == 3
    assert verdict["failed_before_kill"] == 0
    assert verdict["error_window_s"] == 0.2
    assert verdict["first_failure_after_kill_s"] == 0.1
    assert verdict["failover_after_kill_s"] == 0.8
    assert verdict["failed_after_failover"] == 0
    assert verdict["failed_after_rejoin"] == 0
    assert verdict["requests_after_rejoin"] == 200
    assert verdict["failure_kinds"] == {"ConnectionResetError": 3}


def test_failures_after_the_takeover_are_counted() -> None:
    # Renders through a dead proxy would keep failing after the address moved: the judge must see them.
    verdict = probe.judge(_run([1000.1, 1002.0, 1006.0]), KILL, failover_at=1000.8, rejoin_at=1005.0)
    assert verdict["failed_after_failover"] == 2
    assert verdict["failed_after_rejoin"] == 1
    assert verdict["error_window_s"] == 5.9


def test_failures_before_the_kill_are_counted() -> None:
    verdict = probe.judge(_run([997.0]), KILL, failover_at=1000.8)
    assert verdict["failed_before_kill"] == 1


def test_no_failure_gives_no_window() -> None:
    verdict = probe.judge(_run([]), KILL, failover_at=1000.8)
    assert verdict["failed"] == 0 and verdict["error_window_s"] is None and verdict["failed_after_failover"] == 0


def test_without_a_takeover_instant_the_first_answer_after_the_failures_ends_the_failover() -> None:
    verdict = probe.judge(_run([1000.1, 1000.125]), KILL)
    assert verdict["failover_after_kill_s"] == pytest.approx(0.16, abs=0.001)
    assert verdict["failed_after_failover"] == 0


def test_the_probe_counts_what_a_server_answers(tmp_path: Path) -> None:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            self.send_response(200 if self.path == "/ok" else 503)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *_args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        out = tmp_path / "probe.json"
        progress = tmp_path / "progress.json"
        args = ["probe", "--host", "127.0.0.1", "--port", str(server.server_address[1]), "--path", "/ok", "--path", "/bad"]
        args += ["--rate", "50", "--threads", "2", "--max-requests", "20", "--duration", "10", "--out", str(out), "--progress-file", str(progress)]
        assert probe.main(args) == 0
    finally:
        server.shutdown()
    results = json.loads(out.read_text(encoding="utf-8"))
    records = results["records"]
    assert len(records) == 20
    assert sum(1 for r in records if r[2]) == 10
    assert {r[3] for r in records if not r[2]} == {503}
    assert results["stop_reason"] == "max-requests"
    assert json.loads(progress.read_text(encoding="utf-8"))["done"] <= 20


class _FakeProbe:
    """A probe whose progress file grows by a fixed step each time the waiter pauses."""

    def __init__(self, path: Path, step: int, failed_at: int | None = None) -> None:
        self.path, self.step, self.failed_at, self.done, self.now = path, step, failed_at, 0, 0.0

    def clock(self) -> float:
        return self.now

    def pause(self, seconds: float) -> None:
        self.now += seconds
        self.done += self.step
        failed = 1 if self.failed_at is not None and self.done >= self.failed_at else 0
        self.path.write_text(json.dumps({"done": self.done, "failed": failed}), encoding="utf-8")


def test_wait_for_an_absolute_count(tmp_path: Path) -> None:
    fake = _FakeProbe(tmp_path / "progress.json", step=10)
    code, counts = probe.wait_for_answers(str(fake.path), 100, None, True, 60, fake.clock, fake.pause)
    assert code == 0
    assert counts["now"]["done"] >= 100 and counts["goal"] == 100


def test_wait_for_more_counts_from_the_start_of_the_wait(tmp_path: Path) -> None:
    fake = _FakeProbe(tmp_path / "progress.json", step=10)
    fake.done = 250  # the probe has run a while before the wait
    fake.path.write_text(json.dumps({"done": 250, "failed": 0}), encoding="utf-8")
    code, counts = probe.wait_for_answers(str(fake.path), None, 40, False, 60, fake.clock, fake.pause)
    assert code == 0
    assert counts["start"]["done"] == 250 and counts["goal"] == 290 and counts["now"]["done"] >= 290


def test_wait_gives_up_at_the_first_failure_when_asked(tmp_path: Path) -> None:
    fake = _FakeProbe(tmp_path / "progress.json", step=10, failed_at=30)
    code, counts = probe.wait_for_answers(str(fake.path), 400, None, True, 60, fake.clock, fake.pause)
    assert code == 3
    assert counts["now"]["failed"] == 1 and "failed" in counts["error"]


def test_wait_times_out_with_the_counts_it_saw(tmp_path: Path) -> None:
    fake = _FakeProbe(tmp_path / "progress.json", step=1)
    code, counts = probe.wait_for_answers(str(fake.path), 10_000, None, False, 5, fake.clock, fake.pause)
    assert code == 2
    assert "of 10000 answered after 5 s" in counts["error"]


def test_wait_without_a_probe_says_so(tmp_path: Path) -> None:
    clock = iter(range(100))
    code, counts = probe.wait_for_answers(str(tmp_path / "none.json"), 1, None, False, 3, lambda: next(clock), lambda _s: None)
    assert code == 2 and counts["start"] is None and "no progress" in counts["error"]
