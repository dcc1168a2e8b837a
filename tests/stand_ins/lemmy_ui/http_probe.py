# SPDX-License-Identifier: GPL-3.0-or-later
"""The HTTP probe of the lemmy-ui stand-in's HEALTHCHECK, in the shape of `curl -ILfSs URL`.

The official image probes with curl, which the stand-in image does not carry. This takes the same
flags: -I sends HEAD, -L follows redirects (up to 50, like curl), -f fails on a status of 400 or more,
-s is quiet and -S still prints errors. It prints the answer's status line and headers like curl -I,
and exits 0 on success, 7 when it cannot connect and 22 on an HTTP error (curl's codes).
"""
from __future__ import annotations

import http.client
import sys
import urllib.parse

MAX_REDIRECTS = 50


def main(argv: list[str]) -> int:
    flags = set("".join(arg[1:] for arg in argv if arg.startswith("-")))
    urls = [arg for arg in argv if not arg.startswith("-")]
    if len(urls) != 1 or not urls[0].startswith("http://"):
        sys.stderr.write("usage: http_probe.py [-ILfSs] http://HOST:PORT/PATH\n")
        return 2
    method = "HEAD" if "I" in flags else "GET"
    show_errors = "S" in flags or "s" not in flags
    url = urls[0]
    for _hop in range(MAX_REDIRECTS + 1):
        parts = urllib.parse.urlsplit(url)
        conn = http.client.HTTPConnection(parts.hostname or "localhost", parts.port or 80, timeout=10)
        try:
            conn.request(method, (parts.path or "/") + (f"?{parts.query}" if parts.query else ""))
            resp = conn.getresponse()
            resp.read()
        except OSError as exc:
            if show_errors:
                sys.stderr.write(f"http_probe: (7) Failed to connect to {parts.hostname} port {parts.port or 80}: {exc}\n")
            return 7
        finally:
            conn.close()
        print(f"HTTP/1.1 {resp.status} {resp.reason}")
        for key, value in resp.getheaders():
            print(f"{key}: {value}")
        print()
        location = resp.getheader("Location")
        if "L" in flags and resp.status in (301, 302, 303, 307, 308) and location:
            url = urllib.parse.urljoin(url, location)
            continue
        if "f" in flags and resp.status >= 400:
            if show_errors:
                sys.stderr.write(f"http_probe: (22) The requested URL returned error: {resp.status}\n")
            return 22
        return 0
    sys.stderr.write(f"http_probe: (47) Maximum ({MAX_REDIRECTS}) redirects followed\n")
    return 47


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
