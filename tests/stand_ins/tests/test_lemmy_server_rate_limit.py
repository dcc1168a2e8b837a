# SPDX-License-Identifier: GPL-3.0-or-later
"""lemmy_server stand-in contract: per-process token buckets keyed on actix's realip_remote_addr()."""
from __future__ import annotations

import pytest
from conftest import LemmyProcess, LemmyRunner, PgDatabase, free_port

LIMITS = {"message": 3, "post": 2, "image": 1, "search": 2}


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


def _site(proc: LemmyProcess, **headers: str) -> int:
    return proc.get("/api/v3/site", headers={k.replace("_", "-"): v for k, v in headers.items()}).status


def test_message_bucket_limits_api_reads_per_ip(limited: LemmyProcess) -> None:
    """Buckets come from local_site_rate_limit; an empty bucket answers 429 rate_limit_error; other IPs are separate."""
    statuses = [_site(limited, X_Forwarded_For="198.51.100.1") for _attempt in range(LIMITS["message"])]
    assert statuses == [200] * LIMITS["message"]
    reply = limited.get("/api/v3/site", headers={"X-Forwarded-For": "198.51.100.1"})
    assert reply.status == 429 and reply.json() == {"error": "rate_limit_error"}
    assert _site(limited, X_Forwarded_For="198.51.100.2") == 200


def test_nodeinfo_is_not_rate_limited(limited: LemmyProcess) -> None:
    """/nodeinfo is outside the limiter, so health checks never get 429."""
    for _attempt in range(LIMITS["message"]):
        _site(limited, X_Forwarded_For="198.51.100.3")
    assert _site(limited, X_Forwarded_For="198.51.100.3") == 429
    assert all(limited.get("/nodeinfo/2.1", headers={"X-Forwarded-For": "198.51.100.3"}).status == 200 for _attempt in range(10))


def test_leftmost_forwarded_for_is_the_key(limited: LemmyProcess) -> None:
    """The key is the LEFT-MOST X-Forwarded-For value (so an appending proxy lets clients choose their key)."""
    for _attempt in range(LIMITS["message"]):
        _site(limited, X_Forwarded_For="198.51.100.4, 10.0.0.1")
    assert _site(limited, X_Forwarded_For="198.51.100.4, 10.0.0.2") == 429
    assert _site(limited, X_Forwarded_For="10.0.0.1, 198.51.100.4") == 200


def test_forwarded_header_beats_x_forwarded_for(limited: LemmyProcess) -> None:
    """`Forwarded: for=` is read before X-Forwarded-For; IPv6 with port and garbage (-> 127.0.0.1) are handled."""
    who = limited.get("/api/v3/standin/whoami", headers={"Forwarded": "for=198.51.100.5;proto=https", "X-Forwarded-For": "10.9.9.9"})
    assert who.json()["ip"] == "198.51.100.5"
    who = limited.get("/api/v3/standin/whoami", headers={"Forwarded": 'for="[2001:db8::5]:4711"'})
    assert who.json()["ip"] == "2001:db8::5"
    who = limited.get("/api/v3/standin/whoami", headers={"X-Forwarded-For": "not-an-address"})
    assert who.json()["ip"] == "127.0.0.1"


def test_post_and_search_have_their_own_buckets(limited: LemmyProcess) -> None:
    """POST /api/v3/post uses the `post` bucket and /api/v3/search the `search` bucket, not `message`."""
    ip = {"X-Forwarded-For": "198.51.100.6", "Content-Type": "application/json"}
    posts = [limited.get("/api/v3/post", method="POST", body=b"{}", headers=ip).status for _attempt in range(LIMITS["post"] + 1)]
    assert posts[-1] == 429 and 429 not in posts[:-1], posts
    searches = [limited.get("/api/v3/search?q=x", headers=ip).status for _attempt in range(LIMITS["search"] + 1)]
    assert searches == [200] * LIMITS["search"] + [429]
    assert _site(limited, X_Forwarded_For="198.51.100.6") == 200, "the message bucket is untouched"


def test_image_upload_bucket(limited: LemmyProcess) -> None:
    """POST /pictrs/image uses the `image` bucket."""
    ip = {"X-Forwarded-For": "198.51.100.7", "Content-Type": "application/octet-stream"}
    first = limited.get("/pictrs/image", method="POST", body=b"x", headers=ip)
    assert first.status == 400 and first.json()["error"] == "pictrs_response_error"
    assert limited.get("/pictrs/image", method="POST", body=b"x", headers=ip).status == 429
