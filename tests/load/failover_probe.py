# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) fediscale.lemmy contributors
"""Bounded HTTP probe of a virtual address, for measuring a failover from inside the lab network.

  probe  python3 failover_probe.py probe --host 10.213.76.100 --port 80 --out /tmp/probe.json \
             --stop-file /tmp/probe.stop --ready-file /tmp/probe.ready [--path /api/v3/site --path /]
  wait   python3 failover_probe.py wait --progress-file /tmp/probe.progress (--answers 400 | --more 400) \
             [--no-failures] [--timeout 60]
  judge  python3 failover_probe.py judge --results /tmp/probe.json --kill-at 1767000000.25 \
             [--failover-at 1767000000.95] [--rejoin-at 1767000030.0]

The probe sends --rate requests per second (threads share a pacer), each on a new connection
(``Connection: close``), so every request meets the address as it is at that instant; it never
retries. A request fails on anything but a 2xx answer, a timeout (--timeout) or a connection error.
--progress-file keeps the counts so far, for `wait`: it returns once the probe has --answers requests
answered in all, or --more than when it started waiting, and prints the counts at its start and at its
end (exit 2 on --timeout, 3 when --no-failures and one failed). It stops after --duration
seconds, --max-requests requests, when --stop-file appears, or on
SIGTERM/SIGINT, and writes every request as [start, latency, ok, detail] with wall-clock times
(time.time(): the lab's containers share the machine's clock, so a kill timestamp taken outside
compares with them).

The judge reads those results, the instant the active proxy was killed and the instant another
proxy took the address over, and prints one JSON object: requests, failures, the error window
(first to last failed request, by send time), the failures sent after the takeover, and the
slowest request.

Targets: loopback or a private IPv4 address (the lab network) only.
"""

from __future__ import annotations

import argparse
import http.client
import ipaddress
import json
import os
import signal
import sys
import threading
import time
import typing as t

Record = t.List[t.Any]  # [start (epoch s), latency (s), ok (bool), detail (status or error class)]


def allowed_target(host: str) -> bool:
    """Only loopback and private IPv4 literals: the probe is for the lab network."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_loopback or (isinstance(address, ipaddress.IPv4Address) and address.is_private)


class Probe:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.records: list[Record] = []
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.stop_reason = "duration"
        self.interval = 1.0 / args.rate
        self.next_at = time.monotonic()
        self.sent = 0

    def slot(self) -> float | None:
        with self.lock:
            if self.sent >= self.args.max_requests:
                return None
            self.sent += 1
            now = time.monotonic()
            if self.next_at < now - self.interval:
                self.next_at = now
            at = self.next_at
            self.next_at += self.interval
            return at

    def one(self, path: str) -> Record:
        start = time.time()
        began = time.monotonic()
        conn = http.client.HTTPConnection(self.args.host, self.args.port, timeout=self.args.timeout)
        try:
            conn.request("GET", path, headers={"Host": self.args.host_header, "Connection": "close", "Accept": "*/*"})
            answer = conn.getresponse()
            answer.read()
            ok = 200 <= answer.status < 300
            detail: t.Any = answer.status
        except (OSError, http.client.HTTPException) as exc:
            ok = False
            detail = type(exc).__name__
        finally:
            conn.close()
        return [round(start, 4), round(time.monotonic() - began, 4), ok, detail]

    def worker(self, number: int) -> None:
        paths = self.args.path or ["/api/v3/site"]
        turn = number
        while not self.stop.is_set():
            at = self.slot()
            if at is None:
                return
            delay = at - time.monotonic()
            if delay > 0 and self.stop.wait(delay):
                return
            record = self.one(paths[turn % len(paths)])
            turn += 1
            with self.lock:
                self.records.append(record)

    def run(self) -> dict[str, t.Any]:
        threads = [threading.Thread(target=self.worker, args=(n,), daemon=True) for n in range(self.args.threads)]
        started = time.time()
        for thread in threads:
            thread.start()
        if self.args.ready_file:
            _write(self.args.ready_file, "%.4f\n" % started)
        deadline = time.monotonic() + self.args.duration
        next_progress = 0.0
        while not self.stop.is_set():
            if self.args.progress_file and time.monotonic() >= next_progress:
                next_progress = time.monotonic() + 0.25
                with self.lock:
                    done = len(self.records)
                    failed = sum(1 for r in self.records if not r[2])
                _write(self.args.progress_file, json.dumps({"done": done, "failed": failed, "at": round(time.time(), 4)}) + "\n")
            if time.monotonic() >= deadline:
                self.stop_reason = "duration"
                break
            if self.args.stop_file and os.path.exists(self.args.stop_file):
                self.stop_reason = "stop-file"
                break
            if not any(thread.is_alive() for thread in threads):
                self.stop_reason = "max-requests"
                break
            self.stop.wait(0.05)
        self.stop.set()
        for thread in threads:
            thread.join(self.args.timeout + 1)
        with self.lock:
            records = sorted(self.records)
        return {
            "target": "%s:%d" % (self.args.host, self.args.port),
            "paths": self.args.path or ["/api/v3/site"],
            "rate": self.args.rate,
            "timeout": self.args.timeout,
            "started": round(started, 4),
            "stopped": round(time.time(), 4),
            "stop_reason": self.stop_reason,
            "records": records,
        }


def judge(records: t.Sequence[Record], kill_at: float, failover_at: float | None = None, rejoin_at: float | None = None) -> dict[str, t.Any]:
    """Sum up a probe run around one failover.

    ``kill_at`` is the instant just before the active proxy was killed; ``failover_at`` the instant
    another proxy took the address over (keepalived's "Entering MASTER STATE" in its journal). Without
    it, the failover counts as over at the first answer to a request sent after the first failure
    that followed the kill. Failures sent at or after that instant are ``failed_after_failover``: once
    the address has moved, nothing may fail any more. The error window runs from the first to the last
    failed request, by send time (0.0 for a single failure, None for none). ``rejoin_at`` (optional)
    splits off the requests sent after the killed proxy was started again.
    """
    ordered = sorted(records, key=lambda r: r[0])
    failures = [r for r in ordered if not r[2]]
    after_kill = [r for r in failures if r[0] >= kill_at]
    if failover_at is None:
        since = after_kill[0][0] if after_kill else kill_at
        answered = [r[0] + r[1] for r in ordered if r[2] and r[0] >= since]
        failover_at = min(answered) if answered else None
    after = [r for r in failures if failover_at is not None and r[0] >= failover_at]
    window = None
    if failures:
        window = round(failures[-1][0] - failures[0][0], 3)
    result: dict[str, t.Any] = {
        "requests": len(ordered),
        "failed": len(failures),
        "failed_before_kill": sum(1 for r in failures if r[0] < kill_at),
        "error_window_s": window,
        "first_failure_after_kill_s": round(failures[0][0] - kill_at, 3) if failures else None,
        "last_failure_after_kill_s": round(failures[-1][0] - kill_at, 3) if failures else None,
        "failover_after_kill_s": round(failover_at - kill_at, 3) if failover_at is not None else None,
        "requests_after_failover": sum(1 for r in ordered if failover_at is not None and r[0] >= failover_at),
        "failed_after_failover": len(after) if failover_at is not None else None,
        "max_latency_s": round(max((r[1] for r in ordered), default=0.0), 3),
        "failure_kinds": _count(str(r[3]) for r in failures),
    }
    if rejoin_at is not None:
        result["requests_after_rejoin"] = sum(1 for r in ordered if r[0] >= rejoin_at)
        result["failed_after_rejoin"] = sum(1 for r in failures if r[0] >= rejoin_at)
    return result


def _count(items: t.Iterable[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for item in items:
        counts[item] = counts.get(item, 0) + 1
    return dict(sorted(counts.items()))


def read_progress(path: str) -> dict[str, t.Any] | None:
    """The probe's counts so far, or None while it has not written them yet."""
    try:
        with open(path, encoding="utf-8") as handle:
            return t.cast(t.Dict[str, t.Any], json.load(handle))
    except (OSError, ValueError):
        return None


def wait_for_answers(path: str, answers: int | None, more: int | None, no_failures: bool, timeout: float,
                     clock: t.Callable[[], float] = time.monotonic, pause: t.Callable[[float], None] = time.sleep) -> tuple[int, dict[str, t.Any]]:
    """Wait until the probe has answered enough requests: (exit code, {"start", "now"} counts)."""
    deadline = clock() + timeout
    start = read_progress(path)
    while start is None and clock() < deadline:
        pause(0.2)
        start = read_progress(path)
    if start is None:
        return 2, {"start": None, "now": None, "error": "no progress in %s after %g s" % (path, timeout)}
    goal = answers if answers is not None else int(start["done"]) + int(more or 0)
    now = start
    while True:
        if no_failures and int(now["failed"]) > 0:
            return 3, {"start": start, "now": now, "goal": goal, "error": "%s requests failed" % now["failed"]}
        if int(now["done"]) >= goal:
            return 0, {"start": start, "now": now, "goal": goal}
        if clock() >= deadline:
            return 2, {"start": start, "now": now, "goal": goal, "error": "%s of %d answered after %g s" % (now["done"], goal, timeout)}
        pause(0.2)
        now = read_progress(path) or now


def _write(path: str, text: str) -> None:
    temporary = path + ".tmp"
    with open(temporary, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(temporary, path)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    probe = sub.add_parser("probe", help="send requests until stopped and write every result")
    probe.add_argument("--host", required=True, help="loopback or a private IPv4 address (the virtual address)")
    probe.add_argument("--port", type=int, default=80)
    probe.add_argument("--host-header", default="lemmy.lab.test")
    probe.add_argument("--path", action="append", help="paths to request in turn (default /api/v3/site); repeat for more")
    probe.add_argument("--rate", type=float, default=40.0, help="requests per second (default 40)")
    probe.add_argument("--threads", type=int, default=8)
    probe.add_argument("--timeout", type=float, default=5.0, help="per-request timeout in seconds (a timeout is a failure)")
    probe.add_argument("--duration", type=float, default=180.0, help="stop after this many seconds at the latest (default 180)")
    probe.add_argument("--max-requests", type=int, default=20000)
    probe.add_argument("--out", required=True, help="write the JSON results here")
    probe.add_argument("--stop-file", help="stop when this file exists")
    probe.add_argument("--ready-file", help="write the start time here once the workers run")
    probe.add_argument("--progress-file", help="keep the requests answered and failed so far here (JSON, 4 times a second)")
    waiting = sub.add_parser("wait", help="wait until a running probe has answered enough requests")
    waiting.add_argument("--progress-file", required=True)
    goal = waiting.add_mutually_exclusive_group(required=True)
    goal.add_argument("--answers", type=int, help="requests answered in all")
    goal.add_argument("--more", type=int, help="requests answered since the wait began")
    waiting.add_argument("--no-failures", action="store_true", help="give up as soon as a request has failed")
    waiting.add_argument("--timeout", type=float, default=60.0)
    verdict = sub.add_parser("judge", help="sum up a probe run around a failover")
    verdict.add_argument("--results", required=True)
    verdict.add_argument("--kill-at", type=float, required=True, help="epoch seconds at which the active proxy was killed")
    verdict.add_argument("--failover-at", type=float, help="epoch seconds at which another proxy took the address over")
    verdict.add_argument("--rejoin-at", type=float, help="epoch seconds at which the killed proxy was started again")
    args = parser.parse_args(argv)
    if args.command == "probe":
        if not allowed_target(args.host):
            parser.error("--host must be a loopback or private IPv4 address, got %r" % args.host)
        if args.rate <= 0 or args.threads < 1 or args.timeout <= 0 or args.duration <= 0:
            parser.error("--rate, --threads, --timeout and --duration must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.command == "wait":
        code, counts = wait_for_answers(args.progress_file, args.answers, args.more, args.no_failures, args.timeout)
        print(json.dumps(counts, sort_keys=True))
        return code
    if args.command == "judge":
        with open(args.results, encoding="utf-8") as handle:
            results = json.load(handle)
        print(json.dumps(judge(results["records"], args.kill_at, args.failover_at, args.rejoin_at), sort_keys=True))
        return 0
    probe = Probe(args)

    def on_signal(_signum: int, _frame: t.Any) -> None:
        probe.stop_reason = "signal"
        probe.stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    _write(args.out, json.dumps(probe.run()) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
