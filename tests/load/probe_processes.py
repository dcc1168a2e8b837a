# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) fediscale.lemmy contributors
"""Wait until enough distinct lemmy_server processes answer 200 through a lab balancer on 127.0.0.1.

The lab's lemmy_server processes name themselves in the X-Standin-Process header
(<hostname>/<container-id-12>/<pid>). This sends GET --path (default /api/v3/site) one request at a
time, each on a new connection, and collects the processes that answered 200; it stops when
--expect processes whose name starts with --prefix have answered, and fails after --timeout
seconds naming what it saw.

  python3 tests/load/probe_processes.py --port 27080 --expect 2 --prefix web2/
"""

from __future__ import annotations

import argparse
import http.client
import json
import sys
import time
from collections import Counter

ALLOWED_HOSTS = ("127.0.0.1", "::1", "localhost")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1", choices=ALLOWED_HOSTS)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host-header", default="lemmy.lab.test")
    parser.add_argument("--path", default="/api/v3/site")
    parser.add_argument("--expect", type=int, required=True, help="how many distinct processes must answer 200")
    parser.add_argument("--prefix", default="", help="count only processes whose name starts with this")
    parser.add_argument("--timeout", type=float, default=60.0)
    args = parser.parse_args(argv)
    started = time.monotonic()
    seen: set[str] = set()
    statuses: Counter[str] = Counter()
    while time.monotonic() - started < args.timeout:
        conn = http.client.HTTPConnection(args.host, args.port, timeout=10)
        try:
            conn.request("GET", args.path, headers={"Host": args.host_header, "User-Agent": "fediscale-probe/1"})
            resp = conn.getresponse()
            resp.read()
            statuses[str(resp.status)] += 1
            process = resp.getheader("X-Standin-Process") or ""
            if resp.status == 200 and process.startswith(args.prefix):
                seen.add(process)
        except (OSError, http.client.HTTPException) as exc:
            statuses["error:" + type(exc).__name__] += 1
        finally:
            conn.close()
        if len(seen) >= args.expect:
            print(json.dumps({"processes": sorted(seen), "seconds": round(time.monotonic() - started, 2),
                              "answers": dict(statuses), "at": time.time()}))
            return 0
        time.sleep(0.05)  # pacing between probes, not a wait for a state
    sys.stderr.write(f"Only {len(seen)} of {args.expect} processes starting with '{args.prefix}' answered 200 on "
                     f"{args.path} within {args.timeout} s (seen: {sorted(seen)}, answers: {dict(statuses)}).\n")
    return 1


if __name__ == "__main__":
    sys.exit(main())
