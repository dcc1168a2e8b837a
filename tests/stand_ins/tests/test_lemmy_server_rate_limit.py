# SPDX-License-Identifier: GPL-3.0-or-later
"""lemmy_server stand-in contract: per-process token buckets keyed on actix's realip_remote_addr()."""
from __future__ import annotations

import http.client
import json

import pytest
from conftest import LemmyProcess, LemmyRunner, PgDatabase, free_port

LIMITS = {"message": 3, "post": 2, "image": 1, "search": 2}
RATE_LIMITED = (400, "rate_limit_error")


@pytest.fixture(scope="module")
def limited(lemmy_module: LemmyRunner, postgres_module: PgDatabase) -> LemmyProcess:
    """A process started after the admin lowered the limits in local_site_rate_limit (read at startup)."""
    code, out, _err = lemmy_module.run_to_exit("0.19.20", ["--disable-http-server", "--disable-scheduled-tasks",
                                                           "--disable-activity-sending"])
    assert code == 0, out
    sets = ", ".join(f"{k} = {v}" for k, v in LIMITS.items())
    postgres_module.execute(f"UPDATE local_site_rate_limit SET {sets}")
    closed = f'  pictrs: {{\n    url: "http://127.0.0.1:{free_port()}/"\n  }}\n'  # nothing listens there
    proc = lemmy_module.start("0.19.20", ["--disable-scheduled-tasks", "--disable-activity-sending"], extra_extra=closed)
    proc.wait_ready()
    return proc


@pytest.fixture(scope="module")
def probe(limited: LemmyProcess, lemmy_module: LemmyRunner, postgres_module: PgDatabase) -> LemmyProcess:
    """A second process, started after `limited` with a roomy message bucket, to read many keys via whoami (message bucket)."""
    postgres_module.execute("UPDATE local_site_rate_limit SET message = 100000")
    proc = lemmy_module.start("0.19.20", ["--disable-scheduled-tasks", "--disable-activity-sending"])
    proc.wait_ready()
    return proc


def _call(proc: LemmyProcess, path: str = "/api/v3/site", method: str = "GET", body: bytes | None = None,
          headers: list[tuple[str, str]] | None = None, source: str | None = None) -> tuple[int, str | None, dict[str, object]]:
    """One request with headers sent exactly as given (repeats allowed), optionally from another loopback address.

    Returns (status, the `error` field or None, the JSON body or {}).
    """
    conn = http.client.HTTPConnection("127.0.0.1", proc.port, timeout=30, source_address=(source, 0) if source else None)
    try:
        conn.putrequest(method, path, skip_accept_encoding=True)
        for name, value in headers or []:
            conn.putheader(name, value)
        if body is not None:
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        resp = conn.getresponse()
        raw = resp.read()
    finally:
        conn.close()
    try:
        data = json.loads(raw) if raw else {}
    except ValueError:
        data = {}
    error = data.get("error") if isinstance(data, dict) else None
    return resp.status, error, data if isinstance(data, dict) else {}


def _site(proc: LemmyProcess, *headers: tuple[str, str]) -> tuple[int, str | None]:
    status, error, _data = _call(proc, headers=list(headers))
    return status, error


def _key(proc: LemmyProcess, *headers: tuple[str, str], source: str | None = None) -> str:
    """The address the stand-in keys the request on (GET /api/v3/standin/whoami)."""
    status, _error, data = _call(proc, "/api/v3/standin/whoami", headers=list(headers), source=source)
    assert status == 200, data
    return str(data["ip"])


def _xff(value: str) -> tuple[str, str]:
    return ("X-Forwarded-For", value)


def _fwd(value: str) -> tuple[str, str]:
    return ("Forwarded", value)


def test_message_bucket_limits_api_reads_per_ip(limited: LemmyProcess) -> None:
    """Buckets come from local_site_rate_limit; an empty bucket answers 400 {"error":"rate_limit_error"} (Lemmy 0.19 has no 429)."""
    statuses = [_site(limited, _xff("198.51.100.1")) for _attempt in range(LIMITS["message"])]
    assert statuses == [(200, None)] * LIMITS["message"]
    status, _error, data = _call(limited, headers=[_xff("198.51.100.1")])
    assert (status, data) == (400, {"error": "rate_limit_error"})
    assert _site(limited, _xff("198.51.100.2")) == (200, None)


def test_nodeinfo_is_not_rate_limited(limited: LemmyProcess) -> None:
    """/nodeinfo is outside the limiter, so health checks are never rate-limited."""
    for _attempt in range(LIMITS["message"]):
        _site(limited, _xff("198.51.100.3"))
    assert _site(limited, _xff("198.51.100.3")) == RATE_LIMITED
    assert all(_call(limited, "/nodeinfo/2.1", headers=[_xff("198.51.100.3")])[0] == 200 for _attempt in range(10))


def test_leftmost_forwarded_for_is_the_key(limited: LemmyProcess) -> None:
    """The key is the LEFT-MOST X-Forwarded-For value (so an appending proxy lets clients choose their key)."""
    for _attempt in range(LIMITS["message"]):
        _site(limited, _xff("198.51.100.4, 10.0.0.1"))
    assert _site(limited, _xff("198.51.100.4, 10.0.0.2")) == RATE_LIMITED
    assert _site(limited, _xff("10.0.0.1, 198.51.100.4")) == (200, None)


def test_forwarded_header_beats_x_forwarded_for(probe: LemmyProcess) -> None:
    """`Forwarded: for=` is read before X-Forwarded-For; only the first `for=` counts, in any position and case."""
    assert _key(probe, _fwd("for=198.51.100.5;proto=https"), _xff("10.9.9.9")) == "198.51.100.5"
    assert _key(probe, _fwd("proto=https;For=198.51.100.6"), _xff("10.9.9.9")) == "198.51.100.6"
    assert _key(probe, _fwd("for=198.51.100.7, for=10.0.0.1")) == "198.51.100.7"
    assert _key(probe, _fwd("for=198.51.100.8"), _fwd("for=10.0.0.2")) == "198.51.100.8", "first Forwarded header wins"
    assert _key(probe, _fwd("secret, for=198.51.100.9")) == "198.51.100.9", "a pair without `=` is skipped"
    assert _key(probe, _fwd("proto=https;host=lemmy.test"), _xff("198.51.100.10")) == "198.51.100.10", "no for=: XFF"


def test_forwarded_for_quotes_brackets_and_port_are_stripped_like_actix(probe: LemmyProcess) -> None:
    """actix strips quotes, then a port and IPv6 brackets; an unbracketed IPv6 keeps only its first group (-> 127.0.0.1)."""
    assert _key(probe, _fwd('for="198.51.100.11:8443"')) == "198.51.100.11"
    assert _key(probe, _fwd('for="[2001:db8::5]:4711"')) == "2001:db8::5"
    assert _key(probe, _fwd("for=[2001:db8::6]")) == "2001:db8::6"
    assert _key(probe, _fwd("for=2001:db8::7"), _xff("198.51.100.12")) == "127.0.0.1"
    for opaque in ("for=unknown", "for=_hidden", "for="):
        assert _key(probe, _fwd(opaque), _xff("198.51.100.12")) == "127.0.0.1", f"{opaque} is used (not XFF) and unparsable"


def test_x_forwarded_for_value_is_parsed_like_lemmy(probe: LemmyProcess) -> None:
    """Left-most XFF as given: with a port, bracketed or bare IPv6; only the first XFF header; anything else -> 127.0.0.1."""
    assert _key(probe, _xff("198.51.100.13:5555")) == "198.51.100.13"
    assert _key(probe, _xff("[2001:db8::8]:80")) == "2001:db8::8"
    assert _key(probe, _xff("[2001:db8::9]")) == "2001:db8::9"
    assert _key(probe, _xff("2001:db8::a, 10.0.0.3")) == "2001:db8::a"
    assert _key(probe, _xff("198.51.100.14"), _xff("10.0.0.4")) == "198.51.100.14"
    assert _key(probe, _xff("not-an-address")) == "127.0.0.1"
    assert _key(probe, _xff("198.51.100.15:http")) == "127.0.0.1", "XFF ports are not stripped, the value must parse whole"
    assert _key(probe, _xff("198.51.100.15:65536")) == "127.0.0.1", "port out of range"


def test_tcp_peer_is_the_key_only_without_forwarding_headers(probe: LemmyProcess) -> None:
    """Without Forwarded and XFF the TCP peer is the key; an empty XFF is still "present" and gives 127.0.0.1, not the peer."""
    assert _key(probe, source="127.0.0.2") == "127.0.0.2"
    assert _key(probe, _xff(""), source="127.0.0.2") == "127.0.0.1"
    assert _key(probe, _xff("garbage"), source="127.0.0.2") == "127.0.0.1"


def test_forged_forwarded_header_chooses_the_bucket(limited: LemmyProcess) -> None:
    """An edge that overwrites X-Forwarded-For but passes a client's `Forwarded` lets the client pick its bucket."""
    edge = _xff("203.0.113.20")  # what an overwriting edge sets for this client
    for _attempt in range(LIMITS["message"]):
        _site(limited, edge)
    assert _site(limited, edge) == RATE_LIMITED
    for forged in range(1, 4):
        assert _site(limited, edge, _fwd(f"for=192.0.2.{forged}")) == (200, None), "each forged address is a fresh bucket"
    assert _site(limited, edge) == RATE_LIMITED


def test_post_and_search_have_their_own_buckets(limited: LemmyProcess) -> None:
    """POST /api/v3/post uses the `post` bucket and /api/v3/search the `search` bucket, not `message`."""
    ip = [_xff("198.51.100.16"), ("Content-Type", "application/json")]
    posts = [_call(limited, "/api/v3/post", method="POST", body=b"{}", headers=ip)[:2] for _attempt in range(LIMITS["post"] + 1)]
    assert posts == [(400, "not_logged_in")] * LIMITS["post"] + [RATE_LIMITED], posts
    searches = [_call(limited, "/api/v3/search?q=x", headers=ip)[:2] for _attempt in range(LIMITS["search"] + 1)]
    assert searches == [(200, None)] * LIMITS["search"] + [RATE_LIMITED]
    assert _site(limited, _xff("198.51.100.16")) == (200, None), "the message bucket is untouched"


def test_image_upload_bucket(limited: LemmyProcess) -> None:
    """POST /pictrs/image uses the `image` bucket."""
    ip = [_xff("198.51.100.17"), ("Content-Type", "application/octet-stream")]
    first = _call(limited, "/pictrs/image", method="POST", body=b"x", headers=ip)
    assert first[:2] == (400, "pictrs_response_error")
    assert _call(limited, "/pictrs/image", method="POST", body=b"x", headers=ip)[:2] == RATE_LIMITED
