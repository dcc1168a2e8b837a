# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) fediscale.lemmy contributors
"""Bounded HTTP load against a lab balancer on 127.0.0.1, like browsers and federating servers.

Every "visit" is one of:
  ui   GET / (HTML), then every /static/<hash>/... asset the page references, like a browser;
  api  GET /api/v3/site or /api/v3/post/list (JSON);
  ap   GET /c/<community> with Accept: application/activity+json (a federating server).

Threads share a pacer, so the whole generator sends --rate requests per second (assets included).
A visit uses one keep-alive connection (http.client) for the page and its assets, back to back, and
closes it afterwards, like a browser tab. A failed request is never retried:
anything other than a 2xx answer, a timeout or a connection error counts as a failure. Before
reusing an idle connection the thread checks whether the server closed it, and then opens a new
one before sending (what HTTP clients do). One case is sent again, as browsers do (RFC 9112
section 9.3.1): the server closed a reused idle keep-alive connection before any byte of an
answer (nginx closes idle connections when it reloads), so the request was never processed; it is
sent once on a new connection and counted in stale_keepalive_resends. A failure on a new
connection, or after an answer started, always counts.

It stops by itself after --duration seconds or --max-requests requests, when the --stop-file
appears, or on SIGTERM/SIGINT, and writes the results as JSON to --out: totals, failures by
status and by URL, static 404s, versions seen, and a per-second timeline.

Only 127.0.0.1 / ::1 / localhost may be targeted.

Example:
  python3 tests/load/loadgen.py --port 38080 --duration 120 --out /tmp/load.json \
      --pid-file /tmp/load.pid --stop-file /tmp/load.stop
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import re
import select
import signal
import socket
import sys
import threading
import time
import typing as t
from collections import Counter, defaultdict

ALLOWED_HOSTS = ("127.0.0.1", "::1", "localhost")
STATIC_RE = re.compile(r"""(?:href|src)=["'](/static/[^"'?#]+)""")
UI_VERSION_RE = re.compile(r'class="ui-version">UI: ([^<]*)<')
BACKEND_VERSION_RE = re.compile(r'class="backend-version">BE: ([^<]*)<')
AP_ACCEPT = "application/activity+json"
MAX_SAMPLES = 200


class Pacer:
    """Hands out send times spaced 1/rate apart, shared by all threads."""

    def __init__(self, rate: float, start: float) -> None:
        self.interval = 1.0 / rate
        self.next_at = start
        self.lock = threading.Lock()

    def advance(self, requests: int) -> None:
        """Account for requests sent back-to-back inside a visit."""
        with self.lock:
            self.next_at += self.interval * max(0, requests)

    def slot(self) -> float:
        with self.lock:
            now = time.monotonic()
            # Never bank more than one interval of idle time (no bursts after a slow phase).
            if self.next_at < now - self.interval:
                self.next_at = now
            at = self.next_at
            self.next_at += self.interval
            return at


class Results:
    def __init__(self, started: float, wall_start: float) -> None:
        self.lock = threading.Lock()
        self.started = started
        self.wall_start = wall_start
        self.total = 0
        self.ok = 0
        self.failed = 0
        self.by_kind: dict[str, Counter[str]] = defaultdict(Counter)
        self.failures_by_status: Counter[str] = Counter()
        self.failures_by_url: Counter[str] = Counter()
        self.failure_samples: list[dict[str, t.Any]] = []
        self.static_requests = 0
        self.static_404 = 0
        self.static_404_urls: Counter[str] = Counter()
        self.ui_versions: Counter[str] = Counter()
        self.backend_versions: Counter[str] = Counter()
        self.static_hashes: Counter[str] = Counter()
        self.timeline: dict[int, Counter[str]] = defaultdict(Counter)
        self.reconnects = 0
        self.stale_keepalive_resends = 0
        self.latency_max = 0.0
        self.latency_sum = 0.0
        # 2xx answers whose body is not what the route serves (an error hidden behind a 200).
        self.bad_content = 0
        self.bad_content_urls: Counter[str] = Counter()
        # The controller machine's 1-minute load average, sampled once a second: the lab shares its cores.
        self.loadavg: list[float] = []
        # Answers slower than --slow seconds (served, yet worth printing).
        self.slow_after = 5.0
        self.slow = 0

    def record(self, kind: str, url: str, status: int | None, error: str | None, latency: float) -> None:
        second = int(time.monotonic() - self.started)
        good = error is None and status is not None and 200 <= status < 300
        with self.lock:
            self.total += 1
            self.latency_sum += latency
            self.latency_max = max(self.latency_max, latency)
            if latency > self.slow_after:
                self.slow += 1
            self.by_kind[kind]["requests"] += 1
            self.timeline[second]["requests"] += 1
            self.timeline[second]["latency_max_ms"] = max(self.timeline[second]["latency_max_ms"], int(1000 * latency))
            if kind == "static":
                self.static_requests += 1
                if status == 404:
                    self.static_404 += 1
                    self.static_404_urls[url] += 1
                    self.timeline[second]["static_404"] += 1
            if good:
                self.ok += 1
                return
            self.failed += 1
            key = str(status) if error is None else "error:" + error
            self.by_kind[kind]["failed"] += 1
            self.failures_by_status[key] += 1
            self.failures_by_url[url] += 1
            self.timeline[second]["failed"] += 1
            if len(self.failure_samples) < MAX_SAMPLES:
                self.failure_samples.append({"t": round(time.monotonic() - self.started, 3), "kind": kind, "url": url,
                                             "status": status, "error": error})

    def note_bad_content(self, url: str) -> None:
        with self.lock:
            self.bad_content += 1
            self.bad_content_urls[url] += 1

    def note_versions(self, ui: str | None, backend: str | None) -> None:
        second = int(time.monotonic() - self.started)
        with self.lock:
            if ui:
                self.ui_versions[ui] += 1
                self.timeline[second]["ui:" + ui] += 1
            if backend:
                self.backend_versions[backend] += 1
                self.timeline[second]["api:" + backend] += 1

    def as_dict(self, stop_reason: str, args: argparse.Namespace) -> dict[str, t.Any]:
        duration = time.monotonic() - self.started
        with self.lock:
            return {
                "target": "http://{0}:{1}".format(args.host, args.port),
                "started_at": self.wall_start,
                "duration_s": round(duration, 3),
                "stop_reason": stop_reason,
                "rate_wanted": args.rate,
                "timeout_s": args.timeout,
                "rate_achieved": round(self.total / duration, 2) if duration > 0 else 0.0,
                "total": self.total,
                "ok": self.ok,
                "failed": self.failed,
                "failures_by_status": dict(self.failures_by_status),
                "failures_by_url": dict(self.failures_by_url.most_common(50)),
                "failure_samples": self.failure_samples,
                "static_requests": self.static_requests,
                "static_404": self.static_404,
                "static_404_urls": dict(self.static_404_urls.most_common(50)),
                "static_hashes": dict(self.static_hashes),
                "ui_versions": dict(self.ui_versions),
                "backend_versions": dict(self.backend_versions),
                "by_kind": {k: dict(v) for k, v in self.by_kind.items()},
                "reconnects": self.reconnects,
                "stale_keepalive_resends": self.stale_keepalive_resends,
                "bad_content": self.bad_content,
                "bad_content_urls": dict(self.bad_content_urls.most_common(50)),
                "latency_avg_ms": round(1000 * self.latency_sum / self.total, 1) if self.total else None,
                "latency_max_ms": round(1000 * self.latency_max, 1),
                "slow_after_s": self.slow_after,
                "slow": self.slow,
                "loadavg_max": max(self.loadavg) if self.loadavg else None,
                "loadavg_samples": self.loadavg[:3600],
                "timeline": [dict(second=s, **dict(c)) for s, c in sorted(self.timeline.items())],
            }


class Worker(threading.Thread):
    def __init__(self, gen: LoadGenerator, seed: int) -> None:
        super().__init__(daemon=True)
        self.gen = gen
        self.rng = random.Random(seed)
        self.conn: http.client.HTTPConnection | None = None
        self.sent = 0

    # -- connection handling

    def _connection(self) -> http.client.HTTPConnection:
        if self.conn is not None and self.conn.sock is not None and self._dropped(self.conn.sock):
            self.conn.close()
            self.conn = None
            with self.gen.results.lock:
                self.gen.results.reconnects += 1
        if self.conn is None:
            self.conn = http.client.HTTPConnection(self.gen.args.host, self.gen.args.port, timeout=self.gen.args.timeout)
        return self.conn

    @staticmethod
    def _dropped(sock: socket.socket) -> bool:
        """True when the server closed an idle keep-alive connection (readable with EOF, or reset)."""
        try:
            readable, _w, _x = select.select([sock], [], [], 0)
            if not readable:
                return False
            return sock.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True

    def request(self, kind: str, url: str, accept: str | None = None) -> tuple[int | None, bytes]:
        """Send one request (paced by the visit). Never retried."""
        gen = self.gen
        if gen.stop_event.is_set() or not gen.take_budget():
            raise StopIteration
        self.sent += 1
        headers = {"Host": gen.args.host_header, "User-Agent": "fediscale-loadgen/1", "Accept-Encoding": "identity"}
        if accept:
            headers["Accept"] = accept
        started = time.monotonic()
        status: int | None = None
        body = b""
        error: str | None = None
        try:
            conn = self._connection()
            reused = conn.sock is not None
            try:
                conn.request("GET", url, headers=headers)
                resp = conn.getresponse()
            except (ConnectionResetError, BrokenPipeError):
                # RemoteDisconnected is a ConnectionResetError: no status line arrived.
                if not reused:
                    raise
                conn.close()
                self.conn = None
                with gen.results.lock:
                    gen.results.stale_keepalive_resends += 1
                conn = self._connection()
                conn.request("GET", url, headers=headers)
                resp = conn.getresponse()
            status = resp.status
            body = resp.read()
            if resp.will_close:
                conn.close()
                self.conn = None
        except (OSError, http.client.HTTPException) as exc:
            error = type(exc).__name__
            if self.conn is not None:
                self.conn.close()
            self.conn = None
        gen.results.record(kind, url, status, error, time.monotonic() - started)
        return status, body

    # -- visits

    def visit_ui(self) -> None:
        status, body = self.request("ui", "/")
        if status != 200:
            return
        text = body.decode("utf-8", "replace")
        ui = UI_VERSION_RE.search(text)
        backend = BACKEND_VERSION_RE.search(text)
        if ui is None:
            self.gen.results.note_bad_content("/")
        self.gen.results.note_versions(ui.group(1) if ui else None, None)
        del backend  # the backend version in the page is the one SSR talked to; API visits record it.
        assets = sorted(set(STATIC_RE.findall(text)))
        for asset in assets:
            hashed = asset.split("/")[2] if asset.count("/") >= 3 else ""
            with self.gen.results.lock:
                self.gen.results.static_hashes[hashed] += 1
        for asset in assets:
            self.request("static", asset)

    def visit_api(self) -> None:
        url = self.rng.choice(self.gen.api_urls)
        status, body = self.request("api", url)
        if status != 200:
            return
        try:
            data = json.loads(body)
        except ValueError:
            data = None
        expected = "version" if url == "/api/v3/site" else "posts"
        if not isinstance(data, dict) or expected not in data:
            self.gen.results.note_bad_content(url)
            return
        if url == "/api/v3/site":
            version = data.get("version")
            self.gen.results.note_versions(None, version if isinstance(version, str) else None)

    def visit_ap(self) -> None:
        url = "/c/" + self.gen.args.community
        status, body = self.request("ap", url, accept=AP_ACCEPT)
        if status == 200:
            try:
                data = json.loads(body)
            except ValueError:
                data = None
            if not isinstance(data, dict) or "id" not in data:
                self.gen.results.note_bad_content(url)

    def run(self) -> None:
        """One visit at a time, like a browser tab: a keep-alive connection for the page and its assets,
        sent back-to-back, closed after the visit. Visits are paced so the total is --rate requests/s."""
        visits = (self.visit_ui, self.visit_api, self.visit_ap)
        weights = self.gen.weights
        gen = self.gen
        try:
            while not gen.stop_event.is_set():
                delay = gen.pacer.slot() - time.monotonic()
                if delay > 0 and gen.stop_event.wait(delay):
                    break
                before = self.sent
                self.rng.choices(visits, weights)[0]()
                gen.pacer.advance(self.sent - before - 1)
                if self.conn is not None:
                    self.conn.close()
                    self.conn = None
        except StopIteration:
            pass
        finally:
            if self.conn is not None:
                self.conn.close()


class LoadGenerator:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.stop_event = threading.Event()
        self.pacer = Pacer(args.rate, time.monotonic())
        self.results = Results(time.monotonic(), time.time())
        self.results.slow_after = args.slow
        self.budget_lock = threading.Lock()
        self.sent = 0
        self.stop_reason = "duration"
        self.api_urls = ["/api/v3/site", "/api/v3/post/list?type_=Local&sort=Active&limit=20"]
        self.weights = (args.weight_ui, args.weight_api, args.weight_ap)

    def take_budget(self) -> bool:
        with self.budget_lock:
            if self.sent >= self.args.max_requests:
                self.stop("max_requests")
                return False
            self.sent += 1
            return True

    def stop(self, reason: str) -> None:
        if not self.stop_event.is_set():
            self.stop_reason = reason
        self.stop_event.set()

    def sample_loadavg(self) -> None:
        try:
            with open("/proc/loadavg", encoding="ascii") as handle:
                value = float(handle.read().split()[0])
        except (OSError, ValueError, IndexError):
            return
        with self.results.lock:
            self.results.loadavg.append(value)

    def run(self) -> dict[str, t.Any]:
        workers = [Worker(self, self.args.seed + i) for i in range(self.args.threads)]
        for worker in workers:
            worker.start()
        deadline = time.monotonic() + self.args.duration
        next_sample = time.monotonic()
        while not self.stop_event.is_set():
            if time.monotonic() >= next_sample:
                next_sample += 1.0
                self.sample_loadavg()
            if time.monotonic() >= deadline:
                self.stop("duration")
            elif self.args.stop_file and os.path.exists(self.args.stop_file):
                self.stop("stop_file")
            self.stop_event.wait(0.1)
        for worker in workers:
            worker.join(self.args.timeout + 5)
        return self.results.as_dict(self.stop_reason, self.args)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1", help="loopback only (default 127.0.0.1)")
    parser.add_argument("--port", type=int, required=True, help="the lab balancer's published port")
    parser.add_argument("--host-header", default="lemmy.lab.test", help="Host header (default lemmy.lab.test)")
    parser.add_argument("--rate", type=float, default=25.0, help="requests per second, assets included (default 25)")
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--duration", type=float, default=300.0, help="stop after this many seconds (default 300)")
    parser.add_argument("--max-requests", type=int, default=20000, help="stop after this many requests (default 20000)")
    parser.add_argument("--timeout", type=float, default=15.0, help="per-request timeout in seconds (a timeout is a failure)")
    parser.add_argument("--slow", type=float, default=5.0, help="count answers slower than this many seconds (default 5)")
    parser.add_argument("--community", default="test")
    parser.add_argument("--weight-ui", type=float, default=2.0)
    parser.add_argument("--weight-api", type=float, default=3.0)
    parser.add_argument("--weight-ap", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", help="write the JSON results here (default: stdout)")
    parser.add_argument("--pid-file", help="write the pid here while running; removed at the end")
    parser.add_argument("--stop-file", help="stop when this file exists")
    parser.add_argument("--ready-file", help="touch this file once the workers run")
    args = parser.parse_args(argv)
    if args.host not in ALLOWED_HOSTS:
        parser.error("--host must be one of {0}: this generator only loads the local lab".format(", ".join(ALLOWED_HOSTS)))
    for name in ("rate", "duration", "timeout"):
        if getattr(args, name) <= 0:
            parser.error("--{0} must be positive".format(name))
    if args.threads < 1 or args.max_requests < 1:
        parser.error("--threads and --max-requests must be at least 1")
    if min(args.weight_ui, args.weight_api, args.weight_ap) < 0 or args.weight_ui + args.weight_api + args.weight_ap <= 0:
        parser.error("the weights must be >= 0 and not all 0")
    return args


def _write(path: str, text: str) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    gen = LoadGenerator(args)

    def on_signal(signum: int, _frame: t.Any) -> None:
        gen.stop("signal:" + signal.Signals(signum).name)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    if args.pid_file:
        _write(args.pid_file, "{0}\n".format(os.getpid()))
    if args.ready_file:
        _write(args.ready_file, "{0}\n".format(time.time()))
    try:
        result = gen.run()
    finally:
        if args.pid_file and os.path.exists(args.pid_file):
            os.unlink(args.pid_file)
    text = json.dumps(result, indent=2, sort_keys=True) + "\n"
    if args.out:
        _write(args.out, text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
